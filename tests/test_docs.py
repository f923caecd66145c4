"""The results pages are generated from JSON records, and stay in sync with them."""

import json

import pytest

from experiments import (
    analyses,  # the derived tables of the results pages
    report,
)


def test_committed_pages_equal_what_the_records_render():
    pages = report.render_all()
    assert pages, "no page templates under docs/"
    for path, text in pages.items():
        assert path.read_text() == text, f"{path} is stale: run python -m experiments.report render"


def test_a_run_folder_becomes_a_record_and_a_table(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"experiment": "polymnist_paper", "rounds": 2}))
    accs = {v: {**{f"m{k}": 0.1 * k for k in range(5)}, "avg": 0.2} for v in ("base", "real_cs")}
    (run / "results.json").write_text(json.dumps({"accuracy": accs, "total_seconds": 12.0}))
    docs = tmp_path / "docs"
    path = report.add(
        run, "paper_tiny", "python -m experiments.polymnist_paper --quick", "test", docs
    )
    (docs / "results.template.md").write_text("# R\n\n<!-- table: paper_tiny -->\n")
    (text,) = report.render_all(docs).values()
    assert "| base | 0.000 | 0.100 | 0.200 | 0.300 | 0.400 | 0.200 |" in text
    assert "`python -m experiments.polymnist_paper --quick`" in text and "12 s" in text
    assert json.loads(path.read_text())["experiment"] == "polymnist_paper"
    (docs / "results.template.md").write_text("<!-- table: missing -->\n")
    with pytest.raises(FileNotFoundError, match="names record 'missing'"):
        report.render_all(docs)


def test_a_run_of_an_unknown_experiment_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="names no known experiment"):
        report.add(tmp_path, "x", "cmd", "note", tmp_path / "docs")


def test_a_multi_seed_record_renders_mean_and_std():
    record = {
        "experiment": "mixture_inference",
        "command": "python -m experiments.mixture_inference --quick --seeds 0 1",
        "conditions": "test",
        "date": "2026-11-24",
        "config": {},
        "results": {
            "seeds": [0, 1],
            "summary": {
                "styles": {"mean_mae": {"mean": 0.5, "std": 0.1, "values": [0.4, 0.6]}},
                "seconds": {"styles": {"mean": 3.0, "std": 0.0, "values": [3.0, 3.0]}},
            },
        },
    }
    text = report.render_record(record)
    assert "| styles.mean_mae | 0.500 +- 0.100 | 0.400, 0.600 |" in text
    assert "seconds" not in text  # only the experiment's result keys


def test_a_multi_seed_domain_alpha_record_renders_mean_and_std_per_cell():
    def stat(*values):
        m = sum(values) / len(values)
        return {"mean": m, "std": 0.05, "values": list(values)}

    names = ("mnist0", "fashion0")
    methods = ("alone", "divergence")
    summary = {
        "accuracy": {
            m: {n: stat(0.6 + 0.1 * i, 0.7 + 0.1 * i) for n in names} for i, m in enumerate(methods)
        },
        "mean_accuracy": {m: stat(0.6 + 0.1 * i, 0.7 + 0.1 * i) for i, m in enumerate(methods)},
        "own_domain_partner_share": {n: stat(1.0, 0.9) for n in names},
        "worst_own_domain_partner_share": {n: stat(0.8, 0.6) for n in names},
    }
    record = {
        "experiment": "domain_alpha",
        "command": "python -m experiments.domain_alpha --quick --seeds 0 1",
        "conditions": "test",
        "date": "2026-11-24",
        "config": {},
        "results": {"seeds": [0, 1], "summary": summary},
    }
    text = report.render_record(record)
    assert "| divergence | 0.750 +- 0.050 | 0.750 +- 0.050 | 0.750 +- 0.050 |" in text
    assert "final alpha: mnist0 0.95 +- 0.05" in text
    assert "used: mnist0 0.70 +- 0.05" in text


