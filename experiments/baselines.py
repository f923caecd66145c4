"""Parameter exchange beside the game, in any experiment: FedAvg / FedProx games on the same
shards, the bytes every method moves over the whole run, and the accuracy-against-bytes plot."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .common import Run


def federated_methods(cfg: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    """``(method, E, mu)`` of each parameter-exchange run the config asks for."""
    runs = [(f"fedavg_E{e}", e, 0.0) for e in cfg["fedavg_local_steps"]]
    mus = cfg["fedprox_mu"] if isinstance(cfg["fedprox_mu"], list) else [cfg["fedprox_mu"]]
    named = len(mus) > 1  # several mu: each run is named by its mu too
    return runs + [
        (f"fedprox_E{e}" + (f"_mu{mu:g}" if named else ""), e, float(mu))
        for e in cfg["fedprox_local_steps"]
        for mu in mus
    ]


def play_federated(
    run: Run, tag: str, builders: Mapping[str, Callable[[], Any]], every: int, mu: float, **kw: Any
):
    """Players that learn alone (alpha = I) and average their parameters every ``every`` rounds
    through Flower (FedProx with ``mu > 0``); returns the game (the caller closes it)."""
    import torch

    from multimodal_game.federated import ParameterAveraging

    eye = torch.eye(len(builders), dtype=torch.float64)
    return run.game(tag, builders, eye, setup=ParameterAveraging(every, mu).attach, **kw)


def play_distillation(
    run: Run,
    tag: str,
    builders: Mapping[str, Callable[[], Any]],
    pool: Any,
    cfg: Mapping[str, Any],
    **kw: Any,
):
    """Players that learn alone and, every ``cfg['fedmd_every']`` rounds, distil the ensemble of
    their logits on rows of the public ``pool`` (multimodal_game.distillation); returns the game
    and its handler (the caller closes the game)."""
    import torch

    from multimodal_game.distillation import EnsembleDistillation

    distil = EnsembleDistillation(
        pool,
        every=cfg["fedmd_every"],
        rows=cfg["fedmd_rows"],
        steps=cfg["fedmd_steps"],
        lr=cfg["fedmd_lr"],
        seed=run.seed,
    )
    eye = torch.eye(len(builders), dtype=torch.float64)
    return run.game(tag, builders, eye, setup=distil.attach, **kw), distil


def play_fedcvae(
    game: Any, build: Callable[[str], Any], samples: int, steps: int, batch_size: int, seed: int
) -> tuple[dict[str, Any], int, dict[str, list[int]]]:
    """FedCVAE-Ens over ``game``, whose players learnt alone (multimodal_game.fedcvae): each
    player's decoder and labelled class counts go to a server once; the server trains, for each
    player, the classifier of ``build(name)`` (a fresh player of that player's architecture, seeded
    here) on ``samples`` labelled decoder samples for ``steps`` steps. Returns the classifiers by
    player, the bytes over the wire and the class counts the server drew by."""
    import torch

    from multimodal_game.fedcvae import classifier_bytes, decoder_bytes, fedcvae_bytes, fedcvae_ens

    handles = game.players
    counts = {nm: h.data_summary()["class_counts"]["label"] for nm, h in handles.items()}
    names = list(handles)

    def fit(name: str, data: Any) -> Any:
        torch.manual_seed(seed + names.index(name))
        model = build(name)
        model.fit_classifier(data, steps, batch_size, seed)
        return model

    with torch.random.fork_rng(devices=[]):  # the run's own random stream stays untouched
        models, _ = fedcvae_ens(handles, counts, fit, samples, seed=seed)
    up = {nm: int(h.call(decoder_bytes)) for nm, h in handles.items()}
    down = {nm: classifier_bytes(m) for nm, m in models.items()}
    classes = len(next(iter(counts.values())))
    return models, fedcvae_bytes(up, down, classes), counts


def run_bytes(game: Any, every: int | None = None) -> int:
    """Bytes over the wire over the whole run, both directions: the game's synthetic samples
    (``every=None``) or a FedAvg / FedProx run's parameters averaged every ``every`` rounds."""
    from multimodal_game.accounting import parameter_exchange_bytes

    if every is None:
        return int(game.accounting()["synthetic_bytes_total"])
    return parameter_exchange_bytes(game.runtime.param_bytes(), game.state.round, every)


def plot_accuracy_vs_bytes(
    points: Mapping[str, Mapping[str, tuple[float, float]]], out: Path, ylabel: str
) -> Path:
    """``accuracy_vs_bytes.png``: one panel per setting (e.g. a label count), one point per
    method at (bytes over the run, accuracy); methods that move nothing sit at the left edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 4), squeeze=False)
    for ax, (setting, methods) in zip(axes[0], points.items()):
        moved = [b for b, _ in methods.values() if b > 0]
        floor = min(moved) / 10 if moved else 1.0
        for method, (b, acc) in methods.items():
            x = b if b > 0 else floor
            ax.scatter([x], [acc], marker="o" if method.startswith("fed") else "s")
            ax.annotate(method, (x, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("bytes over the wire, whole run (left edge: none)")
        ax.set_ylabel(ylabel)
        ax.set_title(str(setting))
    fig.tight_layout()
    path = Path(out) / "accuracy_vs_bytes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
