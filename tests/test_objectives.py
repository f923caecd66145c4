"""What a player's loss is: alpha-weighted sources, masked entries ignored, named objectives."""

import pytest
import torch
from helpers import MixturePlayer, mixture_data

from benchmarks.oracle import reference_loss_checked
from benchmarks.player_step import make_batch, make_player
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.expfam import CategoricalPlayer
from multimodal_game.game import Game
from multimodal_game.sources import TensorSource


def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True)


@pytest.mark.parametrize(
    "row",
    [
        [0.6, 0.25, 0.15],  # batch 10: counts 6 / 3 / 1, weights 1 / 0.83 / 1.5
        # batch 10: shares 9.3 / 0.5 / 0.2 -> counts 8 / 1 / 1 (the last source takes its one
        # example from the largest), so the weights differ from the plain alpha_ij * B / n_ij rounding
        [0.93, 0.05, 0.02],
    ],
)
def test_gradient_on_a_merged_batch_is_the_alpha_weighted_sum_over_sources(row):
    torch.manual_seed(0)
    players = {"p0": MixturePlayer(), "p1": MixturePlayer(), "labels": CategoricalPlayer(3)}
    sources = {
        "p0": TensorSource(mixture_data(50, seed=1)),
        "p1": TensorSource(mixture_data(50, seed=2)),
        "labels": TensorSource(Batch({"label": torch.tensor([0, 1, 2, 2])})),
    }
    alpha = [row, [0.3, 0.5, 0.2], [0.25, 0.25, 0.5]]
    game = Game(players, alpha, sources, batch_size=10, seed=0)
    plan = game.plan()
    if row[0] == 0.93:
        assert plan.counts("p0") == [8, 1, 1]
    merged = []
    p0 = players["p0"]
    learn = p0.learn
    p0.learn = lambda batch: merged.append(batch) or learn(batch)
    game.step()
    (batch,) = merged
    params = [p for p in p0.parameters()]
    total = _grads(p0.loss(batch), params)
    # the same rows, source by source, each with unit weights (its loss is then a plain mean)
    start, expected = 0, [torch.zeros_like(p) for p in params]
    for j, count in enumerate(plan.counts("p0")):
        rows = torch.arange(start, start + count)
        start += count
        part = batch.index(rows)
        part = Batch(part.data, part.present)
        for e, g in zip(expected, _grads(p0.loss(part), params)):
            if g is not None:
                e += row[j] * g
    assert start == len(batch) == 10
    for g, e in zip(total, expected):
        assert torch.allclose(g, e, rtol=1e-4, atol=3e-5), (g - e).abs().max()


def _two_view_player(**kw):
    spec = {
        "variables": [
            {"name": "x", "recipe": "image", "width": 2, "likelihood": "laplace"},
            {"name": "s", "recipe": "digit_mask", "width": 2},
        ],
        "latent": 3,
        "hidden": 8,
        **kw,
    }
    torch.manual_seed(0)
    return build_player(spec)


def test_garbage_in_masked_entries_changes_neither_loss_nor_gradients():
    p = _two_view_player(aux_weight=10.0)
    g = torch.Generator().manual_seed(3)
    n = 12
    data = {
        "label": torch.randint(10, (n,), generator=g),
        "x": torch.rand(n, 1, 28, 28, generator=g),
        "s": (torch.rand(n, 1, 28, 28, generator=g) > 0.5).float(),
    }
    present = {
        "label": torch.arange(n) % 3 == 0,
        "x": torch.arange(n) % 2 == 0,
        "s": torch.arange(n) % 4 != 1,
    }
    clean = Batch(data, present)
    dirty_data = {k: v.clone() for k, v in data.items()}
    dirty_data["x"][~present["x"]] = 7.5  # far outside [0, 1]
    dirty_data["s"][~present["s"]] = -3.0
    dirty_data["label"][~present["label"]] = 9 - dirty_data["label"][~present["label"]]
    dirty = Batch(dirty_data, present)
    params = list(p.parameters())
    torch.manual_seed(1)
    a = p.loss(clean)
    ga = _grads(a, params)
    torch.manual_seed(1)
    b = p.loss(dirty)
    gb = _grads(b, params)
    assert torch.isfinite(a) and torch.equal(a, b)
    for x, y in zip(ga, gb):
        assert (x is None and y is None) or torch.allclose(x, y, rtol=0, atol=1e-7)
    # and the masks matter: the same garbage, declared present, changes the loss
    torch.manual_seed(1)
    assert not torch.allclose(p.loss(Batch(dirty_data, {"label": present["label"]})), a)


