import json
from pathlib import Path

import pytest
import torch
from helpers import user_error

from datasets import polymnist
from experiments import polymnist_cross

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"

TINY = """
rounds = 2
warmup_rounds = 1
batch_size = 16
eval_every = 2
checkpoint_every = 2
classifier_steps = 3
eval_examples = 30
pair_tuples = 10
label_only_examples = 20
mask_player_examples = 40
fedavg_local_steps = [2]
fedprox_local_steps = []
[player.variables.0]
width = 2
[player]
latent = 2
hidden = 8
"""


def test_polymnist_cross_runs_end_to_end(tmp_path, polymnist_dir):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "run"
    common = [
        "--config",
        str(cfg),
        "--data",
        str(polymnist_dir),
        "--out",
        str(out),
        "--no-progress",
    ]
    res = polymnist_cross.main([*common, "--device", "cpu"])
    saved = json.loads((out / "results.json").read_text())
    for tag in ("game", "alone", "central"):
        assert set(saved[tag]["accuracy"]) == {f"m{k}" for k in range(5)}
        assert len(saved[tag]["coherence"]) == 5
        assert all(v >= 0 for v in saved[tag]["fid"].values())
        # the literature's axes: label from 1 .. 4 styles, the others generated; joint coherence
        assert set(saved[tag]["coherence_from_subset"]) == {"1", "2", "3", "4"}
        assert 0 <= saved[tag]["joint_coherence"] <= 1
    # the label-only player exchanges labels only: 8 bytes per received example
    received = saved["bytes_per_round"]["received"]
    assert received["labels"] % 8 == 0 and received["labels"] < 16 * 8
    # alpha: uniform over own data and players with a non-empty interface; rows sum to 1
    assert all(abs(sum(r) - 1) < 1e-9 for r in saved["alpha"])
    for png in ("accuracy.png", "generated_game.png", "translations_game.png", "curves.png"):
        assert (out / png).stat().st_size > 500
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["game"], r["round"]) for r in lines] == [
        (tag, r) for tag in ("game", "alone", "central", "fedavg_E2") for r in (1, 2)
    ]
    # FedAvg over the five style players: its bytes are parameters up and down, the game's samples
    wire = saved["bytes_total"]
    assert wire["alone"] == wire["central"] == 0 < wire["game"] < wire["fedavg_E2"]
    assert set(saved["fedavg_E2"]["accuracy"]) == {f"m{k}" for k in range(5)}
    assert (out / "accuracy_vs_bytes.png").stat().st_size > 1000
    assert set(lines[1]["players"]["style0"]) >= {"loss", "elbo", "classifier"}
    assert "mean_accuracy" not in lines[1].get("evaluation", {})  # no hooks: losses only
    assert res["game"]["mean_accuracy"] == pytest.approx(saved["game"]["mean_accuracy"])
    # where the run's time went: the evaluation's classifiers, each training and its evaluation
    methods = ("game", "alone", "central", "fedavg_E2")
    phases = {"classifiers", *methods, *(f"{t}_evaluation" for t in methods)}
    assert set(saved["seconds"]) == phases and all(v > 0 for v in saved["seconds"].values())
    assert sum(saved["seconds"].values()) <= saved["total_seconds"]
    # resume: the checkpoints exist and a resumed run picks them up without replaying rounds
    assert (out / "game.ckpt").is_file()
    again = polymnist_cross.main([*common, "--resume"])
    assert again["game"]["accuracy"] == res["game"]["accuracy"]


