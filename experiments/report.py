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
import importlib.util
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs"
MARKER = re.compile(r"<!-- table: ([\w.-]+) -->")
# a number in prose: {{RECORD:dotted.path}} or {{RECORD:dotted.path:format}} (format: Python's,
# e.g. .3f, +.3f, ,.0f; default .3f), read from record RECORD's "results"
VALUE = re.compile(r"\{\{([\w.-]+):([^:}]+)(?::([^}]+))?\}\}")


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(map(str, columns)) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def fmt(x: Any, digits: int = 3) -> str:
    """A number, or a multi-seed summary ``{"mean", "std", "values"}`` as mean +- std."""
    if isinstance(x, dict):
        return f"{x['mean']:.{digits}f} +- {x['std']:.{digits}f}"
    return f"{x:.{digits}f}"


def number(x: Any) -> float:
    """A number, or a multi-seed summary's mean."""
    return x["mean"] if isinstance(x, dict) else x


def polymnist_cross(res: dict, cfg: dict) -> str:
    methods = ("alone", "game", "central", *(k for k in res if k.startswith(("fedavg", "fedprox"))))
    m = cfg["modalities"]
    rows = [
        [f"accuracy m{k}", *(fmt(res[t]["accuracy"][f"m{k}"]) for t in methods)] for k in range(m)
    ]
    for key, label, digits in (
        ("mean_accuracy", "**mean accuracy**", 3),
        ("mean_coherence", "mean cross-style coherence", 3),
        ("joint_coherence", "joint coherence (all judges agree)", 3),
        ("mean_label_fidelity", "mean label fidelity of (c, m_k) samples", 3),
        ("mean_fid", "mean feature FID", 0),
        ("mean_linear_probe", "mean linear probe of the latent z", 3),
    ):
        if key in res["game"]:
            rows.append([label, *(fmt(res[t][key], digits) for t in methods)])
    if "coherence_from_subset" in res["game"]:  # label from k styles, the others generated
        for k in res["game"]["coherence_from_subset"]:
            cells = [fmt(res[t]["coherence_from_subset"][k]) for t in methods]
            rows.append([f"coherence from {k} style(s)", *cells])
    clf = " / ".join(fmt(v) for v in res["classifier_accuracy"].values())
    return (
        md_table(["metric", *methods], rows)
        + f"\n\nIndependent per-style classifiers: {clf}. "
        + bytes_sentence(res["exchange"])
    )


def bytes_sentence(ex: dict) -> str:
    """The game's bytes over the whole run against a client-server FedAvg of the same players'
    parameters every 10 local steps, both per round of the run (warm-up rounds included)."""
    from multimodal_game.accounting import parameter_exchange_bytes

    rounds = number(ex["rounds"])
    game = sum(number(v) for v in ex["synthetic_total"]["sent"].values()) / rounds
    params = {k: number(v) for k, v in ex["parameter_bytes"].items()}
    fedavg = parameter_exchange_bytes(params, int(rounds), 10) / rounds
    return (
        f"Bytes over the wire per round of the run (warm-up included): the game {game:,.0f}; "
        f"FedAvg of the same players' parameters every 10 local steps, client-server, "
        f"{fedavg:,.0f} ({fedavg / max(game, 1):.1f}x the game's)."
    )


def fashion_ssl(res: dict, cfg: dict) -> str:
    acc = res["accuracy"]
    methods = [m for m in acc if m != "central"]
    rows = []
    for nm, p in zip(acc["central"], cfg["players"]):
        for L in map(str, cfg["labelled"]):
            rows.append(
                [
                    f"{nm} ({p['width']})",
                    L,
                    *(fmt(acc[m][nm][L]) for m in methods),
                    fmt(acc["central"][nm]),
                ]
            )
    names = {
        "discriminative": "(a) discriminative",
        "alone": "(b) alone",
        "game": "(c) game",
        "distillation": "(e) distillation",
    }
    cols = ["player (width)", "L", *(names.get(m, m) for m in methods), "(d) all labels"]
    text = md_table(cols, rows)
    fid = res.get("label_fidelity")
    if fid:  # mean over players of the share of (c, x) samples an independent classifier reads as c
        parts = [
            f"{m} {fmt(sum(number(fid[m][nm][L]) for nm in fid[m]) / len(fid[m]))} (L={L})"
            for m in fid
            for L in map(str, cfg["labelled"])
            if all(L in fid[m][nm] for nm in fid[m])  # methods the run played
        ]
        text += "\n\nMean label fidelity of the players' samples: " + ", ".join(parts) + "."
    return text


