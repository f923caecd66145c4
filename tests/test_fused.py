"""The fused step of M2 players of one architecture equals their one-by-one Pyro steps."""

import copy

import pytest
import torch
from helpers import fused_against_one_by_one, three_batches
from torch._dynamo.utils import counters

from benchmarks.player_step import make_batch, make_player
from modalities import build_player, m2_fused
from modalities.m2_fused import FusedM2Sampler, FusedM2Step, solo_step
from multimodal_game.batch import Batch
from multimodal_game.game import Game
from multimodal_game.rng import RngStream
from multimodal_game.sources import TensorSource


def _max_difference(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# the options of the experiments' defaults: the consistency term, the truncated guide, both
OPTIONS = {
    "plain": {},
    "consistency": {"consistency_weight": 50.0},
    "truncated": {"enumerate_top": 2},
    "both": {"consistency_weight": 1000.0, "aux_weight": 1000.0, "enumerate_top": 2},
}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_a_fused_step_equals_the_one_by_one_steps(device, option, monkeypatch):
    if device == "cuda":  # TF32 rounds differently in the batched (vmap) and one-by-one calls
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    kw = OPTIONS[option]
    players = [make_player(2, 16, 3, seed=i, **kw).to(device) for i in range(3)]
    batches = [b.to(device) for b in three_batches()]
    alone, fused_streams, own_streams = fused_against_one_by_one(players, batches, 3, 1e-4, 1e-5)
    for p, q in zip(players, alone):
        assert _max_difference(p, q) < 1e-3
        # one Adam call for all players leaves each optimiser's state as its own steps would
        mine, theirs = p.optim.state_dict()["state"], q.optim.state_dict()["state"]
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert float(mine[k]["step"]) == float(theirs[k]["step"]) == 3.0
            assert torch.allclose(mine[k]["exp_avg"], theirs[k]["exp_avg"], atol=1e-3)
        # the random streams advanced alike: the next draws agree
    assert all(torch.equal(a.cpu, b.cpu) for a, b in zip(fused_streams, own_streams))


def _image_spec(width: int, likelihood: str = "bernoulli", **kw) -> dict:
    return {
        "variables": [{"name": "x", "recipe": "image", "width": width, "likelihood": likelihood}],
        "latent": 3,
        "hidden": 16,
        **kw,
    }


def _game(fuse: bool, specs: list[dict]) -> Game:
    from datasets.mnist import load_mnist

    x, y = load_mnist("bundled", "train")
    players, sources = {}, {}
    for i, spec in enumerate(specs):
        torch.manual_seed(i)
        players[f"p{i}"] = build_player(spec)
        rows = slice(100 * i, 100 * i + 100)
        present = {"label": torch.arange(100) < 20}  # 20 labelled, 80 unlabelled
        sources[f"p{i}"] = TensorSource(
            Batch({"label": y[rows], "x": x[rows, None].float() / 255}, present)
        )
    torch.manual_seed(99)
    players["labels"] = build_player({"kind": "label"})
    sources["labels"] = TensorSource(Batch({"label": y[:50]}))
    n = len(players)
    alpha = [[0.5 if i == j else 0.5 / (n - 1) for j in range(n)] for i in range(n)]
    return Game(players, alpha, sources, batch_size=16, seed=3, fuse_players=fuse)


@pytest.mark.parametrize(
    "likelihood, option",
    [("bernoulli", "plain"), ("discretized_logistic", "plain"), ("laplace", "both")],
)
def test_a_fused_game_equals_the_plain_game(likelihood, option):
    # two widths: two fused groups of two; the label player is not fusable and learns alone
    specs = [_image_spec(w, likelihood, **OPTIONS[option]) for w in (2, 2, 3, 3)]
    plain, fused = _game(False, specs), _game(True, specs)
    plain.run(4)
    fused.run(4)
    for key in ("fusion_key", "sample_fusion_key"):
        groups = fused.runtime._groups(list(fused.names), key)
        assert sorted(map(sorted, groups)) == [["p0", "p1"], ["p2", "p3"]]
    kinds = sorted(k[0] for k in fused.runtime._fused)
    assert kinds == ["fused_sampler", "fused_sampler", "fused_step", "fused_step"]
    for n in plain.names:
        a, b = plain.runtime.local_players[n], fused.runtime.local_players[n]
        assert _max_difference(a, b) < 1e-3, n


def test_fused_draws_equal_the_one_by_one_draws():
    players = [build_player(_image_spec(2, latent=3)) for _ in range(3)]
    for i, p in enumerate(players):
        torch.manual_seed(i)
        p.load_state_dict(build_player(_image_spec(2)).state_dict())
    counts = [5, 2, 7]  # padded to 7 inside, cut back to each count
    a, b = [RngStream(i) for i in range(3)], [RngStream(i) for i in range(3)]
    fused = FusedM2Sampler(players).sample(counts, [s.active for s in a])
    for p, k, s, got in zip(players, counts, b, fused):
        with s.active():
            want = p.sample(k)
        assert torch.equal(got["label"], want["label"])
        assert torch.allclose(got["x"], want["x"], atol=1e-6)
    assert all(torch.equal(x.cpu, y.cpu) for x, y in zip(a, b))


def test_players_whose_draws_are_random_given_c_and_z_sample_one_by_one():
    sends = build_player(
        _image_spec(2)
        | {"variables": [{"name": "x", "recipe": "image", "width": 2, "send": "sample"}]}
    )
    best = build_player(_image_spec(2, sample_best_of=3))
    assert sends.sample_fusion_key() is None and best.sample_fusion_key() is None
    with pytest.raises(ValueError, match="sample_best_of"):
        FusedM2Sampler([build_player(_image_spec(2)), best])


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"learning": "symmetric_equilibrium"}, "learning='elbo'"),
        (
            {"variables": [{"name": "x", "recipe": "image", "width": 2}], "complete": ["x"]},
            "complete",
        ),
    ],
)
def test_players_a_fused_step_cannot_train_are_named(kw, needle):
    ok = build_player(_image_spec(2))
    other = build_player(_image_spec(2, **kw))
    assert other.fusion_key() is None
    with pytest.raises(ValueError, match=needle):
        FusedM2Step([ok, other])


