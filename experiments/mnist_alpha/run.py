"""The body of ``experiments.mnist_alpha`` (see there for the set-up): loaded once a run starts, so
that ``--help`` answers without importing torch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from datasets.mnist import load_mnist
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError
from multimodal_game.evaluation import (
    FEATURE_SPACES,
    accuracy,
    features,
    frechet_distance,
    inception_fid,
    save_grid,
)
from multimodal_game.host import builders
from multimodal_game.judges import train_classifier
from multimodal_game.sources import TensorSource

from ..baselines import federated_methods, play_fedcvae, play_federated, run_bytes
from ..common import Run, preflight, table, with_overrides


def spec(cfg: dict, name: str) -> dict:
    return with_overrides(name, cfg["player"], cfg)


BINARY_THRESHOLD = 0.4375  # the authors' mnist.py: a pixel is on above 112/256


def digits(cfg: dict, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (n, 1, 28, 28) in [0, 1] (binarised as the authors' when asked) and labels."""
    x, y = load_mnist("bundled", split)
    x = x[:, None].float() / 255
    return ((x > BINARY_THRESHOLD).float() if cfg["binarise"] else x), y


def build_host(name: str, cfg: dict) -> tuple:
    """Player ``name`` over its digits (``baseline``: all digits) with its private labelled images."""
    x, y = digits(cfg, "train")
    classes = {"player0": cfg["classes"][0], "player1": cfg["classes"][1]}.get(name)
    rows = (
        torch.ones_like(y, dtype=torch.bool)
        if classes is None
        else torch.isin(y, torch.tensor(classes))
    )
    # hvae players are unsupervised: their data are the images alone
    data = {"x": x[rows]} if cfg["player"]["kind"] == "hvae" else {"label": y[rows], "x": x[rows]}
    return build_player(spec(cfg, name)), TensorSource(Batch(data))


TITLES = {"penultimate": "penultimate layer", "classes": "class probabilities"}


def classified(cfg: dict, players: list) -> dict:
    """Each player's accuracy on all ten test digits (m2 players; hvae players classify nothing)."""
    if cfg["player"]["kind"] != "m2":
        return {}
    x, y = digits(cfg, "test")
    return {"accuracy_all_digits": [accuracy(p, {"x": x}, y) for p in players]}


def fedcvae(cfg: dict, game, run: Run) -> dict:
    """FedCVAE-Ens over the alone players of ``game``: each gets a classifier of its architecture,
    trained by the server on labelled samples of both decoders."""
    steps = cfg["fedcvae_steps"] or cfg["classifier_steps"]

    def build(name: str):
        return build_player(spec(cfg, name)).to(run.device)

    models, sent, counts = play_fedcvae(
        game, build, cfg["fedcvae_samples"], steps, cfg["batch_size"], run.seed
    )
    return {**classified(cfg, list(models.values())), "bytes": sent, "class_counts": counts}


def own_fraction_theory(a: float) -> float:
    """Share of a player's samples from its own digits at the equilibrium of perfect learners."""
    return 1.0 / (2.0 - a)


def evaluate(
    players: list,
    clf,
    real: list[dict],
    own: list[list[int]],
    n: int,
    images: list[dict] | None = None,
    weights: str = "",
) -> dict:
    """FIDs (feature spaces averaged over players) and own-digit fractions of ``players``.

    ``real[k][space][key]``: real test features that player k's samples are compared with;
    ``images[k][key]``: the real test images behind them, for FIDs in Inception space when the
    Inception ``weights`` file is given (``inception`` beside the classifier's spaces)."""
    per, fractions, counts, fidelity = [], [], [], []
    for k, player in enumerate(players):
        made = player.sample(n)
        gen = player.call(scored_images, made)
        feats = {sp: features(clf, gen, space=sp) for sp in FEATURE_SPACES}
        per.append(
            {
                sp: {key: frechet_distance(feats[sp], v) for key, v in real[k][sp].items()}
                for sp in FEATURE_SPACES
            }
        )
        if weights and images is not None:
            per[-1]["inception"] = {
                key: inception_fid(v, gen, weights) for key, v in images[k].items()
            }
        pred = feats["classes"].argmax(-1)
        counts.append(torch.bincount(pred, minlength=10).tolist())
        fractions.append(torch.isin(pred, torch.tensor(own[k])).float().mean().item())
        if "label" in made:  # label fidelity: the share of (c, x) samples read as c
            fidelity.append((pred == made["label"].cpu()).float().mean().item())
    fid = {
        sp: {key: float(np.mean([p[sp][key] for p in per])) for key in per[0][sp]} for sp in per[0]
    }
    out = {
        "fid": fid,
        "per_player": per,
        "generated_classes": counts,
        "own_fraction": float(np.mean(fractions)),
    }
    if fidelity:
        out["label_fidelity"] = float(np.mean(fidelity))
    return out


