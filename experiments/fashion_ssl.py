"""Semi-supervised classification from mixed labelled/unlabelled shards (the paper's Fig. 2).

Four image players of increasing capacity, each with a disjoint class-balanced shard of Fashion-MNIST
of which L examples are labelled (a sweep over L) and the rest unlabelled. Methods on the same shards:
(a) each player alone, discriminative on its labels; (b) each player alone, semi-supervised (M2 on
its labelled + unlabelled data); (c) the game (semi-supervised players exchanging synthetic
labelled images, alpha uniform); (d) every architecture trained discriminatively on the full
labelled training set (upper bound).
"""

from __future__ import annotations

import time
from functools import partial

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from rich.console import Console
from rich.table import Table

from datasets.mnist import load_fashion_mnist, load_mnist
from datasets.shards import make_shards
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.sources import TensorSource

from .common import base_parser, host_specs, make_game, play, runtime_session, setup, write_results

DEFAULTS = {
    "dataset": "fashion",  # or "mnist" (the bundled digits, e.g. for tests)
    "data_root": "",  # Fashion-MNIST IDX folder; empty: Debian's package directory
    "shard_size": 15000,
    "labelled": [100, 500, 1000, 5000],
    "players": [
        {"width": 4, "hidden": 64, "latent": 8},
        {"width": 8, "hidden": 96, "latent": 12},
        {"width": 16, "hidden": 128, "latent": 16},
        {"width": 32, "hidden": 256, "latent": 32},
    ],
    "likelihood": "bernoulli",
    "aux_weight": 50.0,
    # -log q(c | x) on the player's own generated images: makes its samples carry their label
    "consistency_weight": 50.0,
    "lr": 1e-3,
    "rounds": 5000,
    "warmup_rounds": 2000,  # the game's players learn alone first (see Game.warmup_rounds)
    "batch_size": 128,
    "eval_every": 0,
    "checkpoint_every": 1000,
    "discriminative_steps": 2000,
    "central_examples": 0,  # 0: the whole training set
    "test_examples": 10000,
    "alpha": [],  # empty: own_weight on own data, the rest uniform over the other players
    "own_weight": 0.5,
    # at least this fraction of every own-data batch is labelled (labels oversampled; see
    # TensorSource): at 100 labels in 2,500 a uniform batch of 64 holds 2-3 labelled images
    "labelled_fraction": 0.25,
    "resources": {},
}
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
}