def test_hand_written_loss_equals_the_players_pyro_loss():
    p = make_player(width=2, hidden=16, latent=3)
    for kind in ("labelled", "unlabelled", "mixed"):
        batch = make_batch(24, kind, seed=1)
        batch = Batch(batch.data, batch.present, torch.rand(24) + 0.5)  # uneven weights
        torch.manual_seed(0)
        pyro_loss = p.loss(batch)
        torch.manual_seed(0)
        ref = reference_loss_checked(p, batch)
        assert torch.allclose(pyro_loss, ref, rtol=1e-5, atol=1e-4), (kind, pyro_loss, ref)
        g1 = _grads(pyro_loss, list(p.parameters()))
        torch.manual_seed(0)
        g2 = _grads(reference_loss_checked(p, batch), list(p.parameters()))
        for a, b in zip(g1, g2):
            if a is None or b is None:
                assert a is None and b is None
                continue
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_objectives_are_named_and_the_step_reports_each():
    p = _two_view_player(aux_weight=5.0, consistency_weight=2.0)
    batch = Batch(
        {
            "label": torch.arange(6) % 10,
            "x": torch.rand(6, 1, 28, 28),
            "s": torch.zeros(6, 1, 28, 28),
        },
        {"label": torch.tensor([True, False] * 3)},
    )
    torch.manual_seed(0)
    terms = p.objectives(batch)
    assert list(terms) == ["elbo", "classifier", "consistency"]
    torch.manual_seed(0)
    assert torch.allclose(p.loss(batch), sum(terms.values()) / 6, rtol=1e-6)
    stats = p.learn(batch)
    assert set(stats) == {"loss", "elbo", "classifier", "consistency"}


def test_consistency_term_is_kept_without_the_classifier_term():
    p = _two_view_player(aux_weight=0.0, consistency_weight=3.0)
    batch = Batch({"label": torch.arange(4), "x": torch.rand(4, 1, 28, 28)})
    terms = p.objectives(batch)
    assert "classifier" not in terms and terms["consistency"] > 0
    decoder_before = [q.detach().clone() for q in p.decoders["x"].parameters()]
    p.learn(batch)
    p.aux_weight, p.consistency_weight = 0.0, 0.0
    assert list(p.objectives(batch)) == ["elbo"]
    assert any(not torch.equal(a, b) for a, b in zip(decoder_before, p.decoders["x"].parameters()))


