"""Every built-in player kind's spec, torch-free: what a config may say about a player.

Each kind has its spec here and its model beside it (``m2``: :mod:`modalities.m2`; ``label``:
:class:`modalities.m2.LabelPlayer`; ``hvae``: :mod:`modalities.hvae`), as the spec / model pairs of
MultiVae's ``*_config.py`` / ``*_model.py``. Experiments read and validate these models without
importing torch; :func:`modalities.build_player` builds the model from one.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

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

from multimodal_game.validation import Strict

# the pixel likelihoods of the image recipe (modalities.recipes.ImageRecipe)
Likelihood = Literal[
    "bernoulli", "continuous_bernoulli", "laplace", "gaussian", "discretized_logistic"
]
LIKELIHOODS: tuple[str, ...] = get_args(Likelihood)
# what an image player sends when it samples: its decoder's mean (mode for binary images) or a draw
Send = Literal["mean", "sample"]
SENDS: tuple[str, ...] = get_args(Send)
Optimizer = Literal["adam", "adamw", "sgd"]
M2Learning = Literal["elbo", "wake_sleep", "symmetric_equilibrium"]


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
    optimizer: Optimizer = "adam"
    learning: M2Learning = "elbo"

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
    optimizer: Optimizer = "adam"


class HVAESpec(Strict):
    """An ``hvae`` player (see :class:`~modalities.hvae.HVAEPlayer`)."""

    kind: Literal["hvae"] = "hvae"
    nz0: PositiveInt = Field(30, description="bits of the top latent z0")
    nz1: PositiveInt = Field(100, description="bits of the second latent z1")
    width: PositiveInt = Field(32, description="channels of the first convolution")
    hidden: PositiveInt = Field(600, description="units of p(z1 | z0)'s hidden layers")
    lr: PositiveFloat = 1e-3
    optimizer: Optimizer = "adam"
    image: str = Field("x", min_length=1, description="name of the image variable")
    exchange_latents: bool = Field(True, description="send and receive (z0, z1) with x")
    learning: Literal["symmetric_equilibrium"] = "symmetric_equilibrium"
