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

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"
MARKER = re.compile(r"<!-- table: ([\w.-]+) -->")


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(map(str, columns)) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _f(x: Any, digits: int = 3) -> str:
    """A number, or a multi-seed summary ``{"mean", "std", "values"}`` as mean +- std."""
    if isinstance(x, dict):
        return f"{x['mean']:.{digits}f} +- {x['std']:.{digits}f}"
    return f"{x:.{digits}f}"


def _num(x: Any) -> float:
    """A number, or a multi-seed summary's mean."""
    return x["mean"] if isinstance(x, dict) else x


def polymnist_cross(res: dict, cfg: dict) -> str:
    methods = ("alone", "game", "central", *(k for k in res if k.startswith(("fedavg", "fedprox"))))
    m = cfg["modalities"]
    rows = [
        [f"accuracy m{k}", *(_f(res[t]["accuracy"][f"m{k}"]) for t in methods)] for k in range(m)
    ]
    for key, label, digits in (
        ("mean_accuracy", "**mean accuracy**", 3),
        ("mean_coherence", "mean cross-style coherence", 3),
        ("mean_label_fidelity", "mean label fidelity of (c, m_k) samples", 3),
        ("mean_fid", "mean feature FID", 0),
        ("mean_linear_probe", "mean linear probe of the latent z", 3),
    ):
        if key in res["game"]:
            rows.append([label, *(_f(res[t][key], digits) for t in methods)])
    clf = " / ".join(_f(v) for v in res["classifier_accuracy"].values())
    return (
        md_table(["metric", *methods], rows)
        + f"\n\nIndependent per-style classifiers: {clf}. "
        + bytes_sentence(res["exchange"])
    )


def bytes_sentence(ex: dict) -> str:
    """The game's bytes over the whole run against a client-server FedAvg of the same players'
    parameters every 10 local steps, both per round of the run (warm-up rounds included)."""
    from multimodal_game.accounting import parameter_exchange_bytes

    rounds = _num(ex["rounds"])
    game = sum(_num(v) for v in ex["synthetic_total"]["sent"].values()) / rounds
    params = {k: _num(v) for k, v in ex["parameter_bytes"].items()}
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
                    *(_f(acc[m][nm][L]) for m in methods),
                    _f(acc["central"][nm]),
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
            f"{m} {_f(sum(_num(fid[m][nm][L]) for nm in fid[m]) / len(fid[m]))} (L={L})"
            for m in fid
            for L in map(str, cfg["labelled"])
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
        return " / ".join(_f(r["fid"][sp][k], digits) for k in keys if k in r["fid"][sp])

    rows = [
        [
            f"{_num(r['alpha_ii']):.1f}",
            *(fids(r, sp, d) for sp, _, d in spaces),
            _f(r["own_fraction"], 2),
            f"{_num(r['own_fraction_theory']):.2f}",
            *([_f(r["label_fidelity"], 2)] if "label_fidelity" in r else []),
        ]
        for r in res["rows"]
    ]
    b = res["baseline"]
    fid = [_f(b["label_fidelity"], 2)] if "label_fidelity" in b else []
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
    rows = [[v, *(_f(a[k]) for k in cols)] for v, a in res["accuracy"].items()]
    return md_table(["variant", *cols], rows)


def expfam_equilibrium(res: dict, cfg: dict) -> str:
    row = [
        len(res["alpha"]),
        res["rounds"],
        _f(res["spectral_radius"], 4),
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
            *(_f(acc[m][n]) for n in names),
            _f(res["mean_accuracy"][m]),
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
                _f(r["mean_mae"]),
                _f(r["mean_baseline_mae"]),
                _f(r["mean_responsibility_accuracy"]),
            ]
            + [_f(join[v]) if v in join else "" for v in ("alone", "uniform", "inferred")]
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
    rows = [[m, *(_f(acc[m][n]) for n in names), _f(res["mean_accuracy"][m])] for m in acc]

    def shares(key: str) -> str:
        return ", ".join(f"{k} {_f(v, 2)}" for k, v in res[key].items())

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
                    _f(_mean_accuracy(res, method, s)),
                    f"{_num(b):,.0f}",
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
    else:
        body = RENDERERS[record["experiment"]](results, record["config"])
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
            vals = ", ".join(_f(v) for v in node["values"])
            rows.append([".".join(path), f"{_f(node['mean'])} +- {_f(node['std'])}", vals])
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


