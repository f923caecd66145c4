"""The runtime interface the game drives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch

from ..batch import Batch
from ..host import ProducePlan
from ..spaces import Space

# learn request of one player: (own count, own weight, [(producer, handle, weight), ...])
LearnRequest = tuple[int, float, Sequence[tuple[str, Any, float]]]


class PlayerLost(RuntimeError):
    """One or more players' processes died; ``names`` says which."""

    def __init__(self, names: Sequence[str], message: str = ""):
        self.names = tuple(names)
        super().__init__(message or f"player(s) {', '.join(self.names)} died")


class Runtime(Protocol):
    """Places player hosts and moves interface batches between them.

    Handles returned by ``produce`` are opaque (a ``Batch`` in process, an object reference on Ray)
    and are only passed back to ``learn``.
    """

    names: tuple[str, ...]

    def spaces(self) -> dict[str, Space]: ...

    def produce(self, plans: Mapping[str, ProducePlan]) -> dict[str, dict[str, Any]]: ...

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]: ...

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(player, *args)`` where the player lives and return its (small) result."""

    @property
    def players(self) -> dict[str, Any]:
        """Objects with the player's ``sample``/``infer``/``space`` (the players, or proxies)."""

    def param_bytes(self) -> dict[str, int]: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, states: Mapping[str, Any]) -> None: ...

    def restart(self, names: Sequence[str]) -> None:
        """Replace lost players' hosts by fresh ones (their state is then loaded by the game)."""

    def close(self) -> None: ...


def _on_cpu(x: Any) -> Any:
    if isinstance(x, Batch) or torch.is_tensor(x):
        return x.to("cpu")
    return x


def _sample(player: Any, n: int, given: Batch | None) -> Batch:
    return _on_cpu(player.sample(n, given))


def _infer(player: Any, name: str, given: Batch) -> torch.Tensor:
    return _on_cpu(player.infer(name, given))


class PlayerProxy:
    """Stands for a player that lives in another process: ``sample`` and ``infer`` run there and
    their (CPU) results come back. Used by evaluation code, which never touches parameters."""

    device = torch.device("cpu")

    def __init__(self, runtime: Runtime, name: str, space: Space):
        self._runtime, self.name, self.space = runtime, name, space

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        return self._runtime.call(self.name, _sample, n, given)

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        return self._runtime.call(self.name, _infer, name, given)
