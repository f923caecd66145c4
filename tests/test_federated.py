"""Parameter exchange (FedAvg, FedProx through Flower) and the byte counts of every method."""

import math

import pytest
import torch
from helpers import image_data, image_spec

pytest.importorskip("flwr")

from modalities import build_player  # noqa: E402
from multimodal_game import Game, TensorSource  # noqa: E402
from multimodal_game.accounting import parameter_exchange_bytes  # noqa: E402
from multimodal_game.errors import ConfigError  # noqa: E402
from multimodal_game.events import Event  # noqa: E402
from multimodal_game.federated import ParameterAveraging, flower_average  # noqa: E402


def alone_game(widths=(2, 2), sizes=(30, 10), **kw) -> Game:
    names = [f"p{k}" for k in range(len(widths))]
    players = {
        n: build_player(image_spec(w), seed=k) for k, (n, w) in enumerate(zip(names, widths))
    }
    sources = {n: TensorSource(image_data(s, k)) for k, (n, s) in enumerate(zip(names, sizes))}
    eye = torch.eye(len(names), dtype=torch.float64)
    return Game(players, eye, sources, batch_size=8, seed=0, **kw)


def test_flower_average_is_the_weighted_mean_of_the_players_tensors():
    a = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([10.0])}
    b = {"w": torch.tensor([[5.0, 6.0], [7.0, 8.0]]), "b": torch.tensor([-2.0])}
    avg = flower_average({"a": a, "b": b}, {"a": 3.0, "b": 1.0})
    assert torch.allclose(avg["w"], torch.tensor([[2.0, 3.0], [4.0, 5.0]]))
    assert torch.allclose(avg["b"], torch.tensor([7.0]))
    assert avg["w"].dtype == torch.float32 and avg["w"].shape == (2, 2)


def test_after_an_averaging_every_player_holds_the_shard_weighted_average():
    game = alone_game()
    states = []

    def record(g):  # put in front of the averaging: sees each round's states before it
        states.append({n: g.players[n].call(lambda p: p.parameters_state()) for n in g.names})

    fed = ParameterAveraging(every=3).attach(game)
    game.add_handler(Event.ROUND_COMPLETED, record, first=True)
    game.run(3)  # round 3 averages
    assert fed.weights == {"p0": 30.0, "p1": 10.0}
    after = {n: game.players[n].call(lambda p: p.parameters_state()) for n in game.names}
    before = states[-1]  # after the local step of round 3, before the average
    for k in after["p0"]:
        want = (30.0 * before["p0"][k] + 10.0 * before["p1"][k]) / 40.0
        assert torch.allclose(after["p0"][k], want, atol=1e-6), k
        assert torch.equal(after["p0"][k], after["p1"][k]), k
    # round 0: both started from the server's initial model (p0's), then learnt apart
    assert any(not torch.equal(before["p0"][k], before["p1"][k]) for k in before["p0"])


def test_the_average_is_taken_before_checkpoints_and_evaluation_of_its_round(tmp_path):
    from multimodal_game.handlers import Checkpointer

    game = alone_game()
    Checkpointer(tmp_path / "ck").attach(game, every=2)  # attached first, runs after the average
    ParameterAveraging(every=2).attach(game)
    game.run(2)
    hosts = game.snapshot()["hosts"]
    a, b = (hosts[n]["player"]["module"] for n in game.names)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_players_of_different_architectures_cannot_average():
    game = alone_game(widths=(2, 4))
    ParameterAveraging(every=2).attach(game)
    with pytest.raises(ConfigError, match="one architecture: 'p1' and 'p0' differ"):
        game.run(1)


