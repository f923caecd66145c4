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
    """A data source over a ``Batch`` held in memory (on the CPU or already on the device)."""

    def __init__(self, batch: Batch):
        if len(batch) == 0:
            raise ValueError("a data source needs at least one example")
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch)

    def draw(self, n: int, generator: torch.Generator) -> Batch:
        # Indices come from a CPU generator so that the draw sequence is identical on every device.
        idx = torch.randint(len(self.batch), (n,), generator=generator)
        return self.batch.index(idx.to(self.batch.device))

    def to(self, device: torch.device | str) -> TensorSource:
        return TensorSource(self.batch.to(device))
