"""How alpha trades own data against the other player's samples (the paper's Fig. 1).

Two players with identical architecture: player 0 holds MNIST digits 0-4, player 1 digits 5-9 (all
labelled). For each alpha_ii in the sweep (alpha_ij = 1 - alpha_ii) the pair plays a game; then each
player's samples are compared, by feature-space FID, with the whole test set, with its own digits
and with the other player's digits (averaged over the two players). A baseline model is trained on
all digits. Expected: alpha_ii = 1 keeps each player to its own digits (poor FID to the whole set);
small alpha_ii lets both generate all digits.

FID is computed in two feature spaces of the digit classifier: its penultimate layer (the usual
choice, which also scores image quality) and its class probabilities (which digits are drawn). With
perfect learners the equilibrium is a mixture: player 0 draws its own digits with probability
1 / (2 - alpha_ii) (from p0 = a d0 + (1 - a) p1 and its mirror); the run reports the measured
fraction next to that value.
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
from multimodal_game.metrics import FEATURE_SPACES, features, frechet_distance, train_classifier
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


TITLES = {"penultimate": "penultimate layer", "classes": "class probabilities"}


def own_fraction_theory(a: float) -> float:
    """Share of a player's samples from its own digits at the equilibrium of perfect learners."""
    return 1.0 / (2.0 - a)


def evaluate(players: list, clf, real: list[dict], own: list[list[int]], n: int) -> dict:
    """FIDs (both feature spaces, averaged over players) and own-digit fractions of ``players``.

    ``real[k][space][key]``: real test features that player k's samples are compared with."""
    per, fractions, counts = [], [], []
    for k, player in enumerate(players):
        gen = player.sample(n)["x"].cpu()
        feats = {sp: features(clf, gen, space=sp) for sp in FEATURE_SPACES}
        per.append(
            {
                sp: {key: frechet_distance(feats[sp], v) for key, v in real[k][sp].items()}
                for sp in FEATURE_SPACES
            }
        )
        pred = feats["classes"].argmax(-1)
        counts.append(torch.bincount(pred, minlength=10).tolist())
        fractions.append(torch.isin(pred, torch.tensor(own[k])).float().mean().item())
    fid = {
        sp: {key: float(np.mean([p[sp][key] for p in per])) for key in per[0][sp]}
        for sp in FEATURE_SPACES
    }
    return {
        "fid": fid,
        "per_player": per,
        "generated_classes": counts,
        "own_fraction": float(np.mean(fractions)),
    }


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
    sets = {
        "all": xte,
        0: xte[torch.isin(yte, torch.tensor(c0))],
        1: xte[torch.isin(yte, torch.tensor(c1))],
    }
    real_f = {k: {sp: features(clf, v, space=sp) for sp in FEATURE_SPACES} for k, v in sets.items()}
    real = [
        {sp: {"all": real_f["all"][sp], "own": real_f[k][sp], "other": real_f[1 - k][sp]}
         for sp in FEATURE_SPACES}
        for k in (0, 1)
    ]  # fmt: skip
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
            players = [game.players[nm] for nm in game.names]
            row = {"alpha_ii": a, "own_fraction_theory": own_fraction_theory(a)}
            row.update(evaluate(players, clf, real, [c0, c1], cfg["samples"]))
            rows.append(row)
            grids[a] = torch.cat([p.sample(40)["x"].cpu() for p in players])
            game.close()
        builders = {"baseline": partial(build_host, None, cfg)}
        base = make_game(
            host_specs(builders, args.seed, device, cfg["resources"]),
            [[1.0]],
            cfg["batch_size"],
            args,
        )
        play(base, "baseline", cfg["rounds"], cfg, args, out)
        everything = {sp: {"all": real_f["all"][sp]} for sp in FEATURE_SPACES}
        baseline = evaluate(
            [base.players["baseline"]], clf, [everything], [list(range(10))], cfg["samples"]
        )
        base.close()

    for a in (min(cfg["alphas"]), max(cfg["alphas"])):
        g = grids[a].view(8, 10, 28, 28).permute(0, 2, 1, 3).reshape(8 * 28, 10 * 28)
        Image.fromarray((g.numpy() * 255).astype(np.uint8)).resize((560, 448), Image.NEAREST).save(
            out / f"samples_alpha{a:.1f}.png"
        )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    xs = [r["alpha_ii"] for r in rows]
    for ax, sp in zip(axes, FEATURE_SPACES):
        for key, label in (
            ("all", "whole test set"),
            ("own", "own digits"),
            ("other", "other player's digits"),
        ):
            ax.plot(xs, [r["fid"][sp][key] for r in rows], "o-", label=label)
        ax.axhline(baseline["fid"][sp]["all"], color="k", ls="--", label="baseline on all digits")
        ax.set_xlabel("alpha_ii")
        ax.set_ylabel("FID (mean of the two players)")
        ax.set_title(f"FID on the digit classifier's {TITLES[sp]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fid_vs_alpha.png", dpi=120)
    plt.close(fig)

    lo, hi = rows[0], rows[-1]
    shape = {
        sp: {
            "fid_all_lower_at_smallest_alpha_ii": lo["fid"][sp]["all"] < hi["fid"][sp]["all"],
            "fid_other_lower_at_smallest_alpha_ii": lo["fid"][sp]["other"] < hi["fid"][sp]["other"],
        }
        for sp in FEATURE_SPACES
    }
    shape["own_fraction_falls_with_alpha_ii"] = all(
        a["own_fraction"] >= b["own_fraction"] for a, b in zip(rows[::-1], rows[::-1][1:])
    )
    results = {
        "rows": rows,
        "baseline": baseline,
        # real digits 0-4 against the whole test set: how large a pure class difference is
        "real_reference": {
            sp: frechet_distance(real_f[0][sp], real_f["all"][sp]) for sp in FEATURE_SPACES
        },
        "expected_shape": shape,
        "total_seconds": time.perf_counter() - t_start,
    }
    saved = write_results(out, results)
    table = Table(
        title=f"MNIST alpha sweep ({'quick' if args.quick else 'full'}, {cfg['rounds']} rounds)"
    )
    short = {"penultimate": "pen", "classes": "cls"}
    cols = [f"{short[sp]} {key}" for sp in FEATURE_SPACES for key in ("all", "own", "other")]
    for col in ("alpha_ii", *cols, "own digits", "theory"):
        table.add_column(col, justify="right")
    for r in rows + [baseline]:
        table.add_row(
            f"{r['alpha_ii']:.1f}" if "alpha_ii" in r else "baseline",
            *(
                (f"{r['fid'][sp][key]:.0f}" if sp == "penultimate" else f"{r['fid'][sp][key]:.3f}")
                if key in r["fid"][sp]
                else ""
                for sp in FEATURE_SPACES
                for key in ("all", "own", "other")
            ),
            f"{r['own_fraction']:.2f}" if "alpha_ii" in r else "",
            f"{r['own_fraction_theory']:.2f}" if "alpha_ii" in r else "",
        )
    table.caption = (
        "FID of real digits 0-4 against the whole test set (the scale of a class-content "
        "difference): "
        + ", ".join(f"{short[sp]} {v:.3f}" for sp, v in results["real_reference"].items())
    )
    Console().print(table)
    print(f"expected shape: {shape}")
    print(f"wall time {results['total_seconds']:.0f} s; results in {out}/results.json")
    return saved


if __name__ == "__main__":
    main()
