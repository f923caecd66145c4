"""PolyMNIST cross-style generation and classification among heterogeneous players.

Five style players (player k holds style m_k of its own disjoint tuples, a small labelled fraction),
partial-view players on labelled paired tuples of two styles, a label-only player and a
(label, digit mask) player trained on MNIST learn together by exchanging synthetic samples of their
shared variables. Baselines in the same run: every player alone (alpha = I), a centralised M2
model on the pooled data of all players, and FedAvg / FedProx through Flower over the five style
players (one architecture; averaged by position, so one network serves every style). The pair,
label-only and mask players have other spaces: only the game can use them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)

from modalities.specs import ImageSpec, M2Spec

from ..common import Flag, run_package
from ..config import ParameterExchangeConfig
from ..tables import Items, Note, Table

# every image player: its image variable is this one, renamed m_k (the mask player's digit mask
# takes its width); the pair players have two copies
PLAYER = M2Spec(
    variables=[ImageSpec(name="x", channels=3, width=32, likelihood="laplace", send="mean")],
    latent=16,
    hidden=128,
    lr=1e-3,
    aux_weight=1000.0,  # ~0.1 x examples per player
    consistency_weight=1000.0,
)


class Config(ParameterExchangeConfig):
    data: str = Field(
        "",
        description="PolyMNIST folder (official or generated); empty: generate from bundled MNIST",
    )
    reference_classifiers: str = Field(
        "",
        description="folder with the PolyMNIST release's classifiers (pretrained_img_to_digit_clf_m*)"
        " for coherence and FID comparable with the literature; empty: train them in the run",
    )
    modalities: int = Field(5, ge=2, le=5, description="styles used (m0 ... m{n-1})")
    labelled_fraction: float = Field(
        0.1, gt=0, le=1, description="fraction of each style player's tuples that is labelled"
    )
    pairs: list[tuple[NonNegativeInt, NonNegativeInt]] = Field(
        [(0, 1), (2, 3)], description="styles of each partial-view (pair) player"
    )
    pair_tuples: NonNegativeInt = Field(400, description="labelled paired tuples per pair player")
    label_only_examples: NonNegativeInt = Field(
        2000, description="labels held by the label-only player (0: no such player)"
    )
    mask_player_examples: NonNegativeInt = Field(
        4000, description="MNIST (label, digit mask) examples of the mask player (0: none)"
    )
    classifier_fraction: float = Field(
        0.2, gt=0, lt=1, description="training tuples held out for the independent classifiers"
    )
    classifier_steps: PositiveInt = Field(1500, description="steps of each independent classifier")
    judges_cache: str = Field(
        "",
        description="folder of the fixed judges (trained once per data and recipe, then reused); "
        "empty: judges/ inside the data folder",
    )
    validation_tuples: NonNegativeInt = Field(
        1000,
        description="training tuples no player or classifier sees: variants are compared on "
        "them; the test tuples are read only for the reported figures",
    )
    rounds: PositiveInt = Field(3000, description="rounds of each game")
    warmup_rounds: NonNegativeInt = Field(
        1000, description="learn alone first, then exchange (see Game.warmup_rounds)"
    )
    eval_every: NonNegativeInt = Field(500, description="evaluate every N rounds")
    checkpoint_every: NonNegativeInt = Field(500, description="checkpoint every N rounds")
    player: M2Spec = Field(PLAYER, description="every image player (its variable: the image)")
    alpha: list[list[NonNegativeFloat]] = Field(
        [], description="alpha matrix; empty: own_weight on own data, the rest over partners"
    )
    own_weight: float = Field(0.5, gt=0, le=1, description="alpha_ii when alpha is empty")
    partner_weighting: Literal["uniform", "interface_size"] = Field(
        "uniform",
        description="how the rest of a row is spread over partners: uniformly or in proportion "
        "to the values exchanged per example",
    )
    eval_examples: PositiveInt = Field(2000, description="test tuples evaluated")

    @model_validator(mode="after")
    def _styles_exist(self) -> Config:
        for pair in self.pairs:
            if max(pair) >= self.modalities or pair[0] == pair[1]:
                raise ValueError(
                    f"pair {list(pair)} needs two distinct styles below modalities={self.modalities}"
                )
        return self


QUICK = {
    # one parameter-exchange baseline in the demo (the five style players share an architecture)
    "fedavg_local_steps": [10],
    "fedprox_local_steps": [],
    "rounds": 300,
    "warmup_rounds": 100,
    "batch_size": 64,
    "eval_every": 300,
    "checkpoint_every": 300,
    "classifier_steps": 300,
    "eval_examples": 500,
    "validation_tuples": 500,
    "player": {
        # merged into the first variable (the image), as --set player.variables.0.width=8
        "variables": {"0": {"width": 8}},
        "latent": 8,
        "hidden": 64,
        "lr": 2e-3,
        # the truncated guide: 227 s instead of 315 s on 2 cores at the same accuracy (seed 0,
        # docs/results.md); more rounds with the time saved helped alone, not the game
        "enumerate_top": 2,
    },
}


# between quick and full: about 30-45 minutes on 2 CPU cores (docs/results.md has the measured time)
STANDARD = {
    # at width 16 the fused step does not pay on the CPU (five style players: 1.02x in the game,
    # and the players alone slower fused; docs/benchmarks.md): one by one
    "fuse_players": False,
    "fedavg_local_steps": [10],
    "fedprox_local_steps": [10],
    "rounds": 1500,
    "warmup_rounds": 500,
    "batch_size": 64,
    "eval_every": 500,
    "checkpoint_every": 500,
    "classifier_steps": 1000,
    "eval_examples": 2000,
    "validation_tuples": 1000,
    "player": {
        "variables": {"0": {"width": 16}},
        "latent": 16,
        "hidden": 128,
        "lr": 1e-3,
    },
}

# the standard players for 2.3x the rounds, without the parameter-exchange baselines: about 95
# minutes of running on 2 CPU cores (seed 0, record polymnist_cross_large: game 0.657, alone 0.573,
# central 0.750 mean accuracy; docs/results.md)
LARGE = {
    **STANDARD,
    "fedavg_local_steps": [],
    "fedprox_local_steps": [],
    "rounds": 3500,
    "warmup_rounds": 1200,
    "eval_every": 875,
    "checkpoint_every": 875,
}

FLAGS = (
    Flag(
        "--data", "data", str, "PolyMNIST folder (official release or generated); default: generate"
    ),
    Flag("--rounds", "rounds", int, "number of rounds"),
)


def main(argv: list[str] | None = None) -> dict:
    return run_package(__name__, argv)


# the results page's table: metrics down, methods across (mean +- std cells for several seeds)
TABLE = Table(
    row_headers=("metric",),
    columns=(
        Items("method", fixed=("alone", "game", "central")),
        Items("method", keys="", having="accuracy", drop=("alone", "game", "central")),
    ),
    rows=(
        (
            Items(
                "style",
                keys="game.accuracy",
                label="accuracy {item}",
                path="{method}.accuracy.{style}",
            ),
        ),
        (
            Items(
                "metric",
                fixed=(
                    "mean_accuracy",
                    "mean_coherence",
                    "joint_coherence",
                    "mean_label_fidelity",
                    "mean_fid",
                    "mean_linear_probe",
                ),
                labels={
                    "mean_accuracy": "**mean accuracy**",
                    "mean_coherence": "mean cross-style coherence",
                    "joint_coherence": "joint coherence (all judges agree)",
                    "mean_label_fidelity": "mean label fidelity of (c, m_k) samples",
                    "mean_fid": "mean feature FID",
                    "mean_linear_probe": "mean linear probe of the latent z",
                },
                path="{method}.{metric}",
                formats={"mean_fid": 0},
            ),
        ),
        (
            # label from k styles, the others generated
            Items(
                "k",
                keys="game.coherence_from_subset",
                label="coherence from {item} style(s)",
                path="{method}.coherence_from_subset.{k}",
            ),
        ),
    ),
    notes=(Note("Independent per-style classifiers: {}.", ("classifier_accuracy",), "/"),),
)
