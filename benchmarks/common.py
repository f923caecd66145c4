"""Shared plumbing of benchmarks: arguments, and one JSON line on stdout (and in ``--out``)."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def parser(name: str, description: str | None, device: bool = False) -> argparse.ArgumentParser:
    """A benchmark's parser with the flags every benchmark takes: ``--quick`` and ``--out``
    (``device``: also ``--device cpu|cuda``)."""
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    p.add_argument("--quick", action="store_true", help="fewer timed steps / rounds")
    p.add_argument("--out", type=Path, help="also write the JSON to this file")
    if device:
        p.add_argument(
            "--device", choices=("cpu", "cuda"), default="cpu", help="where the players live"
        )
    return p


def check_device(device: str) -> None:
    """A clear error before any work when ``device`` is cuda and there is none."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")


def synchronize() -> None:
    """Wait for queued CUDA work (if CUDA is in use), so that a timer measures it and not only its
    launch; nothing on the CPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def emit(result: dict, out: Path | None) -> dict:
    """Print ``result`` as one JSON line and write it to ``out`` (a file, or a folder that gets
    ``<benchmark>.json``)."""
    print(json.dumps(result))
    if out:
        if out.is_dir():
            out = out / f"{result['benchmark']}.json"
        out.write_text(json.dumps(result, indent=2))
    return result


def report(name: str, args: argparse.Namespace, **fields) -> dict:
    """Emit ``fields`` with the benchmark's name (``_cuda`` added where ``--device cuda``), torch's
    thread count and its arguments."""
    if getattr(args, "device", "cpu") == "cuda":
        name += "_cuda"
    config = {k: v for k, v in vars(args).items() if k != "out"}
    res = {"benchmark": name, "threads": torch.get_num_threads(), "config": config, **fields}
    return emit(res, args.out)


def alternate_times(
    fns: Sequence[Callable[[], object]], steps: int, warmup: int
) -> list[list[float]]:
    """Seconds of every step of each of ``fns``, called in turn step by step (CUDA work included:
    each step starts and ends synchronised)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(steps):
        for fn, ts in zip(fns, times):
            synchronize()
            t = time.perf_counter()
            fn()
            synchronize()
            ts.append(time.perf_counter() - t)
    return times


def alternate(fns: Sequence[Callable[[], object]], steps: int, warmup: int) -> list[float]:
    """Median seconds of each of ``fns``, called in turn step by step.

    A shared VM's speed drifts over seconds; timing one function's steps and then the
    other's folds that drift into their ratio, alternating cancels most of it."""
    return [statistics.median(ts) for ts in alternate_times(fns, steps, warmup)]


def paired_speedup(slow: Sequence[float], fast: Sequence[float]) -> float:
    """Median over steps of the ratio of two alternated steps' times: drift on the scale of a
    step cancels in each ratio, where a ratio of the two medians still carries it."""
    return statistics.median(a / b for a, b in zip(slow, fast))


def median_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of ``values``: the order statistics k and
    n + 1 - k, with k the largest for which the binomial(n, 1/2) tails outside them hold at most
    ``1 - level`` (so its coverage is at least ``level``); the whole range when n is too small."""
    xs, n = sorted(values), len(values)
    k = 0
    while k + 1 <= n // 2:
        tails = 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        if tails > 1 - level:
            break
        k += 1
    if k == 0:
        return xs[0], xs[-1]
    return xs[k - 1], xs[n - k]


def speedup_fields(slow: Sequence[float], fast: Sequence[float]) -> dict:
    """The paired speed-up (median of the per-step ratios) and its 95% interval."""
    low, high = median_interval([a / b for a, b in zip(slow, fast)])
    return {
        "speedup": round(paired_speedup(slow, fast), 3),
        "speedup_low_95": round(low, 3),
        "speedup_high_95": round(high, 3),
    }
