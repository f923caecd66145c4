"""The body of ``experiments.polymnist_cross`` (see there for the set-up): loaded once a run starts, so
that ``--help`` answers without importing torch."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from datasets import polymnist
from datasets.mnist import load_mnist
from datasets.polymnist_classifiers import load_reference_classifiers
from datasets.shards import labelled_mask
from modalities import build_player
from modalities.specs import M2Spec, VariableSpec
from multimodal_game.batch import Batch
from multimodal_game.coherence import evaluate as evaluate_axes
from multimodal_game.errors import ConfigError
from multimodal_game.evaluation import (
    accuracy,
    conditional_samples,
    features,
    linear_probe,
    predict_proba,
    save_grid,
)
from multimodal_game.host import builders
from multimodal_game.judges import JudgeRecipe, cached_judges, score
from multimodal_game.policy import FixedAlpha, OwnPlusPartners
from multimodal_game.sources import TensorSource

from ..baselines import federated_methods, play_federated, plot_accuracy_vs_bytes, run_bytes
from ..common import (
    Run,
    memo,
    preflight,
    say,
    with_overrides,
)


def m2_player(cfg: dict, *styles: int, mask: bool = False) -> dict:
    """The configured player over images m_k of ``styles`` (or the digit mask: ``mask``)."""
    player = M2Spec.model_validate(cfg["player"])
    image = player.variables[0]
    if mask:
        variables = [VariableSpec(name="s", recipe="digit_mask", width=image.width)]
    else:
        variables = [image.model_copy(update={"name": f"m{k}"}) for k in styles]
    return player.model_copy(update={"variables": variables}).model_dump()


def data_root(cfg: dict) -> Path:
    if cfg["data"]:
        return Path(cfg["data"])
    return polymnist.ensure_generated(Path("data") / "polymnist-bundled", seed=0).resolve()


def player_specs(cfg: dict) -> dict[str, dict]:
    """Every game player's spec, in the game's order (style players first)."""
    specs = {f"style{k}": m2_player(cfg, k) for k in range(cfg["modalities"])}
    for i, j in cfg["pairs"]:
        specs[f"pair{i}{j}"] = m2_player(cfg, i, j)
    if cfg["label_only_examples"]:
        specs["labels"] = {"kind": "label"}
    if cfg["mask_player_examples"]:
        specs["mnist_mask"] = m2_player(cfg, mask=True)
    return {name: with_overrides(name, spec, cfg) for name, spec in specs.items()}


def check_data(cfg: dict) -> None:
    """A given PolyMNIST folder, checked as a whole (every missing or mislabelled file named, a
    cache against its checksum) without reading an image; the default folder is generated from the
    bundled digits, or its cache checked."""
    if cfg["data"]:
        polymnist.check_folder(cfg["data"])
    else:  # generated once; a corrupt cache is named and rebuilt here, before config.json
        data_root(cfg)


def check(cfg: dict) -> None:
    """Every player spec and the alpha policy, before any data is read."""
    if cfg["pairs"] and cfg["pair_tuples"] == 0:
        names = ", ".join(f"pair{i}{j}" for i, j in cfg["pairs"])
        raise ConfigError(
            f"pair_tuples = 0 leaves the pair players ({names}) without a single tuple; set "
            "pair_tuples >= 1, or pairs = [] for no pair players"
        )
    preflight(cfg, (player_specs(cfg), policy(cfg)), ({"central": central_spec(cfg)}, None))


def build_setup(cfg: dict, seed: int):
    """Players' specs and private data (Batches) for the game; data of one player never mixes with
    another's. Deterministic in (cfg, seed): every process that calls it cuts the same shards."""
    root = data_root(cfg)
    train, test = polymnist.load(root, "train"), polymnist.load(root, "test")
    m = cfg["modalities"]
    clf_rows, rest = judge_rows(cfg, len(train["labels"]), seed)
    val_rows, rest = rest[: cfg["validation_tuples"]], rest[cfg["validation_tuples"] :]
    specs, data = player_specs(cfg), {}
    pair_rows = rest[: cfg["pair_tuples"] * len(cfg["pairs"])]
    style_rows = rest[len(pair_rows) :].tensor_split(m)
    labels = train["labels"]
    for k in range(m):
        rows = style_rows[k]
        lab = labelled_mask(labels, rows, fraction=cfg["labelled_fraction"], seed=seed + k)
        b = polymnist.to_batch(train, [k], rows)
        data[f"style{k}"] = Batch(b.data, {"label": lab})
    for a, (i, j) in enumerate(cfg["pairs"]):
        rows = pair_rows[a * cfg["pair_tuples"] : (a + 1) * cfg["pair_tuples"]]
        data[f"pair{i}{j}"] = polymnist.to_batch(train, [i, j], rows)
    if cfg["label_only_examples"]:
        # labels of the held-out tuples whose images train the evaluation classifiers (no other
        # player holds these tuples)
        rows = clf_rows[: cfg["label_only_examples"]]
        data["labels"] = Batch({"label": labels[rows]})
    if cfg["mask_player_examples"]:
        x, y = load_mnist("bundled", "train")
        x, y = x[: cfg["mask_player_examples"]], y[: cfg["mask_player_examples"]]
        data["mnist_mask"] = Batch({"label": y, "s": (x >= 128).float()[:, None]})
    validation = {"images": train["images"][val_rows], "labels": labels[val_rows]}
    return specs, data, train, test, clf_rows, validation


