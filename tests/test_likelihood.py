"""Players as density estimators: log_prob checked against exact values and numerical integration."""

import math

import pyro.distributions as dist
import pytest
import torch
from torch import nn

from modalities import build_player, register_modality
from modalities.recipes import Recipe
from multimodal_game.batch import Batch
from multimodal_game.expfam import CategoricalPlayer, GaussianPlayer
from multimodal_game.spaces import real


@register_modality("test_scalar")
class ScalarRecipe(Recipe):
    """x in R^1 with a Gaussian p(x | z, c): small enough to integrate z numerically."""

    def variable(self):
        return real(self.name, 1)

    def encoder(self, hidden):
        return nn.Sequential(nn.Linear(1, hidden), nn.Tanh())

    def decoder(self, in_dim):
        net = nn.Linear(in_dim, 1)
        net.log_scale = nn.Parameter(torch.tensor([-0.5]))
        return net

    def distribution(self, out, decoder):
        return dist.Normal(out, decoder.log_scale.exp()).to_event(1)

    def generate(self, out, decoder):
        return out


def tiny_m2(seed=0):
    torch.manual_seed(seed)
    p = build_player(
        {
            "variables": [{"name": "x", "recipe": "test_scalar"}],
            "label": {"classes": 3},
            "latent": 1,
            "hidden": 8,
        }
    )
    with torch.no_grad():  # a non-trivial decoder and prior, so the integral is not flat
        p.decoders["x"].weight.copy_(torch.tensor([[1.5, -1.0, 0.5, 2.0]]))
        p.prior_logits.copy_(torch.tensor([0.3, -0.2, 0.1]))
    return p


def exact_m2_log_prob(p, x, c=None):
    """sum_c p(c) int N(z; 0, 1) p(x | z, c) dz on a fine grid (trapezoid rule)."""
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64)[:, None]
    out = []
    for c_val in range(3) if c is None else [c]:
        emission = p.decode(torch.full((len(z),), c_val), z.float(), ["x"])["x"]
        lik = emission.distribution().log_prob(x.expand(len(z), 1)).double()
        integrand = torch.exp(lik + dist.Normal(0.0, 1.0).log_prob(z[:, 0]).double())
        log_pc = torch.log_softmax(p.prior_logits.double(), -1)[c_val]
        out.append(log_pc + torch.log(torch.trapezoid(integrand, z[:, 0])))
    return torch.logsumexp(torch.stack(out), 0)


def test_m2_log_prob_matches_numerical_integration_with_and_without_the_label():
    p = tiny_m2()
    xs = torch.tensor([[-1.0], [0.3], [2.5]])
    torch.manual_seed(1)
    est = p.log_prob(Batch({"x": xs}), samples=20000)
    exact = torch.stack([exact_m2_log_prob(p, x) for x in xs])
    assert torch.allclose(est.double(), exact, atol=0.05), (est, exact)
    labelled = Batch({"x": xs, "label": torch.tensor([0, 2, 1])})
    est_c = p.log_prob(labelled, samples=20000)
    exact_c = torch.stack([exact_m2_log_prob(p, x, c) for x, c in zip(xs, [0, 2, 1])])
    assert torch.allclose(est_c.double(), exact_c, atol=0.05)
    # a missing label is summed out: the same rows with the label hidden give the marginal
    hidden = Batch(
        {"x": xs, "label": torch.tensor([0, 2, 1])}, {"label": torch.zeros(3, dtype=torch.bool)}
    )
    assert torch.allclose(p.log_prob(hidden, samples=20000).double(), exact, atol=0.05)


def test_the_bound_tightens_with_more_samples():
    p = tiny_m2()
    x = Batch({"x": torch.linspace(-2, 3, 20)[:, None]})
    torch.manual_seed(0)
    mean = {
        k: torch.stack([p.log_prob(x, samples=k) for _ in range(30)]).mean() for k in (1, 8, 64)
    }
    exact = torch.stack([exact_m2_log_prob(p, v) for v in x["x"]]).mean()
    assert mean[1] < mean[8] < mean[64] <= exact + 0.01
    # and images: a Bernoulli player on grey levels gives a finite value (as learning does)
    img = build_player(
        {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    )
    assert torch.isfinite(img.log_prob(Batch({"x": torch.rand(3, 1, 28, 28)}), samples=2)).all()


def test_expfam_players_are_exact():
    g = GaussianPlayer(2)
    g.mean = torch.tensor([1.0, -1.0], dtype=torch.float64)
    cov = torch.tensor([[2.0, 0.3], [0.3, 1.5]], dtype=torch.float64)
    g.second = cov + torch.outer(g.mean, g.mean)
    x = torch.randn(5, 2)
    mvn = torch.distributions.MultivariateNormal(g.mean, g.cov)
    assert torch.allclose(g.log_prob(Batch({"x": x})), mvn.log_prob(x.double()))
    cat = CategoricalPlayer(3, probs=torch.tensor([0.2, 0.5, 0.3]))
    lp = cat.log_prob(Batch({"label": torch.tensor([1, 2])}))
    assert torch.allclose(lp, torch.tensor([0.5, 0.3], dtype=torch.float64).log())


def test_samples_below_one_is_named():
    with pytest.raises(ValueError, match="samples >= 1"):
        tiny_m2().log_prob(Batch({"x": torch.zeros(2, 1)}), samples=0)
    with pytest.raises(ValueError, match="samples >= 1"):
        GaussianPlayer(1).log_prob(Batch({"x": torch.zeros(2, 1)}), samples=0)


def test_label_player_and_missing_variables():
    lab = build_player({"kind": "label"})
    lp = lab.log_prob(Batch({"label": torch.tensor([3, 4])}))
    assert torch.allclose(lp, torch.full((2,), -math.log(10)))


def test_the_discretised_logistic_is_a_distribution_on_the_8_bit_grid():
    from modalities.recipes import DiscretizedLogistic

    g = torch.Generator().manual_seed(0)
    loc = torch.rand(50, generator=g) * 1.2 - 0.1  # also outside [0, 1]
    scale = torch.exp(torch.rand(50, generator=g) * 6 - 7)  # 1e-3 ... 0.4
    grid = torch.arange(256, dtype=torch.float64) / 255
    lp = DiscretizedLogistic(loc.double(), scale.double()).expand((256, 50)).log_prob(grid[:, None])
    assert torch.allclose(lp.exp().sum(0), torch.ones(50, dtype=torch.float64), atol=1e-6)
    # each bin against the logistic CDF written out (open edge bins), where its mass is not tiny
    h = 1 / 510  # the logistic CDF is sigmoid((x - loc) / s)
    upper = torch.sigmoid((grid[:, None] + h - loc.double()) / scale.double())
    lower = torch.sigmoid((grid[:, None] - h - loc.double()) / scale.double())
    upper[-1], lower[0] = 1.0, 0.0
    mass = upper - lower
    big = mass > 1e-4
    assert torch.allclose(lp.exp()[big], mass[big], rtol=1e-5)
    # a sharp pixel far from its bin: finite (the density approximation), not -inf
    far = DiscretizedLogistic(torch.tensor([0.5]), torch.tensor([1e-3])).log_prob(
        torch.tensor([0.9])
    )
    assert torch.isfinite(far).all() and far.item() < -100
    draws = DiscretizedLogistic(loc, scale).sample((20,))
    assert torch.equal((draws * 255).round() / 255, draws) and draws.min() >= 0 and draws.max() <= 1