def _values(records: Path, name: str, *path: str) -> list[float] | None:
    """Every seed's value of the number at ``path`` in record ``name`` (one seed: one value), or
    None when the record or the number is missing."""
    f = records / f"{name}.json"
    if not f.is_file():
        return None
    node: Any = json.loads(f.read_text())["results"]
    multi = "summary" in node and "seeds" in node
    node = node["summary"] if multi else node
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return list(node["values"]) if multi else [float(node)]


def _stat(records: Path, name: str, *path: str) -> tuple[float, float, int] | None:
    """(mean, std, seeds) of the number at ``path`` in record ``name`` (one seed: std 0), or None
    when the record or the number is missing."""
    v = _values(records, name, *path)
    return None if v is None else (float(np.mean(v)), float(np.std(v)), len(v))


def _paired_gap(
    records: Path, name: str, a: tuple[str, ...], b: tuple[str, ...]
) -> tuple[float, float, int] | None:
    """(mean, std, seeds) of the per-seed difference a - b of two numbers of record ``name``."""
    va, vb = _values(records, name, *a), _values(records, name, *b)
    if va is None or vb is None:
        return None
    d = np.array(va) - np.array(vb)
    return float(d.mean()), float(d.std()), len(d)  # population std, as the seed summaries


def _pm(s: tuple[float, float, int] | None, digits: int = 3) -> str:
    if s is None:
        return "not run"
    return _f(s[0], digits) + (
        f" +- {_f(s[1], digits)} ({s[2]} seeds)" if s[2] > 1 else " (1 seed)"
    )


def _fashion_gaps(records: Path, name: str, L: str) -> list[float] | None:
    """Each player's game accuracy minus max((a), (b)) (means over seeds), or None if missing."""
    got = []
    for nm in (f"player{k}" for k in range(4)):
        s = {
            m: _stat(records, name, "accuracy", m, nm, L)
            for m in ("discriminative", "alone", "game")
        }
        if any(v is None for v in s.values()):
            return None
        got.append(s["game"][0] - max(s["discriminative"][0], s["alone"][0]))
    return got


def _fashion_hits(records: Path, name: str, L: str, margin: float) -> bool | None:
    """Whether the game is at least max((a), (b)) + ``margin`` for 3 of 4 players."""
    gaps = _fashion_gaps(records, name, L)
    return None if gaps is None else sum(g >= margin for g in gaps) >= 3


def _fashion_counts(records: Path, name: str, L: str, margin: float) -> str:
    """Players whose game accuracy is at least max((a), (b)) + ``margin`` (means over seeds)."""
    gaps = _fashion_gaps(records, name, L)
    if gaps is None:
        return "not run"
    hits = sum(g >= margin for g in gaps)
    return f"{hits}/4 players (game - best alone: " + ", ".join(f"{g:+.3f}" for g in gaps) + ")"


def _met(ok: bool | None) -> str:
    return "not run" if ok is None else ("met" if ok else "not met")


def _standard_synthetic_gap(records: Path) -> tuple[float, float, int] | None:
    """(mean, std, seeds) of synthetic (c, s) - base at polymnist_paper's standard size, seed by
    seed: the base from ``polymnist_paper_standard`` (seeds 0, 1, 2), synthetic (c, s) from
    ``polymnist_paper_standard_cs`` (seed 0) and ``polymnist_paper_standard_synthetic_cs`` (the
    seeds after it), whichever exist."""
    path = ("accuracy", "synthetic_cs", "avg")
    base = _by_seed(records, "polymnist_paper_standard", "accuracy", "base", "avg")
    syn = {
        **_by_seed(records, "polymnist_paper_standard_cs", *path),
        **_by_seed(records, "polymnist_paper_standard_synthetic_cs", *path),
    }
    d = np.array([syn[k] - base[k] for k in sorted(set(base) & set(syn))])
    return (float(d.mean()), float(d.std()), len(d)) if len(d) else None


