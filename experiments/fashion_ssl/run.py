"""The body of ``experiments.fashion_ssl`` (see there for the set-up): loaded once a run starts, so
that ``--help`` answers without importing torch."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from datasets.mnist import check_fashion_mnist, load_fashion_mnist, load_mnist
from datasets.shards import Shard, dirichlet, labelled_mask, make_shards
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.distillation import distillation_bytes
from multimodal_game.errors import ConfigError
from multimodal_game.evaluation import accuracy, agreement, conditional_samples
from multimodal_game.host import builders
from multimodal_game.judges import train_classifier
from multimodal_game.noharm import NoHarmAlpha
from multimodal_game.policy import FixedAlpha, OwnPlusPartners
from multimodal_game.sources import TensorSource

from ..baselines import (
    federated_methods,
    play_distillation,
    play_fedcvae,
    play_federated,
    plot_accuracy_vs_bytes,
    run_bytes,
)
from ..common import Run, preflight, with_overrides
from ..config import sized

TRAIN_EXAMPLES = {"fashion": 60000, "mnist": 8000}  # training split of each dataset


def load(cfg: dict, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's images (float, (N, 1, 28, 28) in [0, 1]) and labels; read once per process (the
    tensors are shared: index them, never write into them)."""
    return _load(cfg["dataset"], cfg["data_root"], cfg["download"], split)


