"""Exchanging statistics instead of samples: exact for exponential-family players, drawn for
others, refused for images, accounted in bytes."""

import pytest
import torch

from experiments.expfam_equilibrium.run import make_problem
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError
from multimodal_game.expfam import GaussianPlayer, data_moments, equilibrium, stack_moments
from multimodal_game.game import Game
from multimodal_game.sources import FullSource, TensorSource
from multimodal_game.spaces import Space, categorical, real
from multimodal_game.statistics import Statistics, summarize


def expfam_game(exchange, draw="sigma", players=4, seed=0, full=False, shift=0.0):
    """The game and its players, and the closed form of the intended alpha (``shift``: the game
    plays alpha_ii + shift, rows renormalised - a broken game)."""
    cfg = {"players": players, "dim": 2, "examples": 500}
    alpha, data = make_problem(cfg, seed)
    played = alpha + shift * torch.eye(players, dtype=torch.float64)
    played = played / played.sum(1, keepdim=True)
    ps = [GaussianPlayer(2) for _ in range(players)]
    own = torch.stack([data_moments(p, b) for p, b in zip(ps, data)])
    game = Game(
        {f"p{k}": p for k, p in enumerate(ps)},
        played,
        {f"p{k}": (FullSource if full else TensorSource)(b) for k, b in enumerate(data)},
        batch_size=4096,
        exchange=exchange,
        statistics=Statistics(draw=draw),
    )
    return game, ps, equilibrium(alpha, own)


def test_statistics_reach_the_closed_form_equilibrium_without_sampling_noise():
    # with a full-batch own source, every part of each best response is exact
    game, ps, closed = expfam_game("statistics", full=True)
    errors = []
    for _ in range(60):
        game.step()
        errors.append((stack_moments(ps) - closed).abs().max().item())
    assert errors[-1] < 1e-8
    sampled, ps2, closed2 = expfam_game("samples", full=True)
    for _ in range(60):
        sampled.step()
    assert (stack_moments(ps2) - closed2).abs().max().item() > 1e-4  # samples: a noise floor


def test_drawn_statistics_match_a_class_conditional_gaussian():
    space = Space([categorical("label", 3), real("f", 2)])
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (30000,), generator=g)
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = centres[y] + torch.randn(30000, 2, generator=g) * torch.tensor([1.0, 0.5])
    s = summarize(Batch({"label": y, "f": x}), space, ("label", "f"))
    assert torch.allclose(s.probs, torch.bincount(y).double() / 30000)
    assert torch.allclose(s.means.float(), centres, atol=0.03)
    rows = s.draw(30000, torch.Generator().manual_seed(1))
    for c in range(3):
        xc = rows["f"][rows["label"] == c]
        assert torch.allclose(xc.mean(0), centres[c], atol=0.05)
        assert torch.allclose(xc.std(0), torch.tensor([1.0, 0.5]), atol=0.05)
    sig = s.sigma_points()  # weighted moments exactly the summary's
    w = sig.weight.double()
    for c in range(3):
        m = sig["label"] == c
        mean = (w[m, None] * sig["f"][m].double()).sum(0) / w[m].sum()
        assert torch.allclose(mean, s.means[c], atol=1e-5)


def test_images_cannot_travel_as_statistics_and_bytes_are_accounted():
    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    players = {"a": build_player(spec), "b": build_player(spec)}
    data = Batch({"label": torch.arange(8) % 10, "x": torch.rand(8, 1, 28, 28)})
    sources = {"a": TensorSource(data), "b": TensorSource(data)}
    alpha = [[0.5, 0.5], [0.5, 0.5]]
    with pytest.raises(ConfigError, match=r"variable 'x' is image; only categorical"):
        Game(players, alpha, sources, batch_size=8, exchange="statistics")
    with pytest.raises(ConfigError, match="pairs that share nothing"):
        Game(players, alpha, sources, batch_size=8, exchange={("a", "c"): "statistics"})
    game, _, _ = expfam_game("statistics")
    game.step()
    acc = game.accounting()
    # per transfer: 1 class x (2 means + 4 covariances) + 1 probability, in float64
    assert acc["synthetic_all_players_per_round"] == len(game.exchange) * 8 * (1 + 2 + 4)
    assert acc["samples_mode_all_players_per_round"] > 50 * acc["synthetic_all_players_per_round"]


def test_a_producer_sends_its_analytic_moments_and_resume_is_unchanged(tmp_path):
    from multimodal_game.policy import Transfer

    game, ps, _ = expfam_game("statistics", full=True)
    host = game.runtime.hosts["p1"]
    sent = host.produce([Transfer("p1", "p0", 10, 1.0, ("x",), Statistics())])["p0"]
    p = ps[1]
    assert torch.equal(sent.means[0], p.mean) and torch.equal(sent.covs[0], p.cov)
    # checkpoints and resume: a resumed statistics game ends bit for bit where an unbroken one does
    game.run(2)
    game.save(tmp_path / "ck.pt")
    game.run(5)
    again, ps2, _ = expfam_game("statistics", full=True)
    again.load(tmp_path / "ck.pt")
    again.run(5)
    assert torch.equal(stack_moments(ps), stack_moments(ps2))


def test_the_exact_statistics_check_rejects_broken_games(monkeypatch):
    """Without sampling noise the check is 1e-8, so it bites: a game with alpha_ii raised by 0.03
    (rows renormalised) or one that ignores the per-example weights ends far from the closed form
    of the intended alpha; the correct game meets it."""
    from multimodal_game.expfam import GaussianPlayer as G

    def final_error(shift=0.0):
        game, ps, closed = expfam_game("statistics", full=True, shift=shift)
        game.run(60)
        return (stack_moments(ps) - closed).abs().max().item()

    assert final_error() < 1e-8
    assert final_error(0.03) > 1e-3
    monkeypatch.setattr(
        G, "_weights", lambda self, b: torch.full((len(b),), 1.0 / len(b), dtype=torch.float64)
    )
    assert final_error() > 1e-3
