"""The embedded default: every player in this process, one after another."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..batch import Batch
from ..host import HostSpec, PlayerHost, specs_by_name
from ..policy import Transfer
from ..spaces import Space
from .base import LearnRequest, PlayerHandle, on_cpu


def param_bytes_of(player: Any) -> int:
    if not hasattr(player, "parameters"):
        state = player.state_dict()
        return sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
    return sum(p.numel() * p.element_size() for p in player.parameters())


class InProcessRuntime:
    """Hosts live in this process. Pyro's handler stack is global, so players run sequentially.

    ``fuse_players``: players that say they can learn together (``fusion_key()`` equal and not
    None, e.g. M2 players of one architecture) take their steps as one fused step built by their
    class's ``fused_step(players)``; each player's batch, random stream and optimiser stay its own,
    so the result equals the one-by-one steps up to float rounding."""

    def __init__(
        self,
        hosts: Mapping[str, PlayerHost] | None = None,
        specs: Sequence[HostSpec] | Mapping[str, HostSpec] | None = None,
        fuse_players: bool = False,
    ):
        self.fuse_players = bool(fuse_players)
        self._fused: dict[tuple[int, ...], Any] = {}
        if specs is not None:
            if hosts:
                raise ValueError("give hosts or specs, not both")
            self.specs = specs_by_name(specs)
            hosts = {n: s.make() for n, s in self.specs.items()}
        else:
            self.specs = {}
        self.hosts: dict[str, PlayerHost] = dict(hosts or {})
        self.names = tuple(self.hosts)

    def spaces(self) -> dict[str, Space]:
        return {n: h.space for n, h in self.hosts.items()}

    @property
    def players(self) -> dict[str, PlayerHandle]:
        return {n: PlayerHandle(self, n, h.space) for n, h in self.hosts.items()}

    @property
    def local_players(self) -> dict[str, Any]:
        """The player objects themselves (this runtime only), e.g. to inspect parameters."""
        return {n: h.player for n, h in self.hosts.items()}

    def produce(self, requests: Mapping[str, Sequence[Transfer]]) -> dict[str, dict[str, Batch]]:
        out: dict[str, dict[str, Batch]] = {}
        wanted = {j: PlayerHost.rows_needed(ts) for j, ts in requests.items()}
        for names in self._groups([j for j, n in wanted.items() if n], "sample_fusion_key"):
            hosts = [self.hosts[n] for n in names]
            sampler = self._fused_for("fused_sampler", hosts)
            draws = sampler.sample([wanted[n] for n in names], [h.rng.active for h in hosts])
            for n, h, d in zip(names, hosts, draws):
                out[n] = h.produce(requests[n], draw=d)
        for j, ts in requests.items():
            if j not in out:
                out[j] = self.hosts[j].produce(ts)
        return {j: out[j] for j in requests}

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]:
        groups = self._groups(list(requests), "fusion_key")
        out: dict[str, dict[str, torch.Tensor]] = {}
        for names in groups:
            hosts = [self.hosts[n] for n in names]
            batches = [
                h.batch_for(requests[n].plan, requests[n].handles) for n, h in zip(names, hosts)
            ]
            step = self._fused_for("fused_step", hosts)
            stats = step.learn(batches, [h.rng.active for h in hosts])
            out.update(zip(names, stats))
        for i, r in requests.items():
            if i not in out:
                out[i] = self.hosts[i].step(r.plan, r.handles)
        return {i: out[i] for i in requests}

    def fusion_groups(self) -> list[list[str]]:
        """The players that take one fused learning step together (none without
        ``fuse_players``)."""
        return self._groups(list(self.names), "fusion_key")

    def _fused_for(self, kind: str, hosts: Sequence[PlayerHost]) -> Any:
        """The players' class's ``kind`` (``fused_step`` / ``fused_sampler``) over them, built
        once per set of player objects (a restart rebuilds players: a new set, a new one)."""
        key = (kind, *(id(h.player) for h in hosts))
        if key not in self._fused:
            self._fused[key] = getattr(type(hosts[0].player), kind)([h.player for h in hosts])
        return self._fused[key]

    def _groups(self, names: Sequence[str], key: str) -> list[list[str]]:
        """With ``fuse_players``: names of the players whose ``key()`` (``fusion_key`` for
        learning, ``sample_fusion_key`` for sampling) is equal and not None, in groups of two or
        more; else none."""
        if not self.fuse_players:
            return []
        by_key: dict[Any, list[str]] = {}
        for n in names:
            key_of = getattr(self.hosts[n].player, key, None)
            value = key_of() if key_of is not None else None
            if value is not None:
                by_key.setdefault(value, []).append(n)
        return [names for names in by_key.values() if len(names) > 1]

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return on_cpu(self.hosts[name].call(fn, *args))

    def param_bytes(self) -> dict[str, int]:
        return {n: param_bytes_of(h.player) for n, h in self.hosts.items()}

    def data_summary(self, name: str) -> dict[str, Any]:
        return self.hosts[name].data_summary()

    def state(self) -> dict[str, Any]:
        return {n: h.state() for n, h in self.hosts.items()}

    def load_state(self, states: Mapping[str, Any]) -> None:
        for n, h in self.hosts.items():
            h.load_state(states[n])

    def restart(self, names: Sequence[str]) -> None:
        # A player in this process cannot die alone; rebuilding is still useful after an error.
        for n in names:
            if n not in self.specs:
                raise RuntimeError(f"player {n!r} has no spec to rebuild it from")
            self.hosts[n] = self.specs[n].make()

    def close(self) -> None:
        """Release the players, their optimisers, data and fused steps (a run's next method starts
        without this one's memory); evaluate before closing."""
        for host in self.hosts.values():  # a player's own caches (e.g. its compiled step)
            release = getattr(host.player, "release", None)
            if callable(release):
                release()
        self.hosts = {}
        self._fused = {}
