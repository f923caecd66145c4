"""M2 options: the truncated guide (``enumerate_top``: the exact bound when every class is kept,
fewer decoder rows when not), best-of-K sampling and the sampling temperature; named errors for
settings a player cannot honour."""

import pytest
import torch

from benchmarks.player_step import make_batch
from modalities import build_player
from multimodal_game.errors import ConfigError


def _player(top: int = 0, **kw):
    torch.manual_seed(0)
    spec = {
        "variables": [{"name": "m0", "recipe": "image", "width": 4}],
        "latent": 2,
        "hidden": 16,
        "enumerate_top": top,
        **kw,
    }
    return build_player(spec)


def _losses(player, batch, draws: int) -> torch.Tensor:
    out = []
    for s in range(draws):
        torch.manual_seed(s)
        out.append(player.loss(batch).item())
    return torch.tensor(out)


def test_keeping_every_class_gives_the_exact_bound_in_expectation():
    batch = make_batch(32, "mixed")
    exact = _player()
    trunc = _player()
    trunc.enumerate_top = trunc.classes  # the truncated estimator with nothing truncated
    a, b = _losses(exact, batch, 150), _losses(trunc, batch, 150)
    se = (a.var() / len(a) + b.var() / len(b)).sqrt()
    assert abs(a.mean() - b.mean()) < 4 * se + 1e-4, (a.mean(), b.mean(), se)


def test_a_truncated_guide_is_a_looser_bound_at_a_uniform_q():
    # q(c | x) near uniform: dropping 8 of 10 classes costs about log 5 nats of entropy per row
    batch = make_batch(32, "unlabelled")
    exact, trunc = _player(), _player(2)
    gap = _losses(trunc, batch, 40).mean() - _losses(exact, batch, 40).mean()
    assert 0.5 < gap < 2.5, gap


def test_unlabelled_rows_run_the_decoder_once_per_candidate():
    batch = make_batch(16, "mixed")  # 8 labelled, 8 unlabelled
    rows = []
    for top, expected in ((0, 8 + 8 * 10), (3, 8 + 8 * 3)):
        p = _player(top)
        handle = p.decoders["m0"].register_forward_hook(lambda m, i, o: rows.append(len(i[0])))
        p.loss(batch)  # classifier term on, consistency off: only the ELBO decodes
        handle.remove()
        assert sum(rows) == expected, (top, rows)
        rows.clear()


def test_learning_with_a_truncated_guide_trains_q_c_from_unlabelled_rows():
    p = _player(2, aux_weight=0.0)
    batch = make_batch(32, "unlabelled")
    p.loss(batch).backward()
    assert p.classifier[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"enumerate_top": 11}, "enumerate_top"),
        ({"enumerate_top": 2, "learning": "wake_sleep"}, "enumerate_top needs learning"),
    ],
)
def test_settings_the_truncated_guide_cannot_honour_are_named(kw, needle):
    with pytest.raises((ValueError, ConfigError), match=needle):
        _player(**kw)


def test_best_of_k_sampling_keeps_the_labels_and_sends_more_typical_pairs():
    from multimodal_game.batch import Batch

    plain, best = _player(), _player(sample_best_of=8)
    data = make_batch(64, "labelled")
    for _ in range(60):  # a player whose images vary with z and whose q(c | x) tells them apart
        plain.learn(data)
    best.load_state_dict(plain.state_dict())
    c = torch.arange(10).repeat(20)
    scores = []
    for p in (plain, best):
        torch.manual_seed(1)
        s = p.sample(len(c), given=Batch({"label": c}))
        assert torch.equal(s["label"], c)  # the label distribution is what was asked for
        with torch.no_grad():
            logq = torch.log_softmax(p.c_logits(Batch({"m0": s["m0"]})), -1)
        scores.append(logq.gather(1, c[:, None])[:, 0])
    # per class, the best of 8 draws of a score sits about 1.4 standard deviations above one draw
    plain_c, best_c = scores[0].view(20, 10), scores[1].view(20, 10)
    gain = ((best_c.mean(0) - plain_c.mean(0)) / plain_c.std(0)).mean()
    assert gain > 0.7, gain