def test_fedprox_adds_the_proximal_gradient_towards_the_last_average():
    game = alone_game()
    ParameterAveraging(every=100, mu=0.5).attach(game)
    game.run(0)  # anchored at the server's initial model (p0's)
    game.step()  # one local step away from it (no averaging: no round handlers)
    prox_player = game.runtime.local_players["p1"]
    plain_player = build_player(image_spec(), seed=7)
    plain_player.load_parameters(prox_player.parameters_state())
    batch = image_data(8, 5)
    grads = {}
    for tag, player in (("prox", prox_player), ("plain", plain_player)):
        torch.manual_seed(0)
        player.optim.zero_grad()
        player._combine(player.objectives(batch), batch).backward()
        grads[tag] = {k: v.grad.clone() for k, v in player.named_parameters()}
    anchor = build_player(image_spec(), seed=0).parameters_state()  # p0's initial model
    moved = 0.0
    for k, p in prox_player.named_parameters():
        want = grads["plain"][k] + 0.5 * (p.detach() - anchor[k])
        assert torch.allclose(grads["prox"][k], want, atol=1e-5), k
        moved = max(moved, float((p.detach() - anchor[k]).abs().max()))
    assert moved > 0


def test_fedprox_keeps_its_proximal_term_with_fused_players():
    # the fused step's gradient is functional: a player with FedProx's gradient hooks must learn
    # one by one (else FedProx would silently be FedAvg)
    def play(fuse: bool, mu: float) -> dict:
        game = alone_game(fuse_players=fuse)
        ParameterAveraging(every=3, mu=mu).attach(game)
        game.run(4)
        return {n: p.parameters_state() for n, p in game.runtime.local_players.items()}

    fused, plain, fedavg = play(True, 0.5), play(False, 0.5), play(True, 0.0)
    for n in fused:
        for k in fused[n]:
            assert torch.allclose(fused[n][k], plain[n][k], atol=1e-5), (n, k)
    assert any(not torch.allclose(fused[n][k], fedavg[n][k]) for n in fused for k in fused[n])


def test_a_compiled_player_with_gradient_hooks_takes_the_pyro_step():
    from modalities import m2_fused

    player = build_player({**image_spec(2), "compile": True}, seed=0)
    seen = []
    next(player.parameters()).register_hook(lambda g: seen.append(1) or g)
    player.learn(image_data(8, 0))
    assert seen == [1] and player not in m2_fused._SOLO
    assert m2_fused.fusion_key(player) == (
        "a parameter has a gradient hook (FedProx's proximal term), which runs in backward only"
    )


def test_byte_counts_equal_the_parameter_and_sample_sizes():
    game = alone_game()
    params = sum(p.numel() * 4 for p in game.runtime.local_players["p0"].parameters())
    assert game.runtime.param_bytes() == {"p0": params, "p1": params}
    # FedAvg over 7 rounds every 3 steps: initial model down (2 players), then 3 averagings of
    # 2 players' parameters up and the average down
    assert parameter_exchange_bytes({"p0": params, "p1": params}, 7, 3) == 2 * params * (1 + 3 * 2)
    game.close()
    # the game: 2 warm-up rounds that move nothing, then 3 rounds of (label, x) pairs each way
    names = ("p0", "p1")
    players = {n: build_player(image_spec(), seed=k) for k, n in enumerate(names)}
    sources = {n: TensorSource(image_data(20, k)) for k, n in enumerate(names)}
    game = Game(players, [[0.5, 0.5], [0.5, 0.5]], sources, batch_size=8, warmup_rounds=2)
    game.run(5)
    acc = game.accounting()
    count = game.plan(4).learn["p1"].transfers[0].count  # rows p0 sends p1 per round
    row = 8 + 784 * 4  # an int64 label and a float32 28x28 image
    assert acc["synthetic_per_round"]["sent"] == {"p0": count * row, "p1": count * row}
    assert acc["synthetic_bytes_total"] == 3 * 2 * count * row
    assert acc["synthetic_bytes_per_round"] == 3 * 2 * count * row / 5
    assert acc["fedavg_bytes_per_averaging"] == 2 * 2 * params
    assert acc["fedavg_bytes_total"]["10"] == 2 * params * (1 + 2 * math.ceil(5 / 10))