@functools.lru_cache(maxsize=4)
def _load(dataset: str, root: str, download: bool, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if dataset == "fashion":
        x, y = load_fashion_mnist(split, root or None, download)
    elif dataset == "mnist":
        x, y = load_mnist("bundled", split)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'fashion' or 'mnist'")
    return x[:, None].float() / 255, y


def player_spec(cfg: dict, k: int, size: dict | None = None) -> dict:
    """Player k's spec; ``size``: another architecture (the parameter-exchange baselines')."""
    spec = sized(cfg["player"], size or cfg["players"][k])
    return with_overrides(f"player{k}", spec, cfg)


def shards(cfg: dict, seed: int, n_labelled: int) -> tuple[torch.Tensor, list[Shard]]:
    """The training rows that the shards split (after the validation split) and each player's
    shard (indices into those rows, which of them are labelled: ``n_labelled``, capped by the
    shard). The partition depends on the seed only, so every method and label count of a run
    sees the same shards; a shard left empty is a ConfigError naming the player."""
    _, y = load(cfg, "train")
    n = len(cfg["players"])
    pool = _permutation(len(y), seed)[cfg["validation_examples"] :]
    pool = pool[: min(len(pool), n * cfg["shard_size"])]
    if cfg["partition"] == "iid":
        return pool, make_shards(
            y[pool], "iid", n, labelled=min(n_labelled, len(pool) // n), seed=seed
        )
    parts = dirichlet(y[pool], n, cfg["beta"], seed, empty_ok=True)
    empty = [f"player{k}" for k, p in enumerate(parts) if len(p) == 0]
    if empty:
        raise ConfigError(
            f"partition = 'dirichlet' with beta = {cfg['beta']} and seed {seed} leaves "
            f"{', '.join(empty)} without a training example; use a larger beta or shard_size, "
            "fewer players or another seed"
        )
    return pool, [
        Shard(
            p, labelled_mask(y[pool], p, min(n_labelled, len(p)), seed=seed + 1 + k, balanced=False)
        )
        for k, p in enumerate(parts)
    ]


def shard_batch(cfg: dict, seed: int, k: int, n_labelled: int) -> Batch:
    """Player k's private shard (see ``shards``) with ``n_labelled`` labels (capped)."""
    x, y = load(cfg, "train")
    pool, parts = shards(cfg, seed, n_labelled)
    shard = parts[k]
    rows, labelled = pool[shard.indices], shard.labelled
    if not cfg["unlabelled"]:  # the paper's players hold their labelled examples only
        rows, labelled = rows[labelled], labelled[labelled]
    return Batch({"label": y[rows], "x": x[rows]}, {"label": labelled})


def shard_summary(batch: Batch) -> dict:
    """What results.json records of a player's shard: its class counts and its labelled ones."""
    y, seen = batch["label"], batch.observed_host("label")
    return {
        "examples": len(y),
        "class_counts": torch.bincount(y, minlength=10).tolist(),
        "labelled": int(seen.sum()),
        "labelled_class_counts": torch.bincount(y[seen], minlength=10).tolist(),
    }


def _permutation(n: int, seed: int) -> torch.Tensor:
    """The training set's order for a seed: its first ``validation_examples`` are the validation
    split, the shards come from the rest."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def public_pool(cfg: dict, seed: int) -> Batch:
    """Unlabelled training images that no shard and no validation row holds: the public pool of
    ensemble distillation."""
    x, _ = load(cfg, "train")
    start = cfg["validation_examples"] + len(cfg["players"]) * cfg["shard_size"]
    rows = _permutation(len(x), seed)[start : start + cfg["public_pool"]]
    return Batch({"x": x[rows]})


def validation_split(cfg: dict, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load(cfg, "train")
    rows = _permutation(len(y), seed)[: cfg["validation_examples"]]
    return x[rows], y[rows]


def build_host(name: str, cfg: dict, seed: int, n_labelled: int, size: dict | None = None) -> tuple:
    """Player ``name`` and its shard, built where the player lives (``size``: see player_spec)."""
    k = int(name.removeprefix("player"))
    source = TensorSource(shard_batch(cfg, seed, k, n_labelled), "label", cfg["labelled_fraction"])
    return build_player(player_spec(cfg, k, size)), source


def discriminative(cfg: dict, k: int, data: Batch, steps: int, run: Run):
    """Method (a)/(d): player k's q(c | x) network alone, trained on ``data``'s labels."""
    torch.manual_seed(run.seed + k)
    p = build_player(player_spec(cfg, k)).to(run.device)
    p.fit_classifier(data, steps, cfg["batch_size"], run.seed)
    return p


def distillation(cfg: dict, L: int, run: Run) -> list:
    """The paper authors' distillation baseline (their ``fmnist/main_dist.py``): the players'
    q(c | x) networks learn side by side, each on batches of its own labelled images, once with
    their labels and once per other player with the labels that player's q(c | x) predicts. Other
    players' classifiers read this player's images: a baseline outside the game's privacy rule."""
    n = len(cfg["players"])
    players = []
    for k in range(n):
        torch.manual_seed(run.seed + k)
        players.append(build_player(player_spec(cfg, k)).to(run.device))
    data = []
    for k in range(n):
        b = shard_batch(cfg, run.seed, k, L)
        rows = b.observed_host("label")
        data.append((b["x"][rows].to(run.device), b["label"][rows].to(run.device)))
    g = torch.Generator().manual_seed(run.seed)
    for _ in range(cfg["discriminative_steps"]):
        for i, p in enumerate(players):
            x, y = data[i]
            idx = torch.randint(len(y), (cfg["batch_size"],), generator=g).to(run.device)
            with torch.no_grad():
                others = [
                    q.c_logits(Batch({"x": x[idx]})).argmax(-1)
                    for j, q in enumerate(players)
                    if j != i
                ]
            labels = torch.cat([y[idx], *others])
            logits = p.c_logits(Batch({"x": x[idx].repeat(n, 1, 1, 1)}))
            loss = torch.nn.functional.cross_entropy(logits, labels)
            p.optim.zero_grad(set_to_none=True)
            loss.backward()
            p.optim.step()
    return players


def fedcvae(
    cfg: dict, game, names: list[str], splits: dict, acc: dict, val: dict, L: int, run: Run
):
    """FedCVAE-Ens over the alone game's players: each gets back a classifier of its own
    architecture trained by the server on its and the others' decoder samples; its scores go into
    ``acc`` / ``val``, and the bytes it moved are returned."""
    steps = cfg["fedcvae_steps"] or cfg["discriminative_steps"]

    def build(name: str):
        return build_player(player_spec(cfg, names.index(name))).to(run.device)

    models, sent, _ = play_fedcvae(
        game, build, cfg["fedcvae_samples"], steps, cfg["batch_size"], run.seed
    )
    for nm in names:
        s = scores(models[nm], splits)
        acc["fedcvae"][nm][L] = s["test"]
        val["fedcvae"][nm][L] = s.get("validation")
    return sent


def scores(player, splits: dict[str, tuple]) -> dict[str, float]:
    """Accuracy of ``player``'s q(c | x) on each named (images, labels) split."""
    return {name: accuracy(player, {"x": x}, y) for name, (x, y) in splits.items()}


def plot(acc: dict, cfg: dict, names: list[str], out: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), sharey=True)
    for ax, nm in zip(axes.flat, names):
        styles = {"discriminative": "o-", "alone": "s-", "game": "^-", "distillation": "d-"}
        for method, style in styles.items():
            if method not in acc:
                continue
            ys = [acc[method][nm][L] for L in cfg["labelled"]]
            ax.plot(cfg["labelled"], ys, style, label=method)
        ax.axhline(acc["central"][nm], color="k", ls="--", label="central (all labels)")
        ax.set_xscale("log")
        ax.set_title(f"{nm} (width {cfg['players'][names.index(nm)]['width']})")
        ax.set_xlabel("labelled examples per player")
        ax.set_ylabel("test accuracy")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_labels.png", dpi=120)
    plt.close(fig)


def body(run: Run) -> dict:
    cfg = run.cfg
    xt, yt = load(cfg, "test")
    # the test split is read for the reported figures only; variants are compared on validation
    splits = {"test": (xt[: cfg["test_examples"]], yt[: cfg["test_examples"]])}
    if cfg["validation_examples"]:
        splits["validation"] = validation_split(cfg, run.seed)
    names = [f"player{k}" for k in range(len(cfg["players"]))]
    federated = federated_methods(cfg)
    fedmd = f"fedmd_E{cfg['fedmd_every']}"
    methods = (
        "discriminative",
        "alone",
        "game",
        *(("distillation",) if cfg["distillation"] else ()),
        *(("no_harm",) if cfg["no_harm"] else ()),
        *(("game_fedarch",) if cfg["game_federated_player"] else ()),
        *(m for m, _, _ in federated),
        *((fedmd,) if cfg["fedmd_every"] else ()),
        *(("fedcvae",) if cfg["fedcvae"] else ()),
    )
    wire: dict = {L: {"discriminative": 0, "alone": 0} for L in cfg["labelled"]}
    acc: dict = {m: {nm: {} for nm in names} for m in methods}
    val: dict = {m: {nm: {} for nm in names} for m in methods}
    judged = ("alone", "game", *(("no_harm",) if cfg["no_harm"] else ()))
    fidelity: dict = {m: {nm: {} for nm in names} for m in judged}
    with run.timed("fidelity_classifier"):  # independent of every player: judges their samples
        xtr, ytr = load(cfg, "train")
        n_clf = cfg["central_examples"] or len(ytr)
        clf = train_classifier(
            xtr[:n_clf], ytr[:n_clf], cfg["discriminative_steps"], seed=run.seed, device=run.device
        )
    classes = torch.arange(10).repeat(max(1, cfg["fidelity_samples"] // 10))
    no_harm_log: dict = {}
    exchange = {}
    actual: dict = {}
    shard_record: dict = {}
    for L in cfg["labelled"]:
        with run.timed(f"discriminative_{L}"):
            for k, nm in enumerate(names):
                data = shard_batch(cfg, run.seed, k, L)
                actual.setdefault(L, {})[nm] = int(data.observed_host("label").sum())
                shard_record.setdefault(L, {})[nm] = shard_summary(data)
                p = discriminative(cfg, k, data, cfg["discriminative_steps"], run)
                s = scores(p, splits)
                acc["discriminative"][nm][L] = s["test"]
                val["discriminative"][nm][L] = s.get("validation")
        if cfg["distillation"]:
            with run.timed(f"distillation_{L}"):
                for nm, p in zip(names, distillation(cfg, L, run)):
                    s = scores(p, splits)
                    acc["distillation"][nm][L] = s["test"]
                    val["distillation"][nm][L] = s.get("validation")
        alone = torch.eye(len(names), dtype=torch.float64)
        games = [("alone", alone, None), ("game", policy(cfg), None)]
        if cfg["no_harm"]:
            games.append(("no_harm", no_harm_policy(cfg, run.seed), None))
        if cfg["game_federated_player"]:  # the game with FedAvg's players
            games.append(("game_fedarch", policy(cfg), cfg["federated_player"]))
        for method, alpha, size in games:
            hosts = builders(build_host, names, cfg, run.seed, L, size)
            game = run.game(f"{method}_L{L}", hosts, alpha, warmup_rounds=cfg["warmup_rounds"])
            for nm in names:
                s = scores(game.players[nm], splits)
                acc[method][nm][L] = s["test"]
                val[method][nm][L] = s.get("validation")
                if method in fidelity:
                    made = conditional_samples(game.players[nm], classes, "x")
                    fidelity[method][nm][L] = agreement(clf, made, classes)
            if method == "alone" and cfg["fedcvae"]:  # the alone players' decoders, sent once
                with run.timed(f"fedcvae_L{L}"):
                    wire[L]["fedcvae"] = fedcvae(cfg, game, names, splits, acc, val, L, run)
            if method == "game":
                exchange[L] = game.accounting()
            if method != "alone":
                wire[L][method] = run_bytes(game)
            if method == "no_harm":
                no_harm_log[L] = getattr(game.policy, "inner", game.policy).log
            game.close()
        for method, every, mu in federated:  # one architecture for all: parameters can average
            hosts = builders(build_host, names, cfg, run.seed, L, cfg["federated_player"])
            game = play_federated(run, f"{method}_L{L}", hosts, every, mu)
            for nm in names:
                s = scores(game.players[nm], splits)
                acc[method][nm][L] = s["test"]
                val[method][nm][L] = s.get("validation")
            wire[L][method] = run_bytes(game, every)
            game.close()
        if cfg["fedmd_every"]:  # different architectures: logits on a public pool, not parameters
            hosts = builders(build_host, names, cfg, run.seed, L)
            pool = public_pool(cfg, run.seed)
            game, distil = play_distillation(run, f"{fedmd}_L{L}", hosts, pool, cfg)
            for nm in names:
                s = scores(game.players[nm], splits)
                acc[fedmd][nm][L] = s["test"]
                val[fedmd][nm][L] = s.get("validation")
            wire[L][fedmd] = distillation_bytes(
                len(names), cfg["fedmd_rows"], 10, game.state.round, cfg["fedmd_every"]
            )
            game.close()
    with run.timed("central"):
        x, y = load(cfg, "train")
        rows = _permutation(len(y), run.seed)[cfg["validation_examples"] :]
        rows = rows[: cfg["central_examples"] or len(rows)]
        everything = Batch({"label": y[rows], "x": x[rows]})
        steps = 2 * cfg["discriminative_steps"]
        acc["central"] = {
            nm: scores(discriminative(cfg, k, everything, steps, run), splits)["test"]
            for k, nm in enumerate(names)
        }
    L0 = min(cfg["labelled"])
    best_alone = {nm: max(acc["alone"][nm][L0], acc["discriminative"][nm][L0]) for nm in names}
    beats = [nm for nm in names if acc["game"][nm][L0] > best_alone[nm]]
    plot(acc, cfg, names, run.out)
    mean = {
        m: {L: float(np.mean([acc[m][nm][L] for nm in names])) for L in cfg["labelled"]}
        for m in wire[L0]
    }
    plot_accuracy_vs_bytes(
        {f"L = {L}": {m: (wire[L][m], mean[m][L]) for m in wire[L]} for L in cfg["labelled"]},
        run.out,
        "mean test accuracy over players",
    )
    results = {
        "accuracy": acc,
        # the same on the validation split (held out of the shards): what variants are chosen by
        "validation_accuracy": val,
        "labelled_actual": actual,
        # per L and player: its shard's size and class counts, labelled and in all
        "shards": shard_record,  # per L: the labels each player really held (capped by the shard)
        # share of each player's (c, x) samples that an independent classifier assigns to c
        "label_fidelity": fidelity,
        "game_beats_both_alone_at_smallest_L": beats,
        "exchange": exchange,
        # per L: each no-harm update's round, held-out scores and alpha
        "no_harm": no_harm_log,
        # per L and method: bytes over the wire over the whole run, both directions
        "bytes_total": wire,
        "mean_accuracy": mean,
    }
    return run.finish(results)


def policy(cfg: dict):
    mode = cfg["batch_composition"]
    if cfg["alpha"]:
        return FixedAlpha(cfg["alpha"], mode)
    return OwnPlusPartners(cfg["own_weight"], composition=mode)


def no_harm_policy(cfg: dict, seed: int) -> NoHarmAlpha:
    """The game's alpha whose diagonal follows each player's accuracy on its own held-out rows
    (player k: the k-th slice of ``no_harm_rows`` of the validation split)."""
    x, y = validation_split(cfg, seed)
    n = cfg["no_harm_rows"]
    held = {
        f"player{k}": Batch({"x": x[k * n : (k + 1) * n], "label": y[k * n : (k + 1) * n]})
        for k in range(len(cfg["players"]))
    }
    return NoHarmAlpha(
        policy(cfg),
        held,
        every=cfg["no_harm_every"],
        start=cfg["warmup_rounds"],
        tolerance=cfg["no_harm_tolerance"],
    )


def check_data(cfg: dict) -> None:
    """The data files, before any work (a download happens in the run)."""
    if cfg["dataset"] == "fashion" and not cfg["download"]:
        check_fashion_mnist(cfg["data_root"] or None)


def check_seed(cfg: dict, seed: int) -> None:
    """The seed's shards, before any work: none may be empty (see ``shards``); one warning names
    every label count that some shard cannot hold, with those shards."""
    _, parts = shards(cfg, seed, min(cfg["labelled"]))  # a shard's size does not depend on L
    short = []
    for n_labelled in sorted(set(cfg["labelled"])):
        small = [f"player{k} ({len(p)})" for k, p in enumerate(parts) if len(p) < n_labelled]
        if small:
            short.append(f"{n_labelled} labels asked for, but {', '.join(small)} hold fewer")
    if short:
        warnings.warn(
            f"seed {seed}: {'; '.join(short)} examples: each gets its whole shard labelled "
            "(results.json 'labelled_actual')",
            stacklevel=2,
        )


def check(cfg: dict) -> None:
    """Every player spec and the alpha policy (and the baselines' one architecture), before any
    work."""
    if cfg["no_harm"] and cfg["no_harm_rows"] * len(cfg["players"]) > cfg["validation_examples"]:
        raise ConfigError(
            f"no_harm_rows: {cfg['no_harm_rows']} rows for each of {len(cfg['players'])} players "
            f"do not fit in validation_examples = {cfg['validation_examples']}"
        )
    if cfg["fedmd_every"]:
        train = TRAIN_EXAMPLES[cfg["dataset"]]
        spare = train - cfg["validation_examples"] - len(cfg["players"]) * cfg["shard_size"]
        if spare < cfg["public_pool"] or cfg["public_pool"] == 0:
            raise ConfigError(
                f"fedmd_every: ensemble distillation needs public_pool = {cfg['public_pool']} "
                f"training images beyond the shards and the validation split; {max(spare, 0)} "
                f"are left (shrink shard_size, or fedmd_every = 0)"
            )
    names = [f"player{k}" for k in range(len(cfg["players"]))]
    game = ({nm: player_spec(cfg, k) for k, nm in enumerate(names)}, policy(cfg))
    fed = {nm: player_spec(cfg, k, cfg["federated_player"]) for k, nm in enumerate(names)}
    preflight(cfg, game, *([(fed, None)] if federated_methods(cfg) else []))