def test_sampling_and_the_model_tell_one_story():
    """``sample`` draws what ``decode`` says for the drawn (c, z), the same function the model
    scores with."""
    p = _two_view_player()
    torch.manual_seed(5)
    s = p.sample(7)
    torch.manual_seed(5)
    c = p.prior_c().sample((7,))
    z = torch.randn(7, p.latent_dim)
    with torch.no_grad():
        emissions = p.decode(c, z)
    assert torch.equal(s["label"], c)
    assert torch.equal(s["x"], emissions["x"].value())
    assert torch.equal(s["s"], emissions["s"].value())
    assert set(s["s"].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("recipe", ["label", "latent"])
def test_label_and_latent_recipes_as_m2_variables_are_named_errors(recipe):
    with pytest.raises(
        ValueError, match=rf"recipe {recipe!r}.*cannot be an observed variable.*image"
    ):
        build_player({"variables": [{"name": "v", "recipe": recipe}]})


def test_encoder_features_are_the_mean_over_the_variables_present():
    p = _two_view_player(aux_weight=1.0)
    x, s = torch.rand(4, 1, 28, 28), (torch.rand(4, 1, 28, 28) > 0.5).float()
    present = {
        "x": torch.tensor([True, True, False, False]),
        "s": torch.tensor([True, False, True, False]),
    }
    f = p.encode(Batch({"x": x, "s": s}, present))
    with torch.no_grad():
        hx, hs = p.encoders["x"](x), p.encoders["s"](s)
        cx, cs = p.c_encoders["x"](x), p.c_encoders["s"](s)
    assert torch.allclose(f.z[0], (hx[0] + hs[0]) / 2, atol=1e-6)
    assert torch.allclose(f.z[1], hx[1], atol=1e-6) and torch.allclose(f.z[2], hs[2], atol=1e-6)
    assert torch.equal(f.z[3], torch.zeros_like(f.z[3]))  # nothing present: zero features
    assert torch.allclose(f.c[0], (cx[0] + cs[0]) / 2, atol=1e-6)
    # a batch without one of the variables pools the other alone
    only_s = p.encode(Batch({"s": s}))
    assert torch.allclose(only_s.z, hs, atol=1e-6)


def test_shared_encoder_makes_q_c_read_the_z_encoders():
    p = _two_view_player(shared_encoder=True)
    assert p.c_encoders is None
    f = p.encode(Batch({"x": torch.rand(3, 1, 28, 28)}))
    assert torch.equal(f.z, f.c)
    own = _two_view_player()
    assert own.c_encoders is not None and not torch.equal(
        *own.encode(Batch({"x": torch.rand(3, 1, 28, 28)}))
    )


def test_spec_options_reach_the_player():
    p = _two_view_player(lr=0.02, optimizer="sgd", latent=3)
    assert isinstance(p.optim, torch.optim.SGD) and p.optim.param_groups[0]["lr"] == 0.02
    assert p.space["z"].event_shape == (3,)
    with pytest.raises(ValueError, match="variable names must be distinct"):
        build_player(
            {"variables": [{"name": "x", "recipe": "image"}, {"name": "x", "recipe": "image"}]}
        )
    with pytest.raises(ValueError, match="variable names must be distinct"):
        build_player({"variables": [{"name": "label", "recipe": "image"}]})


def test_classifier_term_counts_labelled_rows_with_data_only():
    p = _two_view_player(aux_weight=1.0)
    n = 4
    data = {
        "label": torch.tensor([1, 2, 3, 4]),
        "x": torch.rand(n, 1, 28, 28),
        "s": torch.zeros(n, 1, 28, 28),
    }
    present = {
        "label": torch.tensor([True, True, False, True]),
        "x": torch.tensor([True, False, True, False]),
        "s": torch.tensor([False, True, True, False]),
    }
    b = Batch(data, present, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    logits = p.c_logits(b)
    logq = torch.log_softmax(logits, -1).gather(1, data["label"][:, None])[:, 0]
    # row 0 (x), row 1 (s): labelled with data; row 2 unlabelled; row 3 labelled without data
    expected = -(1.0 * logq[0] + 2.0 * logq[1])
    assert torch.allclose(p.classifier_loss(b), expected, atol=1e-5)


def test_the_sleep_phase_dreams_from_the_prior_and_scores_the_guide():
    from pyro import poutine

    p = _two_view_player(learning="wake_sleep")
    with poutine.trace() as tr:
        dreams = p.model(None, n=5)
    z = tr.trace.nodes["z_unl"]["fn"].base_dist
    assert torch.equal(z.loc, torch.zeros(5, 3)) and torch.equal(z.scale, torch.ones(5, 3))
    assert set(dreams) == {"label", "x", "s"} and dreams["x"].shape == (5, 1, 28, 28)
    assert "sleep" in p.objectives(Batch({"label": torch.arange(2), "x": torch.rand(2, 1, 28, 28)}))


def test_fit_classifier_trains_q_c_alone_on_the_labelled_rows():
    p = _two_view_player(lr=0.01)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (64,), generator=g)
    x = torch.rand(64, 1, 28, 28, generator=g) * 0.1
    x[y == 1, :, :14] += 0.8  # class 1: a bright upper half
    labelled = torch.arange(64) % 2 == 0
    data = Batch({"label": torch.where(labelled, y, 9), "x": x}, {"label": labelled})
    decoders = [q.detach().clone() for q in p.decoders.parameters()]
    first = p.fit_classifier(data, steps=1, batch_size=16, seed=0)
    last = p.fit_classifier(data, steps=60, batch_size=16, seed=0)
    assert last < first
    pred = p.c_logits(Batch({"x": x})).argmax(-1)
    assert (pred == y).float().mean() > 0.9  # and never predicts the unlabelled rows' filler 9
    assert all(torch.equal(a, b) for a, b in zip(decoders, p.decoders.parameters()))
    with pytest.raises(ValueError, match="needs labelled examples"):
        p.fit_classifier(
            Batch({"label": y, "x": x}, {"label": torch.zeros(64, dtype=torch.bool)}), 1
        )


def test_the_authors_symmetric_equilibrium_rule_trains_each_conditional_on_the_others_completions():
    from modalities import build_player

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    torch.manual_seed(0)
    p = build_player({**spec, "learning": "symmetric_equilibrium"})
    data = Batch({"label": torch.arange(6) % 10, "x": torch.rand(6, 1, 28, 28)})
    terms = p.objectives(data)
    assert {"elbo", "classifier", "sym_x", "sym_c"} <= set(terms)
    # sym_c reaches the classifier only, sym_x the generative side: check where gradients land
    p.zero_grad()
    terms["sym_c"].backward(retain_graph=True)
    assert p.classifier[0].weight.grad is not None and p.classifier[0].weight.grad.abs().sum() > 0
    assert all(q.grad is None or q.grad.abs().sum() == 0 for q in p.decoders.parameters())
    p.zero_grad()
    terms["sym_x"].backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in p.decoders.parameters())
    assert all(q.grad is None or q.grad.abs().sum() == 0 for q in p.classifier.parameters())
    assert p.learn(data)["loss"].isfinite()
    with pytest.raises(ValueError, match="renamed 'wake_sleep'"):
        build_player({**spec, "learning": "symmetric"})
