"""Round time per player for 2, 4, 8 and 16 small players (alpha uniform, in process).

Every player consumes every other one, so the plan grows as n^2 while each player's batch stays the
same size: a flat curve of round time per player means the game adds no per-pair cost that matters.
"""

from __future__ import annotations

from benchmarks.common import parser, report
from benchmarks.player_step import timed
from benchmarks.round_overhead import build_game


def main(argv: list[str] | None = None) -> dict:
    ap = parser("scaling", __doc__)
    ap.add_argument("--players", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 5
    curve = []
    for n in args.players:
        game = build_game(n, args.batch, args.width)
        t = timed(game.step, args.steps, args.warmup)
        curve.append({"players": n, "round_s": round(t, 5), "per_player_s": round(t / n, 5)})
    base = curve[0]["per_player_s"]
    for c in curve:
        c["per_player_vs_smallest"] = round(c["per_player_s"] / base, 3)
    return report("scaling", args, curve=curve)


if __name__ == "__main__":
    main()