def test_players_of_different_architectures_are_not_fused_together():
    with pytest.raises(ValueError, match="different architectures"):
        FusedM2Step([build_player(_image_spec(2)), build_player(_image_spec(3))])


def test_fuse_players_is_refused_with_a_ready_runtime():
    game = _game(False, [_image_spec(2)])
    with pytest.raises(ValueError, match="option of the runtime"):
        Game(alpha=[[1.0, 0.0], [0.0, 1.0]], runtime=game.runtime, fuse_players=True)


def test_players_fuse_by_default_on_both_runtimes(capsys):
    from experiments import mixture_inference

    def config(*extra):
        mixture_inference.main(["--quick", "--print-config", *extra])
        return capsys.readouterr().out

    assert "fuse_players = true" in config()
    assert "fuse_players = true" in config("--runtime", "ray")


def test_the_runtime_says_which_players_fuse():
    game = _game(True, [_image_spec(2), _image_spec(2), _image_spec(3)])
    assert game.runtime.fusion_groups() == [["p0", "p1"]]
    assert _game(False, [_image_spec(2), _image_spec(2)]).runtime.fusion_groups() == []


def test_players_whose_variables_differ_in_name_only_fuse_by_position():
    # the demo's style players: one architecture, images named m0, m1
    players = []
    for i in range(2):
        torch.manual_seed(i)
        spec = _image_spec(2, **OPTIONS["both"])
        spec["variables"] = [{"name": f"m{i}", "recipe": "image", "width": 2}]
        players.append(build_player(spec))
    alone = [copy.deepcopy(p) for p in players]
    assert players[0].fusion_key() == players[1].fusion_key() is not None
    assert players[0].sample_fusion_key() == players[1].sample_fusion_key() is not None
    b = make_batch(24, "mixed")
    labelled = {"label": b.observed("label")}
    batches = [Batch({"label": b["label"], f"m{i}": b["m0"]}, labelled) for i in range(2)]
    a, c = [RngStream(i) for i in range(2)], [RngStream(i) for i in range(2)]
    out = FusedM2Step(players).learn(batches, [s.active for s in a])
    for p, batch, s, o in zip(alone, batches, c, out):
        with s.active():
            ref = p.learn(batch)
        assert all(torch.allclose(o[k], ref[k], rtol=1e-4, atol=1e-5) for k in ref)
    assert all(_max_difference(p, q) < 1e-4 for p, q in zip(players, alone))
    draws = FusedM2Sampler(players).sample([3, 4], [s.active for s in a])
    for i, (p, s, got) in enumerate(zip(alone, c, draws)):
        with s.active():
            want = p.sample(3 + i)
        assert set(got.data) == {"label", f"m{i}"}
        assert torch.allclose(got[f"m{i}"], want[f"m{i}"], atol=1e-5)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_a_compiled_step_equals_the_pyro_step(device, monkeypatch):
    # compile: the plain-PyTorch objective through inductor (on CUDA also captured as a graph),
    # rows padded to multiples of 16; one player alone (its own learn) and two in a fused step,
    # against their Pyro steps
    if device == "cuda":
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    kw = {**OPTIONS["both"], "compile": True}
    compiled = [make_player(2, 16, 3, seed=i, **kw).to(device) for i in range(3)]
    pyro_players = [
        make_player(2, 16, 3, seed=i, **{**kw, "compile": False}).to(device) for i in range(3)
    ]
    batches = [make_batch(20, k, seed=i) for i, k in enumerate(("mixed", "unlabelled", "mixed"))]
    batches = [Batch(b.data, b.present, torch.rand(20) + 0.5).to(device) for b in batches]
    mine = [RngStream(i, device) for i in range(3)]
    theirs = [RngStream(i, device) for i in range(3)]
    fused = FusedM2Step(compiled[1:])
    for _ in range(2):
        with mine[0].active():
            out = [compiled[0].learn(batches[0])]
        out += fused.learn(batches[1:], [s.active for s in mine[1:]])
        for p, b, s, o in zip(pyro_players, batches, theirs, out):
            with s.active():
                ref = p.learn(b)
            assert o.keys() == ref.keys()
            for k in ref:
                assert torch.allclose(o[k], ref[k], rtol=1e-4, atol=1e-5), (k, o, ref)
    for p, q in zip(compiled, pyro_players):
        assert _max_difference(p, q) < 1e-3
    assert all(torch.equal(a.cpu, b.cpu) for a, b in zip(mine, theirs))
    # the compiled path ran: the lone player learnt through its own fused step, whose parts'
    # rows were padded to multiples of 16 (10 labelled rows -> 16); the Pyro players' were not
    assert compiled[0] in m2_fused._SOLO
    assert solo_step(compiled[0]).pad_rows == fused.pad_rows == 16
    assert FusedM2Step(pyro_players[1:]).pad_rows == 1
    assert pyro_players[0] not in m2_fused._SOLO
    # one process keeps a graph per architecture and shape, past dynamo's default of 8; new
    # players of a compiled architecture (the next training of a run) reuse its graph
    assert torch._dynamo.config.recompile_limit >= m2_fused.COMPILED_GRAPHS
    frames = dict(counters["frames"])
    again = FusedM2Step([make_player(2, 16, 3, seed=7 + i, **kw).to(device) for i in range(2)])
    again.learn(batches[1:])
    assert dict(counters["frames"]) == frames


def test_compile_is_refused_where_the_fused_objective_does_not_apply():
    with pytest.raises(Exception, match="compile needs learning 'elbo'"):
        make_player(2, 16, 3, compile=True, learning="wake_sleep")


def test_the_fused_steps_gradient_function_is_one_graph_without_breaks():
    """What a CUDA graph can capture: dynamo traces vmap(grad(objective)) whole (the consistency
    term and the auxiliary classifier included)."""
    import pyro

    players = [make_player(2, 16, 3, seed=i, **OPTIONS["both"]) for i in range(2)]
    step = FusedM2Step(players)
    seen = {}
    grads = step._grads

    def record(*args):
        seen["args"] = args
        return grads(*args)

    step._grads = record
    step.learn(three_batches()[1:])
    torch._dynamo.reset()
    with pyro.validation_enabled(False):
        explained = torch._dynamo.explain(grads)(*seen["args"])
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
