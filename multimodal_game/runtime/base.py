"""The runtime interface the game drives, its typed requests, and the player handle."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..batch import Batch
from ..policy import LearnPlan, Transfer
from ..spaces import Space


@dataclass(frozen=True)
class LearnRequest:
    """One player's learning step: its plan and, per transfer of the plan (same order), the
    handle of the synthetic batch that ``Runtime.produce`` returned for it."""

    plan: LearnPlan
    handles: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if len(self.handles) != len(self.plan.transfers):
            raise ValueError(
                f"{len(self.plan.transfers)} transfers in the plan, {len(self.handles)} handles"
            )


class Runtime(Protocol):
    """Places player hosts and moves interface batches between them.

    Handles returned by ``produce`` are opaque (a ``Batch`` in process, an object reference on Ray)
    and are only passed back to ``learn``.
    """

    names: tuple[str, ...]

    def spaces(self) -> dict[str, Space]: ...

    def produce(self, requests: Mapping[str, Sequence[Transfer]]) -> dict[str, dict[str, Any]]:
        """producer -> consumer -> handle of the batch sampled for that consumer."""

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]: ...

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(player, *args)`` where the player lives, on its evaluation random stream, and
        return its result on the CPU."""

    @property
    def players(self) -> dict[str, PlayerHandle]: ...

    def param_bytes(self) -> dict[str, int]: ...

    def data_summary(self, name: str) -> dict[str, Any]:
        """Counts of player ``name``'s private data (``PlayerHost.data_summary``), never rows."""

    def state(self) -> dict[str, Any]: ...

    def load_state(self, states: Mapping[str, Any]) -> None: ...

    def restart(self, names: Sequence[str]) -> None:
        """Replace lost players' hosts by fresh ones (their state is then loaded by the game)."""

    def close(self) -> None: ...


def on_cpu(x: Any) -> Any:
    """Tensors and batches (also inside dicts, lists, tuples) moved to the CPU."""
    if isinstance(x, Batch) or torch.is_tensor(x):
        return x.to("cpu")
    if isinstance(x, Mapping):
        return {k: on_cpu(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(on_cpu(v) for v in x)
    return x


def _sample(player: Any, n: int, given: Batch | None) -> Batch:
    return player.sample(n, given)


def _infer(player: Any, name: str, given: Batch) -> torch.Tensor:
    return player.infer(name, given)


def _log_prob(player: Any, batch: Batch, samples: int) -> torch.Tensor:
    if not hasattr(player, "log_prob"):
        raise TypeError(f"{type(player).__name__} has no log_prob: it is not a density estimator")
    return player.log_prob(batch, samples=samples)


class PlayerHandle:
    """Stands for a player wherever it lives (this process or a Ray actor): ``sample``, ``infer``
    and ``call`` run there, on the player's evaluation random stream, and return CPU results.
    Evaluation code uses handles and never touches parameters, so it runs unchanged on every
    runtime and never perturbs training."""

    device = torch.device("cpu")

    def __init__(self, runtime: Runtime, name: str, space: Space):
        self._runtime, self.name, self.space = runtime, name, space

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        return self._runtime.call(self.name, _sample, n, given)

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        return self._runtime.call(self.name, _infer, name, given)

    def log_prob(self, batch: Batch, samples: int = 1) -> torch.Tensor:
        """The player's ``log_prob`` of each example of ``batch``, computed where it lives."""
        return self._runtime.call(self.name, _log_prob, batch, samples)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(player, *args)`` where the player lives (``fn`` must be picklable for Ray)."""
        return self._runtime.call(self.name, fn, *args)

    def data_summary(self) -> dict[str, Any]:
        """``{"examples": shard size, "observed": {categorical: examples that observe it}}``:
        counts only, read where the player lives."""
        return self._runtime.data_summary(self.name)

    def __repr__(self) -> str:
        return f"PlayerHandle({self.name!r})"
