"""Built-in player kinds: ``m2`` (semi-supervised VAE over recipes) and ``label`` (label only)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from multimodal_game.errors import ConfigError
from multimodal_game.validation import Strict, validated

from .m2 import LabelPlayer, M2Player
from .recipes import LabelRecipe, Recipe
from .registry import build_recipe, observable_modalities, register_player_kind


class LabelSpec(Strict):
    """The label of a player: ``{name = "label", classes = 10, exchangeable = true}``."""

    name: str = Field("label", min_length=1)
    classes: int = Field(10, ge=2)
    exchangeable: bool = True


class VariableSpec(BaseModel):
    """An observed variable: its name, its recipe and the recipe's options (checked by the recipe)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    recipe: str = Field(min_length=1)


class M2Spec(Strict):
    """An ``m2`` player (see :class:`~modalities.m2.M2Player` for each option's meaning)."""

    kind: Literal["m2"] = "m2"
    label: LabelSpec = LabelSpec()
    variables: list[VariableSpec] = Field(min_length=1)
    latent: PositiveInt = 16
    hidden: PositiveInt = 128
    aux_weight: NonNegativeFloat = 50.0
    lr: PositiveFloat = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning: Literal["elbo", "wake_sleep", "symmetric_equilibrium"] = "elbo"

    @field_validator("learning", mode="before")
    @classmethod
    def _renamed(cls, v: Any) -> Any:
        if v == "symmetric":
            raise ValueError(
                "'symmetric' was renamed 'wake_sleep' (ELBO plus a sleep-phase guide term, the "
                "project's rule); the paper authors' rule is 'symmetric_equilibrium'"
            )
        return v

    shared_encoder: bool = False
    consistency_weight: NonNegativeFloat = 0.0
    enumerate_top: NonNegativeInt = 0
    sample_best_of: PositiveInt = 1
    sample_temperature: NonNegativeFloat = 1.0
    complete: list[str] = []
    complete_sweeps: NonNegativeInt = 0


class LabelPlayerSpec(Strict):
    """A ``label`` player: a categorical distribution over the label alone."""

    kind: Literal["label"] = "label"
    label: LabelSpec = LabelSpec()
    lr: PositiveFloat = 0.05
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"


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
    lab = s.label
    return M2Player(
        [_recipe(v, s.consistency_weight > 0) for v in s.variables],
        label=LabelRecipe(lab.name, lab.classes, lab.exchangeable),
        latent_dim=s.latent,
        hidden=s.hidden,
        aux_weight=s.aux_weight,
        lr=s.lr,
        optimizer=s.optimizer,
        learning=s.learning,
        shared_encoder=s.shared_encoder,
        consistency_weight=s.consistency_weight,
        enumerate_top=s.enumerate_top,
        sample_best_of=s.sample_best_of,
        sample_temperature=s.sample_temperature,
        complete=s.complete,
        complete_sweeps=s.complete_sweeps,
    )


@register_player_kind("label")
def build_label(spec: Mapping[str, Any]) -> LabelPlayer:
    s = validated(LabelPlayerSpec, spec, "label player spec")
    lab = s.label
    return LabelPlayer(
        LabelRecipe(lab.name, lab.classes, lab.exchangeable), lr=s.lr, optimizer=s.optimizer
    )


# Player kinds defined in their own modules register on import.
from . import hvae  # noqa: E402,F401
