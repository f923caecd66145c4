"""The body of ``experiments.domain_alpha`` (see there for the set-up): loaded once a run starts,
so that ``--help`` answers without importing torch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from datasets.mnist import check_fashion_mnist, load_fashion_mnist, load_mnist
from datasets.shards import labelled_mask
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.divergence import DivergenceAlpha
from multimodal_game.evaluation import accuracy
from multimodal_game.host import builders
from multimodal_game.policy import FixedAlpha, OwnPlusPartners
from multimodal_game.sources import TensorSource

from ..baselines import federated_methods, play_federated, plot_accuracy_vs_bytes, run_bytes
from ..common import Run, memo, preflight, with_overrides
from ..config import sized

NAMES = ("mnist0", "fashion0", "mnist1", "fashion1")
METHODS = ("alone", "uniform", "divergence", "oracle")


def domain(name: str) -> str:
    return name[:-1]


@memo
def domain_data(cfg: dict, dom: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if dom == "mnist":
        x, y = load_mnist("bundled", split)
    elif cfg["second_domain"] == "fashion":
        x, y = load_fashion_mnist(split, cfg["data_root"] or None)
    else:  # a stand-in second domain that needs no download
        x, y = load_mnist("bundled", split)
        x = 255 - x
    return x[:, None].float() / 255, y


def spec(cfg: dict, name: str, size: dict | None = None) -> dict:
    """``name``'s spec; ``size``: another architecture (the parameter-exchange baselines')."""
    s = sized(cfg["player"], size or cfg["players"][NAMES.index(name)])
    return with_overrides(name, s, cfg)


def check_data(cfg: dict) -> None:
    if cfg["second_domain"] == "fashion":
        check_fashion_mnist(cfg["data_root"] or None)


def check(cfg: dict) -> None:
    if federated_methods(cfg):
        fed = {nm: spec(cfg, nm, cfg["federated_player"]) for nm in NAMES}
        preflight(cfg, (fed, None))
    preflight(cfg, ({nm: spec(cfg, nm) for nm in NAMES}, oracle(cfg)))


def build_host(name: str, cfg: dict, seed: int, size: dict | None = None) -> tuple:
    """Player ``name``: a disjoint shard of its domain's training set, ``labelled`` labels."""
    x, y = domain_data(cfg, domain(name), "train")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + len(domain(name))))
    k = int(name[-1])
    rows = perm[k * cfg["shard_size"] : (k + 1) * cfg["shard_size"]]
    lab = labelled_mask(
        y[rows], torch.arange(len(rows)), min(cfg["labelled"], len(rows)), seed=seed + k
    )
    data = Batch({"label": y[rows], "x": x[rows]}, {"label": lab})
    source = TensorSource(data, "label", cfg["labelled_fraction"])
    return build_player(spec(cfg, name, size)), source


def oracle(cfg: dict) -> torch.Tensor:
    """Partners only within a domain: own_weight on own data, the rest to the same-domain player."""
    w = cfg["own_weight"]
    a = torch.zeros(4, 4, dtype=torch.float64)
    for i, ni in enumerate(NAMES):
        for j, nj in enumerate(NAMES):
            a[i, j] = w if i == j else (1 - w) if domain(ni) == domain(nj) else 0.0
    return a


def partner_share(alpha: torch.Tensor) -> dict[str, float]:
    """Share of each player's partner weight that stays in its own domain."""
    out = {}
    for i, ni in enumerate(NAMES):
        same = sum(
            alpha[i, j].item() for j, nj in enumerate(NAMES) if j != i and domain(nj) == domain(ni)
        )
        out[ni] = same / max(1 - alpha[i, i].item(), 1e-12)
    return out


def plot(acc: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = np.arange(len(NAMES))
    w = 0.8 / len(acc)
    for o, m in enumerate(acc):
        ax.bar(xs + (o - (len(acc) - 1) / 2) * w, [acc[m][n] for n in NAMES], w, label=m)
    ax.set_xticks(xs, NAMES)
    ax.set_ylabel("test accuracy (own domain)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)


def body(run: Run) -> dict:
    cfg = run.cfg
    n = cfg["test_examples"]
    tests = {d: tuple(t[:n] for t in domain_data(cfg, d, "test")) for d in ("mnist", "fashion")}
    acc: dict = {m: {} for m in METHODS}
    learned: dict = {}
    wire: dict = {}  # per method: bytes over the wire, the whole run, both directions
    for method in METHODS:
        if method == "alone":
            policy = torch.eye(4, dtype=torch.float64)
        elif method == "uniform":
            policy = OwnPlusPartners(cfg["own_weight"])
        elif method == "oracle":
            policy = FixedAlpha(oracle(cfg))
        else:
            policy = DivergenceAlpha(
                cfg["own_weight"],
                cfg["temperature"],
                cfg["divergence"],
                every=cfg["update_every"],
                samples=cfg["kl_samples"],
                importance_samples=cfg["importance_samples"],
            )
        hosts = builders(build_host, NAMES, cfg, run.seed)
        game = run.game(method, hosts, policy, warmup_rounds=cfg["warmup_rounds"])
        for nm in NAMES:
            x, y = tests[domain(nm)]
            acc[method][nm] = accuracy(game.players[nm], {"x": x}, y)
        if isinstance(policy, DivergenceAlpha):
            learned = {"alpha": game.alpha.tolist(), "updates": policy.log}
        wire[method] = run_bytes(game) if method != "alone" else 0
        game.close()
    for method, every, mu in federated_methods(cfg):  # one architecture: parameters can average
        hosts = builders(build_host, NAMES, cfg, run.seed, cfg["federated_player"])
        game = play_federated(run, method, hosts, every, mu)
        acc[method] = {}
        for nm in NAMES:
            x, y = tests[domain(nm)]
            acc[method][nm] = accuracy(game.players[nm], {"x": x}, y)
        wire[method] = run_bytes(game, every)
        game.close()
    means = {m: float(np.mean(list(acc[m].values()))) for m in acc}
    share = partner_share(torch.tensor(learned["alpha"]))
    # the alpha each update set, not only the last: the policy is judged by every row it used
    for u in learned["updates"]:
        u["own_domain_partner_share"] = partner_share(torch.tensor(u["alpha"]))
    used = [u for u in learned["updates"] if cfg["warmup_rounds"] <= u["round"] < cfg["rounds"]]
    worst = {n: min(u["own_domain_partner_share"][n] for u in used) for n in NAMES} if used else {}
    targets = {
        "divergence_within_0.01_of_oracle": means["divergence"] >= means["oracle"] - 0.01,
        "divergence_above_uniform_for_every_player": all(
            acc["divergence"][n] > acc["uniform"][n] for n in NAMES
        ),
        "own_domain_partner_share_at_least_0.8": all(v >= 0.8 for v in share.values()),
    }
    plot(acc, run.out)
    results = {
        "accuracy": acc,
        "mean_accuracy": means,
        "learned": learned,
        "own_domain_partner_share": share,
        "worst_own_domain_partner_share": worst,
        "targets": targets,
        "bytes_total": wire,  # per method: over the wire, the whole run, both directions
    }
    plot_accuracy_vs_bytes(
        {"both domains": {m: (b, means[m]) for m, b in wire.items()}},
        run.out,
        "mean test accuracy (own domain)",
    )
    return run.finish(results)
