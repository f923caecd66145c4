"""Errors of a running game that name the player concerned."""

from __future__ import annotations

from collections.abc import Sequence


class PlayerLost(RuntimeError):
    """One or more players' processes died; ``names`` says which."""

    def __init__(self, names: Sequence[str], message: str = ""):
        self.names = tuple(names)
        super().__init__(message or f"player(s) {', '.join(self.names)} died")


class Diverged(FloatingPointError):
    """A player's loss, samples or parameters stopped being finite; ``player`` says whose."""

    def __init__(self, player: str, message: str):
        self.player = player
        super().__init__(message)
