"""Semi-supervised classification from mixed labelled/unlabelled shards (the paper's Fig. 2).

Four image players of increasing capacity, each with a disjoint shard of Fashion-MNIST (class-balanced,
or label-skewed by Dirichlet(beta) with ``partition = "dirichlet"``) of which L examples are labelled (a sweep over L) and the rest unlabelled. Methods on the same shards:
(a) each player alone, discriminative on its labels; (b) each player alone, semi-supervised (M2 on
its labelled + unlabelled data); (c) the game (semi-supervised players exchanging synthetic
labelled images, alpha uniform); (d) every architecture trained discriminatively on the full
labelled training set (upper bound); optionally (e) the paper authors' distillation baseline;
(f) FedAvg and FedProx through Flower: players of one architecture (``federated_player``) that
average their parameters every E local steps, on the same shards and rounds; (g) ensemble
distillation (``fedmd_every``): the game's players of different architectures learn alone and
distil the mean of their logits on a public unlabelled pool; (h) FedCVAE-Ens (``fedcvae``): the
alone players' decoders go to a server once, which trains each architecture's classifier on their
labelled samples.
``experiments/configs/fashion_ssl_paper.toml`` layers the authors' set-up over any size.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from modalities.specs import ImageSpec, M2Spec

from ..common import run_package
from ..config import GenerativeExchangeConfig, ParameterExchangeConfig, PlayerSize
from ..tables import Items, Table

# every player (sizes apart): binary-image likelihood, a modest consistency term
PLAYER = M2Spec(
    variables=[ImageSpec(name="x", width=8, likelihood="bernoulli", send="mean")],
    aux_weight=50.0,
    consistency_weight=50.0,
    lr=1e-3,
)


class Config(ParameterExchangeConfig, GenerativeExchangeConfig):
    dataset: Literal["fashion", "mnist"] = Field(
        "fashion",
        description="'fashion' (Fashion-MNIST) or 'mnist' (the bundled digits, e.g. for tests)",
    )
    data_root: str = Field(
        "", description="Fashion-MNIST folder (IDX files or torchvision's layout); empty: Debian's"
    )
    download: bool = Field(
        False, description="fetch Fashion-MNIST into data_root with torchvision when it is missing"
    )
    partition: Literal["iid", "dirichlet"] = Field(
        "iid",
        description="how the shards split the classes: 'iid' (disjoint, class-balanced) or "
        "'dirichlet' (label skew: each class split among the players in proportions drawn from "
        "Dirichlet(beta); a player's labelled rows are a uniform draw from its own shard)",
    )
    beta: PositiveFloat = Field(
        0.1,
        description="Dirichlet concentration of partition = 'dirichlet' (0.1 and lower: high "
        "heterogeneity, most of a class with one player; large: towards IID)",
    )
    shard_size: PositiveInt = Field(
        15000,
        description="training examples per player (capped by what the validation split leaves)",
    )
    validation_examples: NonNegativeInt = Field(
        2000,
        description="training examples held out of every shard: variants are compared on them; "
        "the test set is read only for the reported figures",
    )
    labelled: list[PositiveInt] = Field(
        [100, 500, 1000, 5000], min_length=1, description="labelled examples per player: the sweep"
    )
    players: list[PlayerSize] = Field(
        [
            PlayerSize(width=4, hidden=64, latent=8),
            PlayerSize(width=8, hidden=96, latent=12),
            PlayerSize(width=16, hidden=128, latent=16),
            PlayerSize(width=32, hidden=256, latent=32),
        ],
        min_length=2,
        description="one table per player, increasing capacity",
    )
    batch_composition: Literal["displace", "on_top"] = Field(
        "on_top",
        description="a game batch: B own rows with B synthetic rows on top, weighted so the loss "
        "still follows alpha (on_top: the authors', chosen on validation, docs/results.md), or "
        "B rows split by alpha (displace)",
    )
    no_harm: bool = Field(
        True,
        description="also play the game that never hurts: each player's alpha_ii follows its "
        "accuracy on held-out labelled rows of its own (multimodal_game.noharm)",
    )
    no_harm_rows: PositiveInt = Field(
        200,
        description="held-out labelled rows of each player for the no-harm policy (a disjoint "
        "slice of the validation split; never trained on)",
    )
    no_harm_every: PositiveInt = Field(50, description="rounds between the no-harm updates")
    no_harm_tolerance: NonNegativeFloat = Field(
        0.02, description="accuracy drop below its best that a player does not react to"
    )
    federated_player: PlayerSize = Field(
        PlayerSize(width=8, hidden=96, latent=12),
        description="the one architecture every player has in the FedAvg / FedProx baselines "
        "(same shards, same rounds as the game)",
    )
    fedmd_every: NonNegativeInt = Field(
        0,
        description="ensemble distillation baseline for players of different architectures (FedMD "
        "/ FedDF style, multimodal_game.distillation): players learn alone and every N rounds "
        "distil the mean of their logits on rows of a public unlabelled pool (0: not run; needs "
        "public_pool training images beyond the shards and the validation split)",
    )
    public_pool: NonNegativeInt = Field(
        5000,
        description="unlabelled training images outside every shard and the validation split "
        "that all parties may read (ensemble distillation's extra data)",
    )
    fedmd_rows: PositiveInt = Field(256, description="public rows of each distillation")
    fedmd_steps: PositiveInt = Field(5, description="digest steps of each distillation")
    fedmd_lr: PositiveFloat = Field(1e-3, description="Adam learning rate of the digest steps")
    game_federated_player: bool = Field(
        False,
        description="also play the game with every player of federated_player's architecture "
        "(method game_fedarch): the game and FedAvg / FedProx with the same players, so that the "
        "method and the architectures are compared apart",
    )
    player: M2Spec = Field(
        PLAYER,
        description="every player's spec; its image width, hidden and latent sizes are each "
        "player's own (players; federated_player in the parameter-exchange baselines)",
    )
    rounds: PositiveInt = Field(5000, description="rounds of each game")
    warmup_rounds: NonNegativeInt = Field(
        2000, description="the game's players learn alone first (see Game.warmup_rounds)"
    )
    checkpoint_every: NonNegativeInt = Field(1000, description="checkpoint every N rounds")
    discriminative_steps: PositiveInt = Field(2000, description="steps of baselines (a) and (d)")
    central_examples: NonNegativeInt = Field(
        0, description="training examples of baseline (d); 0: the whole training set"
    )
    fidelity_samples: PositiveInt = Field(
        500, description="samples per player judged by the independent classifier (label fidelity)"
    )
    test_examples: PositiveInt = Field(10000, description="test examples evaluated")
    alpha: list[list[NonNegativeFloat]] = Field(
        [],
        description="alpha matrix; empty: own_weight on own data, the rest uniform over partners",
    )
    own_weight: float = Field(0.5, gt=0, le=1, description="alpha_ii when alpha is empty")
    unlabelled: bool = Field(
        True,
        description="players also hold the unlabelled rest of their shard; false: only their L "
        "labelled examples (the paper's set-up)",
    )
    distillation: bool = Field(
        False,
        description="also run the authors' distillation baseline: each q(c|x) learns from its "
        "labelled images with their labels and with every other player's predicted labels",
    )
    labelled_fraction: float = Field(
        0.25,
        ge=0,
        le=1,
        description="at least this fraction of every own-data batch is labelled (labels oversampled)",
    )


QUICK = {
    "shard_size": 2500,
    "labelled": [100, 1000],
    "players": [
        {"width": 4, "hidden": 48, "latent": 8},
        {"width": 6, "hidden": 64, "latent": 8},
        {"width": 8, "hidden": 96, "latent": 12},
        {"width": 12, "hidden": 128, "latent": 16},
    ],
    "rounds": 400,
    "warmup_rounds": 200,
    "batch_size": 64,
    "checkpoint_every": 400,
    "discriminative_steps": 400,
    "central_examples": 10000,
    "fedmd_every": 10,
}


# between quick and full: about 30-45 minutes on 2 CPU cores (docs/results.md has the measured time)
STANDARD = {
    **QUICK,
    # the players' steps compiled: 1.36x a round at these players' sizes, after about 2 minutes
    # of compiles (four architectures, once per process), which 2,500 rounds pay back
    # (docs/benchmarks.md, compiled_round); the runs of docs/results.md predate it
    "player": {"compile": True},
    "shard_size": 5000,
    "rounds": 2000,
    "warmup_rounds": 800,
    "checkpoint_every": 1000,
    "discriminative_steps": 1000,
    "central_examples": 20000,
}


# the standard players and shards for 3.5x the rounds, sized for about 2 hours on 2 CPU cores
# without the parameter-exchange baselines: a 10,000-round run (2026-12-02) took 35-44 min per
# training, four of them, which is 2.5-3 h; docs/results.md has the measured time of this one
LARGE = {
    **STANDARD,
    "rounds": 7000,
    "warmup_rounds": 2800,
    "checkpoint_every": 1750,
    "discriminative_steps": 4000,
}


def main(argv: list[str] | None = None) -> dict:
    return run_package(__name__, argv)


# the results page's table: a row per player and label count, methods across (mean +- std cells
# for several seeds); then the players' mean label fidelity per method
TABLE = Table(
    row_headers=("player (width)", "L"),
    rows=(
        (
            Items(
                "player",
                keys="accuracy.central",
                label="{item} ({value})",
                label_path="config.players.{index}.width",
                label_format="d",
            ),
            Items("L", config="labelled"),
        ),
    ),
    columns=(
        Items(
            "method",
            keys="accuracy",
            drop=("central",),
            labels={
                "discriminative": "(a) discriminative",
                "alone": "(b) alone",
                "game": "(c) game",
                "distillation": "(e) distillation",
                "fedcvae": "(h) FedCVAE-Ens",
            },
            path="accuracy.{method}.{player}.{L}",
        ),
        Items("central", fixed=("(d) all labels",), path="accuracy.central.{player}"),
    ),
    notes=(
        Table(
            title="Mean label fidelity of the players' samples (the share of (c, x) samples an "
            "independent classifier reads as c, mean over players):",
            row_headers=("method",),
            rows=((Items("method", keys="label_fidelity"),),),
            columns=(
                Items(
                    "L", config="labelled", label="L = {item}", path="label_fidelity.{method}.*.{L}"
                ),
            ),
        ),
    ),
)