def test_unknown_config_key_is_an_error(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("roundz = 3\n")
    err = user_error(
        capsys,
        polymnist_cross.main,
        ["--config", str(cfg), "--out", str(tmp_path / "r"), "--no-progress"],
    )
    assert "unknown config key 'roundz'; did you mean 'rounds'?" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_fashion_ssl_runs_end_to_end_on_tiny_shards(tmp_path):
    from experiments import fashion_ssl

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'dataset = "mnist"\nshard_size = 120\nlabelled = [20, 200]\nrounds = 2\nwarmup_rounds = 1\nbatch_size = 16\n'
        "discriminative_steps = 2\ncentral_examples = 200\ntest_examples = 50\n"
        "fedavg_local_steps = [1]\nfedprox_local_steps = [2]\nno_harm_every = 1\n"
        "fedmd_every = 1\npublic_pool = 100\nfedmd_rows = 8\nfedmd_steps = 1\n"
        "players = [" + ", ".join(["{width = 2, hidden = 8, latent = 2}"] * 4) + "]\n"
        "federated_player = {width = 2, hidden = 8, latent = 4}\n"
    )
    out = tmp_path / "run"
    with pytest.warns(UserWarning) as caught:
        res = fashion_ssl.main(["--config", str(cfg), "--out", str(out), "--no-progress"])
    # said once, before any work, naming every short shard (not once per player and method)
    short = [str(w.message) for w in caught if "labels asked for" in str(w.message)]
    assert short == [
        "seed 0: 200 labels asked for, but player0 (120), player1 (120), player2 (120), "
        "player3 (120) hold fewer examples: each gets its whole shard labelled "
        "(results.json 'labelled_actual')"
    ]
    methods = ("discriminative", "alone", "game", "no_harm", "fedavg_E1", "fedprox_E2", "fedmd_E1")
    for method in methods:
        for k in range(4):
            accs = res["accuracy"][method][f"player{k}"]
            assert set(accs) == {"20", "200"} and all(0 <= v <= 1 for v in accs.values())
    # bytes over the run: FedAvg every step moves the initial model and 2 averagings (up and
    # down) of the four latent-4 players' parameters; the no-harm game logs its updates
    wire = res["bytes_total"]["20"]
    assert wire["alone"] == 0 and wire["fedavg_E1"] > wire["fedprox_E2"] > 0
    assert wire["fedavg_E1"] / wire["fedprox_E2"] == 5 / 3  # (1 + 2 * 2) : (1 + 2 * 1)
    # ensemble distillation after rounds 1 and 2: 4 players' 8 x 10 logits up, the mean down
    assert wire["fedmd_E1"] == 2 * 2 * 4 * 8 * 10 * 4
    assert [u["round"] for u in res["no_harm"]["20"]] == [1, 2]
    assert (out / "accuracy_vs_bytes.png").stat().st_size > 1000
    # labelled count 200 > shard of 120: the whole shard is labelled, and the record says so
    assert res["labelled_actual"]["200"] == dict.fromkeys([f"player{k}" for k in range(4)], 120)
    assert res["labelled_actual"]["20"]["player0"] == 20
    fid = res["label_fidelity"]
    assert set(fid) == {"alone", "game", "no_harm"} and all(
        0 <= fid[m][f"player{k}"][L] <= 1 for m in fid for k in range(4) for L in ("20", "200")
    )
    assert (out / "accuracy_vs_labels.png").stat().st_size > 1000
    assert (out / "game_L20.ckpt").is_file()
    sent = res["exchange"]["20"]["synthetic_per_round"]["sent"]
    assert all(v > 0 for v in sent.values())
    val = res["validation_accuracy"]
    assert all(0 <= val[m][f"player{k}"][L] <= 1 for m in val for k in range(4) for L in accs)


def test_the_paper_set_up_of_fashion_ssl_holds_labelled_data_only_and_adds_distillation(tmp_path):
    import tomllib

    from experiments import fashion_ssl
    from experiments.config import resolve, to_toml
    from experiments.fashion_ssl.run import shard_batch, validation_split

    paper = tomllib.loads((CONFIGS / "fashion_ssl_paper.toml").read_text())
    tiny = {
        "dataset": "mnist",
        "shard_size": 120,
        "labelled": [20],
        "rounds": 2,
        "batch_size": 16,
        "discriminative_steps": 2,
        "central_examples": 200,
        "test_examples": 50,
        "validation_examples": 100,
        # the paper's methods only (the baselines beside them are tested above)
        "no_harm": False,
        "fedavg_local_steps": [],
        "fedprox_local_steps": [],
    }
    cfg = resolve(fashion_ssl.Config, [paper, tiny])
    assert cfg.own_weight == 0.25 and cfg.player.learning == "symmetric_equilibrium"
    path = tmp_path / "paper.toml"
    path.write_text(to_toml(cfg))
    res = fashion_ssl.main(["--config", str(path), "--out", str(tmp_path / "run"), "--no-progress"])
    assert set(res["accuracy"]) == {"discriminative", "alone", "game", "distillation", "central"}
    assert all(0 <= v["20"] <= 1 for v in res["accuracy"]["distillation"].values())
    d = cfg.model_dump()
    shard = shard_batch(d, 0, 1, 20)
    assert len(shard) == 20 and bool(shard.observed("label").all())  # no unlabelled rows
    # the validation split is disjoint from every shard (compared through the images)
    vx, _ = validation_split(d, 0)
    seen = {
        tuple(x.flatten()[::37].tolist()) for k in range(4) for x in shard_batch(d, 0, k, 20)["x"]
    }
    assert not any(tuple(x.flatten()[::37].tolist()) in seen for x in vx)


