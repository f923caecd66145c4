import pytest
import torch
from helpers import MixturePlayer, mixture_data, params_of

from multimodal_game.batch import Batch
from multimodal_game.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from multimodal_game.expfam import CategoricalPlayer
from multimodal_game.game import Game
from multimodal_game.handlers import attach_standard
from multimodal_game.player import Player
from multimodal_game.sources import TensorSource
from multimodal_game.spaces import Space, real


def test_two_players_of_one_class_never_share_parameters():
    torch.manual_seed(0)
    a, b = MixturePlayer(), MixturePlayer()
    assert isinstance(a, Player)
    before_b = params_of(b)
    ids_a = {id(p) for p in a.parameters()}
    assert ids_a.isdisjoint({id(p) for p in b.parameters()})
    data = mixture_data(64)
    for _ in range(5):
        a.learn(data)
    after_b = params_of(b)
    assert all(torch.equal(before_b[k], after_b[k]) for k in before_b)  # b untouched
    # and b still trains on its own
    for _ in range(5):
        b.learn(data)
    assert not torch.equal(after_b["means"], b.means.detach())
    assert not torch.equal(a.means.detach(), b.means.detach())


def test_missing_labels_are_enumerated_exactly():
    """With all labels missing the ELBO must equal the exact marginal bound sum_c q(c|x)[...]."""
    torch.manual_seed(1)
    p = MixturePlayer(k=3, d=2)
    data = mixture_data(16, labelled=0.0)
    loss = p.loss(data) * len(data)
    x = data["x"]
    q = torch.softmax(p.classifier(x), -1)
    logp_c = torch.log_softmax(p.prior_logits, -1)
    logp_x = torch.distributions.Normal(p.means[None], 1.0).log_prob(x[:, None]).sum(-1)
    elbo = (q * (logp_c + logp_x - torch.log(q))).sum()
    torch.testing.assert_close(loss, -elbo, rtol=1e-5, atol=1e-4)


def test_weights_scale_examples():
    torch.manual_seed(2)
    p = MixturePlayer()
    data = mixture_data(8, labelled=0.5)
    doubled = data.with_weight(torch.full((8,), 2.0))
    # the loss is normalised by total weight: uniform reweighting changes nothing
    torch.testing.assert_close(p.loss(data), p.loss(doubled))
    w = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])
    one = data.index(slice(0, 1))
    torch.testing.assert_close(p.loss(data.with_weight(w)), p.loss(one))


def test_symmetric_learning_rule_trains_guide_on_own_samples():
    torch.manual_seed(3)
    p = MixturePlayer(learning="wake_sleep")
    data = mixture_data(
        64, labelled=1.0
    )  # no unlabelled rows: only the sleep phase moves the guide
    before = p.classifier.weight.detach().clone()
    stats = p.learn(data)
    assert torch.isfinite(stats["loss"])
    assert not torch.equal(before, p.classifier.weight.detach())
    q = MixturePlayer(learning="elbo")
    before = q.classifier.weight.detach().clone()
    q.learn(data)
    assert torch.equal(before, q.classifier.weight.detach())
    with pytest.raises(ValueError, match="unknown learning rule"):
        MixturePlayer(learning="magic")


def _game(seed=0, batch_size=32):
    torch.manual_seed(seed)
    players = {"p0": MixturePlayer(), "p1": MixturePlayer(), "labels": CategoricalPlayer(3)}
    sources = {
        "p0": TensorSource(mixture_data(100, seed=1)),
        "p1": TensorSource(mixture_data(100, seed=2)),
        "labels": TensorSource(Batch({"label": torch.tensor([0, 1, 2, 2])})),
    }
    alpha = [[0.5, 0.3, 0.2], [0.3, 0.5, 0.2], [0.25, 0.25, 0.5]]
    return Game(players, alpha, sources, batch_size=batch_size, seed=seed)