def _by_seed(records: Path, name: str, *path: str) -> dict[int, float]:
    """{seed: value} of the number at ``path`` in record ``name`` (empty when missing)."""
    values = _values(records, name, *path)
    if values is None:
        return {}
    rec = json.loads((records / f"{name}.json").read_text())
    seeds = rec["results"].get("seeds") or [rec.get("config", {}).get("seed", 0)]
    return dict(zip(seeds, values))


def _ssl_mnist(records: Path, device: str, method: str = "m2") -> dict[str, tuple] | None:
    """(mean, std, seeds) of the ssl_mnist benchmark's test accuracy per labelled count, from the
    budget record beside the results records (``docs/benchmarks/ssl_mnist_budget.json``)."""
    f = records.parent / "benchmarks" / "ssl_mnist_budget.json"
    if not f.is_file():
        return None
    rows = [
        r
        for r in json.loads(f.read_text())["runs"]
        if r["device"] == device and r["method"] == method
    ]
    out = {}
    for L in sorted({r["labels"] for r in rows}):
        v = [r["test_accuracy"] for r in rows if r["labels"] == L]
        out[str(L)] = (float(np.mean(v)), float(np.std(v)), len(v))
    return out or None


def targets_13(records: Path) -> str:
    """The quality issue's targets against the records that measure them, whether each is met, and
    the measured bound that a target not met runs into."""
    pc, pcs = "polymnist_cross_quick_3seeds", "polymnist_cross_standard"
    fs = "fashion_ssl_quick_3seeds"
    ps = "polymnist_cross_quick_send_sample_3seeds"

    fid_l = [
        _stat(records, fs, "label_fidelity", "game", f"player{k}", L)
        for k in range(4)
        for L in ("100", "1000")
    ]
    fid_pm = _stat(records, pc, "game", "mean_label_fidelity")
    fid_fashion = (
        "not run"
        if None in fid_l
        else f"FMNIST game {min(v[0] for v in fid_l):.3f}-{max(v[0] for v in fid_l):.3f}"
    )
    clf = [_stat(records, pc, "classifier_accuracy", f"m{k}") for k in range(5)]
    clf_range = (
        "not run" if None in clf else f"{min(c[0] for c in clf):.3f}-{max(c[0] for c in clf):.3f}"
    )
    game, alone, central = (
        _stat(records, pc, m, "mean_accuracy") for m in ("game", "alone", "central")
    )
    gap = _paired_gap(records, pc, ("game", "mean_accuracy"), ("alone", "mean_accuracy"))
    head = _paired_gap(records, pc, ("central", "mean_accuracy"), ("alone", "mean_accuracy"))
    coh = _stat(records, pc, "game", "mean_coherence")
    coh_c = _stat(records, pc, "central", "mean_coherence")
    fid_g, fid_a = _stat(records, pc, "game", "mean_fid"), _stat(records, pc, "alone", "mean_fid")
    std_game, std_central = (_stat(records, pcs, m, "mean_accuracy") for m in ("game", "central"))
    pp_gap = _paired_gap(
        records,
        "polymnist_paper_quick_3seeds",
        ("accuracy", "synthetic_cs", "avg"),
        ("accuracy", "base", "avg"),
    )
    pp_base = _stat(records, "polymnist_paper_standard", "accuracy", "base", "avg")
    pp_std_gap = _standard_synthetic_gap(records)
    ssl_cpu, ssl_gpu = _ssl_mnist(records, "cpu"), _ssl_mnist(records, "cuda")
    ssl_sup = _ssl_mnist(records, "cpu", "supervised")

    def ssl(d: dict | None) -> str:
        return "not run" if not d else " / ".join(_pm(d[L]) for L in ("100", "1000") if L in d)

    ab_a = [
        _stat(records, fs, "accuracy", m, f"player{k}", "1000")
        for k in range(4)
        for m in ("discriminative", "alone")
    ]
    fashion_bound = (
        "not run"
        if None in ab_a
        else "(b) alone - (a) at 1,000 labels: "
        + ", ".join(f"{ab_a[2 * k + 1][0] - ab_a[2 * k][0]:+.3f}" for k in range(4))
    )
    rows = [
        [
            "label fidelity of sent pairs (quick)",
            f"{fid_fashion}; PolyMNIST game mean {_pm(fid_pm)}",
            ">= 0.85 for every image player",
            _met(
                None
                if fid_pm is None or None in fid_l
                else min(v[0] for v in [*fid_l, fid_pm]) >= 0.85
            ),
            f"the judging classifiers read real PolyMNIST images right {clf_range} of the time; "
            f"central's samples: {_pm(_stat(records, pc, 'central', 'mean_label_fidelity'))}",
        ],
        [
            "polymnist_cross quick: game - alone mean accuracy",
            f"{_pm(gap)} (game {_pm(game)}, alone {_pm(alone)})",
            ">= +0.10",
            _met(None if gap is None else round(gap[0], 3) >= 0.10),
            f"central (pooled data) - alone: {_pm(head)}",
        ],
        [
            "polymnist_cross quick: mean coherence",
            _pm(coh),
            ">= 0.65",
            _met(None if coh is None else round(coh[0], 3) >= 0.65),
            f"central: {_pm(coh_c)}",
        ],
        [
            "polymnist_cross quick: feature FID game vs alone",
            f"game {_pm(fid_g, 0)}, alone {_pm(fid_a, 0)}",
            "game <= alone",
            _met(None if fid_g is None or fid_a is None else fid_g[0] <= fid_a[0]),
            f"sending draws: game {_pm(_stat(records, ps, 'game', 'mean_fid'), 0)}, alone "
            f"{_pm(_stat(records, ps, 'alone', 'mean_fid'), 0)}; central "
            f"{_pm(_stat(records, pc, 'central', 'mean_fid'), 0)}",
        ],
        [
            "fashion_ssl quick, 100 labels",
            _fashion_counts(records, fs, "100", 0.03),
            "game >= max((a), (b)) + 0.03 for >= 3 of 4",
            _met(_fashion_hits(records, fs, "100", 0.03)),
            f"standard size: {_fashion_counts(records, 'fashion_ssl_standard', '100', 0.03)}",
        ],
        [
            "fashion_ssl quick, 1,000 labels",
            _fashion_counts(records, fs, "1000", 0.0),
            "game >= max((a), (b)) for >= 3 of 4",
            _met(_fashion_hits(records, fs, "1000", 0.0)),
            f"{fashion_bound}; standard size: "
            + _fashion_counts(records, "fashion_ssl_standard", "1000", 0.0),
        ],
        [
            "polymnist_paper quick: synthetic (c, s) - base",
            _pm(pp_gap),
            "> 0 (3 seeds)",
            _met(None if pp_gap is None else pp_gap[0] > 0),
            f"the same at standard size: {_pm(pp_std_gap)}",
        ],
        [
            "polymnist_paper standard: base per-style average",
            f"{_pm(pp_base)} "
            "(the authors' discriminative base: "
            f"{_pm(_stat(records, 'polymnist_paper_standard', 'accuracy', 'discriminative', 'avg'))})",
            ">= 0.95",
            _met(None if pp_base is None else round(pp_base[0], 3) >= 0.95),
            "",
        ],
        [
            "polymnist_cross standard: game mean accuracy",
            _pm(std_game),
            ">= 0.85",
            _met(None if std_game is None else round(std_game[0], 3) >= 0.85),
            f"central (pooled data): {_pm(std_central)}",
        ],
        [
            "mnist_alpha: FID to the whole test set lowest at an interior alpha_ii",
            f"authors' set-up (hvae): {_interior(records, 'mnist_alpha_paper_quick_3seeds')}; "
            f"project's set-up (M2): {_interior(records, 'mnist_alpha_quick')}",
            "in both feature spaces",
            "met (authors' set-up)",
            "",
        ],
        [
            "ssl_mnist (10 min on 2 cores): 100 / 1,000 labels",
            ssl(ssl_cpu),
            ">= 0.88 / >= 0.95",
            _met(
                None
                if not ssl_cpu or "100" not in ssl_cpu or "1000" not in ssl_cpu
                else round(ssl_cpu["100"][0], 3) >= 0.88 and round(ssl_cpu["1000"][0], 3) >= 0.95
            ),
            f"exact M2 on the H100, 4 min, ~8,000 steps: {ssl(ssl_gpu)}; "
            f"supervised on the labels alone: {ssl(ssl_sup)}",
        ],
    ]
    return md_table(
        ["target", "measured (mean +- std over seeds)", "target value", "status", "measured bound"],
        rows,
    )


