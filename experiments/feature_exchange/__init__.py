"""Exchanging statistics instead of samples in a feature space (as FedVTC does).

Four semi-supervised players over (label, a real feature vector): the features are PCA components
fitted on public digits (held out of every shard), applied by each holder to its own MNIST images;
the players' heads differ in capacity. Each holds a disjoint shard with ``labelled`` labels.
Compared in one run: each player alone; the game exchanging synthetic (label, features) samples;
the game exchanging statistics (class probabilities and per-class mean and covariance of the
features, from which each consumer draws its own rows). Reported: test accuracy per player and the
bytes each round moves, next to what exchanging parameters would.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from modalities.specs import M2Spec, VariableSpec

from ..common import run_package
from ..config import GameConfig, PlayerSize
from ..tables import Items, Note, Table

# every player, sizes apart: one feature vector f (its size: dim)
PLAYER = M2Spec(variables=[VariableSpec(name="f", recipe="vector", width=32)], lr=2e-3)


class Config(GameConfig):
    dim: PositiveInt = Field(16, description="PCA components (the feature vector's size)")
    public_examples: PositiveInt = Field(2000, description="public digits that fit the PCA")
    shard_size: PositiveInt = Field(1500, description="training examples per player")
    labelled: PositiveInt = Field(50, description="labelled examples per player")
    players: list[PlayerSize] = Field(
        [
            PlayerSize(width=32, hidden=32, latent=4),
            PlayerSize(width=64, hidden=64, latent=8),
            PlayerSize(width=96, hidden=96, latent=8),
            PlayerSize(width=128, hidden=128, latent=16),
        ],
        min_length=2,
        description="one table per player",
    )
    player: M2Spec = Field(
        PLAYER, description="every player's spec; its width, hidden and latent sizes: players"
    )
    rounds: PositiveInt = Field(2000, description="rounds of each game")
    warmup_rounds: NonNegativeInt = Field(500, description="own data only first")
    own_weight: float = Field(0.5, gt=0, lt=1, description="alpha_ii (the rest uniform)")
    statistics_samples: PositiveInt = Field(
        2048, description="samples a producer summarises for each statistics transfer"
    )
    covariance: Literal["full", "diag"] = Field("full", description="covariance sent")
    test_examples: PositiveInt = Field(2000, description="test digits evaluated")


QUICK = {"rounds": 600, "warmup_rounds": 200, "batch_size": 64, "checkpoint_every": 600}


def main(argv: list[str] | None = None) -> dict:
    return run_package(__name__, argv)


# the results page's table: methods down, players across
TABLE = Table(
    row_headers=("method",),
    rows=((Items("method", keys="accuracy", path="accuracy.{method}.{player}"),),),
    columns=(
        Items("player", keys="accuracy.alone"),
        Items("mean", fixed=("mean",), path="mean_accuracy.{method}"),
        Items(
            "bytes",
            fixed=("bytes per round",),
            path="exchange.{method}.bytes_per_round",
            formats={"bytes per round": ","},
        ),
    ),
    notes=(
        Note(
            "FedAvg of the parameters every step instead (client-server): {} bytes per round.",
            ("exchange.samples.parameters_per_round",),
            ",",
        ),
    ),
)
