"""Exchanging distribution statistics instead of samples (as FedVTC does).

With ``exchange="statistics"`` a producer sends, for the variables of an interface, a compact
parametric summary of its distribution instead of synthetic rows:

* a categorical variable: its class probabilities;
* ``real`` / ``latent`` variables: mean and covariance (``full`` or ``diag``), per class when the
  interface holds a categorical variable;
* exponential-family players (``summary`` method): their moments exactly; others: estimated from
  ``samples`` of their own draws, made where they live.

The consumer turns the summary into rows with its own random stream (``draw="sample"``), or into
the weighted sigma points of each Gaussian (``draw="sigma"``: 2d points per class whose weighted
first and second moments are exactly the summary's), so that an exponential-family consumer's best
response uses expectations, not a finite sample. Image variables cannot be summarised this way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .batch import Batch
from .errors import ConfigError
from .spaces import Space

SUMMARISABLE = ("categorical", "real", "latent")


@dataclass(frozen=True)
class Statistics:
    """How an interface is summarised: ``samples`` drawn by a producer without an exact
    ``summary``, ``covariance`` ``full`` or ``diag``, and how the consumer ``draw``s rows."""

    samples: int = 1024
    covariance: str = "full"
    draw: str = "sample"

    def __post_init__(self) -> None:
        if self.samples < 2:
            raise ConfigError(f"statistics need samples >= 2, got {self.samples}")
        if self.covariance not in ("full", "diag"):
            raise ConfigError(f"covariance must be 'full' or 'diag', got {self.covariance!r}")
        if self.draw not in ("sample", "sigma"):
            raise ConfigError(f"draw must be 'sample' or 'sigma', got {self.draw!r}")


def check_summarisable(space: Space, variables: Sequence[str], pair: tuple[str, str]) -> None:
    """A :class:`ConfigError` naming the first variable of ``variables`` that cannot be
    summarised, or a second categorical variable."""
    cats = [v for v in variables if space[v].kind == "categorical"]
    for v in variables:
        if space[v].kind not in SUMMARISABLE:
            raise ConfigError(
                f"interface {pair[0]} -> {pair[1]}: variable {v!r} is {space[v].kind}; only "
                f"{', '.join(SUMMARISABLE)} variables can be exchanged as statistics (use samples)"
            )
    if len(cats) > 1:
        raise ConfigError(
            f"interface {pair[0]} -> {pair[1]}: statistics condition on one categorical "
            f"variable, the interface has {cats}"
        )


@dataclass
class Summary:
    """Class probabilities of ``label`` (or None) and, per class (one class without a label),
    the mean and covariance of the concatenated real variables ``reals`` (sizes ``dims``)."""

    label: str | None
    probs: torch.Tensor  # (k,)
    reals: tuple[str, ...] = ()
    dims: tuple[int, ...] = ()
    means: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 0))  # (k, d)
    covs: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 0, 0))  # (k, d, d)

    def to(self, device: torch.device | str) -> Summary:
        return Summary(
            self.label, self.probs.to(device), self.reals, self.dims,
            self.means.to(device), self.covs.to(device),
        )  # fmt: skip

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.probs, self.means, self.covs))

    def _rows(
        self,
        classes: torch.Tensor,
        values: torch.Tensor,
        weight: torch.Tensor,
        dtype: torch.dtype = torch.float32,
    ) -> Batch:
        data: dict[str, torch.Tensor] = {}
        if self.label is not None:
            data[self.label] = classes
        start = 0
        for name, d in zip(self.reals, self.dims):
            data[name] = values[:, start : start + d].to(dtype)
            start += d
        return Batch(data, weight=weight.to(dtype))

    def draw(self, n: int, generator: torch.Generator | None = None) -> Batch:
        """``n`` rows drawn from the summary (classes, then each class's Gaussian)."""
        dev = self.probs.device
        classes = torch.multinomial(self.probs.double(), n, replacement=True, generator=generator)
        d = self.means.shape[1]
        eps = torch.randn(n, d, dtype=torch.float64, device=dev, generator=generator)
        chol = _chol(self.covs.double())
        values = self.means.double()[classes] + torch.einsum("nij,nj->ni", chol[classes], eps)
        return self._rows(classes, values, torch.ones(n, device=dev))

    def sigma_points(self) -> Batch:
        """Weighted rows whose weighted moments are exactly the summary's: per class, 2d points
        mean +/- sqrt(d) L e_k (L L^T = covariance), each of weight p_c / (2d); one point per class
        when there are no real variables. In float64: meant for consumers that compute exact
        expectations (exponential-family players); networks take ``draw``'s float32 rows."""
        f64 = torch.float64
        dev = self.probs.device
        k, d = self.means.shape
        keep = (self.probs > 0).nonzero().flatten()
        if d == 0:
            return self._rows(keep, torch.zeros(len(keep), 0, device=dev), self.probs[keep], f64)
        chol = _chol(self.covs.double()) * math.sqrt(d)
        offsets = torch.cat([chol.transpose(1, 2), -chol.transpose(1, 2)], 1)  # (k, 2d, d)
        values = (self.means.double()[:, None, :] + offsets)[keep].reshape(-1, d)
        classes = keep.repeat_interleave(2 * d)
        weight = (self.probs[keep].double() / (2 * d)).repeat_interleave(2 * d)
        return self._rows(classes, values, weight, f64)


def _chol(covs: torch.Tensor) -> torch.Tensor:
    jitter = 1e-10 * torch.eye(covs.shape[-1], dtype=covs.dtype, device=covs.device)
    return torch.linalg.cholesky(covs + jitter)


def summarize(
    batch: Batch, space: Space, variables: Sequence[str], covariance: str = "full"
) -> Summary:
    """The summary of ``batch``'s ``variables`` (a producer's own samples)."""
    label = next((v for v in variables if space[v].kind == "categorical"), None)
    reals = tuple(v for v in variables if v != label)
    dims = tuple(space[v].shape[0] for v in reals)
    n = len(batch)
    x = (
        torch.cat([batch[v].double().reshape(n, -1) for v in reals], 1)
        if reals
        else torch.zeros(n, 0, dtype=torch.float64, device=batch.device)
    )
    k = space[label].cardinality if label is not None else 1
    classes = batch[label] if label is not None else torch.zeros(n, dtype=torch.long)
    counts = torch.bincount(classes.cpu(), minlength=k).double().to(x.device)
    probs = counts / counts.sum()
    d = x.shape[1]
    means = torch.zeros(k, d, dtype=torch.float64, device=x.device)
    covs = torch.eye(d, dtype=torch.float64, device=x.device).repeat(k, 1, 1)
    for c in range(k):
        xc = x[classes == c]
        if len(xc) == 0:
            continue
        means[c] = xc.mean(0)
        if len(xc) > 1 and d:
            centred = xc - means[c]
            cov = centred.T @ centred / len(xc)
            covs[c] = torch.diag(torch.diagonal(cov)) if covariance == "diag" else cov
    return Summary(label, probs, reals, dims, means, covs)


def summary_bytes(space: Space, variables: Sequence[str], covariance: str = "full") -> int:
    """Float64 bytes of a summary of ``variables`` (what one transfer sends)."""
    label = next((v for v in variables if space[v].kind == "categorical"), None)
    d = sum(space[v].shape[0] for v in variables if v != label)
    k = space[label].cardinality if label is not None else 1
    return 8 * (k + k * d + k * (d * d if covariance == "full" else d))


def exact_summary(player: object, variables: Sequence[str]) -> Summary | None:
    """The player's own exact summary (exponential-family players), if it has one."""
    fn = getattr(player, "summary", None)
    return None if fn is None else fn(variables)


def as_rows(summary: Summary, count: int, draw: str, generator: torch.Generator | None) -> Batch:
    """What a consumer learns from: ``count`` drawn rows, or the sigma points."""
    return summary.sigma_points() if draw == "sigma" else summary.draw(count, generator)


__all__ = [
    "Statistics",
    "Summary",
    "as_rows",
    "check_summarisable",
    "exact_summary",
    "summarize",
    "summary_bytes",
]
