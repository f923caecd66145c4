"""Exponential-family players converge to the closed-form Nash equilibrium.

Five (by default) Gaussian players with full covariance, each holding its own private 2-D data set,
play the game with a random valid alpha. Two dynamics are run from the same start:
exact best responses (expectations, no sampling) and the actual game with finite synthetic samples
per round. Both are compared with ``equilibrium(alpha, own moments)``.
"""

from __future__ import annotations

from pydantic import Field, PositiveInt

from ..common import Flag, run_experiment
from ..config import GameConfig
from ..report import fmt, md_table


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


def main(argv: list[str] | None = None) -> dict:
    return run_experiment(
        "expfam_equilibrium",
        __doc__,
        Config,
        QUICK,
        "experiments.expfam_equilibrium.run",
        argv,
        flags=FLAGS,
        resumable=False,
    )


def results_table(res: dict, cfg: dict) -> str:
    """This experiment's table on the results page (a record's results, or their seed summary)."""
    row = [
        len(res["alpha"]),
        res["rounds"],
        fmt(res["spectral_radius"], 4),
        res["exact_rounds_to_1e-8"],
        f"{res['max_abs_error']:.3g}",
        f"{res['max_standardised_error']:.2f} (threshold {res['z_threshold']:g})",
    ]
    cols = [
        "players",
        "rounds",
        "rho(A)",
        "exact: rounds to 1e-8",
        "game error",
        "game error / SD, max over moments",
    ]
    if "statistics_rounds_to_1e-8" in res:
        row += [res["statistics_rounds_to_1e-8"], f"{res['statistics_final_error']:.3g}"]
        cols += ["statistics: rounds to 1e-8", "statistics: final error"]
    text = md_table(cols, [row])
    if "bytes_per_round" in res:
        b = res["bytes_per_round"]
        text += f"\n\nBytes per round, all players: statistics {b['statistics']:,}, samples {b['samples']:,}."
    return text
