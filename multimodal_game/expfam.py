"""Exponential-family players: the best response is moment matching, the equilibrium has a closed form.

For players whose model is an exponential family with sufficient statistics T, the best response to
the game is ``mu_i = alpha_ii * mu_hat_i + sum_{j != i} alpha_ij * mu_j`` (mu: mean parameters,
mu_hat_i: the moments of player i's own data). Stacked over players this is ``M = D S + A M`` with
D the diagonal and A the off-diagonal part of alpha, so the unique Nash equilibrium is
``M* = (I - A)^{-1} D S``. A is sub-stochastic (its rows sum to 1 - alpha_ii < 1), hence I - A is
invertible and the simultaneous best-response iteration converges geometrically with rate rho(A).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .alpha import validate_alpha
from .batch import Batch
from .player import check_samples
from .spaces import Space, categorical, real
from .statistics import Summary


def _names(n: int) -> list[str]:
    return [f"player{k}" for k in range(n)]


def off_diagonal(alpha: torch.Tensor) -> torch.Tensor:
    return alpha - torch.diag(torch.diagonal(alpha))


def spectral_radius(alpha) -> float:
    """Spectral radius of the off-diagonal part of alpha: the contraction rate of best responses."""
    a = torch.as_tensor(alpha, dtype=torch.float64)
    return float(torch.linalg.eigvals(off_diagonal(a)).abs().max())


def equilibrium(alpha, own_stats) -> torch.Tensor:
    """Closed-form Nash equilibrium ``(I - A)^{-1} D S`` of players with own moments ``own_stats``.

    ``own_stats``: (N, D) mean parameters of each player's own data. Returns (N, D) float64.
    """
    s = torch.as_tensor(own_stats, dtype=torch.float64)
    if s.dim() == 1:
        s = s[:, None]
    a = validate_alpha(alpha, _names(s.shape[0]) if s.dim() == 2 else [])
    n = a.shape[0]
    system = torch.eye(n, dtype=torch.float64) - off_diagonal(a)
    cond = torch.linalg.cond(system).item()
    if not (cond < 1e12):
        raise ValueError(f"the equilibrium system I - A is singular (condition number {cond:.3g})")
    return torch.linalg.solve(system, torch.diag(torch.diagonal(a)) @ s)


def best_response_dynamics(alpha, own_stats, init, rounds: int) -> list[torch.Tensor]:
    """Exact simultaneous best responses ``M <- D S + A M`` from ``init``; returns every iterate."""
    a = validate_alpha(alpha, _names(len(own_stats)))
    s = torch.as_tensor(own_stats, dtype=torch.float64)
    m = torch.as_tensor(init, dtype=torch.float64).clone()
    d, off = torch.diag(torch.diagonal(a)), off_diagonal(a)
    out = [m]
    for _ in range(rounds):
        m = d @ s + off @ m
        out.append(m)
    return out


def gaussian_statistic_cov(moments: torch.Tensor, d: int) -> torch.Tensor:
    """Covariance of the sufficient statistic T(x) = (x, vec(x x^T)) under the Gaussian with mean
    parameters ``moments`` = (E[x], vec(E[x x^T])): (d + d^2, d + d^2), exact (Isserlis)."""
    m = torch.as_tensor(moments, dtype=torch.float64)
    mu = m[:d]
    if len(m) == d:  # mean only, unit covariance
        return torch.eye(d, dtype=torch.float64)
    c = m[d:].reshape(d, d) - torch.outer(mu, mu)
    c = 0.5 * (c + c.T)
    # Cov(x_a, x_c x_e) = mu_c C_ae + mu_e C_ac
    cross = torch.einsum("c,ae->ace", mu, c) + torch.einsum("e,ac->ace", mu, c)
    # Cov(x_a x_b, x_c x_e) = C_ac C_be + C_ae C_bc + mu_a mu_c C_be + mu_a mu_e C_bc
    #                         + mu_b mu_c C_ae + mu_b mu_e C_ac
    quad = (
        torch.einsum("ac,be->abce", c, c)
        + torch.einsum("ae,bc->abce", c, c)
        + torch.einsum("a,c,be->abce", mu, mu, c)
        + torch.einsum("a,e,bc->abce", mu, mu, c)
        + torch.einsum("b,c,ae->abce", mu, mu, c)
        + torch.einsum("b,e,ac->abce", mu, mu, c)
    )
    top = torch.cat([c, cross.reshape(d, d * d)], 1)
    bottom = torch.cat([cross.reshape(d, d * d).T, quad.reshape(d * d, d * d)], 1)
    return torch.cat([top, bottom], 0)


def gaussian_statistics(x: torch.Tensor) -> torch.Tensor:
    """T(x) = (x, vec(x x^T)) of each row of ``x``: (n, d + d^2), float64."""
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.cat([x, (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)], 1)


def time_average_sd(
    alpha,
    counts: Sequence[Sequence[int]],
    model_cov: Sequence[torch.Tensor],
    data_cov: Sequence[torch.Tensor],
    rounds: int,
) -> torch.Tensor:
    """Standard deviation of each mean parameter of each player, averaged over ``rounds`` rounds
    of the sampled game at its equilibrium: (N, D).

    Near the equilibrium the error of the stacked moments follows ``e' = (A (x) I) e + eps``: eps_i
    is the sampling noise of player i's best response, ``sum_j alpha_ij (mean of n_ij draws of T
    from source j - its expectation)``; own draws (``data_cov[i]``: Cov T over the data) are
    independent, and one producer's draw is shared by its consumers (consumer i reads its first
    n_ij rows), so two consumers' noises from producer j have covariance
    ``model_cov[j] / max(n_ij, n_kj)``. The time average of the stationary process has covariance
    ``(I - B)^-1 Q (I - B)^-T / rounds`` with ``B = A (x) I`` and Q = Cov eps (long-run limit)."""
    a = torch.as_tensor(alpha, dtype=torch.float64)
    n = a.shape[0]
    dim = data_cov[0].shape[0]
    q = torch.zeros(n * dim, n * dim, dtype=torch.float64)
    for i in range(n):
        for k in range(n):
            block = torch.zeros(dim, dim, dtype=torch.float64)
            if i == k and counts[i][i]:
                block += a[i, i] ** 2 * data_cov[i] / counts[i][i]
            for j in range(n):
                if j in (i, k) or not (counts[i][j] and counts[k][j]):
                    continue
                block += a[i, j] * a[k, j] * model_cov[j] / max(counts[i][j], counts[k][j])
            q[i * dim : (i + 1) * dim, k * dim : (k + 1) * dim] = block
    b = torch.kron(off_diagonal(a), torch.eye(dim, dtype=torch.float64))
    inv = torch.linalg.inv(torch.eye(n * dim, dtype=torch.float64) - b)
    var = torch.diagonal(inv @ q @ inv.T) / rounds
    return var.clamp_min(0).sqrt().reshape(n, dim)


class _ExpFamPlayer:
    """Common part: the state is a vector of mean parameters; ``learn`` is the exact best response."""

    space: Space
    var: str

    def __init__(self) -> None:
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> _ExpFamPlayer:
        self.device = torch.device(device)
        for k, v in vars(self).items():
            if torch.is_tensor(v):
                setattr(self, k, v.to(self.device))
        return self

    def _weights(self, batch: Batch) -> torch.Tensor:
        # in float64: float32 normalisation alone leaves moments 1e-7 off (exact runs reach 1e-8)
        w = batch.weight.double() * batch.observed(self.var).double()
        total = w.sum()
        return w / total.clamp_min(1e-300)

    def parameters(self) -> list[torch.Tensor]:
        return [self.moments()]


class CategoricalPlayer(_ExpFamPlayer):
    """A categorical distribution over one variable; mean parameters = class probabilities."""

    def __init__(self, k: int, var: str = "label", probs: torch.Tensor | None = None):
        super().__init__()
        self.var = var
        self.space = Space([categorical(var, k)])
        self.probs = (
            torch.full((k,), 1.0 / k, dtype=torch.float64)
            if probs is None
            else torch.as_tensor(probs, dtype=torch.float64)
        )

    def moments(self) -> torch.Tensor:
        return self.probs

    def learn(self, batch: Batch) -> dict[str, torch.Tensor]:
        w = self._weights(batch).to(torch.float64)
        k = self.probs.shape[0]
        counts = torch.zeros(k, dtype=torch.float64, device=w.device).index_add_(
            0, batch[self.var], w
        )
        old = self.probs
        self.probs = counts
        return {"loss": (counts - old).abs().max()}

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        return Batch({self.var: torch.multinomial(self.probs, n, replacement=True)})

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        return self.probs.expand(len(given), -1).float()

    def summary(self, variables) -> Summary:
        """The exact statistics this player sends when its interface travels as statistics."""
        return Summary(
            self.var,
            self.probs.clone(),
            (),
            (),
            torch.zeros(len(self.probs), 0),
            torch.zeros(len(self.probs), 0, 0),
        )

    def log_prob(self, batch: Batch, samples: int = 1) -> torch.Tensor:
        """Exact log p of each example's value (0 where it is missing); ``samples`` is unused."""
        check_samples(samples)
        if self.var not in batch.data:
            return torch.zeros(len(batch), dtype=torch.float64, device=self.probs.device)
        seen = batch.observed(self.var)
        x = batch[self.var].clamp(0, len(self.probs) - 1)
        return torch.where(seen, self.probs.log()[x], torch.zeros((), dtype=torch.float64))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"probs": self.probs.clone()}

    def load_state_dict(self, state) -> None:
        self.probs = state["probs"].clone().to(self.device)


