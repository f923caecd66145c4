"""Benchmark: PolyMNIST generation from the bundled MNIST (10k tuples x 5 styles) and cache load time."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit
from datasets import polymnist


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.polymnist_generate", description=__doc__)
    p.add_argument("--out", type=Path, help="write the JSON here too")
    p.add_argument("--png", action="store_true", help="also time writing the official PNG layout")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for split in ("train", "test"):
            x, y = polymnist.load_mnist("bundled", split)
            data = polymnist.generate(
                x, y, polymnist.default_backgrounds(), 5, seed=split == "test"
            )
            polymnist.save_cache(data, Path(tmp), split)
            if args.png:
                polymnist.write_png_layout(data, Path(tmp), split)
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = sum(len(polymnist.load(tmp, s)["labels"]) for s in ("train", "test"))
        load = time.perf_counter() - t0
    res = {
        "benchmark": "polymnist_generate",
        "tuples": n,
        "modalities": 5,
        "png": args.png,
        "generate_seconds": round(gen, 3),
        "cache_load_seconds": round(load, 3),
    }
    return emit(res, args.out)


if __name__ == "__main__":
    main()
