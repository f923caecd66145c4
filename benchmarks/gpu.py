"""GPU throughput of one M2 player step: images/s and peak memory at batch 256 and 1024, fp32 and
bf16 autocast, optionally with torch.compile of the networks (compile time reported). Counts the
host-device synchronisations of three game rounds with the profiler (each one stalls the host until
the GPU catches up). Skips cleanly without CUDA."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.common import emit
from benchmarks.player_step import make_batch, make_player


def step_rate(batch_size: int, dtype: str, compile_nets: bool, steps: int) -> dict:
    dev = torch.device("cuda")
    p = make_player().to(dev)
    compile_s = None
    if compile_nets:  # compilation happens at the first call, timed below
        for m in (*p.encoders.values(), *p.decoders.values(), *p.c_encoders.values()):
            m.compile()
    batch = make_batch(batch_size, "mixed").to(dev)
    ctx = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dtype == "bf16"
        else torch.autocast("cuda", enabled=False)
    )
    torch.cuda.reset_peak_memory_stats()
    with ctx:
        t = time.perf_counter()
        p.learn(batch)
        torch.cuda.synchronize()
        first = time.perf_counter() - t
        if compile_nets:
            compile_s = round(first, 2)
        for _ in range(3):
            p.learn(batch)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            p.learn(batch)
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / steps
    return {
        "batch": batch_size,
        "dtype": dtype,
        "compiled": compile_nets,
        "compile_s": compile_s,
        "step_s": round(dt, 5),
        "images_per_s": round(batch_size / dt, 1),
        "peak_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
    }


def sync_count() -> int:
    """Host-device synchronisations seen by the profiler during three game rounds of three
    players (``host_reads.count_cuda_syncs``)."""
    from benchmarks.host_reads import count_cuda_syncs
    from benchmarks.round_overhead import build_game

    game = build_game(3, 256, 16, device="cuda")
    game.step()
    return count_cuda_syncs(lambda: [game.step() for _ in range(3)])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        return emit({"benchmark": "gpu", "skipped": "no CUDA device"}, args.out)
    steps = 10 if args.quick else args.steps
    runs = [step_rate(b, d, False, steps) for b in (256, 1024) for d in ("fp32", "bf16")]
    if args.compile:
        runs += [step_rate(b, "fp32", True, steps) for b in (256, 1024)]
    res = {
        "benchmark": "gpu",
        "device": torch.cuda.get_device_name(),
        "runs": runs,
        "syncs_in_3_rounds": sync_count(),
    }
    return emit(res, args.out)


if __name__ == "__main__":
    main()
