"""Label-skewed shards and the one-shot generative exchange (FedCVAE-Ens) beside the game."""

import json

import pytest
import torch
from helpers import image_spec, user_error

from datasets.shards import dirichlet, labelled_mask
from multimodal_game.batch import Batch
from multimodal_game.fedcvae import (
    allocation,
    classifier_bytes,
    decoder_bytes,
    fedcvae_bytes,
    fedcvae_ens,
    server_dataset,
)


def test_dirichlet_shards_split_each_class_by_the_drawn_proportions(monkeypatch):
    # planted Gamma draws: class 0 split 1 : 3, class 1 split 2 : 2 between two players
    draws = iter([torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])])
    monkeypatch.setattr(torch, "_standard_gamma", lambda conc, generator=None: next(draws))
    labels = torch.tensor([0] * 8 + [1] * 6)
    parts = dirichlet(labels, 2, 0.5, seed=0)
    # by hand: 8 x (1/4, 3/4) = (2, 6) of class 0, 6 x (1/2, 1/2) = (3, 3) of class 1
    assert [torch.bincount(labels[p], minlength=2).tolist() for p in parts] == [[2, 3], [6, 3]]
    assert sorted(torch.cat(parts).tolist()) == list(range(14))  # disjoint and complete


def test_dirichlet_shards_are_seeded_and_skewed_by_beta():
    labels = torch.arange(5000) % 10

    def max_share(beta, seed):
        parts = dirichlet(labels, 4, beta, seed)
        counts = torch.stack([torch.bincount(labels[p], minlength=10) for p in parts])
        return (counts.max(0).values / counts.sum(0)).mean().item(), parts

    a, pa = max_share(0.05, 3)
    _, pb = max_share(0.05, 3)
    _, pc = max_share(0.05, 4)
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc))
    assert a > 0.8 > 0.4 > max_share(100.0, 3)[0]  # high skew: most of a class with one player


def test_uniform_labelled_draw_follows_the_shards_class_proportions():
    labels = torch.tensor([0] * 90 + [1] * 10)
    rows = torch.arange(100)
    balanced = labelled_mask(labels, rows, 50, seed=1)
    uniform = labelled_mask(labels, rows, 50, seed=1, balanced=False)
    assert int(balanced.sum()) == int(uniform.sum()) == 50
    assert int(balanced[90:].sum()) == 10  # round robin over classes: the rare class all labelled
    assert int(uniform[90:].sum()) < 10  # a draw from the shard: about 5 of the rare class


class Planted:
    """A decoder that draws every image as the constant ``value`` and records what it was asked."""

    def __init__(self, value):
        self.value, self.asked = value, []

    def sample(self, n, given):
        self.asked.append(given["label"].clone())
        return Batch({"label": given["label"], "x": torch.full((n, 1, 2, 2), self.value)})


def test_the_server_draws_labels_in_proportion_to_the_players_class_counts():
    counts = {"a": torch.tensor([30, 10, 0]), "b": torch.tensor([0, 20, 40])}
    take = allocation(counts, 50)  # 100 counts in all, so half of each
    assert take["a"].tolist() == [15, 5, 0] and take["b"].tolist() == [0, 10, 20]
    assert int(sum(t.sum() for t in allocation(counts, 7).values())) == 7  # remainders placed
    with pytest.raises(ValueError, match="no player holds a labelled example"):
        allocation({"a": torch.zeros(3)}, 10)


def test_the_fedcvae_server_trains_only_on_decoder_samples():
    decoders = {"a": Planted(1.0), "b": Planted(2.0)}
    counts = {"a": torch.tensor([6, 2, 0]), "b": torch.tensor([0, 0, 4])}
    seen = {}

    def fit(name, data):
        seen[name] = data
        return name

    models, data = fedcvae_ens(decoders, counts, fit, 24, seed=0)
    assert models == {"a": "a", "b": "b"} and seen["a"] is data and seen["b"] is data
    # every row is a decoder's sample: a's images are 1, b's are 2, with the planted label counts
    source = data["x"].flatten(1)[:, 0]
    assert set(source.tolist()) == {1.0, 2.0}
    assert torch.bincount(data["label"][source == 1.0], minlength=3).tolist() == [12, 4, 0]
    assert torch.bincount(data["label"][source == 2.0], minlength=3).tolist() == [0, 0, 8]
    assert [t.tolist() for t in decoders["b"].asked] == [[2] * 8]
    again = server_dataset(decoders, counts, 24, seed=0)
    assert torch.equal(again["label"], data["label"])  # seeded shuffle


def test_fedcvae_bytes_are_the_decoders_and_the_classifiers_parameters():
    from modalities import build_player

    spec = image_spec()
    player = build_player(spec)
    dec = sum(p.numel() * 4 for p in player.decoders.parameters())
    head = [*player.c_encoders.parameters(), *player.classifier.parameters()]
    assert decoder_bytes(player) == dec > 0
    assert classifier_bytes(player) == sum(p.numel() * 4 for p in head) > 0
    # two players: two decoders and 10 int64 counts each up, two classifiers down
    assert fedcvae_bytes({"a": dec, "b": dec}, {"a": 7, "b": 9}, 10) == 2 * dec + 160 + 16