def test_the_targets_table_reads_means_over_seeds_and_counts_players(tmp_path):
    def stat(*values):
        m = sum(values) / len(values)
        return {"mean": m, "std": 0.0, "values": list(values)}

    pc = {
        "seeds": [0, 1, 2],
        "summary": {
            "game": {"mean_accuracy": stat(0.6, 0.6, 0.6), "mean_coherence": stat(0.5, 0.5, 0.5)},
            "alone": {"mean_accuracy": stat(0.5, 0.5, 0.5)},
        },
    }
    acc = {
        m: {f"player{k}": {"100": stat(v + 0.01 * k)} for k in range(4)}
        for m, v in (("discriminative", 0.70), ("alone", 0.72), ("game", 0.76))
    }
    acc["game"]["player3"]["100"] = stat(0.70)  # below both alone methods
    fs = {"seeds": [0, 1], "summary": {"accuracy": acc}}
    # per-seed gaps synthetic - base: -0.02, 0.00, +0.05 (the means' gap alone would hide the spread)
    pp = {
        "seeds": [0, 1, 2],
        "summary": {
            "accuracy": {
                "base": {"avg": stat(0.78, 0.80, 0.75)},
                "synthetic_cs": {"avg": stat(0.76, 0.80, 0.80)},
            }
        },
    }
    records = tmp_path / "results"
    records.mkdir()
    for name, res in (
        ("polymnist_cross_quick_3seeds", pc),
        ("fashion_ssl_quick_3seeds", fs),
        ("polymnist_paper_quick_3seeds", pp),
    ):
        (records / f"{name}.json").write_text(json.dumps({"results": res}))
    # the ssl_mnist benchmark's record lies beside the results records; two CPU seeds, one GPU run
    runs = [
        {"device": d, "method": m, "labels": L, "test_accuracy": a}
        for d, m, L, a in (
            ("cpu", "m2", 100, 0.87),
            ("cpu", "m2", 100, 0.89),
            ("cpu", "supervised", 100, 0.7),
            ("cpu", "m2", 1000, 0.95),
            ("cpu", "m2", 1000, 0.96),
            ("cuda", "m2", 100, 0.5),
        )
    ]
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "ssl_mnist_budget.json").write_text(json.dumps({"runs": runs}))
    text = analyses.quality_targets(records)
    assert "synthetic (c, s) - base | 0.010 +- 0.029 (3 seeds) | > 0 (3 seeds) | met |" in text
    assert "0.100 +- 0.000 (3 seeds) (game 0.600 +- 0.000 (3 seeds), alone 0.500" in text
    assert "| >= +0.10 | met |" in text
    assert "| 0.500 +- 0.000 (3 seeds) | >= 0.65 | not met |" in text
    # game - max(a, b) = +0.04 for players 0-2 (>= 0.03), -0.05 for player 3
    assert "3/4 players (game - best alone: +0.040, +0.040, +0.040, -0.050)" in text
    assert "| game >= max((a), (b)) + 0.03 for >= 3 of 4 | met |" in text
    assert "polymnist_cross standard: game mean accuracy | not run" in text
    ssl = "0.880 +- 0.010 (2 seeds) / 0.955 +- 0.005 (2 seeds) | >= 0.88 / >= 0.95 | met |"
    assert ssl in text
    assert "on the H100, 4 min, ~8,000 steps: 0.500 (1 seed);" in text
    assert "supervised on the labels alone: 0.700 (1 seed)" in text


@pytest.mark.parametrize("name", ["fashion_ssl_quick", "polymnist_cross_quick"])
def test_a_multi_seed_record_renders_in_the_experiments_own_table(name):
    from experiments.common import aggregate

    one = json.loads((report.DOCS / "results" / f"{name}.json").read_text())
    shifted = json.loads(json.dumps(one["results"]))
    game = shifted["accuracy"]["game"] if "accuracy" in shifted else shifted["game"]
    key = "player0" if "player0" in game else "mean_accuracy"
    if key == "player0":
        game["player0"] = {L: v + 0.1 for L, v in game["player0"].items()}
    else:
        game["mean_accuracy"] += 0.1
    record = {**one, "results": {"seeds": [0, 1], "summary": aggregate([one["results"], shifted])}}
    text = report.render_record(record)
    assert "Seeds 0, 1; mean +- std over seeds." in text
    assert " +- 0.050 |" in text  # the shifted cell: half the shift as std
    assert " +- 0.000 |" in text  # every other cell


