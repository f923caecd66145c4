"""Data sources: where a player's private real data comes from, one batch at a time."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from .batch import Batch


@runtime_checkable
class DataSource(Protocol):
    """A player's private data. It stays with the player's host; only its draws feed ``learn``."""

    def __len__(self) -> int: ...

    def draw(self, n: int, generator: torch.Generator) -> Batch:
        """``n`` examples drawn uniformly with replacement using ``generator`` (resumable)."""

    def to(self, device: torch.device | str) -> DataSource: ...


class TensorSource:
    """A data source over a ``Batch`` held in memory (on the CPU or already on the device).

    ``min_observed_fraction`` (with ``stratify_on``, a variable of the batch) makes every draw hold at
    least that fraction of examples that observe the variable: semi-supervised shards are mostly
    unlabelled, and uniform draws show a few labels per batch (4 of 100 at 4% labelled), so the
    classifier sees its labels too rarely; this oversamples them, as semi-supervised training
    usually does. Without it (or when the shard is more labelled than that), draws are uniform.
    """

    def __init__(
        self,
        batch: Batch,
        stratify_on: str | None = None,
        min_observed_fraction: float = 0.0,
    ):
        if len(batch) == 0:
            raise ValueError("a data source needs at least one example")
        if not 0.0 <= min_observed_fraction <= 1.0:
            raise ValueError(
                f"min_observed_fraction must be in [0, 1], got {min_observed_fraction}"
            )
        if min_observed_fraction and stratify_on is None:
            raise ValueError("min_observed_fraction needs stratify_on (the variable to count)")
        self.batch = batch
        self.stratify_on, self.min_observed_fraction = stratify_on, float(min_observed_fraction)
        self._observed = self._missing = None
        if stratify_on is not None:
            if stratify_on not in batch.data:
                raise ValueError(
                    f"stratify_on={stratify_on!r} is not a variable of the batch "
                    f"({sorted(batch.data)})"
                )
            seen = batch.observed_host(stratify_on)
            if self.min_observed_fraction and not seen.any():
                raise ValueError(f"no example observes {stratify_on!r}; nothing to oversample")
            self._observed, self._missing = seen.nonzero()[:, 0], (~seen).nonzero()[:, 0]

    def __len__(self) -> int:
        return len(self.batch)

    def draw(self, n: int, generator: torch.Generator) -> Batch:
        # Indices come from a CPU generator so that the draw sequence is identical on every device.
        k = self._stratified_count(n)
        if k is None:
            idx = torch.randint(len(self.batch), (n,), generator=generator)
        else:
            o, m = self._observed, self._missing
            idx = torch.cat(
                [
                    o[torch.randint(len(o), (k,), generator=generator)],
                    m[torch.randint(len(m), (n - k,), generator=generator)],
                ]
            )
        return self.batch.index(idx.to(self.batch.device), host_idx=idx)

    def _stratified_count(self, n: int) -> int | None:
        """How many observed examples a draw of ``n`` holds, or None for a uniform draw."""
        if not self.min_observed_fraction or len(self._missing) == 0:
            return None
        if len(self._observed) / len(self.batch) >= self.min_observed_fraction:
            return None
        return min(n, max(1, round(n * self.min_observed_fraction)))

    def to(self, device: torch.device | str) -> TensorSource:
        return TensorSource(self.batch.to(device), self.stratify_on, self.min_observed_fraction)


class FullSource:
    """Every draw is the whole data set, its rows weighted so that they count as the ``n`` rows
    asked for (in float64): a learner then sees its exact own moments each round, as exact best
    responses assume. For small data sets and exponential-family players."""

    def __init__(self, batch: Batch):
        if len(batch) == 0:
            raise ValueError("a data source needs at least one example")
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch)

    def draw(self, n: int, generator: torch.Generator) -> Batch:
        weight = torch.full((len(self.batch),), n / len(self.batch), dtype=torch.float64)
        return self.batch.with_weight(weight.to(self.batch.device))

    def to(self, device: torch.device | str) -> FullSource:
        return FullSource(self.batch.to(device))