def test_sample_temperature_scales_the_latent_of_sent_pairs():
    from multimodal_game.batch import Batch

    c = torch.zeros(6, dtype=torch.long)
    frozen = _player(sample_temperature=0.0).sample(6, given=Batch({"label": c}))["m0"]
    assert torch.equal(frozen, frozen[:1].expand_as(frozen))  # z = 0: one image per class
    free = _player().sample(6, given=Batch({"label": c}))["m0"]
    assert (free - free[:1]).abs().max() > 1e-4
    with pytest.raises((ValueError, ConfigError), match="sample_temperature"):
        _player(sample_temperature=-1.0)


def _masked_player(**kw):
    torch.manual_seed(0)
    spec = {
        "variables": [
            {"name": "x", "recipe": "image", "width": 2},
            {"name": "s", "recipe": "digit_mask", "width": 2},
        ],
        "latent": 2,
        "hidden": 8,
        "complete": ["s"],
        **kw,
    }
    return build_player(spec)


def _images_and_pairs():
    from multimodal_game.batch import Batch

    g = torch.Generator().manual_seed(0)
    images = Batch({"x": torch.rand(4, 1, 28, 28, generator=g), "label": torch.arange(4)})
    pairs = Batch(
        {"s": (torch.rand(3, 1, 28, 28, generator=g) > 0.5).float(), "label": torch.arange(3)}
    )
    return Batch.merge([images, pairs])


def test_completion_fills_the_missing_mask_from_the_players_model_at_the_observed_label(
    monkeypatch,
):
    p = _masked_player()
    batch = _images_and_pairs()
    seen = []
    decode = p.decode

    def spy(c, z, names=None):
        seen.append((c.clone(), names))
        return decode(c, z, names)

    monkeypatch.setattr(p, "decode", spy)
    done = p.completed(batch)
    assert seen[0][1] == ["s"] and seen[0][0][:4].tolist() == [0, 1, 2, 3]  # the rows' labels
    assert done.observed("s").tolist() == [True] * 7  # images got a mask; pairs kept theirs
    assert torch.equal(done["s"][4:], batch["s"][4:])
    assert done.observed("x").tolist() == [True] * 4 + [False] * 3  # no image is made up
    assert float(done["s"][:4].min()) >= 0 and float(done["s"][:4].max()) <= 1


def test_learning_uses_the_completed_batch_and_a_player_without_the_option_does_not():
    batch = _images_and_pairs()
    for complete, calls in ((["s"], 1), ([], 0)):
        p = _masked_player(complete=complete)
        n = []
        orig = p.completed
        p.completed = lambda b, c=None, n=n, orig=orig: (n.append(1), orig(b, c))[1]
        p.learn(batch)
        assert len(n) == calls


def test_test_images_without_a_mask_are_classified_by_gibbs_sweeps(monkeypatch):
    from multimodal_game.batch import Batch

    p = _masked_player(complete_sweeps=3)
    x = Batch({"x": torch.rand(5, 1, 28, 28)})
    calls = []
    completed = p.completed
    monkeypatch.setattr(p, "completed", lambda b, c=None: (calls.append(c), completed(b, c))[1])
    probs = p.infer("label", x)
    assert len(calls) == 3 and all(c is not None and c.shape == (5,) for c in calls)
    assert torch.allclose(probs.sum(-1), torch.ones(5), atol=1e-5)
    calls.clear()
    with_mask = Batch({"x": x["x"], "s": torch.zeros(5, 1, 28, 28)})
    p.infer("label", with_mask)  # nothing to infer: one pass of q(c | x, s)
    assert calls == []
    # the Gibbs estimate is the mean of q(c | x, s) over the sweeps' completions
    torch.manual_seed(1)
    got = p.gibbs_label(x, 4)
    torch.manual_seed(1)
    probs = torch.softmax(p.c_logits(x), -1)
    want = torch.zeros_like(probs)
    for _ in range(4):
        made = completed(x, torch.distributions.Categorical(probs=probs).sample())
        probs = torch.softmax(p.c_logits(made), -1)
        want += probs
    assert torch.allclose(got, want / 4, atol=1e-6)


@pytest.mark.parametrize(
    "kw, needle",
    [({"complete": ["mask"]}, "mask"), ({"complete_sweeps": -1}, "complete_sweeps")],
)
def test_completion_settings_a_player_cannot_honour_are_named(kw, needle):
    with pytest.raises((ConfigError, ValueError), match=needle):
        _masked_player(**kw)


def test_a_completing_player_is_not_fused():
    from modalities.m2_fused import fusion_key

    assert "complete" in fusion_key(_masked_player())
    assert not isinstance(fusion_key(_masked_player(complete=[])), str)
