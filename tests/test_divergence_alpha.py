"""The data-driven alpha: KL estimates from samples and likelihoods, and the block structure they
recover."""

import math

import torch

from multimodal_game.batch import Batch
from multimodal_game.divergence import (
    DivergenceAlpha,
    divergence_alpha,
    estimate_kl,
    symmetrise,
)
from multimodal_game.expfam import GaussianPlayer
from multimodal_game.game import Game
from multimodal_game.sources import TensorSource
from multimodal_game.spaces import Space, real


def gaussian(mean, var=1.0):
    g = GaussianPlayer(1)
    g.mean = torch.tensor([mean], dtype=torch.float64)
    g.second = torch.tensor([[var + mean**2]], dtype=torch.float64)
    return g


def test_kl_estimates_match_the_closed_form_for_gaussians():
    players = {"a": gaussian(0.0), "b": gaussian(1.0), "c": gaussian(0.0, 4.0)}
    pairs = {(j, i): ("x",) for j in players for i in players if i != j}
    torch.manual_seed(0)
    kl = estimate_kl(players, pairs, samples=40000)

    def exact(p, q):  # KL(p || q) for 1-D Gaussians (mean, var)
        (m1, v1), (m2, v2) = p, q
        return 0.5 * (math.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)

    params = {"a": (0.0, 1.0), "b": (1.0, 1.0), "c": (0.0, 4.0)}
    names = list(players)
    for j, i in pairs:
        assert abs(kl[names.index(i), names.index(j)] - exact(params[j], params[i])) < 0.05
    assert torch.isnan(kl.diagonal()).all()


def test_alpha_follows_exp_minus_kl_over_partners():
    kl = torch.tensor(
        [[float("nan"), 0.0, 2.0], [1.0, float("nan"), float("nan")], [float("nan")] * 3]
    )
    a = divergence_alpha(kl, own_weight=0.5, temperature=1.0)
    assert torch.allclose(
        a[0],
        torch.tensor(
            [0.5, 0.5 / (1 + math.exp(-2)), 0.5 * math.exp(-2) / (1 + math.exp(-2))],
            dtype=torch.float64,
        ),
    )
    assert a[1].tolist() == [0.5, 0.5, 0.0] and a[2].tolist() == [0.0, 0.0, 1.0]


def test_the_policy_recovers_a_block_structure_in_a_game_and_survives_a_checkpoint(tmp_path):
    # players 0, 1 hold data around 0; players 2, 3 around 8: KL across blocks is ~32
    g = torch.Generator().manual_seed(0)
    centres = [0.0, 0.0, 8.0, 8.0]
    sources = {
        f"p{k}": TensorSource(Batch({"x": c + torch.randn(500, 1, generator=g)}))
        for k, c in enumerate(centres)
    }
    players = {f"p{k}": GaussianPlayer(1) for k in range(4)}
    policy = DivergenceAlpha(own_weight=0.5, temperature=1.0, every=2, samples=2000)
    game = Game(players, policy, sources, batch_size=2000, seed=0, warmup_rounds=2)
    game.run(6)
    alpha = policy.alpha
    for i, partner in ((0, 1), (1, 0), (2, 3), (3, 2)):
        assert alpha[i, i] == 0.5 and alpha[i, partner] > 0.5 * 0.99  # >= 99% of partner weight
    assert [u["round"] for u in policy.log] == [2, 4, 6]  # it updated itself, in observe
    game.save(tmp_path / "ck.pt")
    fresh = {f"p{k}": GaussianPlayer(1) for k in range(4)}
    again = Game(
        fresh, DivergenceAlpha(0.5, 1.0), sources, batch_size=2000, seed=0, warmup_rounds=2
    )
    again.load(tmp_path / "ck.pt")
    assert torch.equal(again.policy.alpha, alpha)  # the learned alpha is part of the checkpoint


def test_jeffreys_scores_each_pair_on_both_players_samples():
    nan = float("nan")
    # kl[i, j] ~ KL(p_j || p_i): player 1 looks close to player 0 from its own samples only
    kl = torch.tensor([[nan, 1.0, 6.0], [41.0, nan, 30.0], [4.0, 30.0, nan]], dtype=torch.float64)
    sym = symmetrise(kl)
    assert sym[0, 1] == sym[1, 0] == 21.0 and sym[0, 2] == sym[2, 0] == 5.0
    assert torch.isnan(sym.diagonal()).all()
    one_way = torch.tensor([[nan, 2.0], [nan, nan]], dtype=torch.float64)
    assert symmetrise(one_way)[0, 1] == 2.0 and torch.isnan(symmetrise(one_way)[1, 0])
    plain = divergence_alpha(kl, 0.5, temperature=1.0)
    jeff = divergence_alpha(kl, 0.5, temperature=1.0, divergence="jeffreys")
    assert plain[0, 1] > 0.49 and jeff[0, 2] > 0.49  # the partner flips to the truly close one
    policy = DivergenceAlpha(0.5, 1.0, "jeffreys")
    policy.bind(["a", "b", "c"], {n: Space([real("x", 1)]) for n in "abc"}, batch_size=8)
    assert policy.update(kl).tolist() == jeff.tolist()
    assert policy.describe()["divergence"] == "jeffreys"


def test_an_unknown_divergence_is_a_named_error():
    import pytest

    with pytest.raises(ValueError, match="divergence"):
        DivergenceAlpha(0.5, 1.0, "hellinger")
    with pytest.raises(ValueError, match="divergence"):
        divergence_alpha(torch.zeros(2, 2), 0.5, 1.0, "tv")