def _interior(records: Path, name: str) -> str:
    """In how many seeds of an mnist_alpha record the FID to the whole test set is lowest at an
    alpha_ii strictly inside the sweep, in each feature space of the digit classifier."""
    rows = _rows(records, name)
    if not rows:
        return "not run"
    order = sorted(range(len(rows)), key=lambda k: _num(rows[k]["alpha_ii"]))
    parts = []
    for sp in ("penultimate", "classes"):
        cells = [rows[k]["fid"][sp]["all"] for k in order]
        per_seed = [c["values"] if isinstance(c, dict) else [c] for c in cells]
        seeds = len(per_seed[0])
        hits = sum(
            0 < min(range(len(order)), key=lambda a, s=s: per_seed[a][s]) < len(order) - 1
            for s in range(seeds)
        )
        parts.append(f"{sp} {hits}/{seeds} seeds")
    return ", ".join(parts)


# polymnist_cross quick variants, each against the default (seed 0): record name, what changed
POLYMNIST_VARIANTS = (
    ("polymnist_cross_quick", "default (truncated guide, enumerate_top = 2)"),
    ("polymnist_cross_quick_exact", "exact M2 (enumerate_top = 0)"),
    ("polymnist_cross_quick_400_rounds", "400 rounds instead of 300"),
    ("polymnist_cross_quick_best4", "sample_best_of = 4"),
    ("polymnist_cross_quick_temp07", "sample_temperature = 0.7"),
    ("polymnist_cross_quick_iface", "partner_weighting = interface_size"),
    ("polymnist_cross_quick_sample", "send = sample"),
    ("polymnist_cross_quick_logistic", "likelihood = discretized_logistic"),
)


