"""The body of ``experiments.mixture_inference`` (see there for the set-up): loaded once a run
starts, so that ``--help`` answers without importing torch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from datasets import polymnist
from datasets.mnist import load_mnist
from datasets.shards import labelled_mask
from modalities import build_player
from modalities.specs import M2Spec
from multimodal_game.batch import Batch
from multimodal_game.evaluation import accuracy, predict_proba
from multimodal_game.host import builders
from multimodal_game.judges import train_classifier
from multimodal_game.mixture import infer_proportions
from multimodal_game.sources import TensorSource

from ..common import Run, memo, preflight, table, with_overrides
from ..polymnist_cross.run import check_data as check_polymnist
from ..polymnist_cross.run import data_root

GROUPS = ([0, 1, 2, 3], [4, 5, 6], [7, 8, 9])
SOURCES = {"styles": 5, "digits": 3}


@memo
def pools(cfg: dict, setup: str, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(images in [0, 1], labels) of each source: a PolyMNIST style, or an MNIST digit group."""
    if setup == "styles":
        d = polymnist.load(data_root(cfg), split)
        return [(d["images"][:, k].float() / 255, d["labels"]) for k in range(5)]
    x, y = load_mnist("bundled", split)
    x = x[:, None].float() / 255
    return [(x[torch.isin(y, torch.tensor(g))], y[torch.isin(y, torch.tensor(g))]) for g in GROUPS]


def spec(cfg: dict, setup: str, name: str) -> dict:
    player = M2Spec.model_validate(cfg["player"])
    if setup == "styles":
        image = player.variables[0].model_copy(
            update={"channels": 3, "likelihood": cfg["style_likelihood"]}
        )
        player = player.model_copy(update={"variables": [image]})
    return with_overrides(name, player.model_dump(), cfg)


def check_data(cfg: dict) -> None:
    if "styles" in cfg["setups"]:
        check_polymnist(cfg)


def check(cfg: dict) -> None:
    games = []
    for setup in cfg["setups"]:
        names = [f"src{j}" for j in range(SOURCES[setup])] + ["holder"]
        games.append(({nm: spec(cfg, setup, nm) for nm in names}, None))
    preflight(cfg, *games)