TINY_SKEW = [
    "--set", 'dataset="mnist"', "--set", "shard_size=150", "--set", "labelled=[20]",
    "--set", "rounds=2", "--set", "warmup_rounds=1", "--set", "batch_size=16",
    "--set", "discriminative_steps=2", "--set", "central_examples=200",
    "--set", "test_examples=50", "--set", "fedavg_local_steps=[1]",
    "--set", "fedprox_local_steps=[]", "--set", "fedmd_every=0", "--set", "no_harm=false",
    "--set", "fidelity_samples=10", "--set", "fedcvae_samples=40",
    "--set", "players=[" + ", ".join(["{width = 2, hidden = 8, latent = 2}"] * 4) + "]",
    "--set", 'federated_player={width = 2, hidden = 8, latent = 2}',
    "--set", 'partition="dirichlet"', "--set", "beta=0.1",
]  # fmt: skip


def test_fashion_ssl_under_label_skew_records_the_shards_and_runs_fedcvae(tmp_path):
    from experiments import fashion_ssl
    from experiments.fashion_ssl.run import player_spec, shards
    from modalities import build_player

    out = tmp_path / "run"
    argv = [*TINY_SKEW, "--set", "game_federated_player=true", "--out", str(out)]
    res = fashion_ssl.main([*argv, "--no-progress"])
    cfg = json.loads((out / "config.json").read_text())
    record = res["shards"]["20"]
    for k in range(4):
        r = record[f"player{k}"]
        assert sum(r["class_counts"]) == r["examples"] and r["labelled"] == min(20, r["examples"])
        assert all(a <= b for a, b in zip(r["labelled_class_counts"], r["class_counts"]))
    # skewed: some player's shard is mostly one class
    assert max(max(r["class_counts"]) / r["examples"] for r in record.values()) > 0.5
    # the partition is the seed's alone: another label count sees the same shard rows
    pool, a = shards(cfg, 0, 20)
    _, b = shards(cfg, 0, 100)
    assert all(torch.equal(x.indices, y.indices) for x, y in zip(a, b))
    assert [len(s) for s in a] == [record[f"player{k}"]["examples"] for k in range(4)]
    for method in ("fedcvae", "game_fedarch", "fedavg_E1", "game", "alone"):
        assert all(0 <= v["20"] <= 1 for v in res["accuracy"][method].values()), method
    # FedCVAE's bytes: each player's decoder and 10 counts up, its own classifier down
    players = [build_player(player_spec(cfg, k)) for k in range(4)]
    sent = sum(decoder_bytes(p) + 80 + classifier_bytes(p) for p in players)
    assert res["bytes_total"]["20"]["fedcvae"] == sent


def test_a_dirichlet_split_that_leaves_a_player_empty_is_one_line_before_any_work(tmp_path, capsys):
    from experiments import fashion_ssl

    out = tmp_path / "run"
    eight = "[" + ", ".join(["{width = 2, hidden = 8, latent = 2}"] * 8) + "]"
    argv = [*TINY_SKEW, "--set", "beta=0.001", "--set", f"players={eight}"]
    line = user_error(capsys, fashion_ssl.main, [*argv, "--seeds", "0", "1", "--out", str(out)])
    assert "without a training example" in line and "player" in line and "beta = 0.001" in line
    assert not out.exists()


def test_a_tiny_beta_concentrates_each_class_instead_of_splitting_it_evenly():
    # at beta = 0.001 every float32 Gamma(beta) draw is clamped to the smallest normal number;
    # normalising those would split each class evenly, the opposite of the skew asked for
    labels = torch.arange(1200) % 10
    parts = dirichlet(labels, 8, 0.001, seed=0, empty_ok=True)
    counts = torch.stack([torch.bincount(labels[p], minlength=10) for p in parts])
    assert (counts.max(0).values >= 119).all()  # each class (120 rows) with one player


def test_the_peers_overlay_of_mnist_alpha_loads_and_refuses_hvae_players():
    from pathlib import Path

    from experiments import mnist_alpha
    from experiments.config import load_toml, resolve
    from experiments.mnist_alpha.run import check
    from multimodal_game.errors import ConfigError

    overlay = load_toml(Path(__file__).parents[1] / "experiments/configs/mnist_alpha_peers.toml")
    cfg = resolve(mnist_alpha.Config, [mnist_alpha.QUICK, overlay]).model_dump()
    check(cfg)  # the shipped overlay passes the checks before any work
    with pytest.raises(ConfigError, match="need m2 players"):
        check(resolve(mnist_alpha.Config, [overlay, {"player": {"kind": "hvae"}}]).model_dump())
    with pytest.raises(ConfigError, match="add 1.0 to alphas"):
        check({**cfg, "alphas": [0.5]})


