"""Which players' distributions a new data holder's examples come from (FedGMI's mixture inference).

Inherent distributions are players trained on distinct sources: the five PolyMNIST styles
(`styles`), and, harder, MNIST digit groups {0-3}, {4-6}, {7-9} (`digits`). Twenty data holders
draw 200-500 examples each with Dirichlet(0.5) proportions over the sources, labels hidden. EM over
the players' likelihoods (``multimodal_game.mixture``) infers each holder's proportions; reported:
true vs inferred proportions, their mean absolute error, and the accuracy of the per-example
responsibilities against the true source. Baseline in the same run: a classifier trained on the
players' own samples to tell which player produced an example, its averaged predictions taken as
proportions. Then one holder joins the game as a new player whose alpha row is its inferred
proportions (own weight kept), next to a uniform row and to learning alone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from modalities.specs import ImageSpec, Likelihood, M2Spec

from ..common import run_package
from ..config import GameConfig
from ..tables import Items, Table

# every player (inherent players and the joining holder); the styles setup's images have three
# channels and style_likelihood
PLAYER = M2Spec(variables=[ImageSpec(name="x", width=16)])


class Config(GameConfig):
    setups: list[Literal["styles", "digits"]] = Field(
        ["styles", "digits"], min_length=1, description="which inherent distributions to use"
    )
    data: str = Field("", description="PolyMNIST folder; empty: generate from bundled MNIST")
    style_likelihood: Likelihood = Field(
        "discretized_logistic",
        description="pixel likelihood of the styles players' colour images (a scale per pixel "
        "models the styles' textures; laplace: one scale per channel)",
    )
    player: M2Spec = Field(PLAYER, description="every player's spec")
    rounds: PositiveInt = Field(2000, description="rounds the inherent players train (alone)")
    holders: PositiveInt = Field(20, description="data holders per setup")
    holder_examples: tuple[PositiveInt, PositiveInt] = Field(
        (200, 500), description="each holder's example count is drawn uniformly in this range"
    )
    concentration: PositiveFloat = Field(
        0.5, description="Dirichlet concentration of the holders' proportions"
    )
    samples: PositiveInt = Field(8, description="importance samples of each log_prob (IWAE K)")
    prior: float = Field(1.0, ge=1, description="Dirichlet prior of EM (1: maximum likelihood)")
    baseline_samples: PositiveInt = Field(
        2000, description="samples per player that train the which-player classifier"
    )
    baseline_steps: PositiveInt = Field(1000, description="steps of the which-player classifier")
    join_rounds: NonNegativeInt = Field(
        500, description="rounds of the game the first holder joins (0: skip that part)"
    )
    join_own_weight: float = Field(0.5, gt=0, lt=1, description="the joining holder's alpha_ii")
    join_labelled: float = Field(
        0.1, gt=0, le=1, description="fraction of the joining holder's examples it has labels for"
    )
    join_test_examples: PositiveInt = Field(
        1000, description="test examples drawn with the holder's proportions"
    )


QUICK = {
    # styles MAE, Laplace likelihood (one scale per channel): width 8: 300 rounds 0.044, 1000
    # rounds 0.034; width 16: 2000 rounds 0.022, 3000 rounds 0.022 - the likelihood limited it.
    # Discretised logistic (a scale per pixel), width 16: 2000 rounds 0.010 (styles alone, 499 s),
    # 1500 rounds 0.011 (both setups 600 s: over the 10-minute budget), 1200 rounds: the default
    "player": {"lr": 2e-3},
    "rounds": 1200,
    "batch_size": 64,
    "samples": 1,  # K = 1, 4 or 32 gave the same per-example decisions on styles
    "baseline_samples": 600,
    "baseline_steps": 300,
    "join_rounds": 150,
    "join_test_examples": 500,
    "checkpoint_every": 300,
}


def main(argv: list[str] | None = None) -> dict:
    return run_package(__name__, argv)


# the parts of a multi-seed summary the results page shows
# the results page's table: set-ups down; several seeds render as a row per number of these keys
TABLE = Table(
    row_headers=("setup",),
    rows=((Items("setup", config="setups"),),),
    columns=(
        Items(
            "measure",
            fixed=("mean_mae", "mean_baseline_mae", "mean_responsibility_accuracy"),
            labels={
                "mean_mae": "MAE, EM over likelihoods",
                "mean_baseline_mae": "MAE, which-player classifier",
                "mean_responsibility_accuracy": "responsibility accuracy",
            },
            path="{setup}.{measure}",
        ),
        Items(
            "join",
            fixed=("alone", "uniform", "inferred"),
            labels={
                "alone": "holder 0 alone",
                "uniform": "joins, uniform row",
                "inferred": "joins, inferred row",
            },
            path="{setup}.join.{join}",
        ),
    ),
    seeds="numbers",
    seed_keys=("styles", "digits"),
)
