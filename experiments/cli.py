"""``mmgame``: one command-line entry for experiments, data, benchmarks and results pages.

    mmgame run polymnist-cross --quick      (= python -m experiments.polymnist_cross --quick)
    mmgame data polymnist generate --out DIR
    mmgame data download fashion --root data
    mmgame bench --quick
    mmgame report render

Everything after the sub-command goes to the tool it names, so ``mmgame run NAME --help`` shows
that experiment's options. ``python -m ...`` keeps working.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

DATA = {"polymnist": "datasets.polymnist", "download": "datasets.download"}


def _call(module: str, argv: Sequence[str]) -> object:
    return importlib.import_module(module).main(list(argv))


def experiments() -> dict[str, str]:
    """``mmgame run`` names -> modules, from the registry."""
    from .registry import registry

    return {e.command: e.module.__name__ for e in registry().values()}


def main(argv: Sequence[str] | None = None) -> object:
    argv = list(sys.argv[1:] if argv is None else argv)
    known = experiments()
    p = argparse.ArgumentParser(prog="mmgame", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help=f"run an experiment: {', '.join(known)}", add_help=False)
    sub.add_parser("data", help=f"generate or show a data set: {', '.join(DATA)}", add_help=False)
    sub.add_parser("bench", help="run the benchmarks (python -m benchmarks)", add_help=False)
    sub.add_parser("report", help="results pages (python -m experiments.report)", add_help=False)
    cmd = p.parse_args(argv[:1]).cmd
    if cmd in ("run", "data"):
        table = known if cmd == "run" else DATA
        usage = f"usage: mmgame {cmd} {{{','.join(table)}}} [options]"
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            p.exit(0 if len(argv) > 1 else 2, usage + "\n")
        if argv[1] not in table:
            p.exit(2, f"{usage}\nmmgame {cmd}: error: invalid choice: {argv[1]!r}\n")
        return _call(table[argv[1]], argv[2:])
    return _call("benchmarks.__main__" if cmd == "bench" else "experiments.report", argv[1:])


if __name__ == "__main__":
    main()