@memo
def holders(cfg: dict, setup: str, seed: int) -> list[dict]:
    """Each holder's true proportions, its examples' sources, images and labels (from the first
    half of each test pool; the second half is left for the joining holder's test set)."""
    g = torch.Generator().manual_seed(seed + 17)
    pool = [(x[: len(x) // 2], y[: len(y) // 2]) for x, y in pools(cfg, setup, "test")]
    lo, hi = cfg["holder_examples"]
    out = []
    for _ in range(cfg["holders"]):
        n = int(torch.randint(lo, hi + 1, (1,), generator=g))
        conc = torch.full((len(pool),), float(cfg["concentration"]))
        pi = torch._standard_gamma(conc, generator=g)
        pi = pi / pi.sum()
        src = torch.multinomial(pi, n, replacement=True, generator=g)
        rows = [torch.randint(len(pool[j][0]), (1,), generator=g).item() for j in src.tolist()]
        x = torch.stack([pool[j][0][r] for j, r in zip(src.tolist(), rows)])
        y = torch.stack([pool[j][1][r] for j, r in zip(src.tolist(), rows)])
        out.append({"true": pi, "sources": src, "x": x, "y": y})
    return out


def build_source(name: str, cfg: dict, setup: str, seed: int, state: str = "") -> tuple:
    """Inherent player ``src{j}`` on its source's training data (its trained state if given)."""
    j = int(name.removeprefix("src"))
    x, y = pools(cfg, setup, "train")[j]
    player = build_player(spec(cfg, setup, name))
    if state:
        player.load_state_dict(torch.load(state, weights_only=True)[name])
    return player, TensorSource(Batch({"label": y, "x": x}))


def build_join(name: str, cfg: dict, setup: str, seed: int, state: str) -> tuple:
    """The joining holder (holder 0, a few of its labels known) or a trained inherent player."""
    if name != "holder":
        return build_source(name, cfg, setup, seed, state)
    h = holders(cfg, setup, seed)[0]
    rows = torch.arange(len(h["y"]))
    lab = labelled_mask(h["y"], rows, fraction=cfg["join_labelled"], seed=seed)
    data = Batch({"label": h["y"], "x": h["x"]}, {"label": lab})
    return build_player(spec(cfg, setup, name)), TensorSource(data, "label", 0.25)


def which_player_baseline(players: dict, names: list, cfg: dict, run: Run) -> torch.nn.Module:
    """A classifier of "which player made this example", trained on the players' own samples."""
    xs, ys = [], []
    for j, nm in enumerate(names):
        xs.append(players[nm].sample(cfg["baseline_samples"])["x"].clamp(0, 1))
        ys.append(torch.full((cfg["baseline_samples"],), j))
    return train_classifier(
        torch.cat(xs), torch.cat(ys), steps=cfg["baseline_steps"], seed=run.seed, device=run.device
    )


@torch.no_grad()
def baseline_proportions(clf: torch.nn.Module, x: torch.Tensor, j: int) -> torch.Tensor:
    dev = next(clf.parameters()).device
    probs = torch.softmax(clf(x.to(dev)), -1)[:, :j].cpu().double()
    p = (probs / probs.sum(1, keepdim=True)).mean(0)
    return p / p.sum()


def infer_all(game, names: list, cfg: dict, setup: str, run: Run) -> dict:
    players = {nm: game.players[nm] for nm in names}
    clf = which_player_baseline(game.players, names, cfg, run)
    rows = []
    for h in holders(cfg, setup, run.seed):
        res = infer_proportions(players, Batch({"x": h["x"]}), cfg["samples"], cfg["prior"])
        empirical = torch.bincount(h["sources"], minlength=len(names)).double() / len(h["sources"])
        base = baseline_proportions(clf, h["x"], len(names))
        rows.append(
            {
                "examples": len(h["sources"]),
                "true": empirical.tolist(),
                "inferred": res.proportions.tolist(),
                "baseline": base.tolist(),
                "mae": (res.proportions - empirical).abs().mean().item(),
                "baseline_mae": (base - empirical).abs().mean().item(),
                "responsibility_accuracy": accuracy(res.responsibilities.argmax(1), h["sources"]),
                "iterations": res.iterations,
            }
        )
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("mae", "baseline_mae", "responsibility_accuracy")
    }
    return {"holders": rows, **{f"mean_{k}": v for k, v in mean.items()}}


def join(cfg: dict, setup: str, names: list, state: Path, inferred: list, run: Run) -> dict:
    """Holder 0 as a new player: alone, with a uniform row, with its inferred proportions."""
    h = holders(cfg, setup, run.seed)[0]
    g = torch.Generator().manual_seed(run.seed + 29)
    pool = [(x[len(x) // 2 :], y[len(y) // 2 :]) for x, y in pools(cfg, setup, "test")]
    src = torch.multinomial(h["true"], cfg["join_test_examples"], replacement=True, generator=g)
    rows = [torch.randint(len(pool[j][0]), (1,), generator=g).item() for j in src.tolist()]
    tx = torch.stack([pool[j][0][r] for j, r in zip(src.tolist(), rows)])
    ty = torch.stack([pool[j][1][r] for j, r in zip(src.tolist(), rows)])
    w, j = cfg["join_own_weight"], len(names)
    rows_src = torch.eye(j + 1, dtype=torch.float64)[:j]
    out = {}
    for variant, mix in (("uniform", [1.0 / j] * j), ("inferred", inferred), ("alone", None)):
        if mix is None:
            everyone, alpha = ["holder"], [[1.0]]
        else:
            holder_row = torch.tensor([*((1 - w) * torch.tensor(mix)).tolist(), w])
            everyone = [*names, "holder"]
            alpha = torch.cat([rows_src, holder_row[None].double()])
        hosts = builders(build_join, everyone, cfg, setup, run.seed, str(state))
        game = run.game(f"{setup}_join_{variant}", hosts, alpha, rounds=cfg["join_rounds"])
        out[variant] = accuracy(predict_proba(game.players["holder"], {"x": tx}).argmax(-1), ty)
        game.close()
    return out


def plot(results: dict, out: Path) -> None:
    setups = [s for s in results if isinstance(results[s], dict) and "holders" in results[s]]
    fig, axes = plt.subplots(1, len(setups), figsize=(4.5 * len(setups), 4), squeeze=False)
    for ax, setup in zip(axes[0], setups):
        hs = results[setup]["holders"]
        true = np.concatenate([h["true"] for h in hs])
        ax.scatter(
            true, np.concatenate([h["baseline"] for h in hs]), s=8, label="which-player classifier"
        )
        ax.scatter(
            true, np.concatenate([h["inferred"] for h in hs]), s=8, label="EM over likelihoods"
        )
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_title(f"{setup}: MAE {results[setup]['mean_mae']:.3f}")
        ax.set_xlabel("true proportion")
        ax.set_ylabel("inferred proportion")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "proportions.png", dpi=120)
    plt.close(fig)


def body(run: Run) -> dict:
    cfg = run.cfg
    results: dict = {}
    rows = []
    for setup in cfg["setups"]:
        names = [f"src{j}" for j in range(SOURCES[setup])]
        game = run.game(
            setup, builders(build_source, names, cfg, setup, run.seed), torch.eye(len(names))
        )
        with run.timed(f"{setup}_inference"):
            results[setup] = infer_all(game, names, cfg, setup, run)
        state = run.out / f"{setup}_players.pt"
        torch.save({n: s["player"] for n, s in game.runtime.state().items()}, state)
        game.close()
        if cfg["join_rounds"]:
            inferred = results[setup]["holders"][0]["inferred"]
            results[setup]["join"] = join(cfg, setup, names, state, inferred, run)
        r = results[setup]
        rows.append(
            [
                setup,
                f"{r['mean_mae']:.3f}",
                f"{r['mean_baseline_mae']:.3f}",
                f"{r['mean_responsibility_accuracy']:.3f}",
            ]
            + (
                [f"{r['join'][v]:.3f}" for v in ("alone", "uniform", "inferred")]
                if "join" in r
                else ["", "", ""]
            )
        )
    plot(results, run.out)
    cols = [
        "setup",
        "MAE (EM)",
        "MAE (classifier)",
        "responsibility acc.",
        "join: alone",
        "uniform",
        "inferred",
    ]
    return run.finish(results, table(f"mixture inference ({run.profile})", cols, rows))
