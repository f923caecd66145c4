"""The Ray runtime: every player host in its own actor (process), or a group of one party's players
in one actor, on one machine or a cluster.

What travels: the host specification (a picklable builder; the actor reads its own shard), the
interface batches (one object per producer and consumer, written once to the object store and read
by that consumer only), detached statistics, and states for checkpoints. Private data never leaves
an actor; the players of a group share their process, so a group is one data holder's players.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..batch import Batch
from ..device import flush_denormals as flush_every_thread
from ..errors import PlayerLost
from ..host import HostSpec, specs_by_name
from ..policy import LearnPlan, Transfer
from ..spaces import Space
from .base import LearnRequest, PlayerHandle, on_cpu
from .inprocess import InProcessRuntime

try:
    import ray
    from ray.exceptions import RayActorError
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Ray runtime needs Ray: pip install 'multimodal-game[ray]' (or pip install ray)"
    ) from e


class GroupActor:
    """The hosts of one group of players inside one Ray actor (one process), built there from their
    specs: an in-process runtime over them, so that with ``fuse_players`` the group's players of
    one architecture take fused steps and make their draws together. A player alone is a group of
    one."""

    def __init__(
        self,
        specs: Sequence[HostSpec],
        threads: int | None,
        fuse_players: bool,
        flush_denormals: bool = False,
    ):
        if threads:
            torch.set_num_threads(threads)
        if flush_denormals:
            flush_every_thread(True)
        self.runtime = InProcessRuntime(specs=specs, fuse_players=fuse_players)

    def ping(self) -> int:
        return os.getpid()

    def spaces(self) -> dict[str, Space]:
        return self.runtime.spaces()

    def produce(self, requests: Mapping[str, Sequence[Transfer]]) -> Any:
        """The batch of every (producer, transfer) in request order, one return value each."""
        out = self.runtime.produce(requests)
        parts = tuple(out[j][t.consumer].to("cpu") for j, ts in requests.items() for t in ts)
        return parts if len(parts) > 1 else parts[0]

    def learn(self, layout: Sequence[tuple[str, LearnPlan]], *batches: Batch) -> Any:
        """``layout``: each player's plan; ``batches``: its handles' batches (resolved by Ray), in
        the players' order and each plan's transfer order."""
        requests, at = {}, 0
        for name, plan in layout:
            n = len(plan.transfers)
            requests[name] = LearnRequest(plan, tuple(batches[at : at + n]))
            at += n
        return on_cpu(self.runtime.learn(requests))

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return self.runtime.call(name, fn, *args)

    def fusion_groups(self) -> list[list[str]]:
        return self.runtime.fusion_groups()

    def param_bytes(self) -> dict[str, int]:
        return self.runtime.param_bytes()

    def data_summary(self, name: str) -> dict[str, Any]:
        return self.runtime.data_summary(name)

    def state(self) -> dict[str, Any]:
        return on_cpu(self.runtime.state())

    def load_state(self, states: Mapping[str, Any]) -> None:
        self.runtime.load_state(states)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start a private local Ray (no dashboard, token authentication, usage statistics off), or
    connect to ``address``
    (``"auto"``, or ``host:port`` of a cluster started with ``ray start``). Returns whether this
    call started Ray (False when it was already running)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers import the players' modules: give them the driver's import path.
    paths = [os.getcwd(), *(p for p in sys.path if p)]
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}},
        "log_to_driver": True,
        "configure_logging": False,
    }
    if address is None:
        # Ray 2.60 cannot be confined to loopback: it replaces a loopback node address with the
        # host's reachable one and its gRPC servers listen on every interface. What a private
        # local Ray can do: no dashboard; token authentication is Ray's default for a new local
        # cluster (RAY_AUTH_MODE=disabled turns it off).
        kwargs.update(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    return True


class RayRuntime:
    """Players in Ray actors: one actor per player, or per group of players (``HostSpec.group``:
    one data holder's process holding several of its players; with ``fuse_players`` those of one
    architecture take fused steps there). ``address=None`` starts a private local Ray (no
    dashboard, token authentication, usage statistics off) and shuts it down on ``close``;
    otherwise connects to ``address`` (``"auto"`` or ``host:port`` of a cluster started with
    ``ray start``)."""

    def __init__(
        self,
        specs: Sequence[HostSpec] | Mapping[str, HostSpec],
        address: str | None = None,
        threads: int | None = None,
        num_cpus: int | None = None,
        fuse_players: bool = False,
        flush_denormals: bool = False,
    ):
        self.specs = specs_by_name(specs)
        specs = list(self.specs.values())
        self.names = tuple(self.specs)
        self.threads = threads
        self.fuse_players = bool(fuse_players)
        self.flush_denormals = bool(flush_denormals)
        # one actor per group (its players in spec order); a player without a group is its own
        self.group_of = {
            s.name: ("group", s.group) if s.group else ("player", s.name) for s in specs
        }
        self.members = self._by_group(self.names)
        self._owns_ray = init_ray(address, num_cpus)
        self._remote = ray.remote(max_restarts=0)(GroupActor)
        self.actors: dict[Any, Any] = {}
        try:
            self._cpus = self._plan_cpus(specs)
        except BaseException:
            self.close()
            raise
        for g in self.members:
            self.actors[g] = self._start(g)
        self._spaces = self._merged([a.spaces.remote() for a in self.actors.values()])

    def _plan_cpus(self, specs: Sequence[HostSpec]) -> dict[str, float]:
        """CPUs per actor; unset ones share the cluster equally. More than the cluster has would
        leave actors waiting for ever, so that is an error naming the numbers."""
        res = ray.cluster_resources()
        total = float(res.get("CPU", 0.0))
        fixed = sum(s.num_cpus for s in specs if s.num_cpus is not None)
        unset = [s for s in specs if s.num_cpus is None]
        share = min(1.0, (total - fixed) / len(unset)) if unset else 0.0
        if unset and share <= 0:
            raise ValueError(
                f"players ask for {fixed} CPUs, the Ray cluster has {total}: none left for "
                f"{[s.name for s in unset]}"
            )
        cpus = {s.name: (share if s.num_cpus is None else float(s.num_cpus)) for s in specs}
        gpus = sum(s.num_gpus for s in specs)
        if sum(cpus.values()) > total + 1e-9 or gpus > float(res.get("GPU", 0.0)) + 1e-9:
            raise ValueError(
                f"players ask for {sum(cpus.values()):g} CPUs and {gpus:g} GPUs; the Ray cluster has "
                f"{total:g} CPUs and {res.get('GPU', 0.0):g} GPUs. Use fractions, e.g. "
                f"resources.default = {{num_cpus = {total / len(specs):.2g}}}"
            )
        return cpus

    def _start(self, group: Any) -> Any:
        specs = [self.specs[n] for n in self.members[group]]
        return self._remote.options(
            num_cpus=sum(self._cpus[s.name] for s in specs),
            num_gpus=sum(s.num_gpus for s in specs),
            name=None,
        ).remote(specs, self.threads, self.fuse_players, self.flush_denormals)

    def _actor(self, name: str) -> Any:
        return self.actors[self.group_of[name]]

    def _by_group(self, names: Sequence[str]) -> dict[Any, list[str]]:
        out: dict[Any, list[str]] = {}
        for n in names:
            out.setdefault(self.group_of[n], []).append(n)
        return out

    def _get(self, refs: Any) -> Any:
        try:
            return ray.get(refs)
        except RayActorError as e:
            dead = self._dead()
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PlayerLost(dead, f"{self._describe(dead)}: {first}") from e

    def _dead(self) -> list[str]:
        """The players of every actor that no longer answers (a group's are lost together)."""
        dead = []
        for g, a in self.actors.items():
            try:
                ray.get(a.ping.remote(), timeout=30)
            except (RayActorError, ray.exceptions.GetTimeoutError):
                dead.extend(self.members[g])
        return dead

    def _merged(self, refs: list[Any]) -> dict[str, Any]:
        """The actors' answers (one dict over its players each) merged, in the players' order."""
        found = {n: v for part in self._get(refs) for n, v in part.items()}
        return {n: found[n] for n in self.names}

    @staticmethod
    def _describe(names: Sequence[str]) -> str:
        return f"player(s) {', '.join(names) or '?'} lost (actor process died)"

    # -- the runtime interface --------------------------------------------------------------------
    def spaces(self) -> dict[str, Space]:
        return dict(self._spaces)

    def produce(self, requests: Mapping[str, Sequence[Transfer]]) -> dict[str, dict[str, Any]]:
        handles: dict[str, dict[str, Any]] = {}
        wanted = {j: list(ts) for j, ts in requests.items() if ts}
        for g, names in self._by_group(list(wanted)).items():
            asked = {j: wanted[j] for j in names}
            count = sum(len(ts) for ts in asked.values())
            refs = self.actors[g].produce.options(num_returns=count).remote(asked)
            refs = iter(refs if isinstance(refs, list) else [refs])
            for j, ts in asked.items():
                handles[j] = {t.consumer: next(refs) for t in ts}
        return handles

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]:
        refs = []
        for g, names in self._by_group(list(requests)).items():
            layout = [(n, requests[n].plan) for n in names]
            handles = [h for n in names for h in requests[n].handles]
            refs.append(self.actors[g].learn.remote(layout, *handles))
        stats = {n: s for part in self._get(refs) for n, s in part.items()}
        return {n: stats[n] for n in requests}

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return self._get(self._actor(name).call.remote(name, fn, *args))

    def fusion_groups(self) -> list[list[str]]:
        """The players that take one fused learning step together, inside their actors."""
        parts = self._get([a.fusion_groups.remote() for a in self.actors.values()])
        return [group for part in parts for group in part]

    @property
    def players(self) -> dict[str, PlayerHandle]:
        return {n: PlayerHandle(self, n, self._spaces[n]) for n in self.names}

    def param_bytes(self) -> dict[str, int]:
        return self._merged([a.param_bytes.remote() for a in self.actors.values()])

    def data_summary(self, name: str) -> dict[str, Any]:
        return self._get(self._actor(name).data_summary.remote(name))

    def state(self) -> dict[str, Any]:
        return self._merged([a.state.remote() for a in self.actors.values()])

    def load_state(self, states: Mapping[str, Any]) -> None:
        self._get(
            [
                a.load_state.remote({n: states[n] for n in self.members[g]})
                for g, a in self.actors.items()
            ]
        )

    def restart(self, names: Sequence[str]) -> None:
        """Fresh actors for the groups of ``names`` (with their other players: the game then
        loads every player's state from its checkpoint)."""
        groups = list(self._by_group(names))
        for g in groups:
            with contextlib.suppress(Exception):  # it may be gone already
                ray.kill(self.actors[g], no_restart=True)
            self.actors[g] = self._start(g)
        self._get([self.actors[g].ping.remote() for g in groups])

    def pid(self, name: str) -> int:
        """The operating-system process of player ``name`` (for fault-injection tests)."""
        return self._get(self._actor(name).ping.remote())

    def close(self) -> None:
        for a in self.actors.values():
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)
        self.actors = {}
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
