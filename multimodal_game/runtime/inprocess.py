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
    """Hosts live in this process. Pyro's handler stack is global, so players run sequentially."""

    def __init__(
        self,
        hosts: Mapping[str, PlayerHost] | None = None,
        specs: Sequence[HostSpec] | Mapping[str, HostSpec] | None = None,
    ):
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
        return {j: self.hosts[j].produce(ts) for j, ts in requests.items()}

    def learn(self, requests: Mapping[str, LearnRequest]) -> dict[str, dict[str, torch.Tensor]]:
        return {i: self.hosts[i].step(r.plan, r.handles) for i, r in requests.items()}

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return on_cpu(self.hosts[name].call(fn, *args))

    def param_bytes(self) -> dict[str, int]:
        return {n: param_bytes_of(h.player) for n, h in self.hosts.items()}

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
        pass
