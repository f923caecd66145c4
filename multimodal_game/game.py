"""The game: players, the alpha matrix, each player's private data; rounds of sample-then-learn."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .alpha import allocate, validate_alpha
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .host import HostSpec, PlayerHost
from .player import Player
from .progress import progress_bar
from .rng import derive_seed
from .runtime import InProcessRuntime, PlayerLost, Runtime, make_runtime
from .sources import DataSource
from .spaces import interface

Hook = Callable[["Game", int], Mapping[str, Any] | None]


class Game:
    """N players learning together by exchanging synthetic samples of their shared variables.

    Every round: each player that another player consumes draws one batch of samples from its
    current parameters (one draw shared by all its consumers); each consumer receives the draw
    restricted to their interface; then every player takes one learning step on a batch of
    ``batch_size`` examples made of its own data and the synthetic data, in proportions
    ``alpha[i]`` (see :func:`multimodal_game.alpha.allocate` for the rounding rule and weights).
    """

    def __init__(
        self,
        players: Mapping[str, Player] | Sequence[Player] | None = None,
        alpha: Any = None,
        sources: Mapping[str, DataSource] | Sequence[DataSource] | None = None,
        *,
        batch_size: int = 128,
        seed: int = 0,
        device: torch.device | str = "cpu",
        runtime: Runtime | None = None,
        warmup_rounds: int = 0,
    ):
        if runtime is None:
            if players is None or sources is None:
                raise ValueError("Game needs players and sources (or a ready runtime)")
            players = _named(players, "player")
            sources = _named(sources, "source")
            if set(sources) != set(players):
                raise ValueError(
                    f"one data source per player: players {sorted(players)}, sources {sorted(sources)}"
                )
            hosts = {
                n: PlayerHost(n, p, sources[n], derive_seed(seed, k), device)
                for k, (n, p) in enumerate(players.items())
            }
            runtime = InProcessRuntime(hosts)
        self.runtime = runtime
        self.names: tuple[str, ...] = tuple(runtime.names)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)
        if warmup_rounds < 0:
            raise ValueError(f"warmup_rounds must be >= 0, got {warmup_rounds}")
        # Rounds at the start in which every player learns from its own data only: synthetic
        # samples of untrained generators are noise (labels that their images do not carry), and
        # consuming them from round 1 drags every player down before anyone can help anyone.
        self.warmup_rounds = int(warmup_rounds)
        self.seed = seed
        self.alpha = validate_alpha(alpha, self.names)
        self.spaces = runtime.spaces()
        self.interfaces: dict[tuple[str, str], tuple[str, ...]] = {}
        names = self.names
        for i, ni in enumerate(names):
            for j, nj in enumerate(names):
                if i == j or self.alpha[i, j] == 0:
                    continue
                shared = interface(self.spaces[nj], self.spaces[ni], (nj, ni))
                if not shared:
                    raise ValueError(
                        f"alpha[{i}][{j}] > 0 but players {ni!r} and {nj!r} share no exchangeable "
                        f"variable ({ni!r}: {self.spaces[ni]}, {nj!r}: {self.spaces[nj]})"
                    )
                self.interfaces[(nj, ni)] = shared  # (producer, consumer)
        # Counts and per-example weights, fixed for the whole game.
        self.counts = {
            ni: allocate(self.alpha[i].tolist(), self.batch_size) for i, ni in enumerate(names)
        }
        self.weights = {
            ni: [
                (self.alpha[i, j].item() * self.batch_size / c) if c else 0.0
                for j, c in enumerate(self.counts[ni])
            ]
            for i, ni in enumerate(names)
        }
        self.plans: dict[str, dict[str, tuple[int, tuple[str, ...]]]] = {}
        for (nj, ni), shared in self.interfaces.items():
            c = self.counts[ni][names.index(nj)]
            self.plans.setdefault(nj, {})[ni] = (c, shared)
        self.round = 0
        self.last_stats: dict[str, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[HostSpec] | Mapping[str, HostSpec],
        alpha: Any,
        *,
        runtime: str = "inprocess",
        runtime_options: Mapping[str, Any] | None = None,
        batch_size: int = 128,
        seed: int = 0,
        warmup_rounds: int = 0,
    ) -> Game:
        """A game whose hosts are built where they live, by ``runtime`` (``inprocess`` or ``ray``)."""
        rt = make_runtime(runtime, specs=specs, **dict(runtime_options or {}))
        try:
            return cls(
                alpha=alpha,
                runtime=rt,
                batch_size=batch_size,
                seed=seed,
                warmup_rounds=warmup_rounds,
            )
        except BaseException:
            rt.close()
            raise

    @property
    def players(self) -> dict[str, Any]:
        """The players (in process) or proxies that run ``sample``/``infer`` where they live."""
        return self.runtime.players

    # -- one round ----------------------------------------------------------------------------------
    def step(self) -> dict[str, dict[str, torch.Tensor]]:
        """Play one round: everyone samples, then everyone learns (simultaneous best responses)."""
        if self.round < self.warmup_rounds:
            own_only = {n: (self.batch_size, 1.0, []) for n in self.names}
            self.last_stats = self.runtime.learn(own_only)
            self.round += 1
            return self.last_stats
        handles = self.runtime.produce(self.plans)
        requests = {}
        for i, ni in enumerate(self.names):
            synth = [
                (nj, handles[nj][ni], self.weights[ni][j])
                for j, nj in enumerate(self.names)
                if nj != ni and (nj, ni) in self.interfaces
            ]
            requests[ni] = (self.counts[ni][i], self.weights[ni][i], synth)
        self.last_stats = self.runtime.learn(requests)
        self.round += 1
        return self.last_stats

    def bytes_per_round(self) -> dict[str, dict[str, int]]:
        """Synthetic bytes each player sends and receives per round (fixed by the plan and spaces)."""
        sent = dict.fromkeys(self.names, 0)
        received = dict.fromkeys(self.names, 0)
        for j, plan in self.plans.items():
            for i, (count, names) in plan.items():
                space = self.spaces[j]
                b = sum(
                    count
                    * math.prod(space[v].event_shape)
                    * torch.empty((), dtype=space[v].dtype).element_size()
                    for v in names
                )
                sent[j] += b
                received[i] += b
        return {"sent": sent, "received": received}

    def accounting(self) -> dict[str, Any]:
        """Bytes exchanged per round and in total so far, next to what exchanging the same players'
        parameters would cost (FedAvg-style: each player's full parameters to each consumer)."""
        synth = self.bytes_per_round()
        params = self.runtime.param_bytes()
        p_sent = dict.fromkeys(self.names, 0)
        p_recv = dict.fromkeys(self.names, 0)
        for producer, consumer in self.interfaces:
            p_sent[producer] += params[producer]
            p_recv[consumer] += params[producer]
        r = max(0, self.round - self.warmup_rounds)  # rounds that exchanged samples

        def total(d: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
            return {k: {n: v * r for n, v in row.items()} for k, row in d.items()}

        params_round = {"sent": p_sent, "received": p_recv}
        return {
            "rounds": self.round,
            "exchange_rounds": r,
            "synthetic_per_round": synth,
            "synthetic_total": total(synth),
            "parameters_per_round": params_round,
            "parameters_total": total(params_round),
            "parameter_bytes": params,
            "synthetic_all_players_per_round": sum(synth["sent"].values()),
            "parameters_all_players_per_round": sum(p_sent.values()),
        }

    # -- the loop -----------------------------------------------------------------------------------
    def run(
        self,
        rounds: int,
        *,
        hooks: Sequence[Hook] = (),
        eval_every: int = 0,
        checkpoint_every: int = 0,
        checkpoint_path: str | Path | None = None,
        progress: bool = True,
        description: str = "game",
        max_restarts: int = 0,
    ) -> list[dict[str, Any]]:
        """Play until ``self.round == rounds`` (so a resumed game continues where it stopped).

        If a player's process dies (``PlayerLost``), the error names the player and the round. With
        ``max_restarts > 0`` the lost players are rebuilt and every player goes back to the last
        checkpoint, so the game replays the same rounds (the result equals an uninterrupted run);
        otherwise the error is raised and the last checkpoint is intact for ``--resume``.
        """
        if (checkpoint_every or max_restarts) and checkpoint_path is None:
            raise ValueError("checkpoint_every and max_restarts need a checkpoint_path")
        if max_restarts and not Path(checkpoint_path).is_file():
            self.save(checkpoint_path)  # a restart point before the first scheduled checkpoint
        restarts = 0
        with progress_bar(progress) as bar:
            task = bar.add_task(description, total=rounds, completed=self.round)
            t0 = time.perf_counter()
            while self.round < rounds:
                try:
                    self.step()
                except PlayerLost as e:
                    where = f"in round {self.round + 1}"
                    self.events.append(
                        {"event": "lost", "players": list(e.names), "round": self.round + 1}
                    )
                    if restarts >= max_restarts:
                        hint = (
                            f"; the last checkpoint is {str(checkpoint_path)!r}"
                            if checkpoint_path
                            else ""
                        )
                        raise PlayerLost(e.names, f"{e} {where}{hint}") from e
                    restarts += 1
                    self.runtime.restart(e.names)
                    self.load(checkpoint_path)
                    self.events.append(
                        {"event": "restarted", "players": list(e.names), "from_round": self.round}
                    )
                    warnings.warn(
                        f"{e} {where}; restarted, replaying from round {self.round} "
                        f"(restart {restarts} of {max_restarts})",
                        stacklevel=2,
                    )
                    bar.update(task, completed=self.round)
                    continue
                r = self.round
                if eval_every and (r % eval_every == 0 or r == rounds):
                    record = {"round": r, "seconds": time.perf_counter() - t0}
                    record["loss"] = {n: float(s["loss"]) for n, s in self.last_stats.items()}
                    for hook in hooks:
                        record.update(hook(self, r) or {})
                    self.history.append(record)
                if checkpoint_every and (r % checkpoint_every == 0 or r == rounds):
                    self.save(checkpoint_path)
                bar.update(task, completed=r)
        return self.history

    # -- state --------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "names": list(self.names),
            "alpha": self.alpha.clone(),
            "batch_size": self.batch_size,
            "warmup_rounds": self.warmup_rounds,
            "hosts": self.runtime.state(),
            "history": _plain(self.history),
        }

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(path, self.state())

    def load(self, path: str | Path) -> None:
        """Restore players, optimisers, random streams and the round counter from ``path``."""
        state = load_checkpoint(path)
        if list(state["names"]) != list(self.names):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds players {state['names']}, this game has {list(self.names)}"
            )
        if not torch.equal(state["alpha"], self.alpha):
            raise CheckpointError(
                f"checkpoint {str(path)!r} was written with a different alpha matrix"
            )
        if state["batch_size"] != self.batch_size:
            raise CheckpointError(
                f"checkpoint {str(path)!r} used batch_size {state['batch_size']}, not {self.batch_size}"
            )
        if state.get("warmup_rounds", 0) != self.warmup_rounds:
            raise CheckpointError(
                f"checkpoint {str(path)!r} used warmup_rounds {state.get('warmup_rounds', 0)}, "
                f"not {self.warmup_rounds}"
            )
        self.runtime.load_state(state["hosts"])
        self.round = int(state["round"])
        self.history = list(state.get("history", []))

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(player, *args)`` where player ``name`` lives (used by evaluation hooks)."""
        if name not in self.names:
            raise KeyError(f"no player {name!r}; players are {list(self.names)}")
        return self.runtime.call(name, fn, *args)

    def close(self) -> None:
        self.runtime.close()


def _named(items: Mapping[str, Any] | Sequence[Any], what: str) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return dict(items)
    # Unnamed players and sources are matched by position: player0, player1, ...
    return {f"player{k}": v for k, v in enumerate(items)}


def _plain(obj: Any) -> Any:
    """History as plain Python containers (loadable with weights_only=True)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    return obj