def mnist_alpha(res: dict, cfg: dict) -> str:
    keys = ("all", "own", "other")
    # feature spaces of FID: the digit classifier's two, Inception's when its weights were given
    spaces = [("penultimate", "penultimate", 0), ("classes", "class probabilities", 3)]
    if "inception" in res["baseline"]["fid"]:
        spaces.append(("inception", "Inception", 1))

    def fids(r: dict, sp: str, digits: int) -> str:
        return " / ".join(fmt(r["fid"][sp][k], digits) for k in keys if k in r["fid"][sp])

    rows = [
        [
            f"{number(r['alpha_ii']):.1f}",
            *(fids(r, sp, d) for sp, _, d in spaces),
            fmt(r["own_fraction"], 2),
            f"{number(r['own_fraction_theory']):.2f}",
            *([fmt(r["label_fidelity"], 2)] if "label_fidelity" in r else []),
        ]
        for r in res["rows"]
    ]
    b = res["baseline"]
    fid = [fmt(b["label_fidelity"], 2)] if "label_fidelity" in b else []
    rows.append(["baseline", *(fids(b, sp, d) for sp, _, d in spaces), "", "", *fid])
    cols = [
        "alpha_ii",
        *(f"FID {label}: all / own / other" for _, label, _ in spaces),
        "own digits",
        "1/(2-alpha_ii)",
        *(["label fidelity"] if fid else []),
    ]
    return md_table(cols, rows)


def polymnist_paper(res: dict, cfg: dict) -> str:
    cols = [*(f"m{k}" for k in range(5)), "avg"]
    rows = [[v, *(fmt(a[k]) for k in cols)] for v, a in res["accuracy"].items()]
    return md_table(["variant", *cols], rows)


def expfam_equilibrium(res: dict, cfg: dict) -> str:
    row = [
        len(res["alpha"]),
        res["rounds"],
        fmt(res["spectral_radius"], 4),
        res["exact_rounds_to_1e-8"],
        f"{res['max_abs_error']:.3g}",
        f"{res['max_standardised_error']:.2f} (threshold {res['z_threshold']:g})",
    ]
    cols = [
        "players",
        "rounds",
        "rho(A)",
        "exact: rounds to 1e-8",
        "game error",
        "game error / SD, max over moments",
    ]
    if "statistics_rounds_to_1e-8" in res:
        row += [res["statistics_rounds_to_1e-8"], f"{res['statistics_final_error']:.3g}"]
        cols += ["statistics: rounds to 1e-8", "statistics: final error"]
    text = md_table(cols, [row])
    if "bytes_per_round" in res:
        b = res["bytes_per_round"]
        text += f"\n\nBytes per round, all players: statistics {b['statistics']:,}, samples {b['samples']:,}."
    return text


def feature_exchange(res: dict, cfg: dict) -> str:
    acc, names = res["accuracy"], list(res["accuracy"]["alone"])
    ex = res["exchange"]
    rows = [
        [
            m,
            *(fmt(acc[m][n]) for n in names),
            fmt(res["mean_accuracy"][m]),
            f"{ex[m]['bytes_per_round']:,}" if m in ex else "0",
        ]
        for m in acc
    ]
    return (
        md_table(["method", *names, "mean", "bytes per round"], rows)
        + "\n\nFedAvg of the parameters every step instead (client-server): "
        f"{ex['samples']['parameters_per_round']:,} bytes per round."
    )


def mixture_inference(res: dict, cfg: dict) -> str:
    rows = []
    for setup in cfg["setups"]:
        r = res[setup]
        join = r.get("join", {})
        rows.append(
            [
                setup,
                fmt(r["mean_mae"]),
                fmt(r["mean_baseline_mae"]),
                fmt(r["mean_responsibility_accuracy"]),
            ]
            + [fmt(join[v]) if v in join else "" for v in ("alone", "uniform", "inferred")]
        )
    cols = [
        "setup",
        "MAE, EM over likelihoods",
        "MAE, which-player classifier",
        "responsibility accuracy",
    ]
    return md_table([*cols, "holder 0 alone", "joins, uniform row", "joins, inferred row"], rows)


