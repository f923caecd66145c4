"""What a game moves over the wire: bytes per transfer, per pair and round, and the whole run's
account beside a client-server FedAvg of the same players' parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .accounting import parameter_exchange_bytes
from .policy import RoundPlan, Transfer
from .spaces import Space
from .state import RunState
from .statistics import summary_bytes


class WireAccount:
    """Counts the bytes of every transfer a game plays (a sample crosses the wire once, producer
    to consumer; a statistics transfer its summary) into ``state.exchanged``."""

    def __init__(self, spaces: Mapping[str, Space], names: Sequence[str]):
        self.spaces, self.names = spaces, tuple(names)
        self._bytes: dict[Transfer, int] = {}

    def transfer_bytes(self, t: Transfer) -> int:
        if t not in self._bytes and t.statistics is not None:
            self._bytes[t] = summary_bytes(
                self.spaces[t.producer], t.variables, t.statistics.covariance
            )
        if t not in self._bytes:
            space = self.spaces[t.producer]
            self._bytes[t] = sum(
                t.count
                * math.prod(space[v].event_shape)
                * torch.empty((), dtype=space[v].dtype).element_size()
                for v in t.variables
            )
        return self._bytes[t]

    def record(self, plan: RoundPlan, state: RunState) -> None:
        """Add a played round's transfers to the run's per-pair rounds and bytes."""
        rounds, moved = state.exchanged["rounds"], state.exchanged["bytes"]
        for t in plan.transfers:
            key = f"{t.producer}->{t.consumer}"
            rounds[key] = rounds.get(key, 0) + 1
            moved[key] = moved.get(key, 0) + self.transfer_bytes(t)

    def per_round(self, plan: RoundPlan) -> dict[str, dict[str, int]]:
        """Bytes each player sends and receives in one round of ``plan``."""
        sent = dict.fromkeys(self.names, 0)
        received = dict.fromkeys(self.names, 0)
        for t in plan.transfers:
            b = self.transfer_bytes(t)
            sent[t.producer] += b
            received[t.consumer] += b
        return {"sent": sent, "received": received}

    def report(
        self,
        state: RunState,
        params: Mapping[str, int],
        plan: RoundPlan,
        samples_plan: RoundPlan,
        modes: Mapping[tuple[str, str], str],
        local_steps: Sequence[int],
    ) -> dict[str, Any]:
        """The run's account (see ``Game.accounting``): ``plan`` an exchanging round as played,
        ``samples_plan`` the same round with every interface sending samples."""
        synth = self.per_round(plan)
        totals: dict[str, dict[str, int]] = {
            "sent": dict.fromkeys(self.names, 0),
            "received": dict.fromkeys(self.names, 0),
        }
        for key, moved in state.exchanged["bytes"].items():
            producer, consumer = key.split("->")
            totals["sent"][producer] += moved
            totals["received"][consumer] += moved
        run_total = sum(totals["sent"].values())
        rounds = max(state.round, 1)
        fedavg = {str(e): parameter_exchange_bytes(params, state.round, e) for e in local_steps}
        return {
            "rounds": state.round,
            "exchange_rounds": max(state.exchanged["rounds"].values(), default=0),
            "synthetic_per_round": synth,  # one exchanging round
            "synthetic_total": totals,
            "synthetic_all_players_per_round": sum(synth["sent"].values()),
            "synthetic_bytes_total": run_total,
            "synthetic_bytes_per_round": run_total / rounds,  # over every round of the run
            "parameter_bytes": dict(params),
            "fedavg_bytes_per_averaging": 2 * sum(params.values()),
            "fedavg_bytes_total": fedavg,
            "fedavg_bytes_per_round": {e: b / rounds for e, b in fedavg.items()},
            # what travels on each statistics interface, and what samples would have cost there
            "exchange_modes": {f"{p}->{c}": m for (p, c), m in modes.items()},
            "samples_mode_all_players_per_round": sum(
                self.transfer_bytes(t) for t in samples_plan.transfers
            ),
        }