def test_the_paper_tables_put_each_set_up_beside_the_paper(tmp_path):
    from experiments.common import aggregate

    def pp(base: float, real: float, synth: float, names: tuple[str, str, str]) -> dict:
        return {"accuracy": {n: {"avg": v} for n, v in zip(names, (base, real, synth))}}

    authors = ("discriminative", "real_cs_unpaired", "synthetic_cs")
    runs = [pp(0.70, 0.72, 0.74, authors), pp(0.72, 0.72, 0.76, authors)]
    summary = {"seeds": [0, 1], "summary": aggregate(runs)}
    (tmp_path / "polymnist_paper_paper_quick_3seeds.json").write_text(
        json.dumps({"results": summary})
    )
    text = analyses.paper_polymnist(tmp_path)
    assert "| base classifier | 0.9840 | 0.710 +- 0.010 (2 seeds) | not run |" in text
    assert "| synthetic (c, s) | 0.9866 | 0.750 +- 0.010 (2 seeds) | not run |" in text

    def sweep(own: tuple[float, ...], alphas=(0.1, 1.0)) -> dict:
        rows = [
            {"alpha_ii": a, "own_fraction": o, "fid": {"classes": {"all": 0.5 * o}}}
            for a, o in zip(alphas, own)
        ]
        return {"rows": rows}

    paper = {"seeds": [0, 1], "summary": aggregate([sweep((0.5, 0.9)), sweep((0.6, 0.9))])}
    (tmp_path / "mnist_alpha_paper_quick_3seeds.json").write_text(json.dumps({"results": paper}))
    project = sweep((0.55, 0.8, 0.7), alphas=(0.1, 0.4, 1.0))
    (tmp_path / "mnist_alpha_quick.json").write_text(json.dumps({"results": project}))
    text = analyses.paper_mnist_alpha(tmp_path)
    assert "| 0.1 | 0.55 +- 0.05 | 0.275 +- 0.025 | 0.55 | 0.275 | 0.53 |" in text
    assert "| 0.4 | not run | not run | 0.80 | 0.400 | 0.62 |" in text
    assert "| 1.0 | 0.90 +- 0.00 | 0.450 +- 0.000 | 0.70 | 0.350 | 1.00 |" in text


def test_the_fashion_paper_table_averages_players_per_seed_then_over_seeds(tmp_path):
    from experiments.common import aggregate

    def run(shift: float) -> dict:
        acc = {
            m: {f"player{k}": {"100": v + 0.01 * k + shift, "1000": v} for k in range(4)}
            for m, v in (("discriminative", 0.6), ("alone", 0.5), ("game", 0.4))
        }
        acc["distillation"] = {f"player{k}": {"100": 0.1, "1000": 0.1} for k in range(4)}
        return {"accuracy": acc}

    paper = {"seeds": [0, 1], "summary": aggregate([run(0.0), run(0.02)])}
    (tmp_path / "fashion_ssl_paper_quick_3seeds.json").write_text(json.dumps({"results": paper}))
    text = analyses.paper_fashion(tmp_path)
    # players 0-3 at +0, +0.01, +0.02, +0.03: mean +0.015; seeds +0 and +0.02: std 0.010
    assert "| 100 | cooperative: the game | 0.425 +- 0.010 (2 seeds) | not run |" in text
    assert "| 1000 | distillation | 0.100 +- 0.000 (2 seeds) | not in this set-up |" in text


def test_the_targets_table_counts_seeds_whose_fid_is_lowest_inside_the_sweep(tmp_path):
    from experiments.common import aggregate

    def sweep(pen: tuple, cls: tuple) -> dict:
        alphas = (1.0, 0.1, 0.5)  # unordered on purpose: the sweep is read by alpha_ii
        return {
            "rows": [
                {"alpha_ii": a, "fid": {"penultimate": {"all": p}, "classes": {"all": c}}}
                for a, p, c in zip(alphas, pen, cls)
            ]
        }

    # seed 0: lowest at 0.5 in both spaces; seed 1: penultimate lowest at 0.1 (an end)
    seeds = [sweep((30, 20, 10), (3, 2, 1)), sweep((30, 5, 10), (3, 2, 1))]
    summary = {"seeds": [0, 1], "summary": aggregate(seeds)}
    (tmp_path / "mnist_alpha_paper_quick_3seeds.json").write_text(json.dumps({"results": summary}))
    (tmp_path / "mnist_alpha_quick.json").write_text(json.dumps({"results": seeds[1]}))
    text = analyses.quality_targets(tmp_path)
    assert "authors' set-up (hvae): penultimate 1/2 seeds, classes 2/2 seeds" in text
    assert "project's set-up (M2): penultimate 0/1 seeds, classes 1/1 seeds" in text