def test_mnist_alpha_runs_end_to_end(tmp_path):
    from experiments import mnist_alpha

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "alphas = [0.2, 1.0]\nrounds = 2\nwarmup_rounds = 1\nbatch_size = 16\nsamples = 30\nclassifier_steps = 2\n"
        "fedavg_local_steps = [2]\nfedprox_local_steps = [1]\nfedcvae = true\nfedcvae_samples = 40\n"
        "[player.variables.0]\nwidth = 2\n[player]\nhidden = 8\nlatent = 2\n"
    )
    out = tmp_path / "run"
    res = mnist_alpha.main(["--config", str(cfg), "--out", str(out), "--no-progress"])
    assert [r["alpha_ii"] for r in res["rows"]] == [0.2, 1.0]
    # the peers on the same two shards: each player's accuracy on all ten digits, and FID
    peers = res["peers"]
    assert set(peers) == {"fedavg_E2", "fedprox_E1", "fedcvae"}
    for method, r in peers.items():
        assert len(r["accuracy_all_digits"]) == 2 and r["bytes"] > 0, method
    assert peers["fedavg_E2"]["fid"]["classes"]["all"] >= 0
    # FedCVAE's server drew by each player's class counts: player0 holds digits 0-4 only
    counts = peers["fedcvae"]["class_counts"]
    assert all(c > 0 for c in counts["player0"][:5]) and counts["player0"][5:] == [0] * 5
    assert all(len(r["accuracy_all_digits"]) == 2 and r["bytes"] >= 0 for r in res["rows"])
    assert res["rows"][1]["bytes"] == 0  # alpha_ii = 1: nothing travels
    for r in res["rows"]:
        for space in ("penultimate", "classes"):
            assert all(r["fid"][space][k] >= 0 for k in ("all", "own", "other"))
        assert [sum(c) for c in r["generated_classes"]] == [30, 30]
        assert 0.0 <= r["own_fraction"] <= 1.0
        assert 0.0 <= r["label_fidelity"] <= 1.0
    assert [r["own_fraction_theory"] for r in res["rows"]] == [1 / 1.8, 1.0]
    assert set(res["expected_shape"]) == {
        "penultimate",
        "classes",
        "own_fraction_falls_with_alpha_ii",
    }
    for png in ("fid_vs_alpha.png", "samples_alpha0.2.png", "samples_alpha1.0.png"):
        assert (out / png).stat().st_size > 500


