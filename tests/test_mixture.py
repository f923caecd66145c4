"""Mixture-proportion inference by EM over the players' likelihoods."""

import pytest
import torch

from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError
from multimodal_game.expfam import CategoricalPlayer, GaussianPlayer
from multimodal_game.mixture import em_proportions, infer_proportions


def gaussian(mean, var="x"):
    g = GaussianPlayer(len(mean), var)
    g.mean = torch.tensor(mean, dtype=torch.float64)
    g.second = torch.eye(len(mean), dtype=torch.float64) + torch.outer(g.mean, g.mean)
    return g


def test_em_recovers_known_proportions_from_separated_components():
    players = {"a": gaussian([0.0, 0.0]), "b": gaussian([6.0, 0.0]), "c": gaussian([0.0, 6.0])}
    true = torch.tensor([0.2, 0.5, 0.3])
    g = torch.Generator().manual_seed(0)
    src = torch.multinomial(true, 6000, replacement=True, generator=g)
    means = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    x = means[src] + torch.randn(6000, 2, generator=g)
    res = infer_proportions(players, Batch({"x": x}))
    empirical = torch.bincount(src, minlength=3).double() / 6000
    assert res.converged and res.players == ("a", "b", "c") and res.variables == ("x",)
    assert torch.allclose(
        res.proportions, empirical, atol=0.005
    )  # separated: the counts themselves
    assert (res.responsibilities.argmax(1) == src).double().mean() > 0.99
    assert torch.allclose(res.responsibilities.sum(1), torch.ones(6000, dtype=torch.float64))


def test_em_is_the_closed_form_for_two_overlapping_components():
    # two components with fixed likelihoods: the ML proportion solves sum_n (l1 - l2) / (pi l1 +
    # (1 - pi) l2) = 0; check EM's answer satisfies it and increases the likelihood
    g = torch.Generator().manual_seed(1)
    log_probs = torch.randn(500, 2, generator=g, dtype=torch.float64)
    pi, _, ll, _, ok = em_proportions(log_probs, tol=1e-12)
    lik = log_probs.exp()
    grad = ((lik[:, 0] - lik[:, 1]) / (lik @ pi)).sum()
    assert ok and abs(grad.item()) < 1e-6
    uniform_ll = torch.logsumexp(log_probs + torch.tensor([0.5, 0.5]).log(), 1).sum()
    assert ll >= uniform_ll.item()
    # a Dirichlet(a) prior: the MAP adds (a - 1) / pi_1 - (a - 1) / pi_2 to that condition, and
    # pulls towards uniform
    a = 200.0
    pi_prior, *_ = em_proportions(log_probs, prior=a, tol=1e-12)
    grad = ((lik[:, 0] - lik[:, 1]) / (lik @ pi_prior)).sum() + (a - 1) * (
        1 / pi_prior[0] - 1 / pi_prior[1]
    )
    assert abs(grad.item()) < 1e-6
    assert (pi_prior - 0.5).abs().max() < (pi - 0.5).abs().max() - 0.01


def test_only_shared_variables_are_used_and_bad_input_is_named():
    # "label" is modelled only by the categorical player: the Gaussians' x is what is used, with
    # the label dropped; a player modelling nothing of the data is an error
    players = {"a": gaussian([0.0]), "b": gaussian([3.0])}
    data = Batch({"x": torch.zeros(4, 1), "label": torch.zeros(4, dtype=torch.long)})
    assert infer_proportions(players, data).variables == ("x",)
    with pytest.raises(ConfigError, match=r"player 'c' models none of the data's variables"):
        infer_proportions({**players, "c": CategoricalPlayer(3, "colour")}, data)
    with pytest.raises(ConfigError, match="no variable of the data"):
        infer_proportions({"a": gaussian([0.0]), "k": CategoricalPlayer(3)}, data)
    with pytest.raises(ValueError, match="samples >= 1"):
        infer_proportions(players, data, samples=0)
    with pytest.warns(UserWarning, match="did not converge in 1 iterations"):
        infer_proportions(players, Batch({"x": torch.randn(50, 1)}), max_iter=1)