def _record(folder, beta, L, test, validation, seeds=3):
    """A sweep record whose every player has the per-seed values ``test[method]`` (and
    ``validation[method]``)."""

    def node(values):
        return {f"player{k}": {L: {"values": list(values)}} for k in range(4)}

    summary = {
        "accuracy": {m: node(v) for m, v in test.items()},
        "validation_accuracy": {m: node(v) for m, v in validation.items()},
        "bytes_total": {L: {m: {"mean": 1000.0} for m in test}},
    }
    summary["accuracy"]["central"] = {f"player{k}": {"values": [0.9] * seeds} for k in range(4)}
    summary["validation_accuracy"]["central"] = summary["accuracy"]["central"]
    path = folder / f"fashion_ssl_skew_beta{beta}_L{L}.json"
    path.write_text(json.dumps({"results": {"seeds": list(range(seeds)), "summary": summary}}))


def test_the_sweep_tables_choose_fedprox_mu_on_validation_and_pair_by_seed(tmp_path):
    from experiments import label_skew

    test = {
        "discriminative": [0.50, 0.52, 0.54],
        "alone": [0.50, 0.50, 0.50],
        "game": [0.60, 0.63, 0.66],  # ahead of alone by 0.12 +- 0.01: beyond 2 SE
        "fedavg_E10": [0.60, 0.64, 0.65],  # a tie with the game (paired differences 0, -1, +1)
        "fedprox_E10_mu0.1": [0.90, 0.90, 0.90],  # best on test, worse on validation
        "fedprox_E10_mu1": [0.40, 0.40, 0.40],
        "fedcvae": [0.70, 0.74, 0.75],
    }
    validation = {**test, "fedprox_E10_mu0.1": [0.1] * 3, "fedprox_E10_mu1": [0.5] * 3}
    _record(tmp_path, "0.1", "100", test, validation)
    data = label_skew.load(tmp_path, "0.1", "100")
    assert data["mu"] == "1" and data["test"]["fedprox"].mean() == pytest.approx(0.40)
    rows = {
        line.split(" | ")[2]: line.split(" | ")
        for line in label_skew.comparison_table(tmp_path).splitlines()[2:]
    }
    assert rows["FedAvg E = 10 (all width 8)"][4] == "tie"
    assert rows["FedProx E = 10, mu on validation (all width 8)"][4] == "ahead"
    assert rows["FedCVAE-Ens"][4] == "behind"
    assert rows["FedCVAE-Ens"][3] == "-0.100 ± 0.006"  # -0.10, -0.11, -0.09: SE 0.01 / sqrt 3
    assert rows["better alone"][4] == "ahead"
    assert "beta = 0.1" in label_skew.accuracy_table(tmp_path) and "0.1: 1" in (
        label_skew.accuracy_table(tmp_path)
    )
    assert label_skew.plot(tmp_path, tmp_path / "p.png").stat().st_size > 1000
    # FedCVAE-Ens minus FedAvg: +0.10 in every seed
    fedcvae = label_skew.fedcvae_table(tmp_path).splitlines()[2].split(" | ")
    assert fedcvae[2:4] == ["0.100 ± 0.000", "ahead"]


def test_the_fig1_peers_table_reads_each_players_accuracy_and_their_mean(tmp_path):
    from experiments import label_skew

    def stat(*v):
        return {"mean": sum(v) / len(v), "values": list(v)}

    def row(a0, a1, fid=None, **extra):
        r = {"accuracy_all_digits": [stat(*a0), stat(*a1)], "bytes": stat(10.0, 10.0), **extra}
        return r | ({"fid": {"classes": {"all": stat(*fid)}}} if fid else {})

    summary = {
        "rows": [row((0.5, 0.5), (0.4, 0.6), (0.1, 0.3), alpha_ii=stat(1.0, 1.0))],
        "peers": {
            "fedavg_E10": row((0.8, 0.9), (0.8, 0.9), (0.2, 0.2)),
            "fedcvae": row((0.6, 0.6), (0.6, 0.6)),
        },
    }
    (tmp_path / "m.json").write_text(json.dumps({"results": {"summary": summary}}))
    lines = label_skew.fig1_table(tmp_path, "m").splitlines()
    assert lines[2].startswith("| game, alpha_ii = 1.0 (alone) | 0.500 ± 0.000 | 0.500 ± 0.100 |")
    assert "| 0.500 ± 0.050 | 0.200 ± 0.100 | 10 |" in lines[2]  # the players' mean; FID
    assert lines[3].startswith("| FedAvg E = 10 | 0.850 ± 0.050 |")
    assert lines[4].startswith("| FedCVAE-Ens") and lines[4].endswith("|  | 10 |")  # no FID
    assert "not yet run" in label_skew.fig1_table(tmp_path, "absent")