def test_the_paper_set_up_of_mnist_alpha_plays_unsupervised_hvae_players(tmp_path):
    import tomllib

    from experiments import mnist_alpha
    from experiments.config import resolve, to_toml
    from experiments.mnist_alpha.run import build_host, digits
    from modalities.hvae import HVAEPlayer

    paper = tomllib.loads((CONFIGS / "mnist_alpha_paper.toml").read_text())
    tiny = {
        "alphas": [0.5],
        "rounds": 2,
        "batch_size": 16,
        "samples": 30,
        "classifier_steps": 2,
        "player": {"width": 2, "hidden": 8, "nz0": 2, "nz1": 3},
    }
    cfg = resolve(mnist_alpha.Config, [paper, tiny])
    assert cfg.player.kind == "hvae" and cfg.binarise and cfg.warmup_rounds == 0
    d = cfg.model_dump()
    player, source = build_host("player0", d)
    assert isinstance(player, HVAEPlayer)
    assert source.batch.names == ("x",)  # unlabelled: the images alone
    assert set(source.batch["x"].unique().tolist()) == {0.0, 1.0}
    x, _ = digits(d, "test")
    assert set(x.unique().tolist()) == {0.0, 1.0}
    path = tmp_path / "paper.toml"
    path.write_text(to_toml(cfg))
    out = tmp_path / "run"
    res = mnist_alpha.main(["--config", str(path), "--out", str(out), "--no-progress"])
    assert res["player_kind"] == "hvae" and res["fid_spaces"] == ["penultimate", "classes"]
    row = res["rows"][0]
    assert "label_fidelity" not in row  # no labels to be faithful to
    assert all(row["fid"]["penultimate"][k] >= 0 for k in ("all", "own", "other"))
    assert (out / "samples_alpha0.5.png").stat().st_size > 500


def test_the_paper_set_up_of_polymnist_paper_runs_its_three_curves(tmp_path, polymnist_dir):
    import tomllib

    from experiments import polymnist_paper
    from experiments.config import resolve, to_toml
    from experiments.polymnist_paper.run import build_main

    paper = tomllib.loads((CONFIGS / "polymnist_paper_paper.toml").read_text())
    tiny = {
        "examples": 200,
        "mnist_examples": 100,
        "rounds": 4,
        "batch_size": 16,
        "test_examples": 20,
        "player": {"variables": {"0": {"width": 2}}, "latent": 2, "hidden": 8, "aux_weight": 10.0},
    }
    cfg = resolve(polymnist_paper.Config, [paper, tiny, {"data": str(polymnist_dir)}])
    assert cfg.style_at_test == "inferred" and cfg.mask_pretrain == 0.5
    # real (c, s) pairs come unpaired: no row holds both an image and a mask, half of a draw has s
    _, source = build_main(cfg.model_dump(), 0, "real_cs_unpaired")
    both = source.batch.observed("x") & source.batch.observed("s")
    assert not bool(both.any()) and int(source.batch.observed("s").sum()) == 100
    draw = source.draw(32, torch.Generator().manual_seed(0))
    assert int(draw.observed("s").sum()) == 16
    path = tmp_path / "paper.toml"
    path.write_text(to_toml(cfg))
    out = tmp_path / "run"
    res = polymnist_paper.main(["--config", str(path), "--out", str(out), "--no-progress"])
    assert list(res["accuracy"]) == ["discriminative", "real_cs_unpaired", "synthetic_cs"]
    assert res["style_at_test"] == "inferred"
    for acc in res["accuracy"].values():
        assert all(0 <= v <= 1 for v in acc.values())
    # the mask generator learnt alone for the first half of the rounds, then sent
    assert res["exchange"]["rounds"] == 4 and res["exchange"]["exchange_rounds"] == 2
    recv = res["exchange"]["synthetic_per_round"]["received"]
    assert recv["main"] > 0 and recv["mnist"] == 0


def test_polymnist_paper_gives_the_style_or_leaves_it_to_be_inferred():
    from experiments.polymnist_paper.run import style_accuracy

    class Recorder:
        def __init__(self):
            self.seen = []

        def infer(self, name, given):
            self.seen.append(given.names)
            return torch.nn.functional.one_hot(
                torch.zeros(len(given), dtype=torch.long), 10
            ).float()

    test = {
        "images": torch.zeros(6, 5, 3, 28, 28, dtype=torch.uint8),
        "labels": torch.tensor([0, 0, 0, 1, 1, 1]),
    }
    given, inferred = Recorder(), Recorder()
    acc = style_accuracy(given, test, 6)
    assert acc["avg"] == pytest.approx(0.5) and all(s == ("x", "style") for s in given.seen)
    style_accuracy(inferred, test, 6, "inferred")
    assert len(inferred.seen) == 5 and all(s == ("x",) for s in inferred.seen)


