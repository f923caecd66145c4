"""The ``hvae`` player (the paper's MNIST player): its space, the authors' symmetric equilibrium
learning term by term, its likelihood, its spec errors and its game with exchanged latents."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from modalities import build_player
from modalities.hvae import HVAEPlayer
from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError
from multimodal_game.game import Game
from multimodal_game.sources import TensorSource
from multimodal_game.spaces import interface

TINY = {"kind": "hvae", "nz0": 2, "nz1": 3, "width": 2, "hidden": 8}


def tiny(**kw) -> HVAEPlayer:
    torch.manual_seed(0)
    return build_player({**TINY, **kw})


def images(n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float()


def log_joint(p: HVAEPlayer, z0, z1, x) -> torch.Tensor:
    """log p(z0, z1, x) per row, written with plain torch (independent of the Pyro model)."""
    lz0 = -z0.shape[1] * math.log(2.0) * torch.ones(len(x))
    lz1 = -F.binary_cross_entropy_with_logits(p.p_z1(z0), z1, reduction="none").sum(1)
    logits = p.p_x(torch.cat([z0, z1], -1))
    lx = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    return lz0 + lz1 + lx


def log_q(p: HVAEPlayer, z0, z1, x) -> torch.Tensor:
    l1 = -F.binary_cross_entropy_with_logits(p.q_z1(x), z1, reduction="none").sum(1)
    l0 = -F.binary_cross_entropy_with_logits(p.q_z0(x, z1), z0, reduction="none").sum(1)
    return l0 + l1


def test_space_exchanges_both_latents_and_the_image():
    a, b = tiny(), tiny()
    assert interface(a.space, b.space) == ("z0", "z1", "x")
    assert a.space["x"].kind == "binary_image"
    private = tiny(exchange_latents=False)
    assert interface(a.space, private.space) == ("x",)
    s = a.sample(5)
    assert set(s.names) == {"z0", "z1", "x"}
    for k in s.names:  # binary draws, as the authors send
        assert set(s[k].unique().tolist()) <= {0.0, 1.0}


def test_complete_rows_are_scored_as_sent_by_both_terms():
    p = tiny()
    sent = p.sample(6)
    w = torch.linspace(0.5, 2.0, 6)
    batch = Batch(sent.data, weight=w)
    terms = p.objectives(batch)
    with torch.no_grad():
        want_model = -(w * log_joint(p, sent["z0"], sent["z1"], sent["x"])).sum()
        want_guide = -(w * log_q(p, sent["z0"], sent["z1"], sent["x"])).sum()
    assert torch.allclose(terms["model"], want_model, rtol=1e-5)
    assert torch.allclose(terms["guide"], want_guide, rtol=1e-5)


def test_own_rows_are_completed_by_q_and_dreams_of_the_same_weights_teach_q(monkeypatch):
    p = tiny()
    with torch.no_grad():  # q(z | x) certain: every completed bit is 1
        p.q_z1.convs[-1].bias.fill_(30.0)
        p.q_z0.convs[-1].bias.fill_(30.0)
    sent = p.sample(3)
    own = Batch({"x": images(4)}, weight=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    batch = Batch.merge([own, sent], [1.0, 0.5])
    complete, given = p._complete(batch)
    assert given.tolist() == [False] * 4 + [True] * 3
    assert bool((complete["z0"][:4] == 1).all()) and bool((complete["z1"][:4] == 1).all())
    assert torch.equal(complete["z1"][4:], sent["z1"]) and torch.equal(
        complete["z0"][4:], sent["z0"]
    )

    dreams = []
    model = p.model

    def spy(b, n=None):
        if b is None:
            dreams.append(n)
        return model(b, n=n)

    monkeypatch.setattr(p, "model", spy)
    terms = p.objectives(batch)
    assert dreams == [4]  # one dream per own row
    with torch.no_grad():
        ones0, ones1 = torch.ones(4, 2), torch.ones(4, 3)
        want = -(own.weight * log_joint(p, ones0, ones1, own["x"])).sum()
        want = want - (0.5 * log_joint(p, sent["z0"], sent["z1"], sent["x"])).sum()
    assert torch.allclose(terms["model"], want, rtol=1e-5)


def test_log_prob_is_exact_for_complete_rows_and_approaches_the_enumerated_marginal():
    p = tiny()
    x = images(3)
    # exact log p(x): every (z0, z1) of 2 + 3 bits enumerated
    configs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    with torch.no_grad():
        per = torch.stack(
            [log_joint(p, c[:2].expand(3, 2), c[2:].expand(3, 3), x) for c in configs]
        )
    exact = torch.logsumexp(per, 0)
    torch.manual_seed(0)
    one = torch.stack([p.log_prob(Batch({"x": x}), samples=1) for _ in range(200)]).mean(0)
    many = p.log_prob(Batch({"x": x}), samples=4000)
    assert bool((one < exact).all())  # the ELBO is below
    assert torch.allclose(many, exact, atol=0.05)
    assert bool(((exact - many) < (exact - one)).all())
    s = p.sample(4)
    with torch.no_grad():
        assert torch.allclose(p.log_prob(s), log_joint(p, s["z0"], s["z1"], s["x"]), rtol=1e-5)


def test_learning_raises_the_likelihood_of_own_data():
    torch.manual_seed(0)
    p = build_player({"kind": "hvae", "nz0": 4, "nz1": 8, "width": 4, "hidden": 32, "lr": 3e-3})
    x = images(2).repeat(16, 1, 1, 1)  # two patterns
    data = Batch({"x": x})
    before = p.log_prob(data, samples=8).mean()
    for _ in range(150):
        p.learn(data)
    assert p.log_prob(data, samples=8).mean() > before + 100


def test_spec_errors_name_the_key():
    with pytest.raises(ConfigError, match="nz0"):
        build_player({**TINY, "nz0": 0})
    with pytest.raises(ConfigError, match="latent"):
        build_player({**TINY, "latent": 4})
    with pytest.raises(ConfigError, match="learning"):
        build_player({**TINY, "learning": "elbo"})


def test_two_hvae_players_play_a_game_on_complete_triples():
    torch.manual_seed(0)
    a, b = tiny(), tiny()
    seen = []
    learn = b.learn

    def spy(batch):
        seen.append(batch)
        return learn(batch)

    b.learn = spy
    sources = {n: TensorSource(Batch({"x": images(40, seed=k)})) for k, n in enumerate("ab")}
    game = Game({"a": a, "b": b}, [[0.5, 0.5], [0.5, 0.5]], sources, batch_size=16)
    game.run(2)
    batch = seen[-1]
    received = batch.observed("z0") & batch.observed("z1")
    own = ~batch.observed("z0")
    assert int(received.sum()) > 0 and int(own.sum()) > 0
    assert bool(batch.observed("x").all())
