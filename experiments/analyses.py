"""Derived tables of the results pages: comparisons across records (the quality targets, the
PolyMNIST variants, this project's runs beside the paper's figures). ``python -m experiments.report
render`` fills the templates' markers named in ``ANALYSES``; each table reads only the JSON records
under ``docs/results/``. ``python -m experiments.analyses`` draws the gain-with-size plot."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import label_skew
from experiments.tables import fmt, md_table, number


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


def plus_minus(s: tuple[float, float, int] | None, digits: int = 3) -> str:
    if s is None:
        return "not run"
    return fmt(s[0], digits) + (
        f" +- {fmt(s[1], digits)} ({s[2]} seeds)" if s[2] > 1 else " (1 seed)"
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


def met_or_not(ok: bool | None) -> str:
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


def quality_targets(records: Path) -> str:
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
        return (
            "not run" if not d else " / ".join(plus_minus(d[L]) for L in ("100", "1000") if L in d)
        )

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
            f"{fid_fashion}; PolyMNIST game mean {plus_minus(fid_pm)}",
            ">= 0.85 for every image player",
            met_or_not(
                None
                if fid_pm is None or None in fid_l
                else min(v[0] for v in [*fid_l, fid_pm]) >= 0.85
            ),
            f"the judging classifiers read real PolyMNIST images right {clf_range} of the time; "
            f"central's samples: {plus_minus(_stat(records, pc, 'central', 'mean_label_fidelity'))}",
        ],
        [
            "polymnist_cross quick: game - alone mean accuracy",
            f"{plus_minus(gap)} (game {plus_minus(game)}, alone {plus_minus(alone)})",
            ">= +0.10",
            met_or_not(None if gap is None else round(gap[0], 3) >= 0.10),
            f"central (pooled data) - alone: {plus_minus(head)}",
        ],
        [
            "polymnist_cross quick: mean coherence",
            plus_minus(coh),
            ">= 0.65",
            met_or_not(None if coh is None else round(coh[0], 3) >= 0.65),
            f"central: {plus_minus(coh_c)}",
        ],
        [
            "polymnist_cross quick: feature FID game vs alone",
            f"game {plus_minus(fid_g, 0)}, alone {plus_minus(fid_a, 0)}",
            "game <= alone",
            met_or_not(None if fid_g is None or fid_a is None else fid_g[0] <= fid_a[0]),
            f"sending draws: game {plus_minus(_stat(records, ps, 'game', 'mean_fid'), 0)}, alone "
            f"{plus_minus(_stat(records, ps, 'alone', 'mean_fid'), 0)}; central "
            f"{plus_minus(_stat(records, pc, 'central', 'mean_fid'), 0)}",
        ],
        [
            "fashion_ssl quick, 100 labels",
            _fashion_counts(records, fs, "100", 0.03),
            "game >= max((a), (b)) + 0.03 for >= 3 of 4",
            met_or_not(_fashion_hits(records, fs, "100", 0.03)),
            f"standard size: {_fashion_counts(records, 'fashion_ssl_standard', '100', 0.03)}",
        ],
        [
            "fashion_ssl quick, 1,000 labels",
            _fashion_counts(records, fs, "1000", 0.0),
            "game >= max((a), (b)) for >= 3 of 4",
            met_or_not(_fashion_hits(records, fs, "1000", 0.0)),
            f"{fashion_bound}; standard size: "
            + _fashion_counts(records, "fashion_ssl_standard", "1000", 0.0),
        ],
        [
            "polymnist_paper quick: synthetic (c, s) - base",
            plus_minus(pp_gap),
            "> 0 (3 seeds)",
            met_or_not(None if pp_gap is None else pp_gap[0] > 0),
            f"the same at standard size: {plus_minus(pp_std_gap)}",
        ],
        [
            "polymnist_paper standard: base per-style average",
            f"{plus_minus(pp_base)} "
            "(the authors' discriminative base: "
            f"{plus_minus(_stat(records, 'polymnist_paper_standard', 'accuracy', 'discriminative', 'avg'))})",
            ">= 0.95",
            met_or_not(None if pp_base is None else round(pp_base[0], 3) >= 0.95),
            "",
        ],
        [
            "polymnist_cross standard: game mean accuracy",
            plus_minus(std_game),
            ">= 0.85",
            met_or_not(None if std_game is None else round(std_game[0], 3) >= 0.85),
            f"central (pooled data): {plus_minus(std_central)}",
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
            met_or_not(
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
    order = sorted(range(len(rows)), key=lambda k: number(rows[k]["alpha_ii"]))
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
                fmt(val) if val is not None else "",
                fmt(a["validation_accuracy"]["mean"]) if "validation_accuracy" in a else "",
                fmt(g["mean_accuracy"]),
                fmt(g["mean_coherence"]),
                fmt(g["mean_label_fidelity"]),
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
            plus_minus(
                _stat(records, "polymnist_paper_paper_quick_3seeds", "accuracy", ours, "avg")
            ),
            plus_minus(_stat(records, "polymnist_paper_quick_3seeds", "accuracy", project, "avg")),
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
                    plus_minus(_players_mean(records, "fashion_ssl_paper_quick_3seeds", key, L)),
                    "not in this set-up"
                    if key == "distillation"
                    else plus_minus(_players_mean(records, "fashion_ssl_quick_3seeds", key, L)),
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
    by_alpha = [{round(number(r["alpha_ii"]), 6): r for r in rows or []} for rows in sets]
    rows = []
    for a in sorted(set().union(*by_alpha)):
        row = [f"{a:.1f}"]
        for table in by_alpha:
            r = table.get(a)
            row += (
                [fmt(r["own_fraction"], 2), fmt(r["fid"]["classes"]["all"], 3)]
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


DISPLACE, ON_TOP = "fashion_ssl_quick_federated_3seeds", "fashion_ssl_quick_baselines_3seeds"
PLAYERS = [f"player{k}" for k in range(4)]


def _seed_gap(records: Path, a: tuple, b: tuple) -> tuple[float, float, int] | None:
    """(mean, standard error, seeds) of the per-seed difference a - b, each (record, *path)."""
    va, vb = _values(records, *a), _values(records, *b)
    if va is None or vb is None or len(va) != len(vb):
        return None
    d = np.asarray(va) - np.asarray(vb)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se, len(d)


def _gap_text(g: tuple[float, float, int] | None) -> str:
    return "not run" if g is None else f"{g[0]:+.3f} +- {g[1]:.3f} ({g[2]} seeds)"


def batch_composition(records: Path) -> str:
    """The authors' batch composition (own rows kept at B, synthetic rows on top) against
    displacing own rows, paired by seed across the two fashion_ssl records (same shards, same
    seeds; the players alone reproduce): the mean over players of the game's accuracy, on
    validation (what chooses the default) and on test."""
    rows = []
    for L in ("100", "1000"):
        for split, key in (("validation", "validation_accuracy"), ("test", "accuracy")):
            per = [
                _seed_gap(records, (ON_TOP, key, "game", p, L), (DISPLACE, key, "game", p, L))
                for p in PLAYERS
            ]
            if None in per:
                rows.append([L, split, "not run", ""])
                continue
            mean = _mean_gap(records, key, L)
            rows.append([L, split, _gap_text(mean), ", ".join(f"{g[0]:+.3f}" for g in per)])
    return md_table(["labels", "split", "on_top - displace, mean over players", "per player"], rows)


def _mean_gap(records: Path, key: str, L: str) -> tuple[float, float, int] | None:
    """Per seed, the mean over players of on_top - displace; then its mean and standard error."""
    per_seed = []
    for p in PLAYERS:
        a, b = (
            _values(records, ON_TOP, key, "game", p, L),
            _values(records, DISPLACE, key, "game", p, L),
        )
        if a is None or b is None:
            return None
        per_seed.append(np.asarray(a) - np.asarray(b))
    d = np.mean(per_seed, axis=0)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))), len(d)


def against_best_alone(records: Path) -> str:
    """Each method of the baselines record against the better of the two alone methods
    ((a) discriminative, (b) semi-supervised), per player: mean over seeds of the per-seed
    difference, and in how many players it is ahead by more than twice its standard error."""
    methods = ("game", "fedmd_E10")
    rows = []
    for L in ("100", "1000"):
        for m in methods:
            gaps = []
            for p in PLAYERS:
                own = _values(records, ON_TOP, "accuracy", m, p, L)
                a = _values(records, ON_TOP, "accuracy", "discriminative", p, L)
                b = _values(records, ON_TOP, "accuracy", "alone", p, L)
                if None in (own, a, b):
                    break
                d = np.asarray(own) - np.maximum(a, b)
                gaps.append((float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))))
            if len(gaps) < len(PLAYERS):
                rows.append([L, m, "not run", ""])
                continue
            ahead = sum(g > 2 * se for g, se in gaps)
            text = ", ".join(f"{g:+.3f} +- {se:.3f}" for g, se in gaps)
            rows.append([L, m, text, f"{ahead}/4"])
    cols = ["labels", "method", "minus max(alone, discriminative), per player", "ahead by > 2 SE"]
    return md_table(cols, rows)


# the records of each size of the two headline experiments (seeds pooled across records)
SIZES = ("quick", "standard", "large", "full")
GAIN_RECORDS = {
    "polymnist_cross": {
        "quick": ("polymnist_cross_quick_3seeds",),
        "standard": ("polymnist_cross_standard", "polymnist_cross_standard_seed1"),
        "large": ("polymnist_cross_large", "polymnist_cross_large_seed1"),
    },
    "fashion_ssl": {
        "quick": ("fashion_ssl_quick_3seeds",),
        "standard": ("fashion_ssl_standard",),
        "large": ("fashion_ssl_large",),
    },
    # synthetic (c, s) against base, the main player's per-style average accuracy (later records
    # add seeds and variants)
    "polymnist_paper": {
        "quick": ("polymnist_paper_quick_3seeds",),
        "standard": (
            "polymnist_paper_standard",
            "polymnist_paper_standard_cs",
            "polymnist_paper_standard_synthetic_cs",
        ),
        "large": ("polymnist_paper_large",),
    },
}


def _pooled(records: Path, names: Sequence[str], *path: str) -> dict[int, float]:
    """{seed: value} of the number at ``path`` over several records (later records add seeds)."""
    out: dict[int, float] = {}
    for name in names:
        out.update(_by_seed(records, name, *path))
    return out


def _gain(records: Path, names: Sequence[str], a: tuple, b: tuple) -> tuple | None:
    """(mean, standard error, seeds) of a - b, paired seed by seed over the records."""
    va, vb = _pooled(records, names, *a), _pooled(records, names, *b)
    d = np.array([va[k] - vb[k] for k in sorted(set(va) & set(vb))])
    if not len(d):
        return None
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se, len(d)


def gain_points(records: Path) -> dict[str, dict[str, tuple]]:
    """Per size: the game's gain over alone (mean accuracy of the style players, paired by seed),
    central's gain over alone and the game's coherence (polymnist_cross); the game's margin over
    the better of (a) discriminative and (b) alone at 100 labels, mean over players (fashion_ssl);
    synthetic (c, s) against base, paired by seed (polymnist_paper)."""
    pc, out = GAIN_RECORDS["polymnist_cross"], {}
    for size in SIZES:
        names = pc.get(size, ())
        game = _gain(records, names, ("game", "mean_accuracy"), ("alone", "mean_accuracy"))
        if game is not None:
            central = _gain(
                records, names, ("central", "mean_accuracy"), ("alone", "mean_accuracy")
            )
            coh = list(_pooled(records, names, "game", "mean_coherence").values())
            out.setdefault("polymnist_cross", {})[size] = (game, central, float(np.mean(coh)))
    for size in SIZES:
        names = GAIN_RECORDS["polymnist_paper"].get(size, ())
        paper = _gain(
            records, names, ("accuracy", "synthetic_cs", "avg"), ("accuracy", "base", "avg")
        )
        if paper is not None:
            out.setdefault("polymnist_paper", {})[size] = paper
    for size in SIZES:
        for name in GAIN_RECORDS["fashion_ssl"].get(size, ()):
            for L in ("100", "1000"):
                gaps = _fashion_gaps(records, name, L)
                if gaps is not None:
                    out.setdefault(f"fashion_ssl L={L}", {})[size] = float(np.mean(gaps))
    return out


def _gain_text(g: tuple) -> str:
    return f"{g[0]:+.3f} (1 seed)" if g[2] == 1 else f"{g[0]:+.3f} +- {g[1]:.3f} ({g[2]} seeds)"


def gain_with_size(records: Path) -> str:
    """The table behind ``docs/gain_with_size.png``."""
    points, rows = gain_points(records), []
    for size in SIZES:
        pc = points.get("polymnist_cross", {}).get(size)
        fa = [points.get(f"fashion_ssl L={L}", {}).get(size) for L in ("100", "1000")]
        paper = points.get("polymnist_paper", {}).get(size)
        if pc is None and paper is None and all(v is None for v in fa):
            rows.append([size, "not run", "", "", "", "", "", ""])
            continue
        game, central, coh = pc if pc else (None, None, None)
        share = f"{game[0] / central[0]:.0%}" if pc and central and central[0] > 0 else ""
        rows.append(
            [
                size,
                _gain_text(game) if pc else "not run",
                f"{central[0]:+.3f}" if central else "",
                share,
                f"{coh:.3f}" if coh is not None else "",
                *(f"{v:+.3f}" if v is not None else "not run" for v in fa),
                _gain_text(paper) if paper else "not run",
            ]
        )
    cols = [
        "size",
        "polymnist_cross: game - alone (+- SE)",
        "central - alone",
        "game's share of central's gain",
        "game's coherence",
        "fashion_ssl L=100: game - best alone",
        "fashion_ssl L=1000: game - best alone",
        "polymnist_paper: synthetic (c, s) - base",
    ]
    return md_table(cols, rows)


def _headline(label: str, point: Any) -> float:
    """The plotted number of one size's point: the mean gain (polymnist_cross: the game's)."""
    if label == "polymnist_cross":
        return point[0][0]
    return point[0] if isinstance(point, tuple) else point


def plot_gain_with_size(records: Path, out: Path) -> Path:
    """``out``: the game's gain over alone against the profile size, one line per experiment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, by_size in gain_points(records).items():
        xs = [i for i, s in enumerate(SIZES) if s in by_size]
        ys = [_headline(label, by_size[SIZES[i]]) for i in xs]
        ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(SIZES)), SIZES)
    ax.set_ylabel("game minus alone (accuracy)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


ANALYSES: dict[str, Callable[[Path], str]] = {
    "gain_with_size": gain_with_size,
    "quality_targets": quality_targets,
    "polymnist_variants": polymnist_variants,
    "paper_polymnist": paper_polymnist,
    "paper_mnist_alpha": paper_mnist_alpha,
    "paper_fashion": paper_fashion,
    "batch_composition": batch_composition,
    "against_best_alone": against_best_alone,
    # the label-skew sweep (experiments.label_skew)
    "label_skew_accuracy": label_skew.accuracy_table,
    "label_skew_comparison": label_skew.comparison_table,
    "label_skew_per_player": label_skew.per_player_table,
    "label_skew_fedcvae": label_skew.fedcvae_table,
    "label_skew_bytes": label_skew.bytes_table,
    "mnist_alpha_peers": label_skew.fig1_table,
}


if __name__ == "__main__":  # the plot of the results page: python -m experiments.analyses
    here = Path(__file__).resolve().parents[1] / "docs"
    print(plot_gain_with_size(here / "results", here / "gain_with_size.png"))
