"""Images per second of one M2 player's learning step against what the device can compute.

The device's throughput is measured, not looked up: the FLOP/s of a large fp32 matrix product and
of a 3x3 convolution like the players' own. The step's arithmetic is counted by
``torch.utils.flop_counter`` (matrix products and convolutions, forward and backward; elementwise
work is not counted), and its time measured over ``--steps`` steps. Reported per player (width,
batch): step seconds, images per second, FLOPs per image, the achieved GFLOP/s and its fraction of
the matmul and of the convolution peak. A fraction far below 1 says the step is bound by something
other than arithmetic: kernel launches, memory traffic, Python and Pyro's bookkeeping.
"""

from __future__ import annotations

import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import alternate_times, check_device, parser, report
from benchmarks.player_step import make_batch, make_player


def counted_flops(fn) -> int:
    """Matmul and convolution FLOPs of one call of ``fn`` (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def rate(fn, flops: int, repeats: int) -> float:
    """FLOP/s of ``fn`` (``flops`` each call): best of ``repeats`` timed calls after one warm-up."""
    (times,) = alternate_times([fn], repeats, warmup=1)
    return flops / min(times)


def peaks(device: str, repeats: int) -> dict:
    """Measured fp32 FLOP/s of a square matrix product and of a 3x3 convolution on ``device``."""
    n = 4096 if device == "cuda" else 1024
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    x = torch.randn(512 if device == "cuda" else 64, 64, 28, 28, device=device)
    with torch.no_grad():
        return {
            "matmul_flops_per_s": rate(lambda: a @ b, 2 * n**3, repeats),
            "conv_flops_per_s": rate(lambda: conv(x), counted_flops(lambda: conv(x)), repeats),
        }


def step_row(width: int, batch: int, device: str, steps: int, peak: dict) -> dict:
    player = make_player(width).to(device)
    data = make_batch(batch, "mixed").to(device)
    player.learn(data)  # optimiser state and caches exist before counting and timing
    flops = counted_flops(lambda: player.learn(data))
    (times,) = alternate_times([lambda: player.learn(data)], steps, warmup=2)
    step_s = statistics.median(times)
    achieved = flops / step_s
    return {
        "width": width,
        "batch": batch,
        "step_s": round(step_s, 5),
        "images_per_s": round(batch / step_s, 1),
        "flops_per_image": round(flops / batch),
        "achieved_gflop_per_s": round(achieved / 1e9, 1),
        "fraction_of_matmul_peak": round(achieved / peak["matmul_flops_per_s"], 4),
        "fraction_of_conv_peak": round(achieved / peak["conv_flops_per_s"], 4),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = parser("throughput", __doc__, device=True)
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    check_device(args.device)
    if args.quick:
        args.steps = 5
    peak = peaks(args.device, repeats=3 if args.quick else 10)
    runs = [
        step_row(w, b, args.device, args.steps, peak) for w in args.widths for b in args.batches
    ]
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    peak = {k.replace("flops", "gflop"): round(v / 1e9, 1) for k, v in peak.items()}
    return report("throughput", args, device_name=device_name, **peak, runs=runs)


if __name__ == "__main__":
    main()
