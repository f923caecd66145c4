"""PolyMNIST cross-style generation and classification among heterogeneous players.

Five style players (player k holds style m_k of its own disjoint tuples, a small labelled fraction),
partial-view players on labelled paired tuples of two styles, a label-only player and a
(label, digit mask) player trained on MNIST learn together by exchanging synthetic samples of their
shared variables. Baselines in the same run: every player alone (alpha = I) and a centralised M2
model on the pooled data of all players.
"""

from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from datasets import polymnist
from datasets.mnist import load_mnist
from datasets.shards import labelled_mask
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.game import Game
from multimodal_game.metrics import features, frechet_distance, predict, train_classifier
from multimodal_game.sources import TensorSource
from multimodal_game.spaces import interface

from .common import base_parser, host_specs, make_game, play, runtime_session, setup, write_json

DEFAULTS = {
    "data": "",  # folder with PolyMNIST (official release or generated); empty: generate from bundled MNIST
    "modalities": 5,
    "labelled_fraction": 0.1,
    "pairs": [[0, 1], [2, 3]],
    "pair_tuples": 400,  # labelled paired tuples per pair player
    "label_only_examples": 2000,
    "mask_player_examples": 4000,
    "classifier_fraction": 0.2,  # of the training tuples, held out for the independent classifiers
    "classifier_steps": 1500,
    "rounds": 3000,
    "warmup_rounds": 1000,  # learn alone first, then exchange (see Game.warmup_rounds)
    "batch_size": 128,
    "eval_every": 500,
    "checkpoint_every": 500,
    "player": {
        "width": 32,
        "latent": 16,
        "hidden": 128,
        "lr": 1e-3,
        "aux_weight": 1000.0,  # ~0.1 x examples per player, as Kingma et al.; 3x28x28 Laplace pixels
        "consistency_weight": 1000.0,  # generated images must carry their label (M2Player)
        "likelihood": "laplace",
    },
    "alpha": [],  # empty: own_weight on own data, the rest uniform over players it shares with
    "own_weight": 0.5,
    # how the rest of a row is spread over the players one shares variables with:
    # "interface_size" in proportion to the values exchanged per example, or "uniform"
    "partner_weighting": "uniform",
    "eval_examples": 2000,
    "resources": {},  # Ray: {default = {num_cpus = 1}, style0 = {num_gpus = 0.5}, ...}
}
QUICK = {
    "rounds": 300,
    "warmup_rounds": 100,
    "batch_size": 64,
    "eval_every": 300,
    "checkpoint_every": 300,
    "classifier_steps": 300,
    "eval_examples": 500,
    "player": {
        "width": 8,
        "latent": 8,
        "hidden": 64,
        "lr": 2e-3,
        "aux_weight": 1000.0,
        "consistency_weight": 1000.0,
        "likelihood": "laplace",
    },
}


def image_var(k: int, pcfg: dict) -> dict:
    return {
        "name": f"m{k}",
        "recipe": "image",
        "channels": 3,
        "width": pcfg["width"],
        "likelihood": pcfg["likelihood"],
    }


def m2_spec(variables: list[dict], pcfg: dict) -> dict:
    return {
        "variables": variables,
        "latent": pcfg["latent"],
        "hidden": pcfg["hidden"],
        "lr": pcfg["lr"],
        "aux_weight": pcfg["aux_weight"],
        "consistency_weight": pcfg["consistency_weight"],
    }


def data_root(cfg: dict) -> Path:
    if cfg["data"]:
        return Path(cfg["data"])
    return polymnist.ensure_generated(Path("data") / "polymnist-bundled", seed=0).resolve()