def test_the_standard_synthetic_gap_pairs_runs_by_seed(tmp_path):
    def one(v):
        return {"mean": v, "std": 0.0, "values": [v]}

    base = {
        "seeds": [0, 1, 2],
        "summary": {"accuracy": {"base": {"avg": {"values": [0.95, 0.94, 0.96]}}}},
    }
    recs = {
        "polymnist_paper_standard": {"results": base},
        # seed 0 as a one-seed record, seed 2 as a multi-seed record of one seed
        "polymnist_paper_standard_cs": {
            "config": {"seed": 0},
            "results": {"accuracy": {"synthetic_cs": {"avg": 0.96}}},
        },
        "polymnist_paper_standard_synthetic_cs": {
            "results": {"seeds": [2], "summary": {"accuracy": {"synthetic_cs": {"avg": one(0.95)}}}}
        },
    }
    for name, rec in recs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    mean, std, n = analyses._standard_synthetic_gap(tmp_path)
    assert n == 2 and abs(mean) < 1e-9 and abs(std - 0.01) < 1e-9  # gaps +0.01 (seed 0), -0.01 (2)


def test_the_bytes_table_puts_each_method_beside_what_it_moved_over_the_run():
    seeds = {"mean": 0.7, "std": 0.01, "values": [0.69, 0.71]}
    nested = {
        "bytes_total": {"100": {"alone": 0, "fedavg_E10": {"mean": 2.5e6, "std": 0, "values": []}}},
        "mean_accuracy": {"alone": {"100": 0.65}, "fedavg_E10": {"100": seeds}},
    }
    text = report.wire_table(nested)
    assert "| labels | method | mean accuracy | bytes over the run |" in text
    assert "| L = 100 | alone | 0.650 | 0 |" in text
    assert "| L = 100 | fedavg_E10 | 0.700 +- 0.010 | 2,500,000 |" in text
    flat = {
        "bytes_total": {"game": 1234, "fedavg_E10": 99},
        "game": {"mean_accuracy": 0.5},
        "fedavg_E10": {"mean_accuracy": 0.6},
    }
    assert report.wire_table(flat).splitlines()[2:] == [
        "| game | 0.500 | 1,234 |",
        "| fedavg_E10 | 0.600 | 99 |",
    ]


def test_the_experiments_page_is_what_the_catalog_prints(capsys):
    from experiments import catalog

    assert catalog.main(["--check"]) == 0, "run: python -m experiments.catalog"
    page = catalog.PAGE.read_text()
    # every experiment, and each key's description from its Config field
    from experiments.fashion_ssl import Config

    for name in ("fashion_ssl", "polymnist_cross", "domain_alpha", "feature_exchange"):
        assert f"## `{name}`:" in page
    assert Config.model_fields["fedmd_every"].description.split()[0] in page
    assert "| `fedmd_every` | `0` | `10` |" in page  # default, then the quick profile


def test_a_default_toml_that_lost_a_key_is_stale_and_the_catalog_rewrites_it(
    tmp_path, monkeypatch, capsys
):
    import shutil

    from experiments import catalog

    configs = tmp_path / "configs"
    shutil.copytree(catalog.CONFIGS, configs)
    monkeypatch.setattr(catalog, "CONFIGS", configs)
    monkeypatch.setattr(catalog, "PAGE", tmp_path / "experiments.md")
    catalog.PAGE.write_text(catalog.render())
    toml = configs / "mnist_alpha.toml"
    full = toml.read_text()
    toml.write_text(full.replace("flush_denormals = true\n", ""))  # a key that drifted away
    capsys.readouterr()
    assert catalog.main(["--check"]) == 1
    assert "mnist_alpha.toml" in capsys.readouterr().out
    assert catalog.main([]) == 0 and toml.read_text() == full
    assert catalog.main(["--check"]) == 0


def test_a_number_in_prose_comes_from_its_record_and_a_wrong_path_is_named(tmp_path):
    docs = tmp_path / "docs"
    (docs / "results").mkdir(parents=True)
    summary = {"mean_accuracy": {"game": {"mean": 0.7351, "std": 0.01, "values": [0.7351]}}}
    record = {"experiment": "x", "command": "c", "conditions": "", "date": "", "config": {}}
    record["results"] = {"seeds": [0], "summary": summary, "bytes": [12345678]}
    (docs / "results" / "r.json").write_text(json.dumps(record))
    template = docs / "results.template.md"
    template.write_text("game {{r:summary.mean_accuracy.game}}, {{r:bytes.0:,.0f}} bytes\n")
    text = report.render(template, docs / "results")
    assert "game 0.735, 12,345,678 bytes" in text
    template.write_text("{{r:summary.mean_accuracy.gmae}}\n")
    with pytest.raises(KeyError, match="no 'summary.mean_accuracy.gmae' .*'gmae'"):
        report.render(template, docs / "results")