def load(cfg: dict, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if cfg["dataset"] == "fashion":
        x, y = load_fashion_mnist(split, cfg["data_root"] or None)
    elif cfg["dataset"] == "mnist":
        x, y = load_mnist("bundled", split)
    else:
        raise ValueError(f"unknown dataset {cfg['dataset']!r}; expected 'fashion' or 'mnist'")
    return x[:, None].float() / 255, y


def player_spec(cfg: dict, k: int) -> dict:
    p = cfg["players"][k]
    return {
        "variables": [
            {"name": "x", "recipe": "image", "width": p["width"], "likelihood": cfg["likelihood"]}
        ],
        "latent": p["latent"],
        "hidden": p["hidden"],
        "aux_weight": cfg["aux_weight"],
        "consistency_weight": cfg["consistency_weight"],
        "lr": cfg["lr"],
    }


def shard_batch(cfg: dict, seed: int, k: int, n_labelled: int) -> Batch:
    """Player k's private shard: disjoint, class-balanced, ``n_labelled`` labels (capped)."""
    x, y = load(cfg, "train")
    n = len(cfg["players"])
    pool = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    pool = pool[: min(len(y), n * cfg["shard_size"])]
    shard = make_shards(y[pool], "iid", n, labelled=min(n_labelled, len(pool) // n), seed=seed)[k]
    rows = pool[shard.indices]
    return Batch({"label": y[rows], "x": x[rows]}, {"label": shard.labelled})


def build_host(k: int, cfg: dict, seed: int, n_labelled: int) -> tuple:
    """Player k and its shard, built where the player lives."""
    source = TensorSource(shard_batch(cfg, seed, k, n_labelled), "label", cfg["labelled_fraction"])
    return build_player(player_spec(cfg, k)), source


@torch.no_grad()
def accuracy(player, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = 0
    for i in range(0, len(y), 1000):
        probs = player.infer("label", Batch({"x": x[i : i + 1000].to(player.device)}))
        correct += (probs.argmax(-1).cpu() == y[i : i + 1000]).sum().item()
    return correct / len(y)


def main(argv: list[str] | None = None) -> dict:
    ap = base_parser("fashion_ssl", __doc__.splitlines()[0])
    args = ap.parse_args(argv)
    cfg, device, out = setup("fashion_ssl", args, DEFAULTS, QUICK)
    t_start = time.perf_counter()
    xt, yt = load(cfg, "test")
    xt, yt = xt[: cfg["test_examples"]], yt[: cfg["test_examples"]]
    n = len(cfg["players"])
    names = [f"player{k}" for k in range(n)]
    alpha = (
        torch.tensor(cfg["alpha"], dtype=torch.float64)
        if cfg["alpha"]
        else torch.full(
            (n, n), (1 - cfg["own_weight"]) / max(n - 1, 1), dtype=torch.float64
        ).fill_diagonal_(cfg["own_weight"] if n > 1 else 1.0)
    )
    acc: dict = {m: {nm: {} for nm in names} for m in ("discriminative", "alone", "game")}
    seconds: dict = {}
    with runtime_session(args):
        for L in cfg["labelled"]:
            # (a) discriminative on the shard's labels
            t0 = time.perf_counter()
            for k, nm in enumerate(names):
                torch.manual_seed(args.seed + k)
                p = build_player(player_spec(cfg, k))
                p.to(device).fit_classifier(
                    shard_batch(cfg, args.seed, k, L),
                    cfg["discriminative_steps"],
                    cfg["batch_size"],
                    args.seed,
                )
                acc["discriminative"][nm][L] = accuracy(p, xt, yt)
            seconds[f"discriminative_{L}"] = time.perf_counter() - t0
            # (b) alone, semi-supervised, and (c) the game: same shards, same seeds
            for method, a in (("alone", torch.eye(n, dtype=torch.float64)), ("game", alpha)):
                t0 = time.perf_counter()
                builders = {
                    nm: partial(build_host, k, cfg, args.seed, L) for k, nm in enumerate(names)
                }
                specs = host_specs(builders, args.seed, device, cfg["resources"])
                game = make_game(specs, a, cfg["batch_size"], args, cfg["warmup_rounds"])
                play(game, f"{method}_L{L}", cfg["rounds"], cfg, args, out)
                for nm in names:
                    acc[method][nm][L] = accuracy(game.players[nm], xt, yt)
                if method == "game":
                    acc.setdefault("exchange", {})[L] = game.accounting()
                game.close()
                seconds[f"{method}_{L}"] = time.perf_counter() - t0
        # (d) every architecture on the full labelled training set
        t0 = time.perf_counter()
        x, y = load(cfg, "train")
        if cfg["central_examples"]:
            x, y = x[: cfg["central_examples"]], y[: cfg["central_examples"]]
        acc["central"] = {}
        for k, nm in enumerate(names):
            torch.manual_seed(args.seed + k)
            p = build_player(player_spec(cfg, k))
            p.to(device).fit_classifier(
                Batch({"label": y, "x": x}),
                2 * cfg["discriminative_steps"],
                cfg["batch_size"],
                args.seed,
            )
            acc["central"][nm] = accuracy(p, xt, yt)
        seconds["central"] = time.perf_counter() - t0

    exchange = acc.pop("exchange", {})
    L0 = min(cfg["labelled"])
    beats = [
        nm
        for nm in names
        if acc["game"][nm][L0] > max(acc["alone"][nm][L0], acc["discriminative"][nm][L0])
    ]
    results = {
        "accuracy": acc,
        "game_beats_both_alone_at_smallest_L": beats,
        "exchange": exchange,
        "seconds": seconds,
        "total_seconds": time.perf_counter() - t_start,
    }
    saved = write_results(out, results)

    fig, axes = plt.subplots(2, 2, figsize=(9, 7), sharey=True)
    for ax, nm in zip(axes.flat, names):
        for method, style in (("discriminative", "o-"), ("alone", "s-"), ("game", "^-")):
            ax.plot(
                cfg["labelled"], [acc[method][nm][L] for L in cfg["labelled"]], style, label=method
            )
        ax.axhline(acc["central"][nm], color="k", ls="--", label="central (all labels)")
        ax.set_xscale("log")
        ax.set_title(f"{nm} (width {cfg['players'][names.index(nm)]['width']})")
        ax.set_xlabel("labelled examples per player")
        ax.set_ylabel("test accuracy")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_labels.png", dpi=120)
    plt.close(fig)

    table = Table(
        title=f"{cfg['dataset']} semi-supervised shards ({'quick' if args.quick else 'full'})"
    )
    table.add_column("player")
    table.add_column("L", justify="right")
    for m in ("discriminative", "alone", "game", "central"):
        table.add_column(m)
    for nm in names:
        for L in cfg["labelled"]:
            table.add_row(
                nm,
                str(L),
                *(f"{acc[m][nm][L]:.3f}" for m in ("discriminative", "alone", "game")),
                f"{acc['central'][nm]:.3f}",
            )
    Console().print(table)
    print(f"game beats (a) and (b) at L={L0} for {len(beats)}/{n} players: {beats}")
    print(f"wall time {results['total_seconds']:.0f} s; results in {out}/results.json")
    return saved


if __name__ == "__main__":
    main()
