"""Exponential-family players converge to the closed-form Nash equilibrium.

Five (by default) Gaussian players with full covariance, each holding its own private 2-D data set,
play the game with a random valid alpha. Two dynamics are run from the same start:
exact best responses (expectations, no sampling) and the actual game with finite synthetic samples
per round. Both are compared with ``equilibrium(alpha, own moments)``.
"""

from __future__ import annotations

import math
import time
from functools import partial

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from rich.console import Console
from rich.table import Table

from multimodal_game.batch import Batch
from multimodal_game.expfam import (
    GaussianPlayer,
    best_response_dynamics,
    data_moments,
    equilibrium,
    spectral_radius,
    stack_moments,
)
from multimodal_game.sources import TensorSource

from .common import base_parser, host_specs, make_game, runtime_session, setup, write_json

DEFAULTS = {
    "players": 5,
    "dim": 2,
    "examples": 2000,
    "batch_size": 8192,
    "rounds": 300,
    "resources": {},  # Ray: per-player {num_cpus, num_gpus}, or "default"
}
QUICK = {"rounds": 120, "batch_size": 4096}


def random_alpha(n: int, generator: torch.Generator) -> torch.Tensor:
    """Rows: alpha_ii in [0.3, 0.7], the rest spread by a Dirichlet(1) draw."""
    diag = 0.3 + 0.4 * torch.rand(n, generator=generator, dtype=torch.float64)
    g = -torch.log(torch.rand(n, n, generator=generator, dtype=torch.float64))
    g.fill_diagonal_(0)
    off = g / g.sum(1, keepdim=True) * (1 - diag)[:, None]
    return off + torch.diag(diag)


def sampling_tolerance(alpha, eq_second, counts, batch_size, d, rounds_avg) -> float:
    """Five standard errors of the time-averaged moments (derivation in the README)."""
    var = eq_second.abs().max().item()  # bounds Var of x and (roughly) of x x^T entries / scale
    var = max(var, var**2)
    noise = max(
        math.sqrt(sum((alpha[i, j].item() ** 2) * var / max(c, 1) for j, c in enumerate(counts[i])))
        for i in range(len(counts))
    )
    min_diag = torch.diagonal(alpha).min().item()
    return 5.0 * noise / min_diag / math.sqrt(rounds_avg)


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


def build_host(k: int, cfg: dict, seed: int) -> tuple:
    """Player k and its private data, built where the player lives."""
    _, data = make_problem(cfg, seed)
    return GaussianPlayer(cfg["dim"]), TensorSource(data[k])


def _moments(player: GaussianPlayer) -> torch.Tensor:
    return player.moments().to(torch.float64).cpu()


def main(argv: list[str] | None = None) -> dict:
    p = base_parser("expfam_equilibrium", __doc__.splitlines()[0])
    p.add_argument("--players", type=int, help="number of players (default 5)")
    args = p.parse_args(argv)
    cfg, device, out = setup("expfam_equilibrium", args, DEFAULTS, QUICK)
    if args.players:
        cfg["players"] = args.players
    n, d = cfg["players"], cfg["dim"]
    alpha, data = make_problem(cfg, args.seed)
    players = {f"player{k}": GaussianPlayer(d) for k in range(n)}
    own = torch.stack([data_moments(pl, b) for pl, b in zip(players.values(), data)])
    closed = equilibrium(alpha, own)
    init = stack_moments(list(players.values()))

    exact = best_response_dynamics(alpha, own, init, cfg["rounds"])
    exact_err = [(m - closed).abs().max().item() for m in exact]

    builders = {f"player{k}": partial(build_host, k, cfg, args.seed) for k in range(n)}
    with runtime_session(args):
        game = make_game(
            host_specs(builders, args.seed, device, cfg.get("resources")),
            alpha,
            cfg["batch_size"],
            args,
        )
        t0 = time.perf_counter()
        game_err, running, avg_from = [], torch.zeros_like(closed), cfg["rounds"] // 2
        for r in range(cfg["rounds"]):
            game.step()
            m = torch.stack([game.call(nm, _moments) for nm in game.names])
            game_err.append((m - closed).abs().max().item())
            if r >= avg_from:
                running += m
        seconds = time.perf_counter() - t0
        game.close()
    learned = running / (cfg["rounds"] - avg_from)
    max_abs_error = (learned - closed).abs().max().item()
    tol = sampling_tolerance(
        alpha,
        closed[:, d:],
        [game.plan().counts(nm) for nm in game.names],
        cfg["batch_size"],
        d,
        cfg["rounds"] - avg_from,
    )
    rho = spectral_radius(alpha)
    first_below = next((t for t, e in enumerate(exact_err) if e < 1e-8), None)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(exact_err, label="exact best responses")
    ax.semilogy(
        range(1, len(game_err) + 1), game_err, label=f"game, {cfg['batch_size']} samples/round"
    )
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

    results = {
        "alpha": alpha,
        "closed_form": closed,
        "learned": learned,
        "learned_final": m,
        "max_abs_error": max_abs_error,
        "sampling_tolerance": tol,
        "within_tolerance": max_abs_error <= tol,
        "rounds": cfg["rounds"],
        "averaged_rounds": cfg["rounds"] - avg_from,
        "spectral_radius": rho,
        "exact_error_per_round": exact_err,
        "game_error_per_round": game_err,
        "exact_rounds_to_1e-8": first_below,
        "game_seconds": seconds,
    }
    write_json(out / "results.json", results)
    table = Table(title="exponential-family game")
    for col in (
        "players",
        "rounds",
        "rho(A)",
        "exact: rounds to 1e-8",
        "game max_abs_error",
        "tolerance",
    ):
        table.add_column(col)
    table.add_row(
        str(n),
        str(cfg["rounds"]),
        f"{rho:.4f}",
        str(first_below),
        f"{max_abs_error:.3g}",
        f"{tol:.3g}",
    )
    Console().print(table)
    print(f"results written to {out}/results.json and {out}/convergence.png")
    return results


if __name__ == "__main__":
    main()