def real_features(cfg: dict, run: Run) -> tuple:
    """The FID feature space (a digit classifier trained on real training digits) and the real
    test features each player's samples are compared with: the whole set, its own digits, the
    other player's digits; and those test images (for FIDs in Inception space)."""
    xtr, ytr = digits(cfg, "train")
    xte, yte = digits(cfg, "test")
    clf = train_classifier(
        xtr,
        ytr,
        steps=cfg["classifier_steps"],
        seed=run.seed,
        device=run.device,
    )
    c0, c1 = cfg["classes"]
    sets = {
        "all": xte,
        0: xte[torch.isin(yte, torch.tensor(c0))],
        1: xte[torch.isin(yte, torch.tensor(c1))],
    }
    f = {k: {sp: features(clf, v, space=sp) for sp in FEATURE_SPACES} for k, v in sets.items()}
    per_player = [
        {sp: {"all": f["all"][sp], "own": f[k][sp], "other": f[1 - k][sp]} for sp in FEATURE_SPACES}
        for k in (0, 1)
    ]
    images = [{"all": xte, "own": sets[k], "other": sets[1 - k]} for k in (0, 1)]
    return clf, f, per_player, images


def scored_images(player, made: Batch) -> torch.Tensor:
    """The images whose FID is reported, computed where the player lives: for an hvae player
    the authors' choice (``generate_data.py``), p(x = 1 | z0, z1) > 1/2 for fresh latents, since
    single binary draws are speckled; for other players the samples ``made`` themselves."""
    if hasattr(player, "image_probabilities"):
        return (player.image_probabilities(len(made)) > 0.5).float()
    return made["x"]


def looks(player, n: int) -> torch.Tensor:
    """What a player's images look like for a figure: its pixel probabilities where it has them
    (binary draws hide the shape in noise), else its samples."""
    return player.call(_looks, n)


def _looks(player, n: int) -> torch.Tensor:
    if hasattr(player, "image_probabilities"):
        return player.image_probabilities(n)
    return player.sample(n)["x"]