def domain_alpha(res: dict, cfg: dict) -> str:
    acc, names = res["accuracy"], list(res["accuracy"]["alone"])
    rows = [[m, *(fmt(acc[m][n]) for n in names), fmt(res["mean_accuracy"][m])] for m in acc]

    def shares(key: str) -> str:
        return ", ".join(f"{k} {fmt(v, 2)}" for k, v in res[key].items())

    text = md_table(["method", *names, "mean"], rows)
    text += "\n\nOwn-domain share of partner weight (divergence policy), final alpha: "
    text += shares("own_domain_partner_share")
    if res.get("worst_own_domain_partner_share"):
        text += "; lowest over the alphas the game used: " + shares(
            "worst_own_domain_partner_share"
        )
    if res.get("targets"):  # one seed's verdicts (a multi-seed summary is read from the means)
        text += ". Targets: " + ", ".join(
            f"{k}: {'yes' if v else 'no'}" for k, v in res["targets"].items()
        )
    return text + "."


RENDERERS: dict[str, Callable[[dict, dict], str]] = {
    "mixture_inference": mixture_inference,
    "domain_alpha": domain_alpha,
    "feature_exchange": feature_exchange,
    "polymnist_cross": polymnist_cross,
    "fashion_ssl": fashion_ssl,
    "mnist_alpha": mnist_alpha,
    "polymnist_paper": polymnist_paper,
    "expfam_equilibrium": expfam_equilibrium,
}


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
    if "summary" in results and "seeds" in results and record["experiment"] in MULTI_SEED:
        seeds = ", ".join(map(str, results["seeds"]))
        body = f"Seeds {seeds}; mean +- std over seeds.\n\n" + RENDERERS[record["experiment"]](
            results["summary"], record["config"]
        )
    elif "summary" in results and "seeds" in results:
        body = render_seeds(results, record["experiment"])
    elif record["experiment"] in RENDERERS:
        body = RENDERERS[record["experiment"]](results, record["config"])
    else:  # an experiment without a table of its own: every number it reported
        body = render_numbers(results)
    summary = results.get("summary", results)
    if "bytes_total" in summary:
        body += "\n\n" + wire_table(summary)
    secs = record["results"].get("total_seconds")
    wall = f", {secs:.0f} s" if secs is not None else ""
    head = f"`{record['command']}` ({record['date']}{wall}; {record['conditions']})"
    return head + "\n\n" + body


# Experiments whose own table also renders a multi-seed summary (mean +- std in every cell).
MULTI_SEED = ("polymnist_cross", "fashion_ssl", "domain_alpha", "polymnist_paper", "mnist_alpha")

# Which parts of a multi-seed summary the results page shows (default: every number).
SEED_KEYS = {"mixture_inference": ("styles", "digits")}


def render_seeds(results: dict, experiment: str) -> str:
    """A multi-seed record: mean +- std (and the values) of each number, one row per number."""
    rows = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict) and {"mean", "std", "values"} <= set(node):
            vals = ", ".join(fmt(v) for v in node["values"])
            rows.append([".".join(path), f"{fmt(node['mean'])} +- {fmt(node['std'])}", vals])
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))

    keys = SEED_KEYS.get(experiment)
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


def analyses_module(docs: Path = DOCS) -> Any:
    """``docs/analyses.py`` loaded as a module (None where it is absent)."""
    path = docs / "analyses.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("docs_analyses", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def analyses(docs: Path = DOCS) -> dict[str, Callable[[Path], str]]:
    """The derived tables of ``docs/analyses.py`` (comparisons across records: targets, variants,
    the paper's figures), by marker name; none where the script is absent."""
    module = analyses_module(docs)
    return {} if module is None else dict(module.ANALYSES)


def render(template: Path, records: Path) -> str:
    """The template with every marker replaced by its record's table."""

    derived = analyses(template.parent)

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
    node: Any = json.loads(file.read_text())["results"]
    for key in path.split("."):
        if isinstance(node, list) and key.lstrip("-").isdigit():
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise KeyError(f"record {name!r} has no {path!r} (stops at {key!r})")
    return node["mean"] if isinstance(node, dict) and "mean" in node else node


PAGES = (
    ("results.template.md", "results", "results.md"),
    ("benchmarks.template.md", "benchmarks", "benchmarks.md"),
)


def render_all(docs: Path = DOCS) -> dict[Path, str]:
    return {
        docs / out: render(docs / tpl, docs / rec)
        for tpl, rec, out in PAGES
        if (docs / tpl).is_file()
    }


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
    known = sorted(set(RENDERERS) | set(_registered()))
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
    a.add_argument("--experiment", choices=sorted(RENDERERS), help="if config.json lacks it")
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
