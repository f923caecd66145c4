"""A player together with its private data: the unit that a runtime places in a process."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from .batch import Batch
from .errors import ConfigError, Diverged
from .player import Player
from .policy import LearnPlan, Transfer
from .rng import RngStream, derive_seed
from .sources import DataSource
from .spaces import Space
from .statistics import Summary, as_rows, exact_summary, summarize

# The evaluation stream's seed is derived from the training seed at this index, far from any
# player index, so the two streams never coincide.
_EVAL_STREAM = 1_000_000


def import_plugins(modules: Sequence[str]) -> None:
    """Import each module (by dotted name, from the import path); a :class:`ConfigError` names
    one that cannot be imported."""
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            raise ConfigError(f"plugin module {m!r} cannot be imported: {e}") from None


def check_source(
    source: DataSource,
    space: Space,
    owner: str,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """Check a player's data against its space and the value ranges its likelihoods model
    (images: [0, 1] unless ``ranges`` says otherwise) when its host is built (all of an
    in-memory source; a draw of up to 256 examples, on a generator of its own, of any other)."""
    batch = getattr(source, "batch", None)
    if not isinstance(batch, Batch):
        batch = source.draw(min(len(source), 256), torch.Generator().manual_seed(0))
    batch.check_data(space, owner, ranges)


class PlayerHost:
    """Holds one player, its private data source and its random streams.

    Only two things leave a host: synthetic samples restricted to each consumer's interface
    (``produce``) and detached learning statistics (``step``). The private data never does.
    Training (``produce``, ``step``) runs on the training stream ``rng``; evaluation (``call``)
    on its own stream ``eval_rng``, so that evaluating a player never changes its trajectory.
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
        check_source(source, player.space, name, getattr(player, "value_ranges", None))
        if hasattr(player, "check_inputs"):  # checked here once, not at every step
            player.check_inputs = False
        self.source = source.to(self.device)
        self.data_gen = torch.Generator()
        self.data_gen.manual_seed(int(seed) ^ 0x5DEECE66D)
        self.rng = RngStream(seed, self.device)
        self.eval_rng = RngStream(derive_seed(seed, _EVAL_STREAM), self.device)
        self.space = player.space
        # draw checks the game reads later (its check_every): (variables, finiteness flags) on
        # the device; None: each draw is read at once (a host-device synchronisation per draw)
        self.deferred_checks: list[tuple[list[str], torch.Tensor]] | None = None

    @staticmethod
    def rows_needed(transfers: Sequence[Transfer]) -> int:
        """Rows of the one draw that ``transfers`` share (0: none travels as rows)."""
        return max((t.count for t in transfers if t.statistics is None), default=0)

    def produce(self, transfers: Sequence[Transfer], draw: Batch | None = None) -> dict[str, Batch]:
        """One joint draw, shared by all consumers; each gets its first ``count`` rows on its
        interface. ``draw``: that draw, made elsewhere on this host's stream (a fused sampler)."""
        if not transfers:
            return {}
        out: dict[str, Any] = {}
        rows = [t for t in transfers if t.statistics is None]
        if rows:
            n = self.rows_needed(rows)
            draw = self._draw(n) if draw is None else self._checked(draw)
            out.update({t.consumer: draw.head(t.count).project(t.variables) for t in rows})
        summaries = [t for t in transfers if t.statistics is not None]
        draw = None
        for t in summaries:  # exact where the player can say, else from one draw of its own
            s = exact_summary(self.player, t.variables)
            if s is None:
                if draw is None:
                    draw = self._draw(max(u.statistics.samples for u in summaries))
                s = summarize(draw, self.space, t.variables, t.statistics.covariance)
            out[t.consumer] = s
        return out

    def _draw(self, n: int) -> Batch:
        with self.rng.active(), torch.no_grad():
            draw = self.player.sample(n)
        return self._checked(draw)

    def _checked(self, draw: Batch) -> Batch:
        draw.check(self.space, self.name)
        floats = [v for v, t in draw.data.items() if t.is_floating_point()]
        if not floats:
            return draw
        flags = torch.stack([torch.isfinite(draw[v]).all() for v in floats])
        if self.deferred_checks is not None:  # read with the game's next check
            self.deferred_checks.append((floats, flags))
            return draw
        finite = flags.tolist()  # stacked on the device and read once
        bad = [v for v, ok in zip(floats, finite) if not ok]
        if bad:
            # a consumer must never learn from them: NaN spreads to every player within a round
            raise Diverged(self.name, f"player {self.name!r} sampled non-finite values of {bad}")
        return draw

    def step(self, plan: LearnPlan, synthetic: Sequence[Batch] = ()) -> dict[str, torch.Tensor]:
        """One learning step on own data mixed with the synthetic batches (in the order of
        ``plan.transfers``), each part weighted as the plan says."""
        with self.rng.active():
            return dict(self.player.learn(self.batch_for(plan, synthetic)))

    def batch_for(self, plan: LearnPlan, synthetic: Sequence[Batch] = ()) -> Batch:
        """The batch of one learning step: own data and the synthetic parts, weighted (drawn on
        the training stream; ``step`` learns from it, a fused step takes it from here)."""
        with self.rng.active():
            own = self.source.draw(plan.own_count, self.data_gen)
            parts, weights = [own], [plan.own_weight]
            for t, item in zip(plan.transfers, synthetic):
                if isinstance(item, Summary):  # rows made here, on this player's stream
                    draw = t.statistics.draw
                    parts.append(as_rows(item.to(self.device), t.count, draw, None))
                    # sigma points carry weights summing to 1: the part weighs what t.count rows would
                    weights.append(t.weight * t.count if draw == "sigma" else t.weight)
                else:
                    parts.append(item.to(self.device))
                    weights.append(t.weight)
            return Batch.merge(parts, weights)

    def data_summary(self) -> dict[str, Any]:
        """Counts of the private data, nothing of its content: ``examples`` (the shard's size, what
        FedAvg weights by) and, per categorical variable, how many examples observe it and how
        many observe each class (``class_counts``: what a one-shot generative exchange sends)."""
        batch = getattr(self.source, "batch", None)
        observed, counts = {}, {}
        if isinstance(batch, Batch):
            for n, v in self.space.items():
                if v.kind == "categorical" and n in batch.data:
                    seen = batch[n][batch.observed_host(n)].long()
                    observed[n] = len(seen)
                    counts[n] = torch.bincount(seen, minlength=v.shape[0]).tolist()
        return {"examples": len(self.source), "observed": observed, "class_counts": counts}

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(player, *args)`` on the evaluation stream (inputs moved to the player's device)."""
        args = tuple(a.to(self.device) if isinstance(a, Batch) else a for a in args)
        with self.eval_rng.active():
            return fn(self.player, *args)

    def state(self) -> dict[str, Any]:
        return {
            # the spec the player was built from, where it has one (modalities.build_player)
            "spec": getattr(self.player, "spec", None),
            "player": self.player.state_dict(),
            "rng": self.rng.state(),
            "eval_rng": self.eval_rng.state(),
            "data_gen": self.data_gen.get_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.player.load_state_dict(state["player"])
        self.rng.load(state["rng"])
        if "eval_rng" in state:
            self.eval_rng.load(state["eval_rng"])
        self.data_gen.set_state(state["data_gen"])


@dataclass(frozen=True)
class HostSpec:
    """How to build one host where it will live (this process, or a Ray actor's process).

    ``build`` must be picklable (a module-level function or a ``functools.partial`` of one) and
    returns ``(player, data_source)``. It runs inside the host's process, so a player's private
    data is read there from its shard description and never travels. ``num_cpus``/``num_gpus`` are
    the resources a distributed runtime reserves for the host (fractions allowed; ``num_cpus=None``:
    an equal share of the cluster's CPUs, at most one). ``group``: hosts with the same group live
    in one process of a distributed runtime (one data holder's players; their reserved resources
    add up), where with ``fuse_players`` those of one architecture learn in one fused step.
    """

    name: str
    build: Callable[[], tuple[Player, DataSource]]
    seed: int
    device: str = "cpu"
    num_cpus: float | None = None
    num_gpus: float = 0.0
    # modules to import before building (e.g. ones that register a user's recipe): a Ray worker
    # has not imported the driver script's modules
    plugins: tuple[str, ...] = ()
    group: str | None = None

    def make(self) -> PlayerHost:
        import_plugins(self.plugins)
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


def builders(fn: Callable, names: Sequence[str], *args: Any) -> dict[str, Callable[[], Any]]:
    """``{name: partial(fn, name, *args)}``: picklable host builders (``fn(name, *args)`` returns
    ``(player, data_source)``) for :func:`host_specs`."""
    return {n: partial(fn, n, *args) for n in names}


def host_specs(
    builders: Mapping[str, Callable[[], Any]],
    seed: int,
    device: torch.device | str,
    resources: Mapping[str, Mapping[str, float]] | None = None,
    plugins: Sequence[str] | None = None,
) -> list[HostSpec]:
    """One ``HostSpec`` per player for :meth:`Game.from_specs` (player k's seed derived from
    ``seed`` and k); ``resources`` maps a player name (or ``default``) to ``{num_cpus,
    num_gpus, group}`` for the Ray runtime; ``plugins``: modules every host imports first."""
    resources = resources or {}
    unknown = set(resources) - set(builders) - {"default"}
    if unknown:
        raise ConfigError(
            f"resources for unknown players {sorted(unknown)}; players: {list(builders)}"
        )
    specs = []
    for k, (name, build) in enumerate(builders.items()):
        res = {
            "num_cpus": None,
            "num_gpus": 0.0,
            "group": None,
            **resources.get("default", {}),
            **resources.get(name, {}),
        }
        bad = set(res) - {"num_cpus", "num_gpus", "group"}
        if bad:
            raise ConfigError(
                f"resources of {name!r}: unknown keys {sorted(bad)}; use num_cpus, num_gpus, group"
            )
        specs.append(
            HostSpec(
                name,
                build,
                derive_seed(seed, k),
                str(device),
                None if res["num_cpus"] is None else float(res["num_cpus"]),
                float(res["num_gpus"]),
                tuple(plugins or ()),
                None if res["group"] is None else str(res["group"]),
            )
        )
    return specs
