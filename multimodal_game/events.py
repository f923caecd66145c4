"""Round events and handler registration for the game loop (in the spirit of ignite's ``Engine``).

The loop fires ``STARTED`` before the first round it plays, ``ROUND_COMPLETED`` after every round,
``COMPLETED`` at the end and ``PLAYER_LOST`` when a player's process died. Checkpointing,
evaluation, progress, logging and restarts are handlers attached to those events.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Event(enum.StrEnum):
    STARTED = "started"
    ROUND_COMPLETED = "round_completed"
    COMPLETED = "completed"
    PLAYER_LOST = "player_lost"


Handler = Callable[..., Any]


@dataclass
class _Registration:
    handler: Handler
    every: int
    final: bool
    late: bool = False


class EventSource:
    """Keeps handlers per event and fires them in the order they were added."""

    def __init__(self) -> None:
        self._handlers: dict[Event, list[_Registration]] = {e: [] for e in Event}

    def add_handler(
        self,
        event: Event,
        handler: Handler,
        *,
        every: int = 1,
        final: bool = True,
        first: bool = False,
        late: bool = False,
    ) -> Handler:
        """Call ``handler(game, **info)`` on ``event``. For ``ROUND_COMPLETED``: every ``every``
        rounds (``game.state.round % every == 0``) and, with ``final``, after the last round of ``run``.
        ``first``: before the handlers added so far (one that changes the players, e.g. parameter
        averaging, runs before any checkpoint or evaluation of the round sees them). ``late``:
        after every handler that is not (a sink such as a metrics log reads what the others of
        its round wrote, whatever the order they were attached in)."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        reg = _Registration(handler, int(every), bool(final), bool(late))
        handlers = self._handlers[Event(event)]
        handlers.insert(0, reg) if first else handlers.append(reg)
        return handler

    def fire(self, event: Event, *, round: int = 0, last: int = 0, **info: Any) -> list[Any]:
        """Call the handlers due at ``round`` (``last``: the final round of this run)."""
        out = []
        registered = self._handlers[Event(event)]
        for r in [r for r in registered if not r.late] + [r for r in registered if r.late]:
            if event is Event.ROUND_COMPLETED and not (
                round % r.every == 0 or (r.final and round == last)
            ):
                continue
            out.append(r.handler(self, **info))
        return out
