"""The body of ``experiments.expfam_equilibrium`` (see there for the set-up): loaded once a run starts, so
that ``--help`` answers without importing torch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from multimodal_game.batch import Batch
from multimodal_game.expfam import (
    GaussianPlayer,
    best_response_dynamics,
    data_moments,
    equilibrium,
    gaussian_statistic_cov,
    gaussian_statistics,
    spectral_radius,
    stack_moments,
    time_average_sd,
)
from multimodal_game.host import builders
from multimodal_game.sources import FullSource, TensorSource
from multimodal_game.statistics import Statistics

from ..common import Run


def random_alpha(n: int, generator: torch.Generator) -> torch.Tensor:
    """Rows: alpha_ii in [0.3, 0.7], the rest spread by a Dirichlet(1) draw."""
    diag = 0.3 + 0.4 * torch.rand(n, generator=generator, dtype=torch.float64)
    g = -torch.log(torch.rand(n, n, generator=generator, dtype=torch.float64))
    g.fill_diagonal_(0)
    off = g / g.sum(1, keepdim=True) * (1 - diag)[:, None]
    return off + torch.diag(diag)


Z_THRESHOLD = (
    4.0  # max |error| / SD over all moments; P(max > 4) ~ 1e-3 for 5 x 6 normal components
)


def standardised_error(
    alpha,
    counts,
    closed: torch.Tensor,
    data: list[Batch],
    learned: torch.Tensor,
    rounds_avg: int,
    own_exact: bool = False,
) -> torch.Tensor:
    """(time-averaged moments - closed form) / SD of that average, per player and moment: the SD
    from the sampled best responses' noise propagated through (I - A)^-1 (``time_average_sd``).
    ``own_exact``: own data are read in full every round (``FullSource``), without noise."""
    d = data[0]["x"].shape[1]
    data_cov = [torch.cov(gaussian_statistics(b["x"]).T, correction=0) for b in data]
    if own_exact:
        data_cov = [torch.zeros_like(c) for c in data_cov]
    model_cov = [gaussian_statistic_cov(m, d) for m in closed]
    sd = time_average_sd(alpha, counts, model_cov, data_cov, rounds_avg)
    return (learned - closed) / sd


def make_problem(cfg: dict, seed: int) -> tuple[torch.Tensor, list[Batch]]:
    """The random alpha matrix and every player's private data, deterministic in (cfg, seed)."""
    n, d = cfg["players"], cfg["dim"]
    gen = torch.Generator().manual_seed(seed)
    alpha = random_alpha(n, gen)
    data = []
    for _ in range(n):
        centre = 3.0 * torch.randn(d, generator=gen)
        scale = 0.5 + torch.rand(d, generator=gen)
        data.append(Batch({"x": centre + scale * torch.randn(cfg["examples"], d, generator=gen)}))
    return alpha, data


def build_host(name: str, cfg: dict, seed: int, full: bool = False) -> tuple:
    """Player ``name`` and its private data, built where the player lives (``full``: every round
    learns from all of it, as exact best responses do)."""
    _, data = make_problem(cfg, seed)
    own = data[int(name.removeprefix("player"))]
    return GaussianPlayer(cfg["dim"]), FullSource(own) if full else TensorSource(own)


def _moments(player: GaussianPlayer) -> torch.Tensor:
    return player.moments().to(torch.float64).cpu()


class MomentTracker:
    """After every round: the players' moments, their error to the closed form, and their running
    sum over the second half of the rounds."""

    def __init__(self, closed: torch.Tensor, avg_from: int):
        self.closed, self.avg_from = closed, avg_from
        self.errors: list[float] = []
        self.sum = torch.zeros_like(closed)
        self.last = closed

    def __call__(self, game) -> None:
        self.last = torch.stack([game.call(nm, _moments) for nm in game.names])
        self.errors.append((self.last - self.closed).abs().max().item())
        if game.state.round > self.avg_from:
            self.sum += self.last


def plot(
    exact_err: list, game_err: list, rho: float, batch_size: int, out: Path, stats_err: list
) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(exact_err, label="exact best responses")
    ax.semilogy(range(1, len(game_err) + 1), game_err, label=f"game, {batch_size} samples/round")
    if stats_err:
        ax.semilogy(range(1, len(stats_err) + 1), stats_err, ":", lw=2, label="game, statistics")
    ax.semilogy(
        [exact_err[0] * rho**t for t in range(len(exact_err))],
        "--",
        label=f"rho(A)^t, rho={rho:.3f}",
    )
    ax.set_ylim(1e-16, None)
    ax.set_xlabel("round")
    ax.set_ylabel("max |mu - mu*|")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
    plt.close(fig)


def body(run: Run) -> dict:
    cfg = run.cfg
    n, d, rounds = cfg["players"], cfg["dim"], cfg["rounds"]
    alpha, data = make_problem(cfg, run.seed)
    players = [GaussianPlayer(d) for _ in range(n)]
    own = torch.stack([data_moments(pl, b) for pl, b in zip(players, data)])
    closed = equilibrium(alpha, own)
    exact = best_response_dynamics(alpha, own, stack_moments(players), rounds)
    exact_err = [(m - closed).abs().max().item() for m in exact]
    avg_from = rounds // 2
    tracker = MomentTracker(closed, avg_from)
    names = [f"player{k}" for k in range(n)]
    game = run.game("game", builders(build_host, names, cfg, run.seed), alpha, on_round=tracker)
    counts = [game.plan().counts(nm) for nm in names]
    sample_bytes = game.accounting()["synthetic_all_players_per_round"]
    game.close()
    stats: dict = {}
    if cfg["statistics"]:
        stats_tracker = MomentTracker(closed, rounds)
        hosts = builders(build_host, names, cfg, run.seed, True)
        options = {"exchange": "statistics", "statistics": Statistics(draw="sigma")}
        game = run.game("statistics", hosts, alpha, on_round=stats_tracker, game_options=options)
        err = stats_tracker.errors
        stats = {
            "statistics_error_per_round": err,
            "statistics_final_error": err[-1],
            "statistics_rounds_to_1e-8": next((t + 1 for t, e in enumerate(err) if e < 1e-8), None),
            "bytes_per_round": {
                "statistics": game.accounting()["synthetic_all_players_per_round"],
                "samples": sample_bytes,
            },
        }
        game.close()
    learned = tracker.sum / (rounds - avg_from)
    max_abs_error = (learned - closed).abs().max().item()
    z = standardised_error(alpha, counts, closed, data, learned, rounds - avg_from)
    max_z = z.abs().max().item()
    rho = spectral_radius(alpha)
    first_below = next((t for t, e in enumerate(exact_err) if e < 1e-8), None)
    plot(
        exact_err,
        tracker.errors,
        rho,
        cfg["batch_size"],
        run.out,
        stats.get("statistics_error_per_round", []),
    )
    results = {
        "alpha": alpha, "closed_form": closed, "learned": learned, "learned_final": tracker.last,
        "max_abs_error": max_abs_error, "max_standardised_error": max_z,
        "standardised_error": z, "z_threshold": Z_THRESHOLD, "within_tolerance": max_z <= Z_THRESHOLD,
        "rounds": rounds, "averaged_rounds": rounds - avg_from, "spectral_radius": rho,
        "exact_error_per_round": exact_err, "game_error_per_round": tracker.errors,
        "exact_rounds_to_1e-8": first_below, **stats,
    }  # fmt: skip
    return run.finish(results)
