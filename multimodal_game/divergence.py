"""A data-driven alpha: who learns from whom, weighted by estimated divergences (as HuSCF-GAN's
KLD-weighted cooperation).

Every ``every`` rounds, for each pair (producer j -> consumer i) that shares variables:

    KL(p_j || p_i) ~ mean over x ~ p_j of  log p_j(x_I) - log p_i(x_I)     (I: their interface)

j draws the samples (synthetic, like any exchange), and each player scores them where it lives
(``log_prob``); only the samples and two scalars move. Row i of alpha is then ``own_weight`` on
i's own data and the rest spread over its partners in proportion to exp(-KL(p_j || p_i) / T).

Both log-likelihoods are bounds (the ELBO, or IWAE with K samples), and a bound is loosest for the
weakest model: a small producer's own ``log p_j`` of its samples is underestimated the most, so its
KL to every consumer looks small. ``divergence="jeffreys"`` uses the symmetrised divergence
(KL(p_j || p_i) + KL(p_i || p_j)) / 2, in which each pair is scored on both players' samples: a
loose producer can no longer look close to everyone. Either way only samples and scalars move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .alpha import validate_alpha
from .policy import OwnPlusPartners, RoundOutcome


def estimate_kl(
    players: Mapping[str, Any],
    interfaces: Mapping[tuple[str, str], Sequence[str]],
    samples: int = 256,
    importance_samples: int = 1,
) -> torch.Tensor:
    """``kl[i, j]`` ~ KL(p_j || p_i) over the interface of each (j, i) pair in ``interfaces``
    (NaN where two players share nothing), in the order of ``players``."""
    names = list(players)
    kl = torch.full((len(names), len(names)), float("nan"), dtype=torch.float64)
    drawn: dict[str, Any] = {}
    for (j, i), variables in interfaces.items():
        if not variables:
            continue
        if j not in drawn:  # one draw per producer, projected on each interface
            drawn[j] = players[j].sample(samples)
        x = drawn[j].project(variables)
        own = players[j].log_prob(x, samples=importance_samples).double().mean()
        other = players[i].log_prob(x, samples=importance_samples).double().mean()
        kl[names.index(i), names.index(j)] = float(own - other)
    return kl


DIVERGENCES = ("kl", "jeffreys")


def _check_divergence(divergence: str) -> None:
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")


def symmetrise(kl: torch.Tensor) -> torch.Tensor:
    """(KL(p_j || p_i) + KL(p_i || p_j)) / 2 where both directions were estimated; the one
    direction where only it was (a pair sharing variables one way only stays as it is)."""
    both = ~torch.isnan(kl) & ~torch.isnan(kl.T)
    return torch.where(both, (kl + kl.T) / 2, kl)


def divergence_alpha(
    kl: torch.Tensor, own_weight: float, temperature: float, divergence: str = "kl"
) -> torch.Tensor:
    """Alpha from ``kl[i, j]`` (NaN: not partners): ``own_weight`` on the diagonal, the rest of a
    row over partners in proportion to exp(-D / temperature), D the KL (``"kl"``) or its
    symmetrised form (``"jeffreys"``); all own without a partner."""
    _check_divergence(divergence)
    if divergence == "jeffreys":
        kl = symmetrise(kl)
    n = kl.shape[0]
    alpha = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        partners = [j for j in range(n) if j != i and not torch.isnan(kl[i, j])]
        if not partners:
            alpha[i, i] = 1.0
            continue
        d = kl[i, partners].double().clamp_min(0.0)
        w = torch.softmax(-d / temperature, 0)
        alpha[i, partners] = (1 - own_weight) * w
        alpha[i, i] = own_weight
    return alpha


class DivergenceAlpha(OwnPlusPartners):
    """A policy that re-sets its own alpha from estimated divergences every ``every`` rounds
    (in :meth:`observe`, through the game's player handles: on every runtime, on the players'
    evaluation streams); until the first estimate, ``own_weight`` on own data and the rest uniform
    over partners. Its current alpha is part of the checkpoint, so a resumed game continues with
    it; ``log`` keeps each update's round, KL matrix and alpha. ``every=0``: only by hand
    (:meth:`update`)."""

    def __init__(
        self,
        own_weight: float = 0.5,
        temperature: float = 1.0,
        divergence: str = "kl",
        *,
        every: int = 0,
        samples: int = 256,
        importance_samples: int = 1,
    ):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if every < 0:
            raise ValueError(f"every must be >= 0, got {every}")
        _check_divergence(divergence)
        super().__init__(own_weight, "uniform")
        self.temperature = float(temperature)
        self.divergence = divergence
        self.every, self.samples, self.importance_samples = (
            int(every),
            int(samples),
            int(importance_samples),
        )
        self.log: list[dict[str, Any]] = []
        self._current: torch.Tensor | None = None

    def matrix(self) -> torch.Tensor:
        return super().matrix() if self._current is None else self._current

    def set_alpha(self, alpha: torch.Tensor) -> None:
        alpha = validate_alpha(alpha, self.names)
        self._current = alpha
        self._plan = self._plan_of(alpha)

    def update(self, kl: torch.Tensor) -> torch.Tensor:
        alpha = divergence_alpha(kl, self.own_weight, self.temperature, self.divergence)
        self.set_alpha(alpha)
        return alpha

    def observe(self, outcome: RoundOutcome) -> None:
        if not self.every or outcome.round % self.every:
            return
        kl = estimate_kl(outcome.players, self.interfaces, self.samples, self.importance_samples)
        alpha = self.update(kl)
        self.log.append({"round": outcome.round, "kl": kl.tolist(), "alpha": alpha.tolist()})

    def describe(self) -> dict[str, Any]:
        return {
            "policy": type(self).__name__,
            "own_weight": self.own_weight,
            "temperature": self.temperature,
            "divergence": self.divergence,
            "warmup_rounds": 0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "alpha": None if self._current is None else self._current.clone(),
            "log": list(self.log),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.log = list(state.get("log", []))
        if state.get("alpha") is not None:
            self.set_alpha(torch.as_tensor(state["alpha"], dtype=torch.float64))
