"""The body of ``experiments.feature_exchange`` (see there for the set-up): loaded once a run
starts, so that ``--help`` answers without importing torch."""

from __future__ import annotations

import numpy as np
import torch

from datasets.mnist import load_mnist
from datasets.shards import labelled_mask
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.evaluation import accuracy
from multimodal_game.host import builders
from multimodal_game.policy import OwnPlusPartners
from multimodal_game.sources import TensorSource
from multimodal_game.statistics import Statistics

from ..common import Run, memo, preflight, with_overrides
from ..config import sized

METHODS = ("alone", "samples", "statistics")


@memo
def features(cfg: dict, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA features (fitted on the public digits, standardised by them) of a split's digits; the
    public digits are the last ``public_examples`` of the training split."""
    from sklearn.decomposition import PCA

    x, y = load_mnist("bundled", "train")
    flat = x.reshape(len(x), -1).double().numpy() / 255
    public = flat[-cfg["public_examples"] :]
    pca = PCA(cfg["dim"], random_state=0).fit(public)
    scale = pca.transform(public).std(0)
    if split == "test":
        x, y = load_mnist("bundled", "test")
        flat = x.reshape(len(x), -1).double().numpy() / 255
    else:
        flat, y = flat[: -cfg["public_examples"]], y[: -cfg["public_examples"]]
    return torch.from_numpy(pca.transform(flat) / scale).float(), y


def spec(cfg: dict, k: int) -> dict:
    s = sized(cfg["player"], cfg["players"][k], dim=cfg["dim"])
    return with_overrides(f"player{k}", s, cfg)


def check(cfg: dict) -> None:
    n = len(cfg["players"])
    specs = {f"player{k}": spec(cfg, k) for k in range(n)}
    preflight(cfg, (specs, OwnPlusPartners(cfg["own_weight"])))


def build_host(name: str, cfg: dict, seed: int) -> tuple:
    k = int(name.removeprefix("player"))
    f, y = features(cfg, "train")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    rows = perm[k * cfg["shard_size"] : (k + 1) * cfg["shard_size"]]
    lab = labelled_mask(
        y[rows], torch.arange(len(rows)), min(cfg["labelled"], len(rows)), seed=seed + k
    )
    data = Batch({"label": y[rows], "f": f[rows]}, {"label": lab})
    return build_player(spec(cfg, k)), TensorSource(data, "label", 0.25)


def body(run: Run) -> dict:
    cfg = run.cfg
    names = [f"player{k}" for k in range(len(cfg["players"]))]
    ft, yt = (t[: cfg["test_examples"]] for t in features(cfg, "test"))
    acc: dict = {}
    exchange: dict = {}
    for method in METHODS:
        alpha = (
            torch.eye(len(names), dtype=torch.float64)
            if method == "alone"
            else OwnPlusPartners(cfg["own_weight"])
        )
        options = {}
        if method == "statistics":
            options = {
                "exchange": "statistics",
                "statistics": Statistics(cfg["statistics_samples"], cfg["covariance"], "sample"),
            }
        hosts = builders(build_host, names, cfg, run.seed)
        game = run.game(
            method, hosts, alpha, warmup_rounds=cfg["warmup_rounds"], game_options=options
        )
        acc[method] = {n: accuracy(game.players[n], {"f": ft}, yt) for n in names}
        if method != "alone":
            a = game.accounting()
            exchange[method] = {
                "bytes_per_round": a["synthetic_all_players_per_round"],
                # client-server FedAvg averaging every step: parameters up, the average down
                "parameters_per_round": a["fedavg_bytes_per_averaging"],
            }
        game.close()
    means = {m: float(np.mean(list(acc[m].values()))) for m in METHODS}
    return run.finish({"accuracy": acc, "mean_accuracy": means, "exchange": exchange})
