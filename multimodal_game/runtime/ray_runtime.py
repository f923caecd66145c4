"""The Ray runtime: every player host in its own actor (process), on one machine or a cluster.

What travels: the host specification (a picklable builder; the actor reads its own shard), the
interface batches (one object per producer and consumer, written once to the object store and read
by that consumer only), detached statistics, and states for checkpoints. Private data never leaves
an actor.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..batch import Batch
from ..errors import PlayerLost
from ..host import HostSpec, specs_by_name
from ..policy import LearnPlan, Transfer
from ..spaces import Space
from .base import LearnRequest, PlayerHandle, on_cpu
from .inprocess import param_bytes_of

try:
    import ray
    from ray.exceptions import RayActorError
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Ray runtime needs Ray: pip install 'multimodal-game[ray]' (or pip install ray)"
    ) from e


class HostActor:
    """One player host inside a Ray actor. Built from its spec in the actor's own process."""

    def __init__(self, spec: HostSpec, threads: int | None):
        if threads:
            torch.set_num_threads(threads)
        self.host = spec.make()

    def ping(self) -> int:
        return os.getpid()

    def space(self) -> Space:
        return self.host.space

    def produce(self, transfers: Sequence[Transfer]) -> Any:
        out = self.host.produce(transfers)
        parts = tuple(out[t.consumer].to("cpu") for t in transfers)
        return parts if len(parts) > 1 else parts[0]

    def step(self, plan: LearnPlan, *batches: Batch):
        return on_cpu(self.host.step(plan, batches))

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return on_cpu(self.host.call(fn, *args))

    def param_bytes(self) -> int:
        return param_bytes_of(self.host.player)

    def data_summary(self) -> dict[str, Any]:
        return self.host.data_summary()

    def state(self) -> dict[str, Any]:
        return on_cpu(self.host.state())

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.host.load_state(state)


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
    """Players in Ray actors. ``address=None`` starts a private local Ray (no dashboard, token
    authentication, usage statistics off) and shuts it down on ``close``; otherwise connects to ``address`` (``"auto"``
    or ``host:port`` of a cluster started with ``ray start``)."""

    def __init__(
        self,
        specs: Sequence[HostSpec] | Mapping[str, HostSpec],
        address: str | None = None,
        threads: int | None = None,
        num_cpus: int | None = None,
    ):
        self.specs = specs_by_name(specs)
        specs = list(self.specs.values())
        self.names = tuple(self.specs)
        self.threads = threads
        self._owns_ray = init_ray(address, num_cpus)
        self._remote = ray.remote(max_restarts=0)(HostActor)
        self.actors: dict[str, Any] = {}
        try:
            self._cpus = self._plan_cpus(specs)
        except BaseException:
            self.close()
            raise
        for s in specs:
            self.actors[s.name] = self._start(s)
        self._spaces = dict(zip(self.names, self._get([a.space.remote() for a in self._actors()])))

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

    def _start(self, spec: HostSpec) -> Any:
        return self._remote.options(
            num_cpus=self._cpus[spec.name], num_gpus=spec.num_gpus, name=None
        ).remote(spec, self.threads)

    def _actors(self) -> list[Any]:
        return [self.actors[n] for n in self.names]

    def _get(self, refs: Any) -> Any:
        try:
            return ray.get(refs)
        except RayActorError as e:
            dead = self._dead()
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PlayerLost(dead, f"{self._describe(dead)}: {first}") from e

    def _dead(self) -> list[str]:
        dead = []
        for n, a in self.actors.items():
            try:
                ray.get(a.ping.remote(), timeout=30)
            except (RayActorError, ray.exceptions.GetTimeoutError):
                dead.append(n)
        return dead

    @staticmethod
    def _describe(names: Sequence[str]) -> str:
        return f"player(s) {', '.join(names) or '?'} lost (actor process died)"

    # -- the runtime interface --------------------------------------------------------------------
    def spaces(self) -> dict[str, Space]:
        return dict(self._spaces)

    def produce(self, requests: Mapping[str, Sequence[Transfer]]) -> dict[str, dict[str, Any]]:
        handles: dict[str, dict[str, Any]] = {}
        for j, transfers in requests.items():
            if not transfers:
                continue
            transfers = list(transfers)
            refs = self.actors[j].produce.options(num_returns=len(transfers)).remote(transfers)
            refs = refs if isinstance(refs, list) else [refs]
            handles[j] = {t.consumer: ref for t, ref in zip(transfers, refs)}
        return handles

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]:
        refs = {i: self.actors[i].step.remote(r.plan, *r.handles) for i, r in requests.items()}
        stats = self._get(list(refs.values()))
        return dict(zip(refs, stats))

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return self._get(self.actors[name].call.remote(fn, *args))

    @property
    def players(self) -> dict[str, PlayerHandle]:
        return {n: PlayerHandle(self, n, self._spaces[n]) for n in self.names}

    def param_bytes(self) -> dict[str, int]:
        return dict(zip(self.names, self._get([a.param_bytes.remote() for a in self._actors()])))

    def data_summary(self, name: str) -> dict[str, Any]:
        return self._get(self.actors[name].data_summary.remote())

    def state(self) -> dict[str, Any]:
        return dict(zip(self.names, self._get([a.state.remote() for a in self._actors()])))

    def load_state(self, states: Mapping[str, Any]) -> None:
        self._get([self.actors[n].load_state.remote(states[n]) for n in self.names])

    def restart(self, names: Sequence[str]) -> None:
        for n in names:
            with contextlib.suppress(Exception):  # it may be gone already
                ray.kill(self.actors[n], no_restart=True)
            self.actors[n] = self._start(self.specs[n])
        self._get([self.actors[n].ping.remote() for n in names])

    def pid(self, name: str) -> int:
        """The operating-system process of player ``name`` (for fault-injection tests)."""
        return self._get(self.actors[name].ping.remote())

    def close(self) -> None:
        for a in self.actors.values():
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)
        self.actors = {}
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
