"""The modality registry: recipes by name, and ``build_player(spec)`` from a plain (TOML) mapping.

The built-in recipes and player kinds live in the modules of ``BUILTIN_MODULES``, which register
themselves on import; the registry imports them (by name) the first time it is asked for a recipe
or a kind, so that reading specs (:mod:`modalities.specs`) never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any, TypeVar

import torch

from multimodal_game.player import Player

BUILTIN_MODULES = (
    "modalities.recipes",
    "modalities.vector",
    "modalities.builtin",
    "modalities.hvae",
)
_RECIPES: dict[str, type] = {}
_PLAYERS: dict[str, Callable[[Mapping[str, Any]], Player]] = {}
T = TypeVar("T", bound=type)


def register_modality(name: str) -> Callable[[T], T]:
    """Class decorator: make a recipe available to player specs under ``name``."""

    def deco(cls: T) -> T:
        if name in _RECIPES and _RECIPES[name] is not cls:
            raise ValueError(
                f"modality {name!r} is already registered by {_RECIPES[name].__qualname__}"
            )
        _RECIPES[name] = cls
        cls.recipe_name = name
        return cls

    return deco


def register_player_kind(name: str) -> Callable[[Callable], Callable]:
    """Register a player family (``spec["kind"]``) built from a spec mapping."""

    def deco(fn: Callable) -> Callable:
        _PLAYERS[name] = fn
        return fn

    return deco


def _builtins() -> None:
    for module in BUILTIN_MODULES:  # each registers on its first import; later ones are no-ops
        import_module(module)


def registered_modalities() -> list[str]:
    _builtins()
    return sorted(_RECIPES)


def observable_modalities() -> list[str]:
    """Registered recipes that a player can observe as data (not label or latent recipes)."""
    _builtins()
    return sorted(n for n, cls in _RECIPES.items() if getattr(cls, "observable", True))


def get_recipe(name: str) -> type:
    _builtins()
    try:
        return _RECIPES[name]
    except KeyError:
        raise ValueError(
            f"unknown modality recipe {name!r}; registered: {registered_modalities()}"
        ) from None


def build_recipe(spec: Mapping[str, Any]):
    """A recipe instance from ``{"name": ..., "recipe": ..., **options}``."""
    if "name" not in spec or "recipe" not in spec:
        raise ValueError(f"variable spec needs 'name' and 'recipe', got keys {sorted(spec)}")
    cls = get_recipe(spec["recipe"])
    options = {k: v for k, v in spec.items() if k not in ("name", "recipe")}
    try:
        return cls(spec["name"], **options)
    except TypeError as e:
        raise ValueError(f"variable {spec['name']!r} (recipe {spec['recipe']!r}): {e}") from None


def build_player(spec: Mapping[str, Any], seed: int | None = None) -> Player:
    """Build a player from a plain mapping (see the README's "Players and modalities" section).

    ``seed`` fixes its initial parameters (the global random stream is left as it was); without
    one they come from torch's global random stream, so the same script gives the same player only
    after a ``torch.manual_seed``."""
    _builtins()
    kind = spec.get("kind", "m2")
    if kind not in _PLAYERS:
        raise ValueError(f"unknown player kind {kind!r}; registered: {sorted(_PLAYERS)}")
    if seed is None:
        player = _PLAYERS[kind](spec)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            player = _PLAYERS[kind](spec)
    # what it was built from: checkpoints record it, so that load_players rebuilds it
    player.spec = {"kind": kind, **_plain(spec)}
    return player


def _plain(value: Any) -> Any:
    """A spec as plain data (mappings, lists, scalars) that a checkpoint can hold."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
