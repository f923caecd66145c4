"""Handlers for the game loop: checkpoints, evaluation, progress and restart of lost players.

Attach them with :meth:`attach`, e.g. ``Checkpointer(path).attach(game, every=100)``; the loop in
:meth:`multimodal_game.game.Game.run` knows none of them.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import ConfigError
from .events import Event
from .runtime import PlayerLost

if TYPE_CHECKING:
    from .game import Game

Hook = Callable[["Game", int], Mapping[str, Any] | None]


class Checkpointer:
    """Writes the game's checkpoint (atomically) every ``every`` rounds and after the last one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def attach(self, game: Game, every: int) -> Checkpointer:
        game.add_handler(Event.ROUND_COMPLETED, self, every=every)
        return self

    def __call__(self, game: Game) -> None:
        game.save(self.path)


class Evaluator:
    """Every ``every`` rounds appends a record to ``game.state.history``: the round, seconds since the
    run started, each player's last loss, and whatever each hook ``hook(game, round)`` returns.

    Hooks evaluate through ``game.players``: their sampling uses each host's evaluation stream,
    so evaluating never changes the training trajectory."""

    def __init__(self, hooks: Sequence[Hook] = ()):
        self.hooks = list(hooks)
        self.t0 = time.perf_counter()

    def attach(self, game: Game, every: int) -> Evaluator:
        game.add_handler(Event.STARTED, self._start)
        game.add_handler(Event.ROUND_COMPLETED, self, every=every)
        return self

    def _start(self, game: Game, **_: Any) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, game: Game) -> None:
        record: dict[str, Any] = {
            "round": game.state.round,
            "seconds": time.perf_counter() - self.t0,
        }
        record["loss"] = game.losses()
        for hook in self.hooks:
            record.update(hook(game, game.state.round) or {})
        game.state.history.append(record)


class RestartOnLoss:
    """Handles ``PLAYER_LOST``: rebuilds the lost players and puts every player back to the last
    checkpoint (the game then replays the same rounds), up to ``max_restarts`` times; after that,
    or with ``max_restarts=0``, the loss is raised with the round and the last checkpoint."""

    def __init__(self, path: str | Path | None, max_restarts: int = 0):
        if max_restarts and path is None:
            raise ValueError("restarting lost players needs a checkpoint path")
        self.path = None if path is None else Path(path)
        self.max_restarts = int(max_restarts)
        self.restarts = 0

    def attach(self, game: Game) -> RestartOnLoss:
        game.add_handler(Event.STARTED, self._start)
        game.add_handler(Event.PLAYER_LOST, self)
        return self

    def _start(self, game: Game, **_: Any) -> None:
        if self.max_restarts and not self.path.is_file():
            game.save(self.path)  # a restart point before the first scheduled checkpoint

    def __call__(self, game: Game, error: PlayerLost) -> bool:
        where = getattr(error, "when", f"in round {game.state.round + 1}")
        game.state.events.append(
            {"event": "lost", "players": list(error.names), "round": game.state.round + 1}
        )
        if self.restarts >= self.max_restarts:
            hint = f"; the last checkpoint is {str(self.path)!r}" if self.path else ""
            raise PlayerLost(error.names, f"{error} {where}{hint}") from error
        self.restarts += 1
        game.runtime.restart(error.names)
        game.load(self.path)
        game.state.events.append(
            {"event": "restarted", "players": list(error.names), "from_round": game.state.round}
        )
        warnings.warn(
            f"{error} {where}; restarted, replaying from round {game.state.round} "
            f"(restart {self.restarts} of {self.max_restarts})",
            stacklevel=2,
        )
        return True


