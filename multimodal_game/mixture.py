"""Mixture-proportion inference: which players' distributions a data holder's examples come from.

A data holder's distribution is modelled as a convex combination of the players' distributions
(FedGMI's "inherent distributions"): p(x) = sum_j pi_j p_j(x). With the players' ``log_prob`` as
fixed components, EM finds the proportions pi in closed form:

    E-step:  r_nj = pi_j p_j(x_n) / sum_l pi_l p_l(x_n)
    M-step:  pi_j = (sum_n r_nj + a_j - 1) / (N + sum_l (a_l - 1))     (a: Dirichlet prior, MAP)

Only log-likelihoods are computed where each player lives; the holder's examples go to the players
for scoring (a holder that must not show its data to them runs the players' copies itself).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .batch import Batch
from .errors import ConfigError


@dataclass(frozen=True)
class MixtureResult:
    """EM's answer: ``proportions`` (J,), per-example ``responsibilities`` (N, J), the final
    (penalised) ``log_likelihood``, the ``iterations`` run and the ``players`` in column order."""

    proportions: torch.Tensor
    responsibilities: torch.Tensor
    log_likelihood: float
    iterations: int
    players: tuple[str, ...]
    variables: tuple[str, ...]
    converged: bool


def shared_variables(players: Mapping[str, Any], batch: Batch) -> tuple[str, ...]:
    """The batch's variables that every player models; a player modelling none of the batch's
    variables is a :class:`ConfigError` naming it."""
    present = set(batch.data)
    for name, p in players.items():
        if not present & set(p.space):
            raise ConfigError(
                f"player {name!r} models none of the data's variables {sorted(present)} "
                f"(it models {sorted(p.space)})"
            )
    common = [v for v in batch.data if all(v in p.space for p in players.values())]
    if not common:
        raise ConfigError(
            f"no variable of the data {sorted(present)} is modelled by every player "
            f"({', '.join(f'{n}: {sorted(p.space)}' for n, p in players.items())})"
        )
    return tuple(common)


def component_log_probs(
    players: Mapping[str, Any], batch: Batch, samples: int = 1
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """(N, J) matrix of log p_j(x_n) over the variables every player models, and those variables."""
    variables = shared_variables(players, batch)
    restricted = batch.project(variables)
    cols = [p.log_prob(restricted, samples=samples).double().cpu() for p in players.values()]
    return torch.stack(cols, 1), variables


def em_proportions(
    log_probs: torch.Tensor,
    prior: float | Sequence[float] | None = None,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> tuple[torch.Tensor, torch.Tensor, float, int, bool]:
    """EM for the weights of a mixture with fixed components (``log_probs``: (N, J)). ``prior``:
    Dirichlet concentration (a scalar for every component or one per component; >= 1 keeps the MAP
    inside the simplex; None: maximum likelihood). Stops when no proportion changes by more than
    ``tol``; if ``max_iter`` comes first, warns with the last change."""
    n, j = log_probs.shape
    if n == 0:
        raise ConfigError("mixture inference needs at least one example")
    alpha = (
        torch.ones(j, dtype=torch.float64)
        if prior is None
        else torch.as_tensor(prior, dtype=torch.float64).expand(j)
    )
    if (alpha < 1).any():
        raise ConfigError(f"Dirichlet prior must be >= 1 for every component, got {alpha.tolist()}")
    pi = torch.full((j,), 1.0 / j, dtype=torch.float64)
    change, converged, iterations = float("inf"), False, 0
    while iterations < max_iter:
        iterations += 1
        joint = log_probs + pi.log()
        resp = torch.softmax(joint, 1)
        new = (resp.sum(0) + alpha - 1) / (n + (alpha - 1).sum())
        change = (new - pi).abs().max().item()
        pi = new
        if change <= tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"mixture proportions did not converge in {max_iter} iterations (last change "
            f"{change:.3g} > tol {tol:g})",
            stacklevel=2,
        )
    joint = log_probs + pi.clamp_min(1e-300).log()
    resp = torch.softmax(joint, 1)
    ll = torch.logsumexp(joint, 1).sum() + ((alpha - 1) * pi.clamp_min(1e-300).log()).sum()
    return pi, resp, float(ll), iterations, converged


def infer_proportions(
    players: Mapping[str, Any],
    batch: Batch,
    samples: int = 1,
    prior: float | Sequence[float] | None = None,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> MixtureResult:
    """The proportions of ``players`` (players or handles with ``space`` and ``log_prob``) in the
    data ``batch``, by EM over fixed components; ``samples``: importance samples of each
    ``log_prob`` (see ``M2Player.log_prob``)."""
    log_probs, variables = component_log_probs(players, batch, samples)
    pi, resp, ll, it, ok = em_proportions(log_probs, prior, tol, max_iter)
    return MixtureResult(pi, resp, ll, it, tuple(players), variables, ok)
