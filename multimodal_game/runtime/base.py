"""The runtime interface the game drives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch

from ..host import ProducePlan
from ..spaces import Space

# learn request of one player: (own count, own weight, [(producer, handle, weight), ...])
LearnRequest = tuple[int, float, Sequence[tuple[str, Any, float]]]


class Runtime(Protocol):
    """Places player hosts and moves interface batches between them.

    Handles returned by ``produce`` are opaque (a ``Batch`` in process, an object reference on Ray)
    and are only passed back to ``learn``.
    """

    names: tuple[str, ...]

    def spaces(self) -> dict[str, Space]: ...

    def produce(self, plans: Mapping[str, ProducePlan]) -> dict[str, dict[str, Any]]: ...

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]: ...

    def nbytes(self, handles: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]: ...

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(player, *args)`` where the player lives and return its (small) result."""

    def param_bytes(self) -> dict[str, int]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, states: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...
