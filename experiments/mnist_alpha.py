"""How alpha trades own data against the other player's samples (the paper's Fig. 1).

Two players with identical architecture: player 0 holds MNIST digits 0-4, player 1 digits 5-9 (all
labelled). For each alpha_ii in the sweep (alpha_ij = 1 - alpha_ii) the pair plays a game; then each
player's samples are compared, by feature-space FID, with the whole test set, with its own digits
and with the other player's digits (averaged over the two players). A baseline model is trained on
all digits. Expected: alpha_ii = 1 keeps each player to its own digits (poor FID to the whole set);
small alpha_ii lets both generate all digits.
"""

from __future__ import annotations

import time
from functools import partial

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from datasets.mnist import load_mnist
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.metrics import features, frechet_distance, train_classifier
from multimodal_game.sources import TensorSource

from .common import base_parser, host_specs, make_game, play, runtime_session, setup, write_results

DEFAULTS = {
    "alphas": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "classes": [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]],
    "player": {"width": 16, "hidden": 128, "latent": 16, "lr": 1e-3},
    "rounds": 3000,
    "warmup_rounds": 1000,  # learn alone first, then exchange (see Game.warmup_rounds)
    "batch_size": 128,
    "eval_every": 0,
    "checkpoint_every": 1000,
    "samples": 2000,
    "classifier_steps": 1500,
    "resources": {},
}
QUICK = {
    "alphas": [0.1, 0.4, 0.7, 1.0],
    "player": {"width": 8, "hidden": 64, "latent": 8, "lr": 2e-3},
    "rounds": 500,
    "warmup_rounds": 250,
    "batch_size": 64,
    "checkpoint_every": 500,
    "samples": 1000,
    "classifier_steps": 400,
}


def spec(cfg: dict) -> dict:
    p = cfg["player"]
    return {
        "variables": [{"name": "x", "recipe": "image", "width": p["width"]}],
        "latent": p["latent"],
        "hidden": p["hidden"],
        "lr": p["lr"],
    }


def build_host(classes: list[int] | None, cfg: dict) -> tuple:
    """A player over digits ``classes`` (None: all digits) with its private labelled images."""
    x, y = load_mnist("bundled", "train")
    rows = (
        torch.ones_like(y, dtype=torch.bool)
        if classes is None
        else torch.isin(y, torch.tensor(classes))
    )
    data = Batch({"label": y[rows], "x": x[rows, None].float() / 255})
    return build_player(spec(cfg)), TensorSource(data)


def fid_row(player, clf, real: dict[str, torch.Tensor], n: int) -> dict[str, float]:
    gen = player.sample(n)["x"].cpu()
    f = features(clf, gen)
    return {k: frechet_distance(f, v) for k, v in real.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = base_parser("mnist_alpha", __doc__.splitlines()[0])
    args = ap.parse_args(argv)
    cfg, device, out = setup("mnist_alpha", args, DEFAULTS, QUICK)
    t_start = time.perf_counter()
    c0, c1 = cfg["classes"]
    xtr, ytr = load_mnist("bundled", "train")
    xte, yte = load_mnist("bundled", "test")
    xte = xte[:, None].float() / 255
    # the FID feature space: a digit classifier trained on real training digits
    clf = train_classifier(
        xtr[:, None].float() / 255,
        ytr,
        steps=cfg["classifier_steps"],
        seed=args.seed,
        device=device,
    )
    f_all = features(clf, xte)
    f_c = {
        0: features(clf, xte[torch.isin(yte, torch.tensor(c0))]),
        1: features(clf, xte[torch.isin(yte, torch.tensor(c1))]),
    }
    rows, grids = [], {}
    with runtime_session(args):
        for a in cfg["alphas"]:
            alpha = torch.tensor([[a, 1 - a], [1 - a, a]], dtype=torch.float64)
            builders = {
                "player0": partial(build_host, c0, cfg),
                "player1": partial(build_host, c1, cfg),
            }
            game = make_game(
                host_specs(builders, args.seed, device, cfg["resources"]),
                alpha,
                cfg["batch_size"],
                args,
                cfg["warmup_rounds"],
            )
            play(game, f"alpha{a:.2f}", cfg["rounds"], cfg, args, out)
            per = []
            for k, nm in enumerate(game.names):
                real = {"all": f_all, "own": f_c[k], "other": f_c[1 - k]}
                per.append(fid_row(game.players[nm], clf, real, cfg["samples"]))
            row = {
                "alpha_ii": a,
                **{key: float(np.mean([p[key] for p in per])) for key in ("all", "own", "other")},
            }
            row["per_player"] = per
            # which digits each player generates (by the FID classifier)
            row["generated_classes"] = {
                nm: torch.bincount(
                    clf(game.players[nm].sample(500)["x"].to(device)).argmax(-1).cpu(), minlength=10
                ).tolist()
                for nm in game.names
            }
            rows.append(row)
            grids[a] = torch.cat([game.players[nm].sample(40)["x"].cpu() for nm in game.names])
            game.close()
        builders = {"baseline": partial(build_host, None, cfg)}
        base = make_game(
            host_specs(builders, args.seed, device, cfg["resources"]),
            [[1.0]],
            cfg["batch_size"],
            args,
        )
        play(base, "baseline", cfg["rounds"], cfg, args, out)
        baseline = fid_row(
            base.players["baseline"],
            clf,
            {"all": f_all, "own": f_all, "other": f_all},
            cfg["samples"],
        )
        base.close()

    for a in (min(cfg["alphas"]), max(cfg["alphas"])):
        g = grids[a].view(8, 10, 28, 28).permute(0, 2, 1, 3).reshape(8 * 28, 10 * 28)
        Image.fromarray((g.numpy() * 255).astype(np.uint8)).resize((560, 448), Image.NEAREST).save(
            out / f"samples_alpha{a:.1f}.png"
        )
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["alpha_ii"] for r in rows]
    for key, label in (
        ("all", "whole test set"),
        ("own", "own digits"),
        ("other", "other player's digits"),
    ):
        ax.plot(xs, [r[key] for r in rows], "o-", label=label)
    ax.axhline(baseline["all"], color="k", ls="--", label="baseline on all digits")
    ax.set_xlabel("alpha_ii")
    ax.set_ylabel("feature-space FID (mean of the two players)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fid_vs_alpha.png", dpi=120)
    plt.close(fig)

    lo, hi = rows[0], rows[-1]
    shape = {
        "fid_all_decreases_as_alpha_ii_falls": hi["all"] > lo["all"],
        "fid_other_decreases_as_alpha_ii_falls": hi["other"] > lo["other"],
    }
    results = {
        "rows": rows,
        "baseline": baseline,
        "expected_shape": shape,
        "total_seconds": time.perf_counter() - t_start,
    }
    saved = write_results(out, results)
    table = Table(
        title=f"MNIST alpha sweep ({'quick' if args.quick else 'full'}, {cfg['rounds']} rounds)"
    )
    for col in ("alpha_ii", "FID all", "FID own", "FID other"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['alpha_ii']:.1f}", f"{r['all']:.1f}", f"{r['own']:.1f}", f"{r['other']:.1f}"
        )
    table.add_row("baseline", f"{baseline['all']:.1f}", "", "")
    Console().print(table)
    print(f"expected shape: {shape}")
    print(f"wall time {results['total_seconds']:.0f} s; results in {out}/results.json")
    return saved


if __name__ == "__main__":
    main()
