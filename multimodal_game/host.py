"""A player together with its private data: the unit that a runtime places in a process."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .batch import Batch
from .player import Player
from .rng import RngStream
from .sources import DataSource

# plan entry: consumer name -> (number of examples, interface variable names)
ProducePlan = Mapping[str, tuple[int, tuple[str, ...]]]


class PlayerHost:
    """Holds one player, its private data source and its random streams.

    Only two things leave a host: synthetic samples restricted to each consumer's interface
    (``produce``) and detached learning statistics (``step``). The private data never does.
    """

    def __init__(
        self,
        name: str,
        player: Player,
        source: DataSource,
        seed: int,
        device: torch.device | str = "cpu",
    ):
        self.name = name
        self.device = torch.device(device)
        if hasattr(player, "to"):
            player = player.to(self.device)
        self.player = player
        self.source = source.to(self.device)
        self.data_gen = torch.Generator()
        self.data_gen.manual_seed(int(seed) ^ 0x5DEECE66D)
        self.rng = RngStream(seed, self.device)
        self.space = player.space

    def produce(self, plan: ProducePlan) -> dict[str, Batch]:
        """One joint draw, shared by all consumers; each gets its first ``n`` rows on its interface."""
        if not plan:
            return {}
        n = max(count for count, _ in plan.values())
        with self.rng.active(), torch.no_grad():
            draw = self.player.sample(n)
        draw.check(self.space, self.name)
        return {c: draw.head(count).project(names) for c, (count, names) in plan.items()}

    def step(
        self, own_count: int, own_weight: float, synthetic: Sequence[tuple[Batch, float]]
    ) -> dict[str, torch.Tensor]:
        """One learning step on own data mixed with the synthetic batches, weighted by alpha."""
        with self.rng.active():
            own = self.source.draw(own_count, self.data_gen)
            parts = [own] + [b.to(self.device) for b, _ in synthetic]
            weights = [own_weight] + [w for _, w in synthetic]
            batch = Batch.merge(parts, weights)
            return dict(self.player.learn(batch))

    def state(self) -> dict[str, Any]:
        return {
            "player": self.player.state_dict(),
            "rng": self.rng.state(),
            "data_gen": self.data_gen.get_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.player.load_state_dict(state["player"])
        self.rng.load(state["rng"])
        self.data_gen.set_state(state["data_gen"])


@dataclass(frozen=True)
class HostSpec:
    """How to build one host where it will live (this process, or a Ray actor's process).

    ``build`` must be picklable (a module-level function or a ``functools.partial`` of one) and
    returns ``(player, data_source)``. It runs inside the host's process, so a player's private
    data is read there from its shard description and never travels. ``num_cpus``/``num_gpus`` are
    the resources a distributed runtime reserves for the host (fractions allowed; ``num_cpus=None``:
    an equal share of the cluster's CPUs, at most one).
    """

    name: str
    build: Callable[[], tuple[Player, DataSource]]
    seed: int
    device: str = "cpu"
    num_cpus: float | None = None
    num_gpus: float = 0.0

    def make(self) -> PlayerHost:
        # Seeded here so that the initial parameters do not depend on the process building them.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            player, source = self.build()
        return PlayerHost(self.name, player, source, self.seed, self.device)


def specs_by_name(specs: Sequence[HostSpec] | Mapping[str, HostSpec]) -> dict[str, HostSpec]:
    """The specs keyed by player name (in order); two specs with one name are an error."""
    specs = list(specs.values()) if isinstance(specs, Mapping) else list(specs)
    by_name = {s.name: s for s in specs}
    if len(by_name) != len(specs):
        raise ValueError(f"player names must be distinct: {[s.name for s in specs]}")
    return by_name
