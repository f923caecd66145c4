"""The game: players, a policy (alpha) and each player's private data; rounds of sample-then-learn."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, load_checkpoint, policy_record, save_checkpoint
from .errors import ConfigError, Diverged, PlayerLost
from .events import Event, EventSource
from .host import HostSpec, PlayerHost
from .player import Player
from .policy import Policy, RoundOutcome, RoundPlan, as_policy
from .rng import derive_seed
from .runtime import InProcessRuntime, LearnRequest, Runtime, make_runtime
from .sources import DataSource
from .state import RunState
from .statistics import Statistics, check_summarisable
from .wire import WireAccount


class Game(EventSource):
    """N players learning together by exchanging synthetic samples of their shared variables.

    Every round the policy gives a :class:`~multimodal_game.policy.RoundPlan`: each player that
    another consumes draws one batch from its current parameters (one draw shared by all its
    consumers); each consumer receives the draw restricted to their interface; then every player
    takes one learning step on its own data and the synthetic data, weighted by its row of alpha.

    ``alpha``: a matrix (a fixed alpha); ``policy=``: a :class:`~multimodal_game.policy.Policy`
    instead (one of the two; a policy passed as ``alpha`` is accepted too).
    ``warmup_rounds=K`` wraps it so that the first K rounds use own data only.
    The run's state is read one way, ``game.state`` (a :class:`~multimodal_game.state.RunState`:
    its round, history, events, exchanges, meta, last statistics and checkpoint).
    """

    def __init__(
        self,
        players: Mapping[str, Player] | Sequence[Player] | None = None,
        alpha: Any = None,
        sources: Mapping[str, DataSource] | Sequence[DataSource] | None = None,
        *,
        policy: Policy | None = None,
        batch_size: int = 128,
        seed: int = 0,
        device: torch.device | str = "cpu",
        runtime: Runtime | None = None,
        warmup_rounds: int = 0,
        exchange: str | Mapping[tuple[str, str], str] = "samples",
        statistics: Statistics | None = None,
        fuse_players: bool = False,
        check_every: int = 1,
    ):
        super().__init__()
        if check_every < 1:
            raise ConfigError(f"check_every must be >= 1, got {check_every}")
        if policy is not None and alpha is not None:
            raise ConfigError("give the game alpha (a matrix) or policy=, not both")
        if runtime is None:
            runtime = _in_process(players, sources, seed, device, fuse_players)
        elif fuse_players:
            raise ValueError(
                "fuse_players is an option of the runtime: pass it to the runtime given"
            )
        self.runtime = runtime
        self.names: tuple[str, ...] = tuple(runtime.names)
        self.seed = seed
        self.spaces = runtime.spaces()
        self.policy: Policy = as_policy(alpha if policy is None else policy, warmup_rounds)
        self.policy.bind(self.names, self.spaces, batch_size)
        self.batch_size = int(batch_size)
        self._warn_about_data()
        # the round, history, exchanges, meta (e.g. the resolved run config), last checkpoint
        self.state = RunState()
        self.check_every = int(check_every)
        # flags not read yet: (round, [(player, what it did wrong)] per flag, flags on the device)
        self._unchecked: list[tuple[int, list[tuple[str, str]], torch.Tensor]] = []

        self.wire = WireAccount(self.spaces, self.names)
        self.statistics = statistics or Statistics()
        self.exchange = self._exchange_modes(exchange)
        self._plans_with_modes: dict[int, tuple[RoundPlan, RoundPlan]] = {}

    def _warn_about_data(self) -> None:
        """One warning per player whose data cannot serve as configured: fewer examples than a
        batch (rows are drawn again within a round), or no observed value of a categorical
        variable it models together with others (e.g. a label it never sees)."""
        for name in self.names:
            summary = self.runtime.data_summary(name)
            n = summary.get("examples", 0)
            if 0 < n < self.batch_size:
                warnings.warn(
                    f"player {name!r} holds {n} examples, fewer than batch_size = "
                    f"{self.batch_size}: a round draws some of them more than once",
                    stacklevel=3,
                )
            others = len(self.spaces[name]) > 1
            for var, seen in summary.get("observed", {}).items():
                if seen == 0 and others and n > 0:
                    warnings.warn(
                        f"player {name!r} observes no value of {var!r} in its {n} examples: "
                        f"it learns {var!r} from nothing but its own model (check the labelled "
                        "count or fraction)",
                        stacklevel=3,
                    )

    def _exchange_modes(self, exchange: str | Mapping[tuple[str, str], str]) -> dict:
        """(producer, consumer) -> "statistics" for the interfaces that travel as summaries."""
        pairs = self.policy.interfaces
        if isinstance(exchange, str):
            exchange = dict.fromkeys(pairs, exchange)
        unknown = set(exchange) - set(pairs)
        if unknown:
            raise ConfigError(f"exchange modes for pairs that share nothing: {sorted(unknown)}")
        modes = {}
        for pair, mode in exchange.items():
            if mode not in ("samples", "statistics"):
                raise ConfigError(
                    f"exchange mode of {pair}: {mode!r}; expected samples or statistics"
                )
            if mode == "statistics":
                check_summarisable(self.spaces[pair[0]], pairs[pair], pair)
                modes[pair] = mode
        return modes

    def _with_modes(self, plan: RoundPlan) -> RoundPlan:
        """``plan`` with each statistics interface's transfers marked (cached per plan)."""
        if not self.exchange:
            return plan
        hit = self._plans_with_modes.get(id(plan))
        if hit is not None and hit[0] is plan:
            return hit[1]
        learn = {
            n: replace(
                lp,
                transfers=tuple(
                    replace(t, statistics=self.statistics)
                    if (t.producer, t.consumer) in self.exchange
                    else t
                    for t in lp.transfers
                ),
            )
            for n, lp in plan.learn.items()
        }
        moded = RoundPlan(plan.names, plan.alpha, learn)
        self._plans_with_modes[id(plan)] = (plan, moded)
        return moded

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
        **options: Any,
    ) -> Game:
        """A game whose hosts are built where they live, by ``runtime`` (``inprocess`` or ``ray``);
        ``options`` go to the constructor (``exchange``, ``statistics``)."""
        rt = make_runtime(runtime, specs=specs, **dict(runtime_options or {}))
        try:
            return cls(
                alpha=alpha,
                runtime=rt,
                batch_size=batch_size,
                seed=seed,
                warmup_rounds=warmup_rounds,
                **options,
            )
        except BaseException:
            rt.close()
            raise

    @property
    def players(self) -> dict[str, Any]:
        """A handle per player (the same kind on every runtime): ``sample``, ``infer`` and ``call``
        run where the player lives, on its evaluation random stream, and return CPU results."""
        return self.runtime.players

    @property
    def alpha(self) -> torch.Tensor:
        return self.policy.alpha

    @property
    def interfaces(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """(producer, consumer) -> exchanged variables, for every pair the policy may use."""
        return self.policy.interfaces

    def plan(self, round: int | None = None) -> RoundPlan:
        """The plan of ``round`` (default: the next round to be played)."""
        return self.policy.plan(self.state.round if round is None else round)

    # -- one round ----------------------------------------------------------------------------------
    def step(self) -> dict[str, dict[str, torch.Tensor]]:
        """Play one round: everyone samples, then everyone learns (simultaneous best responses)."""
        try:
            try:
                return self._step()
            except Exception:
                # inside a check interval a partner may have learnt from a non-finite draw and
                # failed on it: the unread flags name the cause first, if there is one
                if not isinstance(sys.exc_info()[1], Diverged):
                    self._unchecked_rounds_first()
                raise
        except Diverged as e:
            if getattr(e, "complete", False):  # names its round and the last checkpoint already
                raise
            raise Diverged(
                e.player, f"{_last_line(e)} in round {self.state.round + 1}{self._hint()}"
            ) from e

    def _step(self) -> dict[str, dict[str, torch.Tensor]]:
        # with check_every > 1 an in-process host's draws are checked with the loss flags: a
        # partner may learn from a non-finite draw, but no checkpoint keeps it, and the check
        # names the player that drew it first (check_every = 1: each draw is read at once)
        for host in getattr(self.runtime, "hosts", {}).values():
            defer = self.check_every > 1
            if hasattr(host, "deferred_checks") and (host.deferred_checks is not None) != defer:
                host.deferred_checks = [] if defer else None
        plan = self._with_modes(self.policy.plan(self.state.round))
        producers = plan.producers
        handles = (
            self.runtime.produce({p: plan.requests_for(p) for p in producers}) if producers else {}
        )
        for name, host in getattr(self.runtime, "hosts", {}).items():
            for variables, drawn in getattr(host, "deferred_checks", None) or ():
                what = [(name, f"sampled non-finite values of [{v!r}]") for v in variables]
                self._unchecked.append((self.state.round + 1, what, drawn))  # before the losses
            if getattr(host, "deferred_checks", None):
                host.deferred_checks = []
        requests = {
            n: LearnRequest(
                plan.learn[n], tuple(handles[t.producer][n] for t in plan.learn[n].transfers)
            )
            for n in self.names
        }
        self.state.last_stats = self.runtime.learn(requests)
        # a non-finite loss stops the game before any checkpoint keeps the player's state: read
        # every round (check_every = 1: before anyone learns from its samples), or every
        # check_every rounds, before every checkpoint and at the end (one read per check)
        names = list(self.state.last_stats)
        flags = [torch.isfinite(self.state.last_stats[n]["loss"]).all() for n in names]
        done = self.state.round + 1
        lost = [(n, "diverged (non-finite loss)") for n in names]
        if len({f.device for f in flags}) == 1:
            self._unchecked.append((done, lost, torch.stack(flags)))
        else:  # players on several devices: one flag each
            self._unchecked.extend((done, [w], f[None]) for w, f in zip(lost, flags))
        if done % self.check_every == 0:
            self.check_finite()
        self.wire.record(plan, self.state)
        self.state.round += 1
        self.policy.observe(RoundOutcome(self.state.round, self.state.last_stats, self.players))
        return self.state.last_stats

    def _unchecked_rounds_first(self) -> None:
        """Read the unread flags (raising their Diverged, if any), the rounds before the one that
        failed: its own flags never came."""
        if self._unchecked:
            self.check_finite()

    def check_finite(self, writing: str | Path | None = None) -> None:
        """Read the losses' finiteness flags of the rounds not checked yet, at once; a
        :class:`Diverged` names the first player and round with a non-finite loss (and the
        checkpoint ``writing`` that it stops)."""
        if not self._unchecked:
            return
        pending, self._unchecked = self._unchecked, []
        if len({f.device for _, _, f in pending}) == 1:  # one synchronisation
            flat = torch.cat([f for _, _, f in pending]).tolist()
            read, at = [], 0
            for _, _, f in pending:
                read.append(flat[at : at + len(f)])
                at += len(f)
        else:
            read = [f.tolist() for _, _, f in pending]
        for (round, what, _), finite in zip(pending, read):
            for (name, wrong), ok in zip(what, finite):
                if not ok:
                    stop = "" if writing is None else f": not writing {str(writing)!r}"
                    err = Diverged(
                        name, f"player {name!r} {wrong} in round {round}{stop}{self._hint()}"
                    )
                    err.complete = True  # names its round and checkpoint: step() adds nothing
                    raise err

    def losses(self) -> dict[str, float]:
        """Each player's loss in the last round (reading it waits for the device)."""
        return {n: float(s["loss"]) for n, s in self.state.last_stats.items()}

    # -- the loop -----------------------------------------------------------------------------------
    def run(self, rounds: int) -> list[dict[str, Any]]:
        """Play until ``self.state.round == rounds`` (a resumed game continues where it stopped), firing
        round events; what happens at them is up to the attached handlers (see ``handlers``)."""
        self.fire(Event.STARTED, rounds=rounds)
        while True:
            # Every remote call of the loop (learning, evaluation, checkpointing, the final
            # handlers) goes through the same lost-player path: restart and replay, or stop with
            # the round and the phase.
            try:
                if self.state.round >= rounds:
                    self.check_finite()
                    when = "at the end of the run (final checkpoint or evaluation)"
                    self.fire(Event.COMPLETED, rounds=rounds)
                    return self.state.history
                when = f"in round {self.state.round + 1}"
                self.step()
                when = f"after round {self.state.round} (checkpoint or evaluation)"
                self.fire(Event.ROUND_COMPLETED, round=self.state.round, last=rounds)
            except PlayerLost as e:
                e.when = when
                if not any(self.fire(Event.PLAYER_LOST, error=e)):
                    raise PlayerLost(e.names, f"{e} {when}") from e

    # -- accounting (multimodal_game.wire) ------------------------------------------------------
    def bytes_per_round(self, plan: RoundPlan | None = None) -> dict[str, dict[str, int]]:
        """Synthetic bytes each player sends and receives in one exchanging round (default: the
        plan of the last round played, or of the next one if it played none that exchanged)."""
        return self.wire.per_round(plan or self._with_modes(self._exchanging_plan()))

    def accounting(self, local_steps: Sequence[int] = (1, 10, 50)) -> dict[str, Any]:
        """Bytes over the wire, counted as for every method: what the game moved in one exchanging
        round and over the whole run (warm-up rounds included; a sample crosses the wire once,
        producer to consumer), next to a client-server FedAvg of the same players' parameters
        every E local steps (the initial model down, then per averaging each player's parameters
        up and the average down; :func:`~multimodal_game.accounting.parameter_exchange_bytes`)."""
        plan = self._exchanging_plan()
        return self.wire.report(
            self.state,
            self.runtime.param_bytes(),
            self._with_modes(plan),
            plan,
            self.exchange,
            local_steps,
        )

    def _exchanging_plan(self) -> RoundPlan:
        """The plan of the last round played, or of the next one if it played none that exchanged."""
        plan = self.policy.plan(max(self.state.round - 1, 0))
        return plan if plan.exchanges else self.policy.plan(self.state.round)

    # -- state --------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What a checkpoint holds: the run state, the policy's and every host's state."""
        return {
            "round": self.state.round,
            "names": list(self.names),
            "policy": self.policy.describe(),
            "policy_state": self.policy.state_dict(),
            "batch_size": self.batch_size,
            "hosts": self.runtime.state(),
            "history": _plain(self.state.history),
            "exchanged": _plain(self.state.exchanged),
            "meta": _plain(self.state.meta),
        }

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint atomically; a state with a non-finite tensor is never written (the
        rounds not checked yet are checked first)."""
        self.check_finite(writing=path)
        state = self.snapshot()
        for name, host in state["hosts"].items():
            bad = _non_finite(host)
            if bad:
                raise Diverged(
                    name,
                    f"player {name!r} has non-finite values in {bad[:3]}: not writing "
                    f"{str(path)!r}{self._hint()}",
                )
        out = save_checkpoint(path, state)
        self.state.last_checkpoint, self.state.checkpoint_round = out, self.state.round
        return out

    def _hint(self) -> str:
        if self.state.last_checkpoint is None:
            return "; no checkpoint was written"
        return f"; the last good checkpoint is {str(self.state.last_checkpoint)!r} (round {self.state.checkpoint_round})"

    def load(self, path: str | Path) -> None:
        """Restore players, optimisers, random streams and the round counter from ``path``."""
        state = load_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        if list(state["names"]) != list(self.names):
            raise CheckpointError(
                f"{where} holds players {state['names']}, this game has {list(self.names)}"
            )
        if state["batch_size"] != self.batch_size:
            raise CheckpointError(
                f"{where} used batch_size {state['batch_size']}, not {self.batch_size}"
            )
        inner = getattr(self.policy, "inner", self.policy)
        theirs = _plain(policy_record(state, type(inner).__name__))
        ours = _plain(self.policy.describe())
        for key in sorted(set(theirs) | set(ours)):
            if theirs.get(key) != ours.get(key):
                what = (
                    "a different alpha matrix"
                    if key == "alpha"
                    else f"{key} {theirs.get(key)!r}, not {ours.get(key)!r}"
                )
                raise CheckpointError(f"{where} was written with {what}")
        self.runtime.load_state(state["hosts"])
        self._unchecked = []  # rounds after the checkpoint are played again, and checked then
        for host in getattr(self.runtime, "hosts", {}).values():
            if getattr(host, "deferred_checks", None):
                host.deferred_checks = []
        self.policy.load_state_dict(state.get("policy_state", {}))
        self.state.round = int(state["round"])
        self.state.history = list(state.get("history", []))
        self.state.exchanged = state.get("exchanged", {"rounds": {}, "bytes": {}})
        self.state.last_checkpoint, self.state.checkpoint_round = Path(path), self.state.round

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(player, *args)`` where player ``name`` lives, on its evaluation stream."""
        if name not in self.names:
            raise KeyError(f"no player {name!r}; players are {list(self.names)}")
        return self.runtime.call(name, fn, *args)

    def close(self) -> None:
        self.runtime.close()


def _in_process(
    players: Any, sources: Any, seed: int, device: torch.device | str, fuse: bool = False
) -> Runtime:
    if players is None or sources is None:
        raise ValueError("Game needs players and sources (or a ready runtime)")
    players = _named(players)
    sources = _named(sources)
    if set(sources) != set(players):
        raise ValueError(
            f"one data source per player: players {sorted(players)}, sources {sorted(sources)}"
        )
    hosts = {
        n: PlayerHost(n, p, sources[n], derive_seed(seed, k), device)
        for k, (n, p) in enumerate(players.items())
    }
    return InProcessRuntime(hosts, fuse_players=fuse)


def _named(items: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return dict(items)
    # Unnamed players and sources are matched by position: player0, player1, ...
    return {f"player{k}": v for k, v in enumerate(items)}


def _last_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[-1] if text else type(e).__name__


def _non_finite(state: Any, prefix: str = "") -> list[str]:
    """Paths of floating-point tensors in ``state`` holding NaN or infinity."""
    if torch.is_tensor(state):
        return (
            [prefix] if state.is_floating_point() and not bool(torch.isfinite(state).all()) else []
        )
    if isinstance(state, Mapping):
        return [p for k, v in state.items() for p in _non_finite(v, f"{prefix}/{k}")]
    if isinstance(state, (list, tuple)):
        return [p for k, v in enumerate(state) for p in _non_finite(v, f"{prefix}/{k}")]
    return []


def _plain(obj: Any) -> Any:
    """Plain Python containers (loadable with weights_only=True, comparable with ==)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.tolist()
    return obj