def build_setup(cfg: dict, seed: int):
    """Players' specs and private data (Batches) for the game; data of one player never mixes with
    another's. Deterministic in (cfg, seed): every process that calls it cuts the same shards."""
    root = data_root(cfg)
    train, test = polymnist.load(root, "train"), polymnist.load(root, "test")
    m = cfg["modalities"]
    n = len(train["labels"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_clf = int(cfg["classifier_fraction"] * n)
    clf_rows, rest = perm[:n_clf], perm[n_clf:]
    pcfg = cfg["player"]
    specs, data = {}, {}
    pair_rows = rest[: cfg["pair_tuples"] * len(cfg["pairs"])]
    style_rows = rest[len(pair_rows) :].tensor_split(m)
    labels = train["labels"]
    for k in range(m):
        rows = style_rows[k]
        lab = labelled_mask(labels, rows, float(cfg["labelled_fraction"]), seed + k)
        b = polymnist.to_batch(train, [k], rows)
        data[f"style{k}"] = Batch(b.data, {"label": lab})
        specs[f"style{k}"] = m2_spec([image_var(k, pcfg)], pcfg)
    for a, (i, j) in enumerate(cfg["pairs"]):
        rows = pair_rows[a * cfg["pair_tuples"] : (a + 1) * cfg["pair_tuples"]]
        data[f"pair{i}{j}"] = polymnist.to_batch(train, [i, j], rows)
        specs[f"pair{i}{j}"] = m2_spec([image_var(i, pcfg), image_var(j, pcfg)], pcfg)
    if cfg["label_only_examples"]:
        # labels of tuples nobody else holds (the label-only player's own private records)
        rows = clf_rows[: cfg["label_only_examples"]]
        data["labels"] = Batch({"label": labels[rows]})
        specs["labels"] = {"kind": "label"}
    if cfg["mask_player_examples"]:
        x, y = load_mnist("bundled", "train")
        x, y = x[: cfg["mask_player_examples"]], y[: cfg["mask_player_examples"]]
        data["mnist_mask"] = Batch({"label": y, "s": (x >= 128).float()[:, None]})
        specs["mnist_mask"] = m2_spec(
            [{"name": "s", "recipe": "digit_mask", "width": pcfg["width"]}], pcfg
        )
    return specs, data, train, test, clf_rows


def default_alpha(
    names: list[str],
    spaces: dict,
    own_weight: float | None = None,
    weighting: str = "uniform",
) -> torch.Tensor:
    """``own_weight`` on the diagonal, the rest over the players one shares variables with:
    uniformly, or in proportion to the number of values an example of the interface carries
    (``interface_size``: a shared image counts more than a shared label). ``own_weight=None``:
    uniform over own data and those players."""
    if weighting not in ("uniform", "interface_size"):
        raise ValueError(f"unknown partner_weighting {weighting!r}; use uniform or interface_size")
    a = torch.zeros(len(names), len(names), dtype=torch.float64)
    for i, ni in enumerate(names):
        for j, nj in enumerate(names):
            shared = interface(spaces[nj], spaces[ni], (nj, ni)) if i != j else ()
            if shared:
                size = sum(math.prod(spaces[nj][v].event_shape) for v in shared)
                a[i, j] = float(size) if weighting == "interface_size" else 1.0
    partners = a.sum(1, keepdim=True)
    if own_weight is None:
        a += torch.eye(len(names), dtype=torch.float64)
        return a / a.sum(1, keepdim=True)
    a = (1 - own_weight) * a / partners.clamp_min(1)
    a += torch.diag(torch.where(partners[:, 0] > 0, own_weight, 1.0).to(torch.float64))
    return a


_SHARDS: dict[str, tuple[dict, dict]] = {}


def shards(cfg: dict, seed: int) -> tuple[dict, dict]:
    """(specs, private data) of every player, cut once per process."""
    key = json.dumps([cfg, seed], sort_keys=True, default=str)
    if key not in _SHARDS:
        specs, data, *_ = build_setup(cfg, seed)
        _SHARDS[key] = (specs, data)
    return _SHARDS[key]


def central_spec(cfg: dict) -> dict:
    return m2_spec([image_var(k, cfg["player"]) for k in range(cfg["modalities"])], cfg["player"])


def build_host(name: str, cfg: dict, seed: int) -> tuple:
    """Player ``name`` and its private data source, built where the player lives."""
    specs, data = shards(cfg, seed)
    if name == "central":  # the upper bound: pooled data of the style and pair players
        pooled = Batch.merge([b for n, b in data.items() if n.startswith(("style", "pair"))])
        return build_player(central_spec(cfg)), TensorSource(pooled)
    return build_player(specs[name]), TensorSource(data[name])


def game_for(names: list[str], alpha, cfg: dict, args, device) -> Game:
    builders = {n: partial(build_host, n, cfg, args.seed) for n in names}
    specs = host_specs(builders, args.seed, device, cfg["resources"])
    # the alone baseline (alpha = I) has nothing to warm up for; the same rounds either way
    return make_game(specs, alpha, cfg["batch_size"], args, cfg["warmup_rounds"])


@torch.no_grad()
def evaluate(players: dict, style_of: dict, test: dict, clfs: dict, n_eval: int) -> dict:
    """``style_of[k]``: the player that speaks for style k (its classifier and its generator)."""
    labels = test["labels"][:n_eval]
    m = len(clfs)
    acc, fid = {}, {}
    coherence = np.zeros((m, m))
    for k in range(m):
        p = players[style_of[k]]
        x = test["images"][:n_eval, k].float() / 255
        probs = torch.cat(
            [
                p.infer("label", Batch({f"m{k}": x[i : i + 500].to(p.device)})).cpu()
                for i in range(0, len(x), 500)
            ]
        )
        acc[f"m{k}"] = (probs.argmax(-1) == labels).float().mean().item()
        for j in range(m):
            if j == k:
                continue
            q = players[style_of[j]]
            gen = q.sample(len(labels), given=Batch({"label": probs.argmax(-1).to(q.device)}))[
                f"m{j}"
            ].cpu()
            coherence[k, j] = (predict(clfs[j], gen) == labels).float().mean().item()
        gen_k = p.sample(len(labels), given=Batch({"label": labels.to(p.device)}))[f"m{k}"].cpu()
        fid[f"m{k}"] = frechet_distance(features(clfs[k], gen_k), features(clfs[k], x))
    off = coherence[~np.eye(m, dtype=bool)]
    return {
        "accuracy": acc,
        "mean_accuracy": float(np.mean(list(acc.values()))),
        "coherence": coherence.tolist(),
        "mean_coherence": float(off.mean()),
        "fid": fid,
        "mean_fid": float(np.mean(list(fid.values()))),
    }


def save_grids(players: dict, style_of: dict, test: dict, m: int, out: Path, tag: str) -> None:
    with torch.no_grad():
        rows = []
        for k in range(m):
            p = players[style_of[k]]
            rows.append(
                p.sample(10, given=Batch({"label": torch.arange(10, device=p.device)}))[
                    f"m{k}"
                ].cpu()
            )
        tiles = torch.stack(rows)  # m, 10, 3, 28, 28
        img = tiles.permute(0, 3, 1, 4, 2).reshape(m * 28, 280, 3)
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).resize(
            (560, m * 56), Image.NEAREST
        ).save(out / f"generated_{tag}.png")
        # cross-style translation: row = a test image of style k, columns = generated styles from its label
        trows = []
        for k in range(m):
            src = test["images"][k, k].float() / 255
            c = (
                players[style_of[k]]
                .infer("label", Batch({f"m{k}": src[None].to(players[style_of[k]].device)}))
                .argmax(-1)
            )
            cols = [src]
            for j in range(m):
                q = players[style_of[j]]
                cols.append(q.sample(1, given=Batch({"label": c.to(q.device)}))[f"m{j}"][0].cpu())
            trows.append(torch.stack(cols))
        t = torch.stack(trows).permute(0, 3, 1, 4, 2).reshape(m * 28, (m + 1) * 28, 3)
        Image.fromarray((t.numpy() * 255).astype(np.uint8)).resize(
            ((m + 1) * 56, m * 56), Image.NEAREST
        ).save(out / f"translations_{tag}.png")


def main(argv: list[str] | None = None) -> dict:
    p = base_parser("polymnist_cross", __doc__.splitlines()[0])
    p.add_argument(
        "--data", help="PolyMNIST folder (official release or generated); default: generate"
    )
    p.add_argument("--rounds", type=int, help="override the number of rounds")
    args = p.parse_args(argv)
    cfg, device, out = setup("polymnist_cross", args, DEFAULTS, QUICK)
    if args.data:
        cfg["data"] = args.data
    if args.rounds:
        cfg["rounds"] = args.rounds
    t_start = time.perf_counter()
    specs, data, train, test, clf_rows = build_setup(cfg, args.seed)
    m = cfg["modalities"]
    names = list(specs)
    spaces = {n: build_player(spec).space for n, spec in specs.items()}
    alpha = (
        torch.tensor(cfg["alpha"], dtype=torch.float64)
        if cfg["alpha"]
        else default_alpha(names, spaces, cfg["own_weight"], cfg["partner_weighting"])
    )

    # independent per-style classifiers on held-out real data (never seen by any player)
    clfs, clf_acc = {}, {}
    ntest = cfg["eval_examples"]
    for k in range(m):
        x = train["images"][clf_rows, k].float() / 255
        clfs[k] = train_classifier(
            x,
            train["labels"][clf_rows],
            steps=cfg["classifier_steps"],
            seed=args.seed + k,
            device=device,
        )
        clf_acc[f"m{k}"] = (
            (predict(clfs[k], test["images"][:ntest, k].float() / 255) == test["labels"][:ntest])
            .float()
            .mean()
            .item()
        )

    style_of = {k: f"style{k}" for k in range(m)}
    results: dict = {"players": names, "alpha": alpha, "classifier_accuracy": clf_acc}
    timings = {}
    with runtime_session(args):
        # Alone, players do not interact, so only the evaluated (style) players are trained; they
        # come first in ``names``, so their seeds are those they have in the game.
        styles = [f"style{k}" for k in range(m)]
        alone = torch.eye(m, dtype=torch.float64)
        for tag, pl, a in (("game", names, alpha), ("alone", styles, alone)):
            t0 = time.perf_counter()
            game = play(game_for(pl, a, cfg, args, device), tag, cfg["rounds"], cfg, args, out)
            timings[tag] = time.perf_counter() - t0
            results[tag] = evaluate(game.players, style_of, test, clfs, ntest)
            if tag == "game":
                results["bytes_per_round"] = game.bytes_per_round()
                results["exchange"] = game.accounting()
            results.setdefault("events", {})[tag] = game.events
            save_grids(game.players, style_of, test, m, out, tag)
            game.close()

        # centralised upper bound: one M2 model over all styles trained on the pooled data
        t0 = time.perf_counter()
        central = play(
            game_for(["central"], [[1.0]], cfg, args, device),
            "central",
            cfg["rounds"],
            cfg,
            args,
            out,
        )
        timings["central"] = time.perf_counter() - t0
        results["central"] = evaluate(
            central.players, dict.fromkeys(range(m), "central"), test, clfs, ntest
        )
        central.close()
    results["seconds"] = timings
    results["total_seconds"] = time.perf_counter() - t_start

    fig, ax = plt.subplots(figsize=(7, 4))
    w = 0.27
    xs = np.arange(m)
    for o, tag in enumerate(("alone", "game", "central")):
        ax.bar(
            xs + (o - 1) * w, [results[tag]["accuracy"][f"m{k}"] for k in range(m)], w, label=tag
        )
    ax.set_xticks(xs, [f"m{k}" for k in range(m)])
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)
    write_json(out / "results.json", results)

    table = Table(
        title=f"PolyMNIST cross-style ({'quick' if args.quick else 'full'}, {cfg['rounds']} rounds)"
    )
    table.add_column("metric")
    for tag in ("alone", "game", "central"):
        table.add_column(tag)
    for k in range(m):
        table.add_row(
            f"accuracy m{k}",
            *(f"{results[t]['accuracy'][f'm{k}']:.3f}" for t in ("alone", "game", "central")),
        )
    for key, label in (
        ("mean_accuracy", "mean accuracy"),
        ("mean_coherence", "mean coherence"),
        ("mean_fid", "mean FID"),
    ):
        table.add_row(label, *(f"{results[t][key]:.3f}" for t in ("alone", "game", "central")))
    Console().print(table)
    print(f"independent classifiers: {', '.join(f'{k} {v:.3f}' for k, v in clf_acc.items())}")
    print(f"wall time {results['total_seconds']:.0f} s; results in {out}/results.json")
    return results


if __name__ == "__main__":
    main()
