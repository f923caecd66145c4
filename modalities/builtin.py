"""Built-in player kinds: ``m2`` (semi-supervised VAE over recipes) and ``label`` (label only),
built from their specs (:mod:`modalities.specs`); ``hvae`` registers from its own module."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from multimodal_game.errors import ConfigError
from multimodal_game.validation import validated

from .m2 import LabelPlayer, M2Player
from .recipes import LabelRecipe, Recipe
from .registry import build_recipe, observable_modalities, register_player_kind
from .specs import LabelPlayerSpec, M2Spec, VariableSpec


def _recipe(v: VariableSpec, consistency: bool):
    r = build_recipe(v.model_dump())
    if not r.observable:
        raise ConfigError(
            f"variable {r.name!r}: recipe {r.recipe_name!r} cannot be an observed variable of "
            f"an m2 player (set the label with the 'label' table and the latent size with "
            f"'latent'); observable recipes: {observable_modalities()}"
        )
    if consistency and type(r).soft is Recipe.soft and r.variable().kind != "categorical":
        warnings.warn(
            f"variable {r.name!r}: recipe {r.recipe_name!r} has no soft() stand-in, so the "
            "consistency term cannot reach its decoder (it is zero for this variable)",
            stacklevel=3,
        )
    return r


@register_player_kind("m2")
def build_m2(spec: Mapping[str, Any]) -> M2Player:
    s = validated(M2Spec, spec, "m2 player spec")
    return M2Player(s, [_recipe(v, s.consistency_weight > 0) for v in s.variables])


@register_player_kind("label")
def build_label(spec: Mapping[str, Any]) -> LabelPlayer:
    s = validated(LabelPlayerSpec, spec, "label player spec")
    lab = s.label
    return LabelPlayer(
        LabelRecipe(lab.name, lab.classes, lab.exchangeable), lr=s.lr, optimizer=s.optimizer
    )


# Player kinds defined in their own modules register on import.
from . import hvae  # noqa: E402,F401
