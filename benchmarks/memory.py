"""Peak resident memory (RSS) of a 5-style PolyMNIST quick run, measured in a child process."""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    ap.add_argument("--rounds", type=int, default=300, help="rounds of the quick run")
    ap.add_argument("--quick", action="store_true", help="30 rounds (memory peaks early)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rounds = 30 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "experiments.polymnist_cross",
            "--quick",
            "--rounds",
            str(rounds),
        ]
        cmd += ["--out", tmp, "--no-progress", "--device", "cpu"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
    # ru_maxrss of waited-for children, in KiB on Linux
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = {
        "benchmark": "memory",
        "run": f"polymnist_cross --quick --rounds {rounds}",
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "seconds": round(seconds, 1),
    }
    return emit(res, args.out)


if __name__ == "__main__":
    main()