def test_game_round_mixes_sources_by_alpha_and_shares_draws():
    g = _game()
    plan = g.plan()
    assert plan.counts("p0") == [16, 10, 6] and sum(plan.counts("labels")) == 32
    assert g.interfaces[("labels", "p0")] == ("label",)
    assert g.interfaces[("p1", "p0")] == ("label", "x")
    # p0 is consumed by p1 (10 rows) and labels (8 rows): one draw of 10, shared
    assert {(t.consumer, t.count, t.variables) for t in plan.requests_for("p0")} == {
        ("p1", 10, ("label", "x")),
        ("labels", 8, ("label",)),
    }
    before = params_of(g.runtime.local_players["p0"])
    stats = g.step()
    assert all(torch.isfinite(s["loss"]) for s in stats.values())
    after = params_of(g.runtime.local_players["p0"])
    assert any(not torch.equal(before[k], after[k]) for k in before)
    sent = g.bytes_per_round()["sent"]
    assert sent["labels"] == 2 * 6 * 8  # 6 int64 labels to each of p0 and p1
    # only the interface travels: the label-only player receives labels, never x
    handles = g.runtime.produce({p: plan.requests_for(p) for p in plan.producers})
    assert handles["p0"]["labels"].names == ("label",)


def test_empty_interface_with_positive_alpha_is_an_error():
    players = {"a": CategoricalPlayer(3), "b": _RealPlayer()}
    sources = {
        "a": TensorSource(Batch({"label": torch.tensor([0])})),
        "b": TensorSource(Batch({"y": torch.zeros(1, 2)})),
    }
    with pytest.raises(ValueError, match="'a' and 'b' share no exchangeable variable"):
        Game(players, [[0.5, 0.5], [0.5, 0.5]], sources)
    Game(players, [[1.0, 0.0], [0.0, 1.0]], sources)  # fine when they do not exchange


class _RealPlayer(CategoricalPlayer):
    def __init__(self):
        super().__init__(2)
        self.space = Space([real("y", 2)])


def test_resume_continues_the_exact_trajectory(tmp_path):
    k = 3
    straight = _game()
    straight.run(2 * k)
    first = _game()
    attach_standard(first, checkpoint_every=k, checkpoint_path=tmp_path / "ck.pt", progress=False)
    first.run(k)
    resumed = _game(seed=0)
    resumed.load(tmp_path / "ck.pt")
    assert resumed.state.round == k
    resumed.run(2 * k)
    for name in ("p0", "p1"):
        a = params_of(straight.runtime.local_players[name])
        b = params_of(resumed.runtime.local_players[name])
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert torch.equal(
        straight.runtime.local_players["labels"].probs,
        resumed.runtime.local_players["labels"].probs,
    )


def test_checkpoint_is_atomic_and_corruption_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"round": 1, "x": torch.ones(3)})
    real_save = torch.save

    def dying_save(obj, f, *a, **kw):
        f.write(b"partial garbage")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"round": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["round"] == 1  # the old checkpoint survived intact
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary left behind
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_a_flipped_bit_a_text_file_and_stale_temporaries(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"round": 1, "w": torch.arange(4096, dtype=torch.float32)})
    raw = bytearray(path.read_bytes())
    # flip one bit inside the tensor's stored bytes (a run of float32 values 1000.0 ... )
    at = bytes(raw).find(torch.tensor([1000.0]).numpy().tobytes())
    assert at > 0
    raw[at + 2] ^= 0x10
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="flipped.pt' is damaged: its checksum"):
        load_checkpoint(flipped)
    text = tmp_path / "notes.txt"
    text.write_text("round = 3\n")
    with pytest.raises(CheckpointError, match="notes.txt"):
        load_checkpoint(text)
    stale = tmp_path / ".ck.pt.abc123.tmp"  # what a killed write leaves
    stale.write_bytes(b"partial")
    save_checkpoint(path, {"round": 2})
    assert not stale.exists() and load_checkpoint(path)["round"] == 2


def test_checkpoint_of_another_game_is_refused(tmp_path):
    g = _game()
    g.run(1)
    g.save(tmp_path / "ck.pt")
    torch.manual_seed(0)
    other = Game(
        {"p0": MixturePlayer(), "p1": MixturePlayer()},
        [[0.5, 0.5], [0.5, 0.5]],
        {"p0": TensorSource(mixture_data(10)), "p1": TensorSource(mixture_data(10))},
    )
    with pytest.raises(CheckpointError, match="holds players"):
        other.load(tmp_path / "ck.pt")


def test_run_calls_hooks_every_k_rounds():
    g = _game()
    seen = []
    attach_standard(
        g, eval_every=2, hooks=[lambda game, r: seen.append(r) or {"r2": r * 2}], progress=False
    )
    hist = g.run(4)
    assert seen == [2, 4]
    assert [h["r2"] for h in hist] == [4, 8]
    assert set(hist[0]["loss"]) == {"p0", "p1", "labels"}