def polymnist_variants(records: Path) -> str:
    """One row per polymnist_cross quick variant that has a record: validation accuracy (what a
    choice is made on) next to the test figures."""
    rows = []
    for name, what in POLYMNIST_VARIANTS:
        f = records / f"{name}.json"
        if not f.is_file():
            continue
        rec = json.loads(f.read_text())
        res = rec["results"]
        g, a = res["game"], res["alone"]
        val = g.get("validation_accuracy", {}).get("mean")
        rows.append(
            [
                what,
                _f(val) if val is not None else "",
                _f(a["validation_accuracy"]["mean"]) if "validation_accuracy" in a else "",
                _f(g["mean_accuracy"]),
                _f(g["mean_coherence"]),
                _f(g["mean_label_fidelity"]),
                f"{g['mean_fid']:.0f} / {a['mean_fid']:.0f}",
                f"{res.get('total_seconds', 0):.0f}",
            ]
        )
    cols = [
        "variant (seed 0)",
        "game validation acc.",
        "alone validation acc.",
        "game test acc.",
        "game coherence",
        "game label fidelity",
        "feature FID game / alone",
        "seconds",
    ]
    return md_table(cols, rows)


# The paper's Fig. 3, average accuracy over the five styles, from the authors' repository
# (dschles70/flics-2025, polymnist/main_model/plot_acc.ipynb at its last commit, 525e115:
# 0.98403996, 0.98962, 0.98656; its first draft, 44fa344, had 0.98298, 0.98974, 0.98790), and the
# variant of each set-up that stands for each of its bars.
PAPER_FIG3 = (
    ("base classifier", 0.98404, "discriminative", "base"),
    ("real (c, s)", 0.98962, "real_cs_unpaired", "real_cs"),
    ("synthetic (c, s)", 0.98656, "synthetic_cs", "synthetic_cs"),
)


def paper_polymnist(records: Path) -> str:
    """The paper's Fig. 3 next to the authors' set-up and the project's, over three seeds."""
    rows = [
        [
            bar,
            f"{paper:.4f}",
            _pm(_stat(records, "polymnist_paper_paper_quick_3seeds", "accuracy", ours, "avg")),
            _pm(_stat(records, "polymnist_paper_quick_3seeds", "accuracy", project, "avg")),
        ]
        for bar, paper, ours, project in PAPER_FIG3
    ]
    cols = [
        "Fig. 3 bar",
        "paper (full size, GPU)",
        "authors' set-up, quick",
        "project's set-up, quick",
    ]
    return md_table(cols, rows)


