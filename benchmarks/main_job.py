"""The main job as a new user runs it: ``python -m experiments.polymnist_cross --quick`` (what
``make demo`` runs) in checkouts that hold no data yet, so that the first run builds the PolyMNIST
cache (and, where the code keeps them, the fixed judges) and a second run reuses what the first
left.

``--checkout DIR`` (repeatable; default: this one) names the checkouts to compare, e.g. two
``git worktree``s of two commits; their runs alternate (first runs in turn, then second runs), with
this interpreter, one at a time (``--runs N``: the first N of that schedule). ``--quick`` changes
nothing: the demo is the quick profile already. Reported per run: the wall time of the whole command, the parts
the run times itself (``results.json`` ``seconds``: the evaluation's classifiers, each method's
training and evaluation), and the figures that must not move (mean accuracy and coherence of each
method). The checkouts' ``data/`` folders are deleted first unless ``--keep-data``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import parser, report

METHODS = ("game", "alone", "central", "fedavg_E10")


def commit(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
    )
    return out.stdout.strip() or str(checkout)


def one_run(checkout: Path, out: Path, extra: list[str]) -> dict:
    """One demo in ``checkout``; its wall time and what its results.json says."""
    cmd = [sys.executable, "-m", "experiments.polymnist_cross", "--quick", "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(
        [*cmd, "--out", str(out), *extra], cwd=checkout, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"the demo in {checkout} failed:\n{done.stderr[-2000:]}")
    res = json.loads((out / "results.json").read_text())
    seconds = res.get("seconds", {})
    row = {
        "wall_s": round(wall, 1),
        "classifiers_s": round(seconds.get("classifiers", 0.0), 1),
        "training_s": round(sum(seconds.get(m, 0.0) for m in METHODS), 1),
        "evaluation_s": round(sum(seconds.get(f"{m}_evaluation", 0.0) for m in METHODS), 1),
    }
    for m in METHODS:
        if m in res:
            row[f"{m}_accuracy"] = round(res[m]["mean_accuracy"], 4)
            row[f"{m}_coherence"] = round(res[m]["mean_coherence"], 4)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = parser("main_job", __doc__)
    ap.add_argument("--checkout", type=Path, action="append", help="a checkout to run it in")
    ap.add_argument("--repeat", type=int, default=2, help="runs per checkout (first, second, ...)")
    ap.add_argument("--keep-data", action="store_true", help="keep each checkout's data/ folder")
    ap.add_argument("--set", action="append", default=[], help="passed on to the demo")
    ap.add_argument("--runs", type=int, help="stop after this many runs, in schedule order")
    args = ap.parse_args(argv)
    checkouts = [c.resolve() for c in (args.checkout or [Path.cwd()])]
    if not args.keep_data:
        for c in checkouts:
            shutil.rmtree(c / "data", ignore_errors=True)
    extra = [x for kv in args.set for x in ("--set", kv)]
    schedule = [(k, i, c) for k in range(args.repeat) for i, c in enumerate(checkouts)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, i, c in schedule[: args.runs]:
            row = one_run(c, Path(tmp) / f"run{i}-{k}", extra)
            rows.append({"commit": commit(c), "run": k + 1, **row})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    args.checkout = [str(c) for c in checkouts]
    return report("main_job", args, runs=rows)


if __name__ == "__main__":
    main()
