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
    trunc.enumerate_top = trunc.k  # the truncated estimator with nothing truncated
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
