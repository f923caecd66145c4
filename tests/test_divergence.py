"""A diverging player stops the game at once, names itself, and never reaches a checkpoint."""

import pytest
import torch
from helpers import MixturePlayer, mixture_data

from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.checkpoint import load_checkpoint
from multimodal_game.game import Game
from multimodal_game.handlers import attach_standard
from multimodal_game.runtime import Diverged
from multimodal_game.sources import TensorSource


def _m2(lr):
    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    return build_player({**spec, "lr": lr})


def _images(n, seed):
    g = torch.Generator().manual_seed(seed)
    return Batch(
        {"label": torch.randint(10, (n,), generator=g), "x": torch.rand(n, 1, 28, 28, generator=g)}
    )


def _finite(state) -> bool:
    if torch.is_tensor(state):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(_finite(v) for v in state)
    return True


def test_a_diverging_player_stops_the_game_and_the_checkpoint_stays_good(tmp_path):
    torch.manual_seed(0)
    players = {"wild": _m2(1e6), "calm": _m2(1e-3)}
    sources = {"wild": TensorSource(_images(64, 1)), "calm": TensorSource(_images(64, 2))}
    game = Game(players, [[0.5, 0.5], [0.5, 0.5]], sources, batch_size=16)
    ck = tmp_path / "game.ckpt"
    attach_standard(game, checkpoint_every=1, checkpoint_path=ck, progress=False)
    with pytest.raises(
        Diverged, match=r"player 'wild'.* in round \d+; the last good checkpoint is .*game\.ckpt"
    ) as err:
        game.run(60)
    assert err.value.player == "wild"
    assert _finite(load_checkpoint(ck)["hosts"])  # never overwritten with the diverged state
    # the partner never learned from non-finite samples
    assert all(bool(torch.isfinite(p).all()) for p in players["calm"].parameters())


def _two_mixtures():
    torch.manual_seed(0)
    players = {"p0": MixturePlayer(), "p1": MixturePlayer()}
    sources = {
        "p0": TensorSource(mixture_data(40, seed=1)),
        "p1": TensorSource(mixture_data(40, seed=2)),
    }
    return players, Game(players, [[0.5, 0.5], [0.5, 0.5]], sources, batch_size=8)


def test_non_finite_samples_are_stopped_before_any_consumer_learns():
    players, game = _two_mixtures()
    game.run(1)
    before = [p.detach().clone() for p in players["p1"].parameters()]
    sample = players["p0"].sample
    players["p0"].sample = lambda n, given=None: Batch(
        {**sample(n).data, "x": torch.full((n, 2), float("nan"))}
    )
    with pytest.raises(
        Diverged,
        match=r"player 'p0' sampled non-finite values of \['x'\] in round 2; no checkpoint",
    ):
        game.step()
    assert all(torch.equal(a, b) for a, b in zip(before, players["p1"].parameters()))


def test_a_non_finite_state_is_never_written(tmp_path):
    players, game = _two_mixtures()
    game.save(tmp_path / "good.ckpt")
    with torch.no_grad():
        players["p1"].means[0, 0] = float("inf")
    with pytest.raises(
        Diverged, match=r"player 'p1' has non-finite values in \['/player/module/means'"
    ):
        game.save(tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()


def test_a_divergence_inside_a_check_interval_stops_the_game_before_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    players = {"wild": _m2(1e6), "calm": _m2(1e-3)}
    sources = {"wild": TensorSource(_images(64, 1)), "calm": TensorSource(_images(64, 2))}
    # learning alone: no samples travel (a sampled non-finite value is caught in its round)
    game = Game(players, [[1.0, 0.0], [0.0, 1.0]], sources, batch_size=16, check_every=1000)
    ck = tmp_path / "game.ckpt"
    attach_standard(game, checkpoint_every=4, checkpoint_path=ck, progress=False)
    with pytest.raises(
        Diverged, match=r"player 'wild' diverged .* in round (\d+): not writing"
    ) as err:
        game.run(200)
    bad = int(err.value.args[0].split(" in round ")[1].split(":")[0])
    assert bad <= game.state.round and game.state.round % 4 == 0  # found at the checkpoint after it
    assert game.state.round - bad < 4
    if ck.exists():  # the checkpoints written before it are of finite states
        state = load_checkpoint(ck)
        assert state["round"] < bad and _finite(state["hosts"])


def test_losses_are_read_once_per_check_not_once_per_round(monkeypatch):
    reads = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: reads.append(1) or tolist(t))

    def played(check_every: int) -> int:
        reads.clear()
        _, game = _two_mixtures()
        game.check_every = check_every
        game.run(9)
        return len(reads)

    every_round, every_ten = played(1), played(10)
    # nine reads of the losses and eighteen of the draws (two producers, one draw a round)
    # against one read of all of them at the end of the run (other reads are the same)
    assert every_round - every_ten == 9 + 18 - 1


def test_check_every_must_be_positive():
    from multimodal_game.errors import ConfigError

    players, _ = _two_mixtures()
    with pytest.raises(ConfigError, match="check_every"):
        Game(
            players,
            [[1, 0], [0, 1]],
            {n: TensorSource(mixture_data(8)) for n in players},
            check_every=0,
        )


def test_rounds_undone_by_loading_a_checkpoint_are_not_checked_later(tmp_path):
    _, game = _two_mixtures()
    game.check_every = 10
    game.run(2)
    game.save(tmp_path / "good.ckpt")
    learn = game.runtime.learn

    def one_bad_round(requests):  # round 3's loss is non-finite, not read yet
        stats = learn(requests)
        stats["p0"]["loss"] = torch.tensor(float("nan"))
        return stats

    game.runtime.learn = one_bad_round
    game.step()
    game.runtime.learn = learn
    game.load(tmp_path / "good.ckpt")  # round 3 is undone: its unread flag goes with it
    game.run(4)
    assert game.state.round == 4
    game.runtime.learn = one_bad_round  # the same bad round, not undone, is found at the end
    with pytest.raises(Diverged, match=r"player 'p0' diverged \(non-finite loss\) in round 5"):
        game.run(6)


def test_a_non_finite_draw_inside_a_check_interval_names_its_producer_before_any_checkpoint(
    tmp_path,
):
    players, game = _two_mixtures()
    game.check_every = 5
    ck = tmp_path / "game.ckpt"
    attach_standard(game, checkpoint_every=5, checkpoint_path=ck, progress=False)
    game.run(5)
    good = ck.read_bytes()
    sample = players["p0"].sample

    def nan_in_round_7(n, given=None):
        draw = sample(n)
        if game.state.round == 6:  # round 7 is being played
            draw = Batch({**draw.data, "x": torch.full((n, 2), float("nan"))})
        return draw

    players["p0"].sample = nan_in_round_7
    # p1 fails on the draw it learns from: the unread flags name the cause first
    with pytest.raises(
        Diverged,
        match=r"player 'p0' sampled non-finite values of \['x'\] in round 7; the last good "
        r"checkpoint is .*game\.ckpt' \(round 5\)",
    ):
        game.run(20)
    assert ck.read_bytes() == good  # round 10's checkpoint was never written