class Progress:
    """Progress of a run: a rich bar with the players' mean loss in a terminal; without one (a log
    file, CI, a cluster job) a plain line every ``every`` rounds with round, seconds, ETA and each
    player's loss, so that a redirected run is never silent."""

    def __init__(self, description: str = "game", stream: TextIO | None = None, every: int = 0):
        self.description = description
        self.stream = stream
        self.every = every
        self._bar: Any = None
        self._task: Any = None
        self._t0 = 0.0
        self._start_round = 0
        self._total = 0

    @property
    def interactive(self) -> bool:
        stream = self.stream or sys.stdout
        return bool(getattr(stream, "isatty", lambda: False)())

    def attach(self, game: Game) -> Progress:
        game.add_handler(Event.STARTED, self._start)
        game.add_handler(Event.ROUND_COMPLETED, self._round)
        game.add_handler(Event.COMPLETED, self._end)
        return self

    def _start(self, game: Game, rounds: int = 0, **_: Any) -> None:
        self._t0, self._start_round, self._total = time.perf_counter(), game.state.round, rounds
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[loss]}"),
            )
            self._bar.start()
            self._task = self._bar.add_task(
                self.description, total=rounds, completed=game.state.round, loss=""
            )
        else:
            self._line(game, "start")

    def _round(self, game: Game) -> None:
        if self._bar is not None:
            if game.state.round % 10 == 0 or game.state.round == self._total:
                losses = game.losses()
                mean = sum(losses.values()) / max(len(losses), 1)
                self._bar.update(self._task, completed=game.state.round, loss=f"loss {mean:.4g}")
            else:
                self._bar.update(self._task, completed=game.state.round)
            return
        every = self.every or max(1, self._total // 20)
        if game.state.round % every == 0 or game.state.round == self._total:
            self._line(game)

    def _end(self, game: Game, **_: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _line(self, game: Game, what: str = "") -> None:
        elapsed = time.perf_counter() - self._t0
        done = game.state.round - self._start_round
        left = self._total - game.state.round
        eta = f"{elapsed / done * left:.0f}s" if done > 0 else "?"
        if what == "start":
            text = f"[{self.description}] round {game.state.round}/{self._total}: starting"
        else:
            losses = " ".join(f"{n}={v:.4g}" for n, v in game.losses().items())
            text = (
                f"[{self.description}] round {game.state.round}/{self._total} "
                f"{elapsed:.0f}s eta {eta} loss {losses}"
            )
        print(text, file=self.stream or sys.stdout, flush=True)


def attach_standard(
    game: Game,
    *,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    eval_every: int = 0,
    hooks: Sequence[Hook] = (),
    progress: bool = True,
    description: str = "game",
    max_restarts: int = 0,
    metrics_path: str | Path | None = None,
    log_every: int = 0,
    tensorboard: str | Path | None = None,
) -> Game:
    """The handlers an experiment usually wants: progress, evaluation every ``eval_every`` rounds,
    checkpoints every ``checkpoint_every`` rounds, a ``metrics_path`` line every ``log_every``
    rounds (also as TensorBoard scalars under ``tensorboard``), and restart of lost players (or a message naming the last checkpoint)."""
    if (checkpoint_every or max_restarts) and checkpoint_path is None:
        raise ValueError("checkpoint_every and max_restarts need a checkpoint_path")
    if progress:
        Progress(description).attach(game)
    if eval_every:
        Evaluator(hooks).attach(game, eval_every)
    if checkpoint_every:
        Checkpointer(checkpoint_path).attach(game, checkpoint_every)
    if metrics_path is not None and log_every:
        MetricsLog(metrics_path, description, tensorboard).attach(game, log_every)
    RestartOnLoss(checkpoint_path, max_restarts).attach(game)
    return game


class MetricsLog:
    """Appends one JSON line per logged round to ``path``: the game's ``tag``, the round, seconds,
    each player's objectives, and the evaluation record of that round if an ``Evaluator`` made one.
    A resumed game first drops the lines of its tag after the round it resumes from, and a game
    that goes back (a restart's replay from its checkpoint) drops the lines it plays again: one
    line per round."""

    def __init__(self, path: str | Path, tag: str = "game", tensorboard: str | Path | None = None):
        self.path, self.tag = Path(path), tag
        self.t0 = time.perf_counter()
        self.writer = None
        self._last_round: int | None = None  # the last round this log wrote
        if tensorboard is not None:  # the same records as TensorBoard scalars, one run per tag
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError(
                    f"TensorBoard logging needs the [tensorboard] extra: pip install "
                    f"'multimodal-game[tensorboard]' ({e})"
                ) from None
            self.writer = SummaryWriter(str(Path(tensorboard) / tag))

    def attach(self, game: Game, every: int) -> MetricsLog:
        game.add_handler(Event.STARTED, self._start)
        # late: after the round's evaluation, whichever was attached first
        game.add_handler(Event.ROUND_COMPLETED, self, every=every, late=True)
        return self

    def _start(self, game: Game, **_: Any) -> None:
        self.t0 = time.perf_counter()
        self._drop_after(game.state.round)

    def _drop_after(self, round: int) -> None:
        """Remove this tag's lines of rounds after ``round``."""
        if self.path.is_file():
            lines = [line for line in self.path.read_text().splitlines() if line.strip()]
            records = [json.loads(line) for line in lines]
            kept = [r for r in records if not (r["game"] == self.tag and r["round"] > round)]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._last_round = round

    def __call__(self, game: Game) -> None:
        if self._last_round is not None and game.state.round <= self._last_round:
            self._drop_after(game.state.round - 1)  # replayed rounds replace what they wrote before
        self._last_round = game.state.round
        record: dict[str, Any] = {
            "game": self.tag,
            "round": game.state.round,
            "seconds": round(time.perf_counter() - self.t0, 3),
            "players": {
                n: {k: float(v) for k, v in stats.items() if v.numel() == 1}
                for n, stats in game.state.last_stats.items()
            },
        }
        evaluation = game.state.evaluation(game.state.round)
        if evaluation is not None:
            record["evaluation"] = {
                k: v for k, v in evaluation.items() if k not in ("round", "seconds", "loss")
            }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for name, stats in record["players"].items():
                for key, value in stats.items():
                    self.writer.add_scalar(f"{name}/{key}", value, game.state.round)
            for key, value in record.get("evaluation", {}).items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"evaluation/{key}", value, game.state.round)
            self.writer.flush()


def plot_curves(metrics: str | Path, out: str | Path) -> Path:
    """``curves.png``: each player's loss against the round, one panel per game in ``metrics``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    games = list(dict.fromkeys(r["game"] for r in records))
    fig, axes = plt.subplots(1, len(games), figsize=(5 * len(games), 3.5), squeeze=False)
    for ax, tag in zip(axes[0], games):
        rows = [r for r in records if r["game"] == tag]
        for name in rows[-1]["players"]:
            pts = [(r["round"], r["players"][name]["loss"]) for r in rows if name in r["players"]]
            ax.plot(*zip(*pts), label=name)
        ax.set_title(tag)
        ax.set_xlabel("round")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
