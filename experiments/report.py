"""Results pages regenerated from ``results.json`` files, never edited by hand.

``docs/results/<name>.json`` keeps one run: what ran (command, conditions, date, config) and what it
measured (its ``results.json``). ``docs/results.template.md`` is prose with markers
``<!-- table: NAME -->``; ``render`` replaces each marker with the table of record NAME and writes
``docs/results.md``. Benchmarks: ``docs/benchmarks/<name>.json`` (the JSON a benchmark prints) and
``docs/benchmarks.template.md`` -> ``docs/benchmarks.md``.

    python -m experiments.report add runs/pc-quick --as polymnist_cross_quick --command "make demo"
    python -m experiments.report add-bench runs/bench --note "2-core VM, nothing else running"
    python -m experiments.report render
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .tables import MISSING, fmt, is_stat, lookup, md_table, number

DOCS = Path(__file__).resolve().parents[1] / "docs"
MARKER = re.compile(r"<!-- table: ([\w.-]+) -->")
# a number in prose: {{RECORD:dotted.path}} or {{RECORD:dotted.path:format}} (format: Python's,
# e.g. .3f, +.3f, ,.0f; default .3f), read from record RECORD's "results"
VALUE = re.compile(r"\{\{([\w.-]+):([^:}]+)(?::([^}]+))?\}\}")


def _mean_accuracy(res: dict, method: str, setting: str | None) -> Any:
    """A method's mean accuracy over players (per label count where the record has several)."""
    means = res.get("mean_accuracy")
    if isinstance(means, dict) and method in means:
        m = means[method]
        return m[setting] if setting is not None and isinstance(m, dict) and setting in m else m
    return res[method]["mean_accuracy"]  # polymnist_cross: one record per method


def wire_table(res: dict) -> str:
    """Accuracy against bytes over the wire (whole run, both directions), one row per method
    (and label count): the table behind ``accuracy_vs_bytes.png``."""
    wire = res["bytes_total"]
    nested = all(isinstance(v, dict) and "mean" not in v for v in wire.values())
    settings = list(wire) if nested else [None]
    rows = []
    for s in settings:
        for method, b in (wire[s] if s is not None else wire).items():
            rows.append(
                [
                    *([f"L = {s}"] if s is not None else []),
                    method,
                    fmt(_mean_accuracy(res, method, s)),
                    f"{number(b):,.0f}",
                ]
            )
    cols = [*(["labels"] if nested else []), "method", "mean accuracy", "bytes over the run"]
    return md_table(cols, rows)


def render_record(record: dict) -> str:
    """A record's table, preceded by the command and conditions that produced it."""
    if "benchmark" in record:
        return render_benchmark(record)
    results = record["results"]
    module = _module(record["experiment"])
    table = getattr(module, "TABLE", None)  # the experiment's declared table, if it has one
    if "summary" in results and "seeds" in results:
        if table is not None and table.seeds == "table":
            listed = ", ".join(map(str, results["seeds"]))
            body = f"Seeds {listed}; mean +- std over seeds.\n\n"
            body += table.render(results["summary"], record["config"])
        else:
            body = render_seeds(results, None if table is None else table.seed_keys)
    elif table is not None:
        body = table.render(results, record["config"])
    else:  # an experiment without a table of its own: every number it reported
        body = render_numbers(results)
    summary = results.get("summary", results)
    if "bytes_total" in summary:
        body += "\n\n" + wire_table(summary)
    secs = record["results"].get("total_seconds")
    wall = f", {secs:.0f} s" if secs is not None else ""
    head = f"`{record['command']}` ({record['date']}{wall}; {record['conditions']})"
    return head + "\n\n" + body


def render_seeds(results: dict, keys: Sequence[str] | None = None) -> str:
    """A multi-seed record: mean +- std (and the values) of each number, one row per number."""
    rows = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if is_stat(node):
            vals = ", ".join(fmt(v) for v in node["values"])
            rows.append([".".join(path), f"{fmt(node['mean'])} +- {fmt(node['std'])}", vals])
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))

    for k, v in results["summary"].items():
        if keys is None or k in keys:
            walk(v, (k,))
    seeds = ", ".join(map(str, results["seeds"]))
    return f"Seeds {seeds}; std over seeds.\n\n" + md_table(
        ["result", "mean +- std", "per seed"], rows
    )


def _registered() -> list[str]:
    from .registry import registry

    return list(registry())


def _module(experiment: str) -> Any:
    """The experiment's package (its declared ``TABLE``), or None for an experiment no longer
    registered."""
    from .registry import registry

    found = registry().get(experiment)
    return None if found is None else found.module


def render_numbers(results: dict) -> str:
    """A one-seed record of any experiment: one row per number (timings left out)."""
    rows = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, bool) or not isinstance(node, (int, float, dict)):
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, str(k)))
        else:
            rows.append([".".join(path), fmt(node) if isinstance(node, float) else node])

    for k, v in results.items():
        if k not in ("seconds", "total_seconds"):
            walk(v, (k,))
    return md_table(["result", "value"], rows)


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def render_benchmark(b: dict) -> str:
    """Scalars as one line, lists of flat dicts as tables."""
    scalars = {k: v for k, v in b.items() if _scalar(v) and k not in ("benchmark",)}
    parts = [
        f"**{b['benchmark']}** ({b.get('date', '')}; {b.get('conditions', '')}): "
        + ", ".join(f"{k} = {v}" for k, v in scalars.items() if k not in ("date", "conditions"))
    ]
    for k, v in b.items():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            cols = [c for c in v[0] if all(_scalar(r.get(c)) for r in v)]
            parts.append(md_table(cols, [[r.get(c) for c in cols] for r in v]))
        elif isinstance(v, dict) and v and k != "config" and all(map(_scalar, v.values())):
            parts.append(f"{k}:\n\n" + md_table(list(v), [list(v.values())]))
    return "\n\n".join(parts)


