"""How alpha trades own data against the other player's samples (the paper's Fig. 1).

Two players with identical architecture: player 0 holds MNIST digits 0-4, player 1 digits 5-9 (all
labelled). For each alpha_ii in the sweep (alpha_ij = 1 - alpha_ii) the pair plays a game; then each
player's samples are compared, by feature-space FID, with the whole test set, with its own digits
and with the other player's digits (averaged over the two players). A baseline model is trained on
all digits. Expected: alpha_ii = 1 keeps each player to its own digits (poor FID to the whole set);
small alpha_ii lets both generate all digits.

``player.kind = "hvae"`` (``experiments/configs/mnist_alpha_paper.toml``) is the paper's set-up:
unsupervised hierarchical VAE players with binary latents on binarised digits, trained by the
authors' symmetric equilibrium learning, exchanging complete triples (z0, z1, x).

This split is label skew at its extreme. With m2 players each row also reports each player's
accuracy on all ten test digits, and the parameter-exchange baselines (FedAvg, FedProx) and the
one-shot generative exchange (FedCVAE-Ens) can run beside the sweep on the same shards
(``experiments/configs/mnist_alpha_peers.toml``).

FID is computed in two feature spaces of the digit classifier: its penultimate layer (the usual
choice, which also scores image quality) and its class probabilities (which digits are drawn). With
perfect learners the equilibrium is a mixture: player 0 draws its own digits with probability
1 / (2 - alpha_ii) (from p0 = a d0 + (1 - a) p1 and its mirror); the run reports the measured
fraction next to that value.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveInt

from modalities.specs import HVAESpec, ImageSpec, M2Spec

from ..common import run_package
from ..config import GenerativeExchangeConfig, ParameterExchangeConfig
from ..tables import Items, Table

Digit = Annotated[int, Field(ge=0, le=9)]
Digits = Annotated[list[Digit], Field(min_length=1)]  # a player holds at least one digit


# both players (and the baseline): m2 (label, image) players, or (player.kind = "hvae") the
# paper's unsupervised hierarchical VAE with binary latents, exchanging (z0, z1, x)
PLAYER = M2Spec(variables=[ImageSpec(name="x", width=16)])


class Config(ParameterExchangeConfig, GenerativeExchangeConfig):
    # the baselines beside the sweep are off by default; experiments/configs/mnist_alpha_peers.toml
    # turns them on (FedAvg, FedProx, FedCVAE-Ens on the same two digit shards)
    fedavg_local_steps: list[PositiveInt] = Field(
        [], description="FedAvg baselines: local steps E between two averagings (empty: none)"
    )
    fedprox_local_steps: list[PositiveInt] = Field(
        [], description="FedProx baselines: E of each run (empty: none)"
    )
    fedcvae: bool = Field(
        False,
        description="also run FedCVAE-Ens over the alpha_ii = 1 players (who learnt alone): their "
        "decoders and class counts go to a server once, which trains each player's classifier",
    )

    alphas: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        min_length=1,
        description="the sweep over alpha_ii (alpha_ij = 1 - alpha_ii); one game and checkpoint each",
    )
    classes: tuple[Digits, Digits] = Field(
        ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9]), description="the digits of player 0 and of player 1"
    )
    player: Annotated[M2Spec | HVAESpec, Field(discriminator="kind")] = Field(
        PLAYER, description="both players' spec (kind m2 or hvae)"
    )
    rounds: PositiveInt = Field(3000, description="rounds of each game")
    warmup_rounds: NonNegativeInt = Field(
        1000, description="learn alone first, then exchange (see Game.warmup_rounds)"
    )
    checkpoint_every: NonNegativeInt = Field(1000, description="checkpoint every N rounds")
    samples: PositiveInt = Field(2000, description="samples per player for the FIDs")
    binarise: bool = Field(
        False, description="binarise the digits (pixel > 0.4375, as the paper's authors)"
    )
    inception_weights: str = Field(
        "",
        description="FID Inception weights file (pt_inception-2015-12-05-*.pth); when given, "
        "FIDs are also computed in Inception space (nothing is downloaded)",
    )
    classifier_steps: PositiveInt = Field(1500, description="steps of the digit classifier")


QUICK = {
    "alphas": [0.1, 0.4, 0.7, 1.0],
    "player": {"variables": {"0": {"width": 8}}, "hidden": 64, "latent": 8, "lr": 2e-3},
    "rounds": 500,
    "warmup_rounds": 250,
    "batch_size": 64,
    "checkpoint_every": 500,
    "samples": 1000,
    "classifier_steps": 400,
}


def main(argv: list[str] | None = None) -> dict:
    return run_package(__name__, argv)


# the results page's table: one row per alpha_ii, then the baseline (mean +- std cells for several
# seeds); FID in the digit classifier's two feature spaces, and Inception's where its weights were
# given
TABLE = Table(
    row_headers=("alpha_ii",),
    rows=(
        (
            Items(
                "r",
                keys="rows",
                value="rows.{}",
                label="{value}",
                label_path="rows.{index}.alpha_ii",
                label_format=".1f",
            ),
        ),
        (Items("r", fixed=("baseline",)),),
    ),
    columns=(
        Items(
            "space",
            fixed=("penultimate", "classes", "inception"),
            labels={
                "penultimate": "FID penultimate: all / own / other",
                "classes": "FID class probabilities: all / own / other",
                "inception": "FID Inception: all / own / other",
            },
            path=("{r}.fid.{space}.all", "{r}.fid.{space}.own", "{r}.fid.{space}.other"),
            formats={"penultimate": 0, "classes": 3, "inception": 1},
        ),
        Items("own", fixed=("own digits",), path="{r}.own_fraction", formats={"own digits": 2}),
        Items(
            "theory",
            fixed=("1/(2-alpha_ii)",),
            path="{r}.own_fraction_theory",
            formats={"1/(2-alpha_ii)": ".2f"},
        ),
        Items(
            "fidelity",
            fixed=("label fidelity",),
            path="{r}.label_fidelity",
            formats={"label fidelity": 2},
        ),
    ),
)