def test_mnist_alpha_refuses_a_missing_inception_weights_file_before_any_work(tmp_path, capsys):
    from experiments import mnist_alpha

    missing = tmp_path / "none.pth"
    argv = ["--set", f'inception_weights="{missing}"', "--out", str(tmp_path / "run")]
    err = user_error(capsys, mnist_alpha.main, argv)
    assert "inception_weights" in err and "none.pth" in err
    assert not (tmp_path / "run" / "alpha0.10").exists()


def test_polymnist_paper_runs_all_variants(tmp_path, polymnist_dir):
    from experiments import polymnist_paper

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "examples = 200\nmnist_examples = 100\nrounds = 2\nbatch_size = 16\ntest_examples = 20\n"
        "[player.variables.0]\nwidth = 2\n[player]\nlatent = 2\nhidden = 8\nlr = 1e-3\naux_weight = 10.0\n"
    )
    out = tmp_path / "run"
    res = polymnist_paper.main(
        ["--config", str(cfg), "--data", str(polymnist_dir), "--out", str(out), "--no-progress"]
    )
    assert set(res["accuracy"]) == {"base", "real_cs", "synthetic_cs"}
    for acc in res["accuracy"].values():
        assert set(acc) == {"m0", "m1", "m2", "m3", "m4", "avg"}
    # only the interface {label, s} travels from the MNIST player to the main player
    recv = res["exchange"]["synthetic_per_round"]["received"]
    assert recv["main"] > 0 and recv["mnist"] == 0
    assert (out / "generated_synthetic_cs.png").stat().st_size > 500