def test_the_batch_composition_table_pairs_the_two_records_by_seed(tmp_path):
    def record(game_values):
        cell = {"mean": 0, "std": 0, "values": game_values}
        acc = {"game": {f"player{k}": {"100": cell, "1000": cell} for k in range(4)}}
        summary = {"accuracy": acc, "validation_accuracy": acc}
        return {"results": {"seeds": [0, 1], "summary": summary}}

    (tmp_path / f"{analyses.DISPLACE}.json").write_text(json.dumps(record([0.60, 0.70])))
    (tmp_path / f"{analyses.ON_TOP}.json").write_text(json.dumps(record([0.61, 0.73])))
    text = analyses.batch_composition(tmp_path)
    # per seed +0.01 and +0.03: mean +0.02, standard error 0.01
    assert (
        "| 100 | validation | +0.020 +- 0.010 (2 seeds) | +0.020, +0.020, +0.020, +0.020 |" in text
    )


def test_the_gain_with_size_pairs_seeds_across_records_and_names_sizes_not_run(tmp_path):
    from experiments.common import aggregate

    def pc(alone: float, game: float, central: float) -> dict:
        return {
            "alone": {"mean_accuracy": alone},
            "game": {"mean_accuracy": game, "mean_coherence": 0.5},
            "central": {"mean_accuracy": central},
        }

    quick = {"seeds": [0, 1], "summary": aggregate([pc(0.5, 0.54, 0.6), pc(0.52, 0.58, 0.6)])}
    records = {
        "polymnist_cross_quick_3seeds": quick,
        "polymnist_cross_standard": pc(0.6, 0.7, 0.75),  # seed 0
        "polymnist_cross_standard_seed1": pc(0.62, 0.7, 0.77),
    }

    def paper(**variants: float) -> dict:
        return {"accuracy": {v: {"avg": a} for v, a in variants.items()}}

    # polymnist_paper: the base of seeds 0 and 1 in one record, synthetic (c, s) in one per seed
    records["polymnist_paper_standard"] = {
        "seeds": [0, 1],
        "summary": aggregate([paper(base=0.90), paper(base=0.92)]),
    }
    records["polymnist_paper_standard_cs"] = paper(real_cs=0.5, synthetic_cs=0.91)  # seed 0
    for name, res in records.items():
        seed = 1 if name.endswith("seed1") else 0
        (tmp_path / f"{name}.json").write_text(
            json.dumps({"results": res, "config": {"seed": seed}})
        )
    (tmp_path / "polymnist_paper_standard_synthetic_cs.json").write_text(
        json.dumps({"results": paper(synthetic_cs=0.95), "config": {"seed": 1}})
    )
    rows = analyses.gain_with_size(tmp_path).splitlines()
    # quick: gains 0.04 and 0.06 (SE 0.01); central gains 0.1 and 0.08
    assert rows[2].startswith("| quick | +0.050 +- 0.010 (2 seeds) | +0.090 | 56% | 0.500 |")
    assert rows[2].endswith("| not run |")  # no polymnist_paper record at this size
    # standard: one seed from each record, paired by seed; polymnist_paper +0.01 and +0.03
    assert rows[3].startswith("| standard | +0.090 +- 0.010 (2 seeds) | +0.150 | 60% |")
    assert rows[3].endswith("| +0.020 +- 0.010 (2 seeds) |")
    assert rows[4] == "| large | not run |  |  |  |  |  |  |"


def test_the_results_page_is_a_summary_that_links_every_topic_page():
    pages = report.render_all()
    main = report.DOCS / "results.md"
    topics = sorted(p.name for p in pages if p.name.startswith("results_"))
    assert len(topics) >= 5
    text = pages[main]
    assert all(f"]({name})" in text for name in topics), "a topic page is not linked"
    assert len(text.splitlines()) <= 100  # a summary: the details live on the topic pages
