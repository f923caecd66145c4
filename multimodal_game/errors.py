"""Errors that name what is wrong: a user's input (config, spec, data), a lost or diverged player."""

from __future__ import annotations

from collections.abc import Sequence


class PlayerLost(RuntimeError):
    """One or more players' processes died; ``names`` says which."""

    def __init__(self, names: Sequence[str], message: str = ""):
        self.names = tuple(names)
        self.when = ""  # set by the game loop: the round and phase in which it was noticed
        super().__init__(message or f"player(s) {', '.join(self.names)} died")


class Diverged(FloatingPointError):
    """A player's loss, samples or parameters stopped being finite; ``player`` says whose."""

    def __init__(self, player: str, message: str):
        self.player = player
        super().__init__(message)


class ConfigError(ValueError):
    """A user's input is wrong: a config key, a player spec, a data set or a file. The message
    names the key or file and what was expected; command lines print it as one line."""


class DataError(ConfigError):
    """A player's own data does not fit its space (a variable missing, a wrong shape, a class
    code out of range); the message names the player and the variable."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not belong to this game."""
