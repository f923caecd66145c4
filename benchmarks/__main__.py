"""Run the benchmarks, each printing one JSON line: ``python -m benchmarks [--quick] [--out DIR]``.

``--only NAME ...`` picks some. The PolyMNIST generation, SSL, compiled-round and launches
benchmarks are long and run only when named (``--only ssl_mnist``). ``python -m benchmarks.denormals
--checkpoint RUN/base.ckpt`` runs alone: it needs a trained player.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

DEFAULT = [
    "player_step",
    "compiled_step",
    "round_overhead",
    "fused_players",
    "scaling",
    "runtime",
    "memory",
    "classifiers",
    "throughput",
    "gpu",
]
EXTRA = ["polymnist_generate", "ssl_mnist", "compiled_round", "launches", "main_job"]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer timed steps / rounds")
    ap.add_argument("--only", nargs="+", choices=DEFAULT + EXTRA)
    ap.add_argument("--out", type=Path, help="folder for one NAME.json per benchmark")
    args = ap.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only or DEFAULT:
        mod = importlib.import_module(f"benchmarks.{name}")
        sub = ["--quick"] if args.quick and name not in EXTRA else []
        if args.out:
            sub += ["--out", str(args.out / f"{name}.json")]
        results[name] = mod.main(sub)
    return results


if __name__ == "__main__":
    main()
