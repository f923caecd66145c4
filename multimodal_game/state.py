"""A game's run state in one object: what handlers read and write, in any attach order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunState:
    """Everything a run accumulates besides the players: the round counter, the evaluation
    records (``history``), lost-player events, per pair the rounds and bytes of each exchange,
    the caller's metadata kept with every checkpoint (``meta``), the players' last step
    statistics, and the last checkpoint written. ``Game.state`` holds it; the checkpoint
    (``Game.snapshot``) keeps the round, history, exchanges and meta, while the random streams
    live with each host."""

    round: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    exchanged: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"rounds": {}, "bytes": {}}
    )
    meta: dict[str, Any] = field(default_factory=dict)
    last_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_checkpoint: Path | None = None
    checkpoint_round: int = 0

    def evaluation(self, round: int) -> dict[str, Any] | None:
        """The evaluation record of ``round``, if one was made."""
        for record in reversed(self.history):
            if record.get("round") == round:
                return record
            if record.get("round", -1) < round:
                return None
        return None
