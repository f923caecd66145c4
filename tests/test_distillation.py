"""Ensemble distillation on a public pool (FedMD / FedDF style): the baseline for players of
different architectures."""

import pytest
import torch
from helpers import image_data, image_spec

from modalities import build_player
from multimodal_game import Game, TensorSource
from multimodal_game.distillation import EnsembleDistillation, _logits, distillation_bytes
from multimodal_game.errors import ConfigError
from multimodal_game.events import Event


def alone_game(widths=(2, 3)) -> Game:
    names = [f"p{k}" for k in range(len(widths))]
    players = {
        n: build_player(image_spec(w), seed=k) for k, (n, w) in enumerate(zip(names, widths))
    }
    sources = {n: TensorSource(image_data(20, k)) for k, n in enumerate(names)}
    eye = torch.eye(len(names), dtype=torch.float64)
    return Game(players, eye, sources, batch_size=8, seed=0)


POOL = {"x": torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(9))}


def test_players_of_different_widths_move_towards_the_mean_of_their_logits():
    game = alone_game()
    distil = EnsembleDistillation(POOL, every=2, rows=16, steps=5).attach(game)
    seen = {}

    def before(g):  # in front of the distillation: each player's logits on the round's rows
        b = distil.batch(g.state.round)
        seen[g.state.round] = {n: g.call(n, _logits, b) for n in g.names}

    game.add_handler(Event.ROUND_COMPLETED, before, every=2, first=True)
    game.run(2)
    b = distil.batch(2)
    teacher = torch.stack(list(seen[2].values())).mean(0)
    target = torch.softmax(teacher, -1)

    def kl(logits):
        return float(
            torch.nn.functional.kl_div(torch.log_softmax(logits, -1), target, reduction="batchmean")
        )

    after = {n: game.call(n, _logits, b) for n in game.names}
    for n in game.names:
        assert kl(after[n]) < 0.95 * kl(seen[2][n]), n  # steps towards the ensemble
        assert distil.last_loss[n] == pytest.approx(kl(seen[2][n]), rel=1e-4), n


def test_the_rows_of_a_round_are_the_same_for_every_party_and_a_resumed_game():
    a = EnsembleDistillation(POOL, every=1, rows=8, seed=3)
    b = EnsembleDistillation(POOL, every=1, rows=8, seed=3)
    assert torch.equal(a.batch(7)["x"], b.batch(7)["x"])
    assert not torch.equal(a.batch(7)["x"], a.batch(8)["x"])


def test_the_pool_labels_are_dropped_and_an_empty_pool_is_refused():
    pool = EnsembleDistillation(
        {"x": POOL["x"], "label": torch.zeros(50, dtype=torch.long)}, every=1
    )
    assert pool.pool.names == ("x",)
    with pytest.raises(ConfigError, match="no rows"):
        EnsembleDistillation({"label": torch.zeros(5, dtype=torch.long)}, every=1)
    with pytest.raises(ConfigError, match="every 0"):
        EnsembleDistillation(POOL, every=0)


def test_a_player_that_cannot_distil_is_named_before_the_first_round():
    game = alone_game(widths=(2,))
    game.runtime.hosts["p0"].player.c_logits = None  # planted: no logits of its label
    EnsembleDistillation(POOL, every=1).attach(game)
    with pytest.raises(ConfigError, match="'p0' cannot distil"):
        game.run(1)
    assert game.state.round == 0


def test_distillation_bytes_are_the_logits_up_and_the_ensemble_down():
    # 4 players, 256 rows of 10 logits, 400 rounds every 10: 40 distillations
    assert distillation_bytes(4, 256, 10, 400, 10) == 40 * 2 * 4 * 256 * 10 * 4
    assert distillation_bytes(4, 256, 10, 5, 10) == 1 * 2 * 4 * 256 * 10 * 4  # after the last
