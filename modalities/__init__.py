"""Concrete modalities (recipes) and players, and the registry through which users add their own.

Importing the package is torch-free (``modalities.specs`` reads player specs without torch); the
registry's functions below load on first use, with the built-in recipes and player kinds.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "build_player",
    "get_recipe",
    "load_players",
    "register_modality",
    "register_player_kind",
    "registered_modalities",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = "loading" if name == "load_players" else "registry"
        return getattr(import_module(f".{module}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
