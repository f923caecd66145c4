"""Label skew: the game against its peers on Dirichlet(beta) shards of Fashion-MNIST, read from the
sweep's records (``docs/results/fashion_ssl_skew_beta<beta>_L<L>.json``, one per beta and L, three
seeds each: ``experiments/configs/fashion_ssl_label_skew.toml``).

Every comparison is paired by seed (the methods of one seed share its shards) and its error is the
standard error of the per-seed differences. FedProx's mu is chosen per (beta, L) by the mean
validation accuracy over seeds and players; everything reported is test accuracy.

    python -m experiments.label_skew                 # the tables, as the results page shows them
    python -m experiments.label_skew --plot docs/label_skew.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .tables import md_table

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "results"
BETAS = ("0.01", "0.05", "0.1", "0.5", "iid")
LABELS = ("100", "1000")
METHODS = {
    "discriminative": "(a) discriminative alone",
    "alone": "(b) semi-supervised alone",
    "game": "game (widths 4 / 6 / 8 / 12)",
    "no_harm": "no-harm game",
    "game_fedarch": "game, FedAvg's players (all width 8)",
    "fedavg_E10": "FedAvg E = 10 (all width 8)",
    "fedprox": "FedProx E = 10, mu on validation (all width 8)",
    "fedmd_E10": "ensemble distillation",
    "fedcvae": "FedCVAE-Ens",
    "central": "all labels (bound)",
}
PEERS = ("fedavg_E10", "fedprox", "fedcvae", "fedmd_E10")


def record_name(beta: str, L: str) -> str:
    return f"fashion_ssl_skew_beta{beta}_L{L}"


def _seed_values(node: dict, L: str | None) -> np.ndarray:
    """(seeds, players) of a method's accuracy node (``{player: {L: summary}}`` or, for
    central, ``{player: summary}``)."""
    cells = [node[p][L] if L is not None else node[p] for p in sorted(node)]
    return np.array([c["values"] for c in cells]).T


def load(records: Path, beta: str, L: str) -> dict | None:
    """{"test" / "validation": {method: (seeds, players)}, "bytes": {method: mean bytes},
    "mu": FedProx's chosen mu} of one record, or None where it is missing."""
    path = records / f"{record_name(beta, L)}.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())["results"]["summary"]
    out: dict = {"test": {}, "validation": {}, "bytes": {}}
    for split, key in (("test", "accuracy"), ("validation", "validation_accuracy")):
        for method, node in summary[key].items():
            out[split][method] = _seed_values(node, None if method == "central" else L)
    out["bytes"] = {m: v["mean"] for m, v in summary["bytes_total"][L].items()}
    out["fidelity"] = {
        m: _seed_values(node, L) for m, node in summary.get("label_fidelity", {}).items()
    }
    proxes = [m for m in out["test"] if m.startswith("fedprox")]
    if proxes:
        best = max(proxes, key=lambda m: out["validation"][m].mean())
        out["mu"] = best.rsplit("_mu", 1)[-1] if "_mu" in best else None
        for split in ("test", "validation"):
            out[split]["fedprox"] = out[split][best]
        out["bytes"]["fedprox"] = out["bytes"][best]
    return out


def _records(records: Path):
    """(L, beta, loaded record) of every record of the sweep that exists, in table order."""
    for L in LABELS:
        for b in BETAS:
            d = load(records, b, L)
            if d is not None:
                yield L, b, d


def mean_se(d: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of per-seed values (nan error for one seed)."""
    d = np.asarray(d, dtype=float)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se


def _cell(m: float, se: float, digits: int = 3) -> str:
    return f"{m:.{digits}f}" + ("" if np.isnan(se) else f" ± {se:.{digits}f}")


def _beta(b: str) -> str:
    return f"beta = {b}" if b != "iid" else "IID"


def accuracy_table(records: Path = RECORDS) -> str:
    """Mean test accuracy over the four players (mean ± standard error over seeds), one row per
    label count and method, one column per beta."""
    data = {(b, L): load(records, b, L) for b in BETAS for L in LABELS}
    betas = [b for b in BETAS if any(data[(b, L)] for L in LABELS)]  # those with a record
    rows = []
    for L in LABELS:
        for method, label in METHODS.items():
            cells = []
            for b in betas:
                d = data[(b, L)]
                v = None if d is None else d["test"].get(method)
                cells.append("" if v is None else _cell(*mean_se(v.mean(1))))
            if any(cells):
                rows.append([L, label, *cells])
    mus = [
        f"L = {L}, {_beta(b)}: {data[(b, L)]['mu']}" for L in LABELS for b in betas if data[(b, L)]
    ]
    cols = ["L", "method", *(_beta(b) for b in betas)]
    return md_table(cols, rows) + (f"\n\nFedProx's mu chosen on validation: {', '.join(mus)}")


def comparison_table(records: Path = RECORDS) -> str:
    """The game minus each peer and minus the better alone method, mean over players, paired by
    seed (mean ± standard error); "ahead" / "behind" where the gap is beyond 2 standard errors."""
    rows = []
    for L, b, d in _records(records):
        t = {m: v.mean(1) for m, v in d["test"].items()}
        best_alone = np.maximum(d["test"]["alone"], d["test"]["discriminative"]).mean(1)
        pairs = [(METHODS[p], t["game"] - t[p]) for p in PEERS if p in t]
        pairs.append(("better alone", t["game"] - best_alone))
        if "game_fedarch" in t:  # the same players on both sides: the method alone
            label = "game, FedAvg's players, minus FedAvg E = 10"
            pairs.append((label, t["game_fedarch"] - t["fedavg_E10"]))
        for who, diff in pairs:
            m, se = mean_se(diff)
            verdict = "ahead" if m > 2 * se else "behind" if m < -2 * se else "tie"
            rows.append([L, b, who, _cell(m, se), verdict, len(diff)])
    return md_table(["L", "beta", "game minus", "mean ± SE", "> 2 SE", "seeds"], rows)


def fedcvae_table(records: Path = RECORDS) -> str:
    """FedCVAE-Ens against FedAvg, paired by seed, beside what its server trains on: the share of
    the alone players' (c, x) samples that an independent classifier reads as c (their decoders
    are what FedCVAE sends; a sample read as another class is a wrong label for the server)."""
    rows = []
    for L, b, d in _records(records):
        t = d["test"]
        m, se = mean_se(t["fedcvae"].mean(1) - t["fedavg_E10"].mean(1))
        verdict = "ahead" if m > 2 * se else "behind" if m < -2 * se else "tie"
        fid = d["fidelity"].get("alone")
        fid_text = "" if fid is None else _cell(*mean_se(fid.mean(1)))
        rows.append([L, b, _cell(m, se), verdict, fid_text])
    cols = ["L", "beta", "FedCVAE-Ens minus FedAvg", "> 2 SE", "label fidelity of the decoders"]
    return md_table(cols, rows)


def per_player_table(records: Path = RECORDS) -> str:
    """Per player: the game minus the better of (a) and (b), paired by seed."""
    rows = []
    for L, b, d in _records(records):
        diff = d["test"]["game"] - np.maximum(d["test"]["alone"], d["test"]["discriminative"])
        cells, below = [], 0
        for k in range(diff.shape[1]):
            m, se = mean_se(diff[:, k])
            below += m < -2 * se
            cells.append(_cell(m, se))
        rows.append([L, b, *cells, below])
    cols = ["L", "beta", *(f"player{k}" for k in range(4)), "below by > 2 SE"]
    return md_table(cols, rows)


def bytes_table(records: Path = RECORDS) -> str:
    """Bytes over the wire over the whole run (both directions), per method, at L = 100."""
    d = next((load(records, b, "100") for b in BETAS if load(records, b, "100")), None)
    if d is None:
        return ""
    rows = [[METHODS[m], f"{d['bytes'][m]:,.0f}"] for m in METHODS if m in d["bytes"]]
    return md_table(["method", "bytes over the run"], rows)


def fig1_table(records: Path = RECORDS, name: str = "mnist_alpha_peers_3seeds") -> str:
    """The Fig. 1 split (digits 0-4 against 5-9) beside its peers: each player's accuracy on all
    ten test digits, FID (class-probability space) to the whole test set, bytes over the run."""
    path = records / f"{name}.json"
    if not path.is_file():
        return f"(record {name} not yet run)"
    summary = json.loads(path.read_text())["results"]["summary"]

    def cells(r: dict) -> list[str]:
        accs = [np.array(a["values"]) for a in r["accuracy_all_digits"]]
        fid = r.get("fid", {}).get("classes", {}).get("all")
        return [
            *(_cell(*mean_se(a)) for a in accs),
            _cell(*mean_se((accs[0] + accs[1]) / 2)),
            "" if fid is None else _cell(*mean_se(fid["values"])),
            f"{r['bytes']['mean']:,.0f}",
        ]

    rows = [
        [
            f"game, alpha_ii = {r['alpha_ii']['mean']:.1f}"
            + (" (alone)" if r["alpha_ii"]["mean"] == 1 else ""),
            *cells(r),
        ]
        for r in summary["rows"]
    ]
    names = {
        "fedavg_E10": "FedAvg E = 10",
        "fedcvae": "FedCVAE-Ens (its decoders: the alone row's)",
    }
    for method, r in summary.get("peers", {}).items():
        label = names.get(method, method.replace("fedprox_E10_mu", "FedProx E = 10, mu = "))
        rows.append([label, *cells(r)])
    cols = ["method", "player0 (0-4)", "player1 (5-9)", "mean", "FID to all digits", "bytes"]
    return md_table(cols, rows)


def plot(records: Path, out: Path) -> Path:
    """Mean test accuracy against beta per method (one panel per L), and per player at L = 100."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(22, 9), sharey=True)
    betas = [b for b in BETAS if any(load(records, b, L) for L in LABELS)]  # those with a record
    x = np.arange(len(betas))
    for row, L in enumerate(LABELS):
        data = [load(records, b, L) for b in betas]
        for col in range(5):
            ax = axes[row, col]
            for method, label in METHODS.items():
                pts = [
                    (i, d["test"][method]) for i, d in enumerate(data) if d and method in d["test"]
                ]
                if not pts:
                    continue
                ys = [(v.mean(1) if col == 0 else v[:, col - 1]) for _, v in pts]
                m = [y.mean() for y in ys]
                se = [mean_se(y)[1] if len(y) > 1 else 0 for y in ys]
                ax.errorbar([i for i, _ in pts], m, yerr=se, marker="o", capsize=2, label=label)
            ax.set_xticks(x, [b if b != "iid" else "IID" for b in betas])
            ax.set_xlabel("Dirichlet beta (label skew: left high)")
            title = "mean over players" if col == 0 else f"player{col - 1}"
            ax.set_title(f"L = {L}: {title}")
            ax.set_ylabel("test accuracy")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m experiments.label_skew", description=__doc__)
    p.add_argument("--records", type=Path, default=RECORDS, help="folder of the JSON records")
    p.add_argument("--plot", type=Path, help="write the accuracy-against-beta plot here")
    args = p.parse_args(argv)
    for part in (accuracy_table, comparison_table, fedcvae_table, per_player_table, bytes_table):
        print(part(args.records), end="\n\n")
    if args.plot:
        print(plot(args.records, args.plot))


if __name__ == "__main__":
    main()