class GaussianPlayer(_ExpFamPlayer):
    """A Gaussian over a real vector; ``covariance="fixed"`` learns the mean only (unit covariance),
    ``"full"`` learns mean and covariance (mean parameters: E[x] and E[x x^T])."""

    def __init__(self, d: int, var: str = "x", covariance: str = "full"):
        super().__init__()
        if covariance not in ("fixed", "full"):
            raise ValueError(f"covariance must be 'fixed' or 'full', got {covariance!r}")
        self.var = var
        self.d = d
        self.covariance = covariance
        self.space = Space([real(var, d)])
        self.mean = torch.zeros(d, dtype=torch.float64)
        self.second = torch.eye(d, dtype=torch.float64)  # E[x x^T]

    @property
    def cov(self) -> torch.Tensor:
        if self.covariance == "fixed":
            return torch.eye(self.d, dtype=torch.float64, device=self.mean.device)
        c = self.second - torch.outer(self.mean, self.mean)
        return 0.5 * (c + c.T)

    def moments(self) -> torch.Tensor:
        if self.covariance == "fixed":
            return self.mean
        return torch.cat([self.mean, self.second.reshape(-1)])

    def learn(self, batch: Batch) -> dict[str, torch.Tensor]:
        w = self._weights(batch).to(torch.float64)
        x = batch[self.var].to(torch.float64)
        old = self.moments()
        self.mean = w @ x
        if self.covariance == "full":
            self.second = (x * w[:, None]).T @ x
        return {"loss": (self.moments() - old).abs().max()}

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        # Cholesky of the covariance (jitter keeps it valid when samples are few).
        jitter = 1e-9 * torch.eye(self.d, dtype=torch.float64, device=self.mean.device)
        chol = torch.linalg.cholesky(self.cov + jitter)
        eps = torch.randn(n, self.d, dtype=torch.float64, device=self.mean.device)
        return Batch({self.var: (self.mean + eps @ chol.T).float()})

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        return self.mean.expand(len(given), -1).float()

    def summary(self, variables) -> Summary:
        """The exact mean and covariance, sent when the interface travels as statistics."""
        return Summary(
            None,
            torch.ones(1, dtype=torch.float64),
            (self.var,),
            (self.d,),
            self.mean[None].clone(),
            self.cov[None].clone(),
        )

    def log_prob(self, batch: Batch, samples: int = 1) -> torch.Tensor:
        """Exact log N(x; mean, cov) of each example (0 where x is missing); ``samples`` unused."""
        check_samples(samples)
        if self.var not in batch.data:
            return torch.zeros(len(batch), dtype=torch.float64, device=self.mean.device)
        jitter = 1e-9 * torch.eye(self.d, dtype=torch.float64, device=self.mean.device)
        mvn = torch.distributions.MultivariateNormal(self.mean, self.cov + jitter)
        lp = mvn.log_prob(batch[self.var].to(torch.float64))
        return torch.where(batch.observed(self.var), lp, torch.zeros((), dtype=torch.float64))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "second": self.second.clone()}

    def load_state_dict(self, state) -> None:
        self.mean = state["mean"].clone().to(self.device)
        self.second = state["second"].clone().to(self.device)


def data_moments(player: _ExpFamPlayer, data: Batch) -> torch.Tensor:
    """Mean parameters of ``data`` as ``player`` measures them (its own-data moments mu_hat)."""
    probe = type(player).__new__(type(player))
    probe.__dict__.update(
        {k: (v.clone() if torch.is_tensor(v) else v) for k, v in vars(player).items()}
    )
    probe.learn(data)
    return probe.moments()


def stack_moments(players: Sequence[_ExpFamPlayer]) -> torch.Tensor:
    return torch.stack([p.moments().to(torch.float64).cpu() for p in players])