def analyses() -> dict[str, Callable[[Path], str]]:
    """The derived tables of ``experiments.analyses`` (comparisons across records: targets,
    variants, the paper's figures), by marker name."""
    from experiments import analyses as module

    return dict(module.ANALYSES)


def render(template: Path, records: Path) -> str:
    """The template with every marker replaced by its record's table."""

    derived = analyses()

    def table(match: re.Match) -> str:
        if match.group(1) in derived:
            return derived[match.group(1)](records)
        path = records / f"{match.group(1)}.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{template.name} names record {match.group(1)!r}: {path} is missing"
            )
        return render_record(json.loads(path.read_text()))

    def value(match: re.Match) -> str:
        return f"{record_value(records, match.group(1), match.group(2)):{match.group(3) or '.3f'}}"

    note = "<!-- generated by `python -m experiments.report render` from docs/*/ JSON records; edit the template -->\n"
    return note + VALUE.sub(value, MARKER.sub(table, template.read_text()))


def record_value(records: Path, name: str, path: str) -> Any:
    """The number at dotted ``path`` in record ``name``'s results (a seed summary's mean where
    the path ends at one); a missing record or key is an error naming it."""
    file = records / f"{name}.json"
    if not file.is_file():
        raise FileNotFoundError(f"a value names record {name!r}: {file} is missing")
    results = json.loads(file.read_text())["results"]
    node = lookup(results, path)
    if node is MISSING:
        keys = path.split(".")
        stop = next(
            k for n, k in enumerate(keys) if lookup(results, ".".join(keys[: n + 1])) is MISSING
        )
        raise KeyError(f"record {name!r} has no {path!r} (stops at {stop!r})")
    return node["mean"] if isinstance(node, dict) and "mean" in node else node


def pages(docs: Path = DOCS) -> list[tuple[Path, Path, Path]]:
    """(template, records folder, page) of every generated page: ``results.md`` (the summary),
    one ``results_<topic>.md`` per topic, and ``benchmarks.md``."""
    found = [(t, "results") for t in sorted(docs.glob("results*.template.md"))]
    found += [(t, "benchmarks") for t in sorted(docs.glob("benchmarks.template.md"))]
    return [(t, docs / rec, t.with_name(t.name.replace(".template.md", ".md"))) for t, rec in found]


def render_all(docs: Path = DOCS) -> dict[Path, str]:
    return {page: render(tpl, records) for tpl, records, page in pages(docs)}


def add(
    run: Path,
    name: str,
    command: str,
    conditions: str,
    docs: Path = DOCS,
    experiment: str | None = None,
) -> Path:
    """Keep run folder ``run`` (its config.json and results.json) as record ``name``
    (``experiment``: for run folders whose config.json does not name it)."""
    results = json.loads((run / "results.json").read_text())
    seed_runs = sorted(run.glob("seed*/config.json"))
    config_path = (
        run / "config.json" if (run / "config.json").is_file() or not seed_runs else seed_runs[0]
    )
    config = json.loads(config_path.read_text())
    if experiment:
        config.setdefault("experiment", experiment)
    known = sorted(_registered())
    if config.get("experiment") not in known:
        raise ValueError(f"{run}/config.json names no known experiment ({known})")
    record = {
        "experiment": config["experiment"],
        "command": command,
        "conditions": conditions,
        "date": time.strftime("%Y-%m-%d"),
        "config": config,
        "results": results,
    }
    path = docs / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def add_benchmarks(folder: Path, conditions: str, docs: Path = DOCS) -> list[Path]:
    out = []
    for f in sorted(folder.glob("*.json")):
        b = json.loads(f.read_text())
        b.update(date=time.strftime("%Y-%m-%d"), conditions=conditions)
        path = docs / "benchmarks" / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(b, indent=1) + "\n")
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m experiments.report", description=__doc__.splitlines()[0]
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add", help="keep a run folder's results as a record")
    a.add_argument("run", type=Path)
    a.add_argument(
        "--as", dest="name", required=True, help="record name, e.g. polymnist_cross_quick"
    )
    a.add_argument("--command", required=True, help="the command that made the run")
    a.add_argument("--note", default="2-core CPU VM, nothing else running", help="conditions")
    a.add_argument("--experiment", choices=_registered(), help="if config.json lacks it")
    b = sub.add_parser("add-bench", help="keep a benchmark output folder (NAME.json files)")
    b.add_argument("folder", type=Path)
    b.add_argument("--note", default="2-core CPU VM, nothing else running", help="conditions")
    sub.add_parser("render", help="regenerate docs/results.md and docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.cmd == "add":
        print(add(args.run, args.name, args.command, args.note, experiment=args.experiment))
    elif args.cmd == "add-bench":
        print("\n".join(map(str, add_benchmarks(args.folder, args.note))))
    if args.cmd != "render":
        print("now: python -m experiments.report render")
        return
    for path, text in render_all().items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