JUDGE_ROWS_SEED = 0  # the judges' rows: the first of this seed's order, the same for every seed


def judge_rows(cfg: dict, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the judges' training rows, every other row in the seed's order). The judges' rows are one
    fixed share of the training set (``classifier_fraction``), the same for every seed, so that
    every run and seed is read by the same judges; no player, validation or test row is among
    them. (At seed 0 both are what the run's own permutation gave before judges were fixed.)"""
    n_clf = int(cfg["classifier_fraction"] * n)
    fixed = torch.randperm(n, generator=torch.Generator().manual_seed(JUDGE_ROWS_SEED))[:n_clf]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    free = torch.ones(n, dtype=torch.bool)
    free[fixed] = False
    return fixed, order[free[order]]


def style_accuracy(players: dict, style_of: dict, split: dict, n_eval: int) -> dict[str, float]:
    """Accuracy of q(c | m_k) of the player speaking for each style k on ``split``'s tuples."""
    labels = split["labels"][:n_eval]
    acc = {
        f"m{k}": accuracy(
            predict_proba(players[p], {f"m{k}": split["images"][:n_eval, k].float() / 255}).argmax(
                -1
            ),
            labels,
        )
        for k, p in style_of.items()
    }
    return {**acc, "mean": float(np.mean(list(acc.values())))}


@memo
def player_shards(cfg: dict, seed: int) -> tuple[dict, dict]:
    """(specs, private data) of every player, cut once per process."""
    specs, data, *_ = build_setup(cfg, seed)
    return specs, data


def central_spec(cfg: dict) -> dict:
    return with_overrides("central", m2_player(cfg, *range(cfg["modalities"])), cfg)


def build_host(name: str, cfg: dict, seed: int) -> tuple:
    """Player ``name`` and its private data source, built where the player lives."""
    specs, data = player_shards(cfg, seed)
    if name == "central":  # the upper bound: pooled data of the style and pair players
        pooled = Batch.merge([b for n, b in data.items() if n.startswith(("style", "pair"))])
        return build_player(central_spec(cfg)), TensorSource(pooled)
    return build_player(specs[name]), TensorSource(data[name])


@torch.no_grad()
def test_views(test: dict, m: int, n_eval: int) -> dict[str, torch.Tensor]:
    """The first ``n_eval`` test tuples, one float view per style."""
    return {f"m{k}": test["images"][:n_eval, k].float() / 255 for k in range(m)}


@torch.no_grad()
def judge_features(clfs: dict, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each style judge's features of the real test views: read once a run, for every method's FID."""
    return {f"m{k}": features(clf, views[f"m{k}"]) for k, clf in clfs.items()}


@torch.no_grad()
def evaluate(
    players: dict, style_of: dict, test: dict, clfs: dict, n_eval: int, real: dict | None = None
) -> dict:
    """``style_of[k]``: the player that speaks for style k (its classifier and its generator).
    Accuracy, pairwise coherence, coherence from every subset of styles, joint coherence, label
    fidelity of each player's (c, m_k) samples and their FID in each judge's feature space, in one
    pass (multimodal_game.coherence, judged by the fixed style judges; ``real``: the judges'
    features of the real test views, ``judge_features``); then a linear probe of the latent z."""
    labels = test["labels"][:n_eval]
    m = len(clfs)
    speakers = {f"m{k}": players[style_of[k]] for k in range(m)}
    views = test_views(test, m, n_eval)
    axes = evaluate_axes(
        speakers,
        {"label": labels, **views},
        {f"m{k}": clfs[k] for k in range(m)},
        subset_rows=min(n_eval, SUBSET_ROWS),
        joint_samples=min(n_eval, SUBSET_ROWS),
        real_features=real if real is not None else judge_features(clfs, views),
    )
    coherence = np.zeros((m, m))
    for k, j in itertools.permutations(range(m), 2):
        coherence[k, j] = axes["coherence"][f"m{k}->m{j}"]
    fid, fidelity = axes["fid"], axes["label_fidelity"]
    probe = {}
    for k in range(m):  # linear probe of E_q[z | m_k]: first half of the test tuples fits it
        z = speakers[f"m{k}"].infer("z", Batch({f"m{k}": views[f"m{k}"]}))
        half = len(z) // 2
        probe[f"m{k}"] = linear_probe(z[:half], labels[:half], z[half:], labels[half:])
    return {
        "linear_probe": probe,
        "mean_linear_probe": float(np.mean(list(probe.values()))),
        "accuracy": axes["accuracy"],
        "mean_accuracy": axes["mean_accuracy"],
        "coherence": coherence.tolist(),
        "mean_coherence": axes["mean_coherence"],
        # label from 1 .. M-1 styles, the others generated (the literature's axis), and joint
        "coherence_from_subset": axes["coherence_from_subset"],
        "joint_coherence": axes["joint_coherence"],
        "fid": fid,
        "mean_fid": float(np.mean(list(fid.values()))),
        "label_fidelity": fidelity,
        "mean_label_fidelity": float(np.mean(list(fidelity.values()))),
    }


SUBSET_ROWS = 200  # test tuples of the subset and joint coherences (30 subsets of 5 styles)


def save_grids(players: dict, style_of: dict, test: dict, m: int, out: Path, tag: str) -> None:
    """Generated digits 0-9 per style, and cross-style translations: row k = a style-k test image,
    then each style generated from the label the style-k player reads from it."""
    digits = torch.arange(10)
    rows = [conditional_samples(players[style_of[k]], digits, f"m{k}") for k in range(m)]
    save_grid(torch.stack(rows), out / f"generated_{tag}.png")
    trows = []
    for k in range(m):
        src = test["images"][k, k].float() / 255
        c = predict_proba(players[style_of[k]], {f"m{k}": src[None]}).argmax(-1)
        gen = [conditional_samples(players[style_of[j]], c, f"m{j}")[0] for j in range(m)]
        trows.append(torch.stack([src, *gen]))
    save_grid(torch.stack(trows), out / f"translations_{tag}.png")


def style_judges(cfg: dict, train: dict, test: dict, rows: torch.Tensor, run: Run) -> tuple:
    """The fixed per-style judges (multimodal_game.judges): trained once on the held-out real
    tuples ``rows`` (no style player trains on these images; the label-only player holds their
    labels), scored on the whole test split, kept beside the data and reused by every run, method
    and seed with the same data and recipe."""
    m = cfg["modalities"]
    folder = cfg["judges_cache"] or Path(data_root(cfg)) / "judges"
    judges = cached_judges(
        folder,
        {f"m{k}": train["images"][rows, k] for k in range(m)},
        train["labels"][rows],
        JudgeRecipe(steps=cfg["classifier_steps"]),
        scoring=({f"m{k}": test["images"][:, k] for k in range(m)}, test["labels"]),
        say=say,
    )
    how = "trained and saved to" if judges.trained else "reused from"
    say(f"judges: {how} {str(judges.path)!r}")
    judges.to(run.device)
    return {k: judges.classifiers[f"m{k}"] for k in range(m)}, judges.accuracy


def classifier_accuracy(clfs: dict, test: dict, n: int) -> dict[str, float]:
    """Each style classifier's accuracy on the first ``n`` test tuples."""
    views = {f"m{k}": test["images"][:n, k] for k in clfs}
    return score({f"m{k}": clf for k, clf in clfs.items()}, views, test["labels"][:n])


def plot_accuracy(results: dict, m: int, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = np.arange(m)
    methods = [t for t in results if isinstance(results[t], dict) and "accuracy" in results[t]]
    w = 0.8 / len(methods)
    for o, tag in enumerate(methods):
        accs = [results[tag]["accuracy"][f"m{k}"] for k in range(m)]
        ax.bar(xs + (o - (len(methods) - 1) / 2) * w, accs, w, label=tag)
    ax.set_xticks(xs, [f"m{k}" for k in range(m)])
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)


def policy(cfg: dict):
    if cfg["alpha"]:
        return FixedAlpha(cfg["alpha"])
    return OwnPlusPartners(cfg["own_weight"], cfg["partner_weighting"])


def body(run: Run) -> dict:
    cfg, m = run.cfg, run.cfg["modalities"]
    specs, _, train, test, clf_rows, validation = build_setup(cfg, run.seed)
    with run.timed("classifiers"):  # the evaluation's instrument, independent of every player
        if cfg["reference_classifiers"]:
            clfs = load_reference_classifiers(cfg["reference_classifiers"], m, run.device)
            clf_acc = classifier_accuracy(clfs, test, cfg["eval_examples"])
        else:
            clfs, clf_acc = style_judges(cfg, train, test, clf_rows, run)
    real_features = judge_features(clfs, test_views(test, m, cfg["eval_examples"]))
    styles = [f"style{k}" for k in range(m)]
    # Alone, players do not interact, so only the evaluated (style) players are trained; they
    # come first in the game's players, so their seeds are those they have in the game.
    variants = {
        "game": (list(specs), policy(cfg), dict(zip(range(m), styles))),
        "alone": (styles, torch.eye(m, dtype=torch.float64), dict(zip(range(m), styles))),
        "central": (["central"], [[1.0]], dict.fromkeys(range(m), "central")),
    }
    federated = {method: (every, mu) for method, every, mu in federated_methods(cfg)}
    for method in federated:  # parameter exchange: the style players share an architecture
        variants[method] = (styles, None, dict(zip(range(m), styles)))
    results: dict = {"players": list(specs), "classifier_accuracy": clf_acc, "events": {}}
    wire: dict = {}
    for tag, (names, alpha, style_of) in variants.items():
        hosts = builders(build_host, names, cfg, run.seed)
        if tag in federated:
            game = play_federated(run, tag, hosts, *federated[tag])
            wire[tag] = run_bytes(game, federated[tag][0])
        else:
            game = run.game(tag, hosts, alpha, warmup_rounds=cfg["warmup_rounds"])
            wire[tag] = run_bytes(game) if tag == "game" else 0
        with run.timed(f"{tag}_evaluation"):
            results[tag] = evaluate(
                game.players, style_of, test, clfs, cfg["eval_examples"], real_features
            )
            if cfg["validation_tuples"]:  # what variants are compared on
                results[tag]["validation_accuracy"] = style_accuracy(
                    game.players, style_of, validation, cfg["validation_tuples"]
                )
        results["events"][tag] = game.state.events
        if tag == "game":
            results.update(alpha=game.alpha, exchange=game.accounting())
            results["bytes_per_round"] = game.bytes_per_round()
        if tag in ("alone", "game"):
            save_grids(game.players, style_of, test, m, run.out, tag)
        game.close()
    results["bytes_total"] = wire  # per method: over the wire, the whole run, both directions
    plot_accuracy(results, m, run.out)
    plot_accuracy_vs_bytes(
        {"style players": {t: (wire[t], results[t]["mean_accuracy"]) for t in wire}},
        run.out,
        "mean test accuracy of the style players",
    )
    return run.finish(results)