def test_config_json_records_the_command_line_overrides(tmp_path):
    from experiments import expfam_equilibrium

    out = tmp_path / "run"
    res = expfam_equilibrium.main(
        ["--quick", "--players", "3", "--out", str(out), "--no-progress", "--device", "cpu"]
        + ["--config", str(_toml(tmp_path, "rounds = 4\nbatch_size = 64\n"))]
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["players"] == 3 and cfg["rounds"] == 4 and cfg["batch_size"] == 64
    assert len(res["alpha"]) == 3 and res["rounds"] == 4


def test_polymnist_rounds_flag_is_what_runs_and_what_is_recorded(tmp_path, polymnist_dir):
    from test_literature_metrics import write_reference

    out = tmp_path / "run"
    clf = write_reference(tmp_path / "clf", modalities=5)  # the release's format, random weights
    res = polymnist_cross.main(
        ["--config", str(_toml(tmp_path, TINY)), "--data", str(polymnist_dir), "--rounds", "3"]
        + ["--set", f'reference_classifiers="{clf}"', "--out", str(out), "--no-progress"]
    )
    # the reference classifiers, not ones trained in the run, are what the evaluation used
    from datasets.polymnist_classifiers import load_reference_classifiers

    test = polymnist.load(polymnist_dir, "test")
    from experiments.polymnist_cross.run import classifier_accuracy

    expected = classifier_accuracy(load_reference_classifiers(clf), test, 30)
    assert res["classifier_accuracy"] == pytest.approx(expected)
    assert set(res["game"]["linear_probe"]) == {f"m{k}" for k in range(5)}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rounds"] == 3 and cfg["data"] == str(polymnist_dir)
    saved = json.loads((out / "results.json").read_text())
    assert saved["exchange"]["rounds"] == 3


def _toml(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_config_json_records_versions_and_commit(tmp_path):
    from experiments import expfam_equilibrium

    out = tmp_path / "run"
    expfam_equilibrium.main(["--quick", "--players", "2", "--out", str(out), "--no-progress"])
    prov = json.loads((out / "config.json").read_text())["provenance"]
    assert prov["torch"] and prov["pyro-ppl"] and prov["python"].startswith("3.")
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40


def test_resume_without_out_is_an_error_naming_the_option(capsys):
    from experiments import mnist_alpha

    with pytest.raises(SystemExit):
        mnist_alpha.main(["--resume"])
    assert "--resume needs --out" in capsys.readouterr().err


def test_mmgame_dispatches_to_the_experiments(tmp_path, capsys):
    from experiments import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0 and "run" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["run", "expfam-equilibrium", "--help"])
    assert "--players" in capsys.readouterr().out
    out = tmp_path / "run"
    res = cli.main(
        [
            "run",
            "expfam-equilibrium",
            "--quick",
            "--players",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert res["rounds"] == 120 and (out / "results.json").is_file()
    with pytest.raises(SystemExit):
        cli.main(["run", "no-such"])
    assert "invalid choice: 'no-such'" in capsys.readouterr().err


def test_resume_refuses_a_changed_config_and_keeps_the_record(tmp_path, capsys):
    from experiments import mnist_alpha

    toml = "alphas = [0.5]\nrounds = 2\nwarmup_rounds = 1\nbatch_size = 8\nsamples = 20\n"
    toml += "classifier_steps = 2\ncheckpoint_every = 2\n[player.variables.0]\nwidth = 2\n[player]\nhidden = 8\nlatent = 2\n"
    cfg = _toml(tmp_path, toml)
    out = tmp_path / "run"
    common = ["--config", str(cfg), "--out", str(out), "--no-progress"]
    mnist_alpha.main(common)
    before = (out / "config.json").read_text()
    cfg.write_text(toml.replace("hidden = 8", "hidden = 8\nlr = 0.5"))
    err = user_error(capsys, mnist_alpha.main, [*common, "--resume"])
    assert "player.lr: 0.001 -> 0.5" in err
    argv = [*common, "--resume", "--seed", "3", "--allow-change", "player.lr"]
    assert "seed: 0 -> 3" in user_error(capsys, mnist_alpha.main, argv)
    cfg.write_text(toml.replace("width = 2", "width = 3"))  # a changed network width
    assert "player.variables.0.width: 2 -> 3" in user_error(
        capsys, mnist_alpha.main, [*common, "--resume"]
    )
    assert (out / "config.json").read_text() == before  # the rejected config was never written
    # more rounds continue the same trajectory; a named change is accepted when asked for
    cfg.write_text(toml.replace("rounds = 2", "rounds = 3"))
    res = mnist_alpha.main([*common, "--resume"])
    assert json.loads((out / "config.json").read_text())["rounds"] == 3 and res["rows"]
    # a sweep value added since: allowed by name, and the run says that this game starts fresh
    cfg.write_text(toml.replace("rounds = 2", "rounds = 3").replace("[0.5]", "[0.5, 1.0]"))
    capsys.readouterr()
    mnist_alpha.main([*common, "--resume", "--allow-change", "alphas"])
    assert "alpha1.00: no checkpoint" in capsys.readouterr().out


def test_tensorboard_logging_writes_the_metrics_as_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from experiments import expfam_equilibrium

    out = tmp_path / "run"
    expfam_equilibrium.main(
        ["--quick", "--players", "2", "--set", "rounds=4", "--set", "log_every=1"]
        + ["--tensorboard", "--out", str(out), "--no-progress"]
    )
    acc = EventAccumulator(str(out / "tensorboard" / "game")).Reload()
    losses = acc.Scalars("player0/loss")
    assert [e.step for e in losses] == [1, 2, 3, 4]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in lines if r["game"] == "game"][-1]
    assert losses[-1].value == pytest.approx(last["players"]["player0"]["loss"])


def test_mixture_inference_runs_end_to_end(tmp_path):
    from experiments import mixture_inference

    out = tmp_path / "run"
    res = mixture_inference.main(
        ["--quick", "--set", 'setups=["digits"]', "--set", "rounds=4", "--set", "holders=3"]
        + ["--set", "join_rounds=2", "--set", "baseline_steps=2", "--set", "baseline_samples=20"]
        + ["--set", "join_test_examples=30", "--set", "holder_examples=[40, 60]"]
        + ["--out", str(out), "--no-progress"]
    )
    hs = res["digits"]["holders"]
    assert len(hs) == 3 and all(40 <= h["examples"] <= 60 for h in hs)
    for h in hs:
        for key in ("true", "inferred", "baseline"):
            assert len(h[key]) == 3 and abs(sum(h[key]) - 1) < 1e-6
    assert set(res["digits"]["join"]) == {"alone", "uniform", "inferred"}
    assert (out / "proportions.png").stat().st_size > 1000


def test_domain_alpha_runs_end_to_end_and_learns_an_alpha(tmp_path):
    from experiments import domain_alpha

    out = tmp_path / "run"
    res = domain_alpha.main(
        ["--quick", "--set", 'second_domain="inverted_mnist"', "--set", "rounds=4"]
        + ["--set", "warmup_rounds=2", "--set", "update_every=2", "--set", "shard_size=100"]
        + ["--set", "kl_samples=16", "--set", "test_examples=50", "--set", "labelled=20"]
        + ["--set", "fedavg_local_steps=[2]", "--set", "fedprox_local_steps=[]"]
        + ["--out", str(out), "--no-progress"]
    )
    updates = res["learned"]["updates"]
    assert [u["round"] for u in updates] == [2, 4]
    alpha = res["learned"]["alpha"]
    assert all(abs(sum(row) - 1) < 1e-6 and row[i] == 0.5 for i, row in enumerate(alpha))
    assert set(res["accuracy"]) == {"alone", "uniform", "divergence", "oracle", "fedavg_E2"}
    assert res["bytes_total"]["alone"] == 0 < res["bytes_total"]["uniform"]
    assert (out / "accuracy.png").stat().st_size > 1000


def test_feature_exchange_runs_end_to_end_and_accounts_the_summaries(tmp_path):
    from experiments import feature_exchange

    res = feature_exchange.main(
        ["--quick", "--set", "rounds=3", "--set", "warmup_rounds=1", "--set", "shard_size=80"]
        + ["--set", "labelled=20", "--set", "test_examples=50", "--set", "statistics_samples=64"]
        + ["--out", str(tmp_path / "run"), "--no-progress"]
    )
    assert set(res["accuracy"]) == {"alone", "samples", "statistics"}
    # 12 transfers among 4 players, each 10 class probabilities, 10 means and 10 full 16 x 16
    # covariances in float64
    assert res["exchange"]["statistics"]["bytes_per_round"] == 12 * 8 * (10 + 10 * 16 + 10 * 256)
    assert res["exchange"]["samples"]["bytes_per_round"] > 0


def test_seeds_run_once_each_and_aggregate(tmp_path):
    from experiments import expfam_equilibrium

    out = tmp_path / "run"
    res = expfam_equilibrium.main(
        ["--quick", "--players", "2", "--set", "rounds=6", "--seeds", "0", "1"]
        + ["--out", str(out), "--no-progress"]
    )
    one = [json.loads((out / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
    assert json.loads((out / "seed1" / "config.json").read_text())["seed"] == 1
    err = res["summary"]["max_abs_error"]
    assert err["values"] == [r["max_abs_error"] for r in one]
    assert err["mean"] == pytest.approx(sum(err["values"]) / 2)
    assert one[0]["max_abs_error"] != one[1]["max_abs_error"]  # the seeds differ


def test_polymnist_cross_reuses_its_judges_and_reads_the_same_coherence(
    tmp_path, polymnist_dir, capsys
):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    runs = []
    for k in range(2):
        argv = ["--config", str(cfg), "--data", str(polymnist_dir), "--no-progress"]
        argv += ["--set", f"judges_cache={tmp_path / 'judges'}", "--set", "fedavg_local_steps=[]"]
        for small in (
            "modalities=3",
            "pairs=[]",
            "label_only_examples=0",
            "mask_player_examples=0",
        ):
            argv += ["--set", small]
        capsys.readouterr()
        runs.append(polymnist_cross.main([*argv, "--out", str(tmp_path / f"run{k}")]))
        said = capsys.readouterr().out
        assert ("judges: reused from" in said) == (k == 1), said
    trained, reused = runs
    assert len(list((tmp_path / "judges").glob("judges-*.pt"))) == 1
    assert trained["classifier_accuracy"] == reused["classifier_accuracy"]
    for tag in ("game", "alone", "central"):
        for axis in ("coherence", "coherence_from_subset", "joint_coherence", "fid"):
            assert trained[tag][axis] == reused[tag][axis], (tag, axis)
