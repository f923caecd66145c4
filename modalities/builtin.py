"""Built-in player kinds: ``m2`` (semi-supervised VAE over recipes) and ``label`` (label only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .m2 import LabelPlayer, M2Player
from .recipes import LabelRecipe
from .registry import build_recipe, observable_modalities, register_player_kind

M2_KEYS = {
    "kind",
    "label",
    "variables",
    "latent",
    "hidden",
    "aux_weight",
    "lr",
    "optimizer",
    "learning",
    "shared_encoder",
    "consistency_weight",
}


def _label(spec: Mapping[str, Any]) -> LabelRecipe:
    lab = spec.get("label", {})
    if not isinstance(lab, Mapping):
        raise ValueError(
            f"'label' must be a table like {{name = 'label', classes = 10}}, got {lab!r}"
        )
    return LabelRecipe(
        lab.get("name", "label"), int(lab.get("classes", 10)), bool(lab.get("exchangeable", True))
    )


@register_player_kind("m2")
def build_m2(spec: Mapping[str, Any]) -> M2Player:
    unknown = set(spec) - M2_KEYS
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} in m2 player spec; expected some of {sorted(M2_KEYS)}"
        )
    variables = spec.get("variables")
    if not variables:
        raise ValueError("m2 player spec needs 'variables': a list of {name, recipe, ...} tables")
    recipes = [build_recipe(v) for v in variables]
    for r in recipes:
        if not r.observable:
            raise ValueError(
                f"variable {r.name!r}: recipe {r.recipe_name!r} cannot be an observed variable of "
                f"an m2 player (set the label with the 'label' table and the latent size with "
                f"'latent'); observable recipes: {observable_modalities()}"
            )
    return M2Player(
        recipes,
        label=_label(spec),
        latent_dim=int(spec.get("latent", 16)),
        hidden=int(spec.get("hidden", 128)),
        aux_weight=float(spec.get("aux_weight", 50.0)),
        lr=float(spec.get("lr", 1e-3)),
        optimizer=spec.get("optimizer", "adam"),
        learning=spec.get("learning", "elbo"),
        shared_encoder=bool(spec.get("shared_encoder", False)),
        consistency_weight=float(spec.get("consistency_weight", 0.0)),
    )


@register_player_kind("label")
def build_label(spec: Mapping[str, Any]) -> LabelPlayer:
    unknown = set(spec) - {"kind", "label", "lr", "optimizer"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in label player spec")
    return LabelPlayer(
        _label(spec), lr=float(spec.get("lr", 0.05)), optimizer=spec.get("optimizer", "adam")
    )
