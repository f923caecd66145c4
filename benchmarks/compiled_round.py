"""Round time of an experiment's own players with their learning step compiled (``compile`` in the
M2 spec: the plain-PyTorch objective through inductor) against the Pyro step, fused or one by one.

Players and data are the experiment's own at the chosen profile: ``polymnist_cross``'s five style
players (alpha uniform) or ``fashion_ssl``'s four players of different widths (100 labels, the
experiment's policy). Four games start equal and see the same batches and streams: ``pyro`` (one
by one, the reference), ``fused`` (players of one architecture in one vmapped step), ``compiled``
(each player its own compiled step) and ``fused_compiled``; with ``--variants`` also
``pyro_bf16``, ``fused_bf16``, ``compiled_bf16`` and ``fused_compiled_bf16`` (``precision =
"bf16"``: the encoders and decoders under bfloat16 autocast, so their parameter difference is bf16
rounding, not float32's). Their rounds are alternated after
``--warmup`` rounds, which include the compiles (timed apart: ``first_rounds_s``, the warm-up's
seconds, against ``warmup`` x the steady round). Reported per variant: the median round, the median
of the per-round ratios to ``pyro`` (drift-robust) with its distribution-free 95% interval, the
compile's extra seconds and the rounds that pay them back, and the largest parameter difference to
``pyro`` (float rounding only, for the float32 variants).
"""

from __future__ import annotations

import statistics
import time

from benchmarks.common import (
    alternate_times,
    check_device,
    parser,
    report,
    speedup_fields,
    synchronize,
)
from benchmarks.fused_players import demo_game, resolve_profile

VARIANTS = {  # name: (fuse_players, compile, precision)
    "pyro": (False, False, "fp32"),
    "fused": (True, False, "fp32"),
    "compiled": (False, True, "fp32"),
    "fused_compiled": (True, True, "fp32"),
    "pyro_bf16": (False, False, "bf16"),
    "fused_bf16": (True, False, "bf16"),
    "compiled_bf16": (False, True, "bf16"),
    "fused_compiled_bf16": (True, True, "bf16"),
}
DEFAULT_VARIANTS = ["pyro", "fused", "compiled", "fused_compiled"]


def build(
    experiment: str,
    profile: str,
    fuse: bool,
    compile: bool,
    precision: str = "fp32",
    device: str = "cpu",
):
    """The experiment's players at ``profile`` size in one game on ``device`` (see the module's
    docstring)."""
    if experiment == "polymnist_cross":
        return demo_game(fuse, profile, compile, device, precision)
    from experiments.fashion_ssl.run import build_host, policy
    from multimodal_game.game import Game
    from multimodal_game.host import builders, host_specs

    cfg = resolve_profile(experiment, profile)
    cfg["player"].update(compile=compile, precision=precision)
    names = [f"player{k}" for k in range(len(cfg["players"]))]
    specs = host_specs(builders(build_host, names, cfg, 0, cfg["labelled"][0]), 0, device)
    options = {"fuse_players": fuse}
    return Game.from_specs(
        specs, policy(cfg), batch_size=cfg["batch_size"], runtime_options=options
    )


def compare(args) -> list[dict]:
    games = {
        v: build(args.experiment, args.profile, *VARIANTS[v], device=args.device)
        for v in args.variants
    }
    first = {}
    for v, g in games.items():  # the warm-up rounds, compiles included, one game at a time
        synchronize()
        t = time.perf_counter()
        for _ in range(args.warmup):
            g.step()
        synchronize()
        first[v] = time.perf_counter() - t
    times = dict(zip(games, alternate_times([g.step for g in games.values()], args.steps, 0)))
    ref = games["pyro"].runtime.local_players
    rows = []
    for v, g in games.items():
        median = statistics.median(times[v])
        extra = max(first[v] - args.warmup * median, 0.0)
        saved = statistics.median(times["pyro"]) - median
        mine = g.runtime.local_players
        diff = max(
            (x - y).abs().max().item()
            for n in ref
            for x, y in zip(ref[n].parameters(), mine[n].parameters())
        )
        rows.append(
            {
                "variant": v,
                "round_s": round(median, 5),
                **speedup_fields(times["pyro"], times[v]),
                "first_rounds_s": round(first[v], 1),
                "compile_s": round(extra, 1),
                "break_even_rounds": (
                    round(extra / saved) if VARIANTS[v][1] and saved > 0 else None
                ),
                "max_parameter_difference": diff,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = parser("compiled_round", __doc__, device=True)
    ap.add_argument(
        "--experiment", choices=("polymnist_cross", "fashion_ssl"), default="polymnist_cross"
    )
    ap.add_argument("--profile", choices=("quick", "standard"), default="quick")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=6)
    args = ap.parse_args(argv)
    check_device(args.device)
    if "pyro" not in args.variants:
        args.variants = ["pyro", *args.variants]
    if args.quick:
        args.steps = 10
    name = f"compiled_round_{args.experiment}_{args.profile}"
    return report(name, args, target_speedup=2.0, runs=compare(args))


if __name__ == "__main__":
    main()