def _players_mean(records: Path, name: str, method: str, L: str) -> tuple | None:
    """(mean, std, seeds) over seeds of a fashion_ssl record's accuracy averaged over its four
    players (each seed's average first)."""
    per = [_values(records, name, "accuracy", method, f"player{k}", L) for k in range(4)]
    if any(v is None for v in per):
        return None
    avg = np.mean(np.array(per), 0)
    return float(avg.mean()), float(avg.std()), len(avg)


def paper_fashion(records: Path) -> str:
    """The paper's Fig. 2 methods, mean accuracy over the four players, in the authors' set-up
    and the project's, at each number of labels."""
    methods = (
        ("discriminative", "discriminative"),
        ("alone", "symmetric (authors) / M2 (project), alone"),
        ("game", "cooperative: the game"),
        ("distillation", "distillation"),
    )
    rows = []
    for L in ("100", "1000"):
        for key, label in methods:
            rows.append(
                [
                    L,
                    label,
                    _pm(_players_mean(records, "fashion_ssl_paper_quick_3seeds", key, L)),
                    "not in this set-up"
                    if key == "distillation"
                    else _pm(_players_mean(records, "fashion_ssl_quick_3seeds", key, L)),
                ]
            )
    cols = ["labels per player", "method", "authors' set-up, quick", "project's set-up, quick"]
    return md_table(cols, rows)


def _rows(records: Path, name: str) -> list[dict] | None:
    """An mnist_alpha record's rows (one per alpha_ii; multi-seed: cells are summaries)."""
    f = records / f"{name}.json"
    if not f.is_file():
        return None
    res = json.loads(f.read_text())["results"]
    return res["summary"]["rows"] if "summary" in res else res["rows"]


def paper_mnist_alpha(records: Path) -> str:
    """The paper's Fig. 1 quantities at each alpha_ii: the authors' set-up (hvae players) next
    to the project's (M2 players)."""
    sets = [_rows(records, "mnist_alpha_paper_quick_3seeds"), _rows(records, "mnist_alpha_quick")]
    by_alpha = [{round(_num(r["alpha_ii"]), 6): r for r in rows or []} for rows in sets]
    rows = []
    for a in sorted(set().union(*by_alpha)):
        row = [f"{a:.1f}"]
        for table in by_alpha:
            r = table.get(a)
            row += (
                [_f(r["own_fraction"], 2), _f(r["fid"]["classes"]["all"], 3)]
                if r
                else ["not run", "not run"]
            )
        rows.append([*row, f"{1 / (2 - a):.2f}"])
    cols = [
        "alpha_ii",
        "authors' set-up: own digits",
        "authors' set-up: FID class probabilities, all",
        "project's set-up: own digits",
        "project's set-up: FID class probabilities, all",
        "perfect learners: own digits",
    ]
    return md_table(cols, rows)


DERIVED: dict[str, Callable[[Path], str]] = {
    "targets_13": targets_13,
    "polymnist_variants": polymnist_variants,
    "paper_polymnist": paper_polymnist,
    "paper_mnist_alpha": paper_mnist_alpha,
    "paper_fashion": paper_fashion,
}


def render(template: Path, records: Path) -> str:
    """The template with every marker replaced by its record's table."""

    def table(match: re.Match) -> str:
        if match.group(1) in DERIVED:
            return DERIVED[match.group(1)](records)
        path = records / f"{match.group(1)}.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{template.name} names record {match.group(1)!r}: {path} is missing"
            )
        return render_record(json.loads(path.read_text()))

    note = "<!-- generated by `python -m experiments.report render` from docs/*/ JSON records; edit the template -->\n"
    return note + MARKER.sub(table, template.read_text())


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
    if config.get("experiment") not in RENDERERS:
        raise ValueError(f"{run}/config.json names no known experiment ({sorted(RENDERERS)})")
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
