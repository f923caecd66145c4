"""Concrete modalities (recipes) and players, and the registry through which users add their own."""

from . import recipes, vector  # noqa: F401  (registers the built-in recipes)
from .registry import (
    build_player,
    get_recipe,
    register_modality,
    register_player_kind,
    registered_modalities,
)

__all__ = [
    "build_player",
    "get_recipe",
    "register_modality",
    "register_player_kind",
    "registered_modalities",
]
