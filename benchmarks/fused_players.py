"""Round time of a game of same-architecture M2 players: one fused step for all of them against
their one-by-one Pyro steps (``InProcessRuntime(fuse_players=True)``; see ``modalities.m2_fused``).

The players of both games start equal and see the same batches and random streams, so the rounds
do the same work; the two games' rounds are alternated. Reported per player count: the median round
time of each, the median of the per-round ratios (drift-robust, with its distribution-free 95%
interval; the ratio of the medians beside it), and the largest parameter difference after the
timed rounds (float rounding only). Target: >= 1.5x at width 8 on this CPU.

``--demo quick`` (or ``standard``): the five style players of ``polymnist_cross`` at that profile
instead (the experiment's own config: 3-channel images, Laplace likelihood, the consistency term,
the profile's guide and batch size), exchanging with alpha uniform; target >= 2x.
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.common import alternate_times, check_device, parser, report, speedup_fields
from benchmarks.round_overhead import build_game


def demo_game(
    fuse: bool,
    profile: str = "quick",
    compile: bool = False,
    device: str = "cpu",
    precision: str = "fp32",
):
    """The five style players of ``polymnist_cross`` at ``profile`` size, alpha uniform
    (``compile``: their steps compiled, ``player.compile``; ``precision``: ``player.precision``),
    on ``device``."""
    from experiments.polymnist_cross.run import build_host
    from multimodal_game.game import Game
    from multimodal_game.host import builders, host_specs

    cfg = resolve_profile("polymnist_cross", profile)
    cfg["player"].update(compile=compile, precision=precision)
    names = [f"style{k}" for k in range(cfg["modalities"])]
    specs = host_specs(builders(build_host, names, cfg, 0), 0, device)
    alpha = torch.full((len(names), len(names)), 1.0 / len(names), dtype=torch.float64)
    options = {"fuse_players": fuse}
    return Game.from_specs(specs, alpha, batch_size=cfg["batch_size"], runtime_options=options)


def resolve_profile(experiment: str, profile: str) -> dict:
    """``experiment``'s config at ``profile`` (quick, standard, ...), resolved as a run's."""
    import importlib

    from experiments.config import resolve

    pkg = importlib.import_module(f"experiments.{experiment}")
    return resolve(pkg.Config, [getattr(pkg, profile.upper())]).model_dump()


def compare(n: int, args) -> dict:
    if args.demo:
        plain = demo_game(False, args.demo, device=args.device)
        fused = demo_game(True, args.demo, device=args.device)
    else:
        plain = build_game(n, args.batch, args.width, args.device)
        fused = build_game(n, args.batch, args.width, args.device, fuse=True)
    plain_s, fused_s = alternate_times([plain.step, fused.step], args.steps, args.warmup)
    t_plain, t_fused = statistics.median(plain_s), statistics.median(fused_s)
    a, b = plain.runtime.local_players, fused.runtime.local_players
    diff = max(
        (x - y).abs().max().item()
        for name in a
        for x, y in zip(a[name].parameters(), b[name].parameters())
    )
    return {
        "players": n,
        "plain_round_s": round(t_plain, 5),
        "fused_round_s": round(t_fused, 5),
        **speedup_fields(plain_s, fused_s),
        "ratio_of_medians": round(t_plain / t_fused, 3),
        "max_parameter_difference": diff,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = parser("fused_players", __doc__, device=True)
    ap.add_argument("--players", type=int, nargs="+", default=[5, 16])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument(
        "--demo",
        choices=("quick", "standard"),
        help="polymnist_cross's five style players at this profile's size instead",
    )
    args = ap.parse_args(argv)
    check_device(args.device)
    if args.quick:
        args.steps, args.warmup = 20, 3  # 8 alternated rounds left the 5-player ratio +-0.05
    if args.demo:
        args.players = [5]
    runs = [compare(n, args) for n in args.players]
    name = f"fused_players_{args.demo}" if args.demo else "fused_players"
    return report(name, args, target_speedup=2.0 if args.demo else 1.5, runs=runs)


if __name__ == "__main__":
    main()