def test_ray_runtime_without_ray_says_how_to_install(monkeypatch):
    import sys

    from multimodal_game.runtime import make_runtime

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    monkeypatch.delitem(sys.modules, "multimodal_game.runtime.ray_runtime", raising=False)
    with pytest.raises(RuntimeError, match=r"pip install 'multimodal-game\[ray\]'"):
        make_runtime("ray", specs=[])


def test_warmup_rounds_learn_from_own_data_only(monkeypatch):
    g = _game()
    g2 = Game(
        {n: p for n, p in g.runtime.local_players.items()},
        g.alpha,
        {n: h.source for n, h in g.runtime.hosts.items()},
        batch_size=32,
        warmup_rounds=2,
    )
    produced = []
    monkeypatch.setattr(g2.runtime, "produce", lambda plans: produced.append(1) or {})
    g2.step()
    g2.step()
    assert produced == [] and g2.state.round == 2  # nobody sampled during the warm-up
    acc = g2.accounting()
    assert acc["exchange_rounds"] == 0 and acc["synthetic_total"]["sent"]["p0"] == 0
    with pytest.raises(ValueError, match="warmup_rounds must be >= 0"):
        Game(
            g.runtime.local_players,
            g.alpha,
            {n: h.source for n, h in g.runtime.hosts.items()},
            warmup_rounds=-1,
        )


def test_consistency_term_trains_decoders_not_the_classifier():
    from modalities import build_player

    p = build_player(
        {
            "variables": [{"name": "x", "recipe": "image", "width": 2}],
            "latent": 2,
            "hidden": 8,
            "consistency_weight": 1.0,
        }
    )
    loss = p.consistency_loss(16)
    loss.backward()
    assert all(q.grad is None for q in p.classifier.parameters())
    assert all(q.grad is None for q in p.c_encoders.parameters())
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in p.decoders.parameters())


def test_moving_a_player_moves_its_optimiser_state_with_its_parameters():
    # state loaded first and the player moved or cast afterwards (as a host moves it to its
    # device) must follow the parameters, or the next step mixes devices or dtypes
    player = MixturePlayer()
    player.learn(mixture_data(20))
    player.double()
    states = [v for st in player.optim.state.values() for k, v in st.items() if k != "step"]
    assert states and all(v.dtype == torch.float64 for v in states)
    data = mixture_data(20)
    player.learn(Batch({**data.data, "x": data["x"].double()}, data.present))
    assert all(p.dtype == torch.float64 for p in player.parameters())


def test_the_metrics_log_sees_the_rounds_evaluation_whatever_the_attach_order(tmp_path):
    import json

    from modalities import build_player
    from multimodal_game import Batch, Game, TensorSource
    from multimodal_game.handlers import Evaluator, MetricsLog

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    g = torch.Generator().manual_seed(0)
    data = Batch({"label": torch.arange(8) % 10, "x": torch.rand(8, 1, 28, 28, generator=g)})
    game = Game({"a": build_player(spec, seed=0)}, [[1.0]], {"a": TensorSource(data)}, batch_size=4)
    MetricsLog(tmp_path / "m.jsonl").attach(game, every=1)  # attached before the evaluator
    Evaluator([lambda gm, r: {"probe": float(r)}]).attach(game, every=2)
    game.run(2)
    lines = [json.loads(ln) for ln in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [ln["round"] for ln in lines] == [1, 2]
    assert "evaluation" not in lines[0] and lines[1]["evaluation"] == {"probe": 2.0}
    assert game.state.round == game.state.round == 2 and game.state.evaluation(2)["probe"] == 2.0
    assert game.state.evaluation(1) is None


def test_a_game_takes_its_policy_by_name_and_refuses_two():
    from modalities import build_player
    from multimodal_game import Batch, Game, OwnPlusPartners, TensorSource
    from multimodal_game.errors import ConfigError

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    data = Batch({"label": torch.arange(8) % 10, "x": torch.rand(8, 1, 28, 28)})

    def parts():
        players = {n: build_player(spec, seed=k) for k, n in enumerate("ab")}
        return players, {n: TensorSource(data) for n in "ab"}

    players, sources = parts()
    game = Game(players, sources=sources, policy=OwnPlusPartners(0.75), batch_size=4)
    assert game.alpha.tolist() == [[0.75, 0.25], [0.25, 0.75]]
    with pytest.raises(ConfigError, match="not both"):
        Game(*parts()[:1], [[1, 0], [0, 1]], parts()[1], policy=OwnPlusPartners(0.5))