def plot(rows: list[dict], baseline: dict, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    xs = [r["alpha_ii"] for r in rows]
    keys = (("all", "whole test set"), ("own", "own digits"), ("other", "other player's digits"))
    for ax, sp in zip(axes, FEATURE_SPACES):
        for key, label in keys:
            ax.plot(xs, [r["fid"][sp][key] for r in rows], "o-", label=label)
        ax.axhline(baseline["fid"][sp]["all"], color="k", ls="--", label="baseline on all digits")
        ax.set_xlabel("alpha_ii")
        ax.set_ylabel("FID (mean of the two players)")
        ax.set_title(f"FID on the digit classifier's {TITLES[sp]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fid_vs_alpha.png", dpi=120)
    plt.close(fig)


def expected_shape(rows: list[dict]) -> dict:
    lo, hi = rows[0], rows[-1]
    shape: dict = {
        sp: {
            "fid_all_lower_at_smallest_alpha_ii": lo["fid"][sp]["all"] < hi["fid"][sp]["all"],
            "fid_other_lower_at_smallest_alpha_ii": lo["fid"][sp]["other"] < hi["fid"][sp]["other"],
        }
        for sp in FEATURE_SPACES
    }
    shape["own_fraction_falls_with_alpha_ii"] = all(
        a["own_fraction"] >= b["own_fraction"] for a, b in zip(rows[::-1], rows[::-1][1:])
    )
    return shape


def summary(results: dict, cfg: dict, run: Run) -> str:
    short = {"penultimate": "pen", "classes": "cls"}
    keys = ("all", "own", "other")
    cols = [f"{short[sp]} {key}" for sp in FEATURE_SPACES for key in keys]

    def fid(r: dict, sp: str, key: str) -> str:
        if key not in r["fid"][sp]:
            return ""
        return f"{r['fid'][sp][key]:.0f}" if sp == "penultimate" else f"{r['fid'][sp][key]:.3f}"

    rows = [
        [
            f"{r['alpha_ii']:.1f}" if "alpha_ii" in r else "baseline",
            *(fid(r, sp, key) for sp in FEATURE_SPACES for key in keys),
            f"{r['own_fraction']:.2f}" if "alpha_ii" in r else "",
            f"{r['own_fraction_theory']:.2f}" if "alpha_ii" in r else "",
        ]
        for r in results["rows"] + [results["baseline"]]
    ]
    title = f"MNIST alpha sweep ({cfg['player']['kind']} players, {run.profile}, {cfg['rounds']} rounds)"
    ref = ", ".join(f"{short[sp]} {v:.3f}" for sp, v in results["real_reference"].items())
    text = table(title, ["alpha_ii", *cols, "own digits", "theory"], rows)
    return (
        text
        + f"FID of real digits 0-4 against the whole test set: {ref}\nexpected shape: {results['expected_shape']}"
    )


def body(run: Run) -> dict:
    cfg = run.cfg
    clf, real_f, real, images = real_features(cfg, run)
    weights = cfg["inception_weights"]
    names = ["player0", "player1"]
    rows: list[dict] = []
    peers: dict = {}
    for a in cfg["alphas"]:
        alpha = torch.tensor([[a, 1 - a], [1 - a, a]], dtype=torch.float64)
        game = run.game(
            f"alpha{a:.2f}",
            builders(build_host, names, cfg),
            alpha,
            warmup_rounds=cfg["warmup_rounds"],
        )
        players = [game.players[nm] for nm in names]
        row = {"alpha_ii": a, "own_fraction_theory": own_fraction_theory(a)}
        scores = evaluate(players, clf, real, cfg["classes"], cfg["samples"], images, weights)
        rows.append({**row, **scores, **classified(cfg, players), "bytes": run_bytes(game)})
        if a == 1.0 and cfg["fedcvae"]:  # the players learnt alone: their decoders go, once
            peers["fedcvae"] = fedcvae(cfg, game, run)
        if a in (min(cfg["alphas"]), max(cfg["alphas"])):
            grid = torch.cat([looks(p, 40) for p in players]).view(8, 10, 1, 28, 28)
            save_grid(grid, run.out / f"samples_alpha{a:.1f}.png")
        game.close()
    for method, every, mu in federated_methods(cfg):  # the same two shards, parameters averaged
        game = play_federated(run, method, builders(build_host, names, cfg), every, mu)
        players = [game.players[nm] for nm in names]
        scores = evaluate(players, clf, real, cfg["classes"], cfg["samples"], images, weights)
        peers[method] = {**scores, **classified(cfg, players), "bytes": run_bytes(game, every)}
        game.close()
    base = run.game("baseline", builders(build_host, ["baseline"], cfg), [[1.0]])
    everything = [{sp: {"all": real_f["all"][sp]} for sp in FEATURE_SPACES}]
    baseline = evaluate(
        [base.players["baseline"]],
        clf,
        everything,
        [list(range(10))],
        cfg["samples"],
        [{"all": images[0]["all"]}],
        weights,
    )
    base.close()
    plot(rows, baseline, run.out)
    # real digits 0-4 against the whole test set: how large a pure class difference is
    reference = {sp: frechet_distance(real_f[0][sp], real_f["all"][sp]) for sp in FEATURE_SPACES}
    results = {
        "player_kind": cfg["player"]["kind"],
        "fid_spaces": list(rows[0]["fid"]),
        "rows": rows,
        "baseline": baseline,
        "real_reference": reference,
        "expected_shape": expected_shape(rows),
        # FedAvg / FedProx (FID and accuracy) and FedCVAE-Ens (accuracy) on the same shards
        "peers": peers,
    }
    return run.finish(results, summary(results, cfg, run))


def check(cfg: dict) -> None:
    """The players' spec, every alpha of the sweep and the Inception weights file, before any
    data is read."""
    weights = cfg["inception_weights"]
    if weights and not Path(weights).is_file():
        raise ConfigError(
            f"inception_weights: {weights!r} is not a file (FID in Inception space needs "
            "pt_inception-2015-12-05-6726825d.pth supplied by you; leave the key empty for the "
            "digit classifier's feature spaces only)"
        )
    baselines = bool(cfg["fedcvae"] or federated_methods(cfg))
    if baselines and cfg["player"]["kind"] != "m2":
        raise ConfigError(
            "fedcvae / fedavg_local_steps / fedprox_local_steps: the baselines compare classifiers "
            f"and need m2 players (label, image); player.kind is {cfg['player']['kind']!r}"
        )
    if cfg["fedcvae"] and 1.0 not in cfg["alphas"]:
        raise ConfigError(
            "fedcvae: FedCVAE-Ens sends the decoders of players that learnt alone, the "
            f"alpha_ii = 1 game; add 1.0 to alphas (now {cfg['alphas']})"
        )
    specs = {nm: spec(cfg, nm) for nm in ("player0", "player1")}
    sweep = [(specs, [[a, 1 - a], [1 - a, a]]) for a in cfg["alphas"]]
    fed = [(specs, None)] if federated_methods(cfg) else []
    preflight(cfg, *sweep, *fed, ({"baseline": spec(cfg, "baseline")}, None))
