"""Every built-in player kind's spec, torch-free: what a config may say about a player.

Each kind has its spec here and its model beside it (``m2``: :mod:`modalities.m2`; ``label``:
:class:`modalities.m2.LabelPlayer`; ``hvae``: :mod:`modalities.hvae`), as the spec / model pairs of
MultiVae's ``*_config.py`` / ``*_model.py``. Experiments read and validate these models without
importing torch; :func:`modalities.build_player` builds the model from one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Tag,
    field_validator,
    model_validator,
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


class ImageSpec(Strict):
    """An image variable (:class:`modalities.recipes.ImageRecipe`), its options checked here."""

    name: str = Field(min_length=1)
    recipe: Literal["image"] = "image"
    channels: Literal[1, 3] = Field(1, description="1 (grey) or 3 (colour) channels")
    width: PositiveInt = Field(32, description="channels of the first convolution")
    likelihood: Likelihood = Field("bernoulli", description="pixel likelihood")
    exchangeable: bool = Field(True, description="partners may receive it")
    send: Send = Field(
        "mean", description="what the player sends: the decoder's mean or a draw of p(x|z,c)"
    )


def _variable_kind(v: Any) -> str:
    recipe = v.get("recipe") if isinstance(v, Mapping) else getattr(v, "recipe", None)
    return "recipe=image" if recipe == "image" else "recipe=other"


# an image variable is checked with the config; other recipes' options by their recipe
Variable = Annotated[
    Annotated[ImageSpec, Tag("recipe=image")] | Annotated[VariableSpec, Tag("recipe=other")],
    Discriminator(_variable_kind),
]


class M2Spec(Strict):
    """An ``m2`` player: a semi-supervised VAE over the label, the observed variables and a private
    latent z (see :class:`~modalities.m2.M2Player` for the objective). Experiments declare their
    player as this model and derive each player with ``spec.model_copy(update=...)``."""

    kind: Literal["m2"] = "m2"
    label: LabelSpec = Field(LabelSpec(), description="the label variable")
    variables: list[Variable] = Field(
        min_length=1, description="observed variables: name, recipe and the recipe's options"
    )
    latent: PositiveInt = Field(16, description="dimension of the private latent z")
    hidden: PositiveInt = Field(128, description="units of the hidden layers")
    aux_weight: NonNegativeFloat = Field(50.0, description="weight of -log q(c|x), labelled rows")
    lr: PositiveFloat = Field(1e-3, description="learning rate")
    optimizer: Optimizer = Field("adam", description="optimizer")
    learning: M2Learning = Field(
        "elbo",
        description="learning rule: elbo, wake_sleep (ELBO plus a sleep-phase guide term) or the "
        "paper authors' symmetric_equilibrium",
    )

    @field_validator("learning", mode="before")
    @classmethod
    def _renamed(cls, v: Any) -> Any:
        if v == "symmetric":
            raise ValueError(
                "'symmetric' was renamed 'wake_sleep' (ELBO plus a sleep-phase guide term, the "
                "project's rule); the paper authors' rule is 'symmetric_equilibrium'"
            )
        return v

    shared_encoder: bool = Field(
        False, description="q(c|x) shares the encoder of q(z|x,c) (cheaper, M2 proper has two)"
    )
    consistency_weight: NonNegativeFloat = Field(
        0.0, description="weight of -log q(c|x) on generated images (label-faithful samples)"
    )
    enumerate_top: NonNegativeInt = Field(
        0, description="classes an unlabelled row enumerates (0: all, exact M2)"
    )
    sample_best_of: PositiveInt = Field(
        1, description="candidates per sent pair, the one q(c|x) finds most typical kept (1: plain)"
    )
    sample_temperature: NonNegativeFloat = Field(
        1.0, description="z of sent pairs ~ N(0, t^2 I): t < 1 sends more typical images (1: model)"
    )
    complete: list[str] = Field(
        [],
        description="variables a row may lack, drawn from the player's own model before it learns",
    )
    complete_sweeps: NonNegativeInt = Field(
        0, description="Gibbs sweeps over those variables when the label is inferred without them"
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="bf16: the encoders and decoders run under autocast in bfloat16 (their "
        "convolutions and matmuls; fast on CPUs with AMX or AVX512-BF16 and on GPUs), their "
        "outputs, the likelihoods, the classifier and the optimiser stay float32",
    )
    compile: bool = Field(
        False,
        description="learn through the plain-PyTorch objective compiled by torch.compile "
        "(inductor; learning 'elbo' without complete): equal to the Pyro step up to float "
        "rounding, rows padded to multiples of 16 so that few shapes compile; each new shape "
        "compiles once (tens of seconds on a CPU), so it pays on long runs",
    )

    @model_validator(mode="after")
    def _consistent(self) -> M2Spec:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names) or self.label.name in names:
            raise ValueError(f"variable names must be distinct, got {[self.label.name, *names]}")
        if self.enumerate_top > self.label.classes:
            raise ValueError(
                f"enumerate_top must be 0 (every class) or 1..{self.label.classes}, "
                f"got {self.enumerate_top}"
            )
        if self.enumerate_top and self.learning == "wake_sleep":
            # the sleep phase scores q(c | x) at dreamt labels, which a truncated guide has no site for
            raise ValueError("enumerate_top needs learning 'elbo' or 'symmetric_equilibrium'")
        if self.compile and (self.learning != "elbo" or self.complete):
            raise ValueError("compile needs learning 'elbo' and no complete variables")
        unknown = [v for v in self.complete if v not in names]
        if unknown:
            raise ValueError(
                f"complete names {unknown}, which are not observed variables of the player "
                f"({sorted(names)})"
            )
        return self


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
