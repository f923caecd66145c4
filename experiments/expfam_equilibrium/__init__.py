"""Exponential-family players converge to the closed-form Nash equilibrium.

Five (by default) Gaussian players with full covariance, each holding its own private 2-D data set,
play the game with a random valid alpha. Two dynamics are run from the same start:
exact best responses (expectations, no sampling) and the actual game with finite synthetic samples
per round. Both are compared with ``equilibrium(alpha, own moments)``.
"""

from __future__ import annotations

from pydantic import Field, PositiveInt

from ..common import Flag, run_package
from ..config import GameConfig
from ..tables import Items, Note, Table


class Config(GameConfig):
    players: int = Field(5, ge=2, description="number of Gaussian players")
    dim: PositiveInt = Field(2, description="dimension of each player's data")
    examples: PositiveInt = Field(2000, description="private examples per player")
    batch_size: PositiveInt = Field(8192, description="rows each player learns from per round")
    rounds: PositiveInt = Field(300, description="rounds of the game")
    statistics: bool = Field(
        True,
        description="also play the game exchanging statistics (each player's exact moments as "
        "sigma points, own data in full): no sampling noise, so it reaches the closed form",
    )


QUICK = {"rounds": 120, "batch_size": 4096}


FLAGS = (Flag("--players", "players", int, "number of players (default 5)"),)


RESUMABLE = False  # tracks every round from the first and runs in minutes


def main(argv: list[str] | None = None) -> dict:
    return run_package(__name__, argv)


# the results page's table: one row
TABLE = Table(
    rows=((Items("run", fixed=("",)),),),
    columns=(
        Items(
            "measure",
            fixed=(
                "alpha",
                "rounds",
                "spectral_radius",
                "exact_rounds_to_1e-8",
                "max_abs_error",
                "max_standardised_error",
                "z_threshold",
                "statistics_rounds_to_1e-8",
                "statistics_final_error",
            ),
            labels={
                "alpha": "players",
                "spectral_radius": "rho(A)",
                "exact_rounds_to_1e-8": "exact: rounds to 1e-8",
                "max_abs_error": "game error",
                "max_standardised_error": "game error / SD, max over moments",
                "z_threshold": "its threshold",
                "statistics_rounds_to_1e-8": "statistics: rounds to 1e-8",
                "statistics_final_error": "statistics: final error",
            },
            path="{measure}",
            formats={
                "alpha": "len",
                "rounds": "d",
                "spectral_radius": 4,
                "exact_rounds_to_1e-8": "d",
                "max_abs_error": ".3g",
                "max_standardised_error": ".2f",
                "z_threshold": "g",
                "statistics_rounds_to_1e-8": "d",
                "statistics_final_error": ".3g",
            },
        ),
    ),
    notes=(
        Note(
            "Bytes per round, all players: statistics {}, samples {}.",
            ("bytes_per_round.statistics", "bytes_per_round.samples"),
            ",",
        ),
    ),
)
