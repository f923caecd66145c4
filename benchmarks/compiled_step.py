"""torch.compile and channels_last on the image-style (M2) player's step, against the eager step.

Two players with the same initial parameters, one of them changed: ``compile`` compiles its encoders
and decoders (``nn.Module.compile``, inductor; Pyro's model/guide stay eager around them),
``channels_last`` converts its parameters and inputs to that memory format. Reported per batch kind:
the loss of both on the same draw after one step each (they must agree within float tolerance),
the first-step time (for compile: the compile time), the median step of each (alternated) and their ratio, and the
break-even number of steps (compile time / time saved per step). An option is adopted only where
its speed-up is at least 1.3x on this CPU.
"""

from __future__ import annotations

import time

import torch

from benchmarks.common import alternate, parser, report
from benchmarks.player_step import make_batch, make_player
from modalities.m2 import M2Player
from multimodal_game.batch import Batch


def _networks(p: M2Player):
    for group in (p.encoders, p.c_encoders, p.decoders):
        yield from (group or {}).values()


def compiled(p: M2Player) -> M2Player:
    for net in _networks(p):
        net.compile()
    return p


def channels_last(p: M2Player) -> M2Player:
    return p.to(memory_format=torch.channels_last)


def _as_channels_last(batch: Batch) -> Batch:
    data = {
        k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
        for k, v in batch.data.items()
    }
    return Batch(data, {k: batch.observed(k) for k in data})


def _first(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(variant: str, kind: str, args) -> dict:
    batch = make_batch(args.batch, kind)
    plain, fast = make_player(args.width), make_player(args.width)
    fast = compiled(fast) if variant == "compile" else channels_last(fast)
    fast_batch = batch if variant == "compile" else _as_channels_last(batch)
    torch.manual_seed(0)
    first_plain = _first(lambda: plain.learn(batch))
    torch.manual_seed(0)
    first_fast = _first(lambda: fast.learn(fast_batch))  # compiles
    losses = []
    for p, b in ((plain, batch), (fast, fast_batch)):  # same parameters after the same step
        torch.manual_seed(1)
        losses.append(p.loss(b).item())
    t_plain, t_fast = alternate(
        [lambda: plain.learn(batch), lambda: fast.learn(fast_batch)], args.steps, args.warmup
    )
    saved = t_plain - t_fast
    return {
        "variant": variant,
        "batch": kind,
        "loss_plain": losses[0],
        "loss_fast": losses[1],
        "relative_loss_difference": abs(losses[0] - losses[1]) / abs(losses[0]),
        "first_step_plain_s": round(first_plain, 3),
        "first_step_fast_s": round(first_fast, 3),
        "plain_step_s": round(t_plain, 5),
        "fast_step_s": round(t_fast, 5),
        "speedup": round(t_plain / t_fast, 3),
        "break_even_steps": max(0, round((first_fast - first_plain) / saved))
        if saved > 0
        else None,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = parser("compiled_step", __doc__)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=["compile", "channels_last"])
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 8, 2
    runs = [compare(v, kind, args) for v in args.variants for kind in ("labelled", "unlabelled")]
    return report("compiled_step", args, target_speedup=1.3, runs=runs)


if __name__ == "__main__":
    main()
