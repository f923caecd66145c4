"""Parameter exchange, the baseline the game replaces: FedAvg and FedProx over a game's players.

Players of one architecture learn alone (alpha = I) and, every ``every`` rounds (E local steps),
send their parameters to a server that averages them weighted by shard size and sends the average
back; every player goes on from it (McMahan et al. 2017). The average is Flower's own
(``flwr.serverapp.strategy.strategy_utils.aggregate_arrayrecords``, what its ``FedAvg`` strategy
aggregates with; optional extra ``[flower]``). FedProx (Li et al. 2020) is the same server; each
client adds ``mu / 2 * ||w - w_global||^2`` to its loss, here as its gradient ``mu * (w - w_global)``
added to every parameter's gradient, as Flower's FedProx leaves the term to the client.

Bytes over the wire (:func:`~multimodal_game.accounting.parameter_exchange_bytes`): the server's initial model down to every
player, then per averaging each player's parameters up and the average down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .events import Event


def flower_average(states: Mapping[str, Mapping[str, torch.Tensor]], weights: Mapping[str, float]):
    """The weighted mean of the players' state dicts, computed by Flower's FedAvg aggregation
    (each player a reply holding its arrays and its ``num-examples``)."""
    try:
        from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
        from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords
    except ImportError as e:
        raise ConfigError(
            f"FedAvg / FedProx aggregate through Flower: pip install 'multimodal-game[flower]' ({e})"
        ) from None
    replies = [
        RecordDict(
            {
                "arrays": ArrayRecord({k: Array(v.numpy()) for k, v in state.items()}),
                "metrics": MetricRecord({"num-examples": float(weights[name])}),
            }
        )
        for name, state in states.items()
    ]
    avg = aggregate_arrayrecords(replies, "num-examples")
    first = next(iter(states.values()))
    return {
        k: torch.from_numpy(np.asarray(avg[k].numpy())).to(first[k].dtype).reshape(first[k].shape)
        for k in first
    }


def _parameters(player: Any) -> dict[str, torch.Tensor]:
    return player.parameters_state()


def _load(player: Any, state: Mapping[str, torch.Tensor], mu: float) -> None:
    """Load the average and, for FedProx, make it the anchor of the proximal gradient."""
    player.load_parameters(state)
    if mu <= 0:
        return
    anchors = getattr(player, "_proximal_anchors", None)
    if anchors is None:  # hooks once; the anchors are updated in place at every averaging
        anchors = {}
        for name, p in player.named_parameters():
            if not p.requires_grad:
                continue
            anchors[name] = p.detach().clone()
            p.register_hook(lambda g, p=p, a=anchors[name]: g + mu * (p.detach() - a))
        player._proximal_anchors = anchors
    for name, p in player.named_parameters():
        if name in anchors:
            anchors[name].copy_(p.detach())


class ParameterAveraging:
    """FedAvg (``mu = 0``) or FedProx (``mu > 0``) as a game handler: every ``every`` rounds, and
    after the last one, each player's parameters are replaced by their average weighted by shard
    size. Attach it to a game whose alpha is the identity (players learn alone in between).

    It runs before the other handlers of a round (checkpoints and evaluation see the average), so
    a checkpoint of an averaging round resumes exactly (the FedProx anchor is the players' common
    state); one of a round between two averagings is refused."""

    def __init__(self, every: int, mu: float = 0.0):
        if every < 1:
            raise ConfigError(f"parameter averaging every {every} rounds: it must be >= 1")
        if mu < 0:
            raise ConfigError(f"FedProx mu must be >= 0, got {mu}")
        self.every, self.mu = int(every), float(mu)
        self.weights: dict[str, float] = {}
        self._started = False

    def attach(self, game: Any) -> ParameterAveraging:
        game.add_handler(Event.STARTED, self._start, first=True)
        game.add_handler(Event.ROUND_COMPLETED, self, every=self.every, first=True)
        return self

    def _start(self, game: Any, **_: Any) -> None:
        states = {n: game.call(n, _parameters) for n in game.names}
        ref_name, ref = next(iter(states.items()))
        for name, state in states.items():
            if [tuple(v.shape) for v in state.values()] != [tuple(v.shape) for v in ref.values()]:
                raise ConfigError(
                    f"parameter averaging needs players of one architecture: {name!r} and "
                    f"{ref_name!r} differ; use the game (or distillation) for different ones"
                )
        self.weights = {n: float(game.players[n].data_summary()["examples"]) for n in game.names}
        if self._started:  # a later run() of the same game: the players go on as they are
            return
        self._started = True
        if game.state.round > 0 and any(
            not all(torch.equal(a, b) for a, b in zip(s.values(), ref.values()))
            for s in states.values()
        ):
            raise ConfigError(
                f"a parameter-averaging game resumes from a checkpoint written right after an "
                f"averaging (every {self.every} rounds or at the end of a run); at round "
                f"{game.state.round} the players' parameters differ"
            )
        # round 0: the server's initial model (the first player's) goes to every player; a resumed
        # game's players hold one average already, loaded again to anchor FedProx (exactly)
        for n in game.names:
            game.call(n, _load, _named_as(ref, states[n]), self.mu)

    def __call__(self, game: Any) -> None:
        states = {n: game.call(n, _parameters) for n in game.names}
        first = next(iter(states.values()))
        # players of one architecture over different variables (style m0, style m1, ...) name
        # their tensors differently: they are averaged by position, as Flower's list of arrays
        avg = flower_average({n: _named_as(s, first) for n, s in states.items()}, self.weights)
        for n in game.names:
            game.call(n, _load, _named_as(avg, states[n]), self.mu)


def _named_as(state: Mapping[str, torch.Tensor], like: Mapping[str, torch.Tensor]) -> dict:
    """``state``'s tensors in order under ``like``'s names (same architecture, checked)."""
    return dict(zip(like, state.values(), strict=True))
