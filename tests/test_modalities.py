import importlib
import shutil
import sys
from pathlib import Path

import pytest
import torch

from modalities import build_player, registered_modalities
from modalities.m2 import LabelPlayer, M2Player
from modalities.recipes import LIKELIHOODS
from multimodal_game.batch import Batch
from multimodal_game.game import Game
from multimodal_game.sources import TensorSource

ROOT = Path(__file__).resolve().parents[1]


def tiny_images(n, channels=1, seed=0, labelled=0.5):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(10, (n,), generator=g)
    x = torch.rand(n, channels, 28, 28, generator=g) * 0.2
    for k in range(n):  # a class-dependent bright bar so the classes are learnable
        x[k, :, 2 * y[k] + 2 : 2 * y[k] + 5, :] = 1.0
    return x, y, torch.rand(n, generator=g) < labelled


def image_spec(name="m0", channels=1, **kw):
    return {
        "variables": [{"name": name, "recipe": "image", "channels": channels, "width": 4}],
        "latent": 4,
        "hidden": 16,
        **kw,
    }


def test_registry_lists_builtins_and_rejects_bad_specs():
    assert {"image", "digit_mask", "label", "latent"} <= set(registered_modalities())
    with pytest.raises(ValueError, match=r"unknown modality recipe 'audio'; registered: \["):
        build_player({"variables": [{"name": "a", "recipe": "audio"}]})
    with pytest.raises(ValueError, match="'variables' is required"):
        build_player({"kind": "m2"})
    with pytest.raises(ValueError, match="'variables.0.name' is required"):
        build_player({"variables": [{"recipe": "image"}]})
    with pytest.raises(ValueError, match="channels.* 1 or 3"):
        build_player({"variables": [{"name": "m", "recipe": "image", "channels": 2}]})
    with pytest.raises(ValueError, match="'variables.0.likelihood'.*got 'poisson'"):
        build_player({"variables": [{"name": "m", "recipe": "image", "likelihood": "poisson"}]})
    with pytest.raises(ValueError, match="unknown key 'widht'"):
        build_player({"variables": [{"name": "m", "recipe": "image"}], "widht": 3})
    with pytest.raises(ValueError, match="unknown player kind"):
        build_player({"kind": "gan"})
    with pytest.raises(ValueError, match="unknown key 'variables.0.colour'"):
        build_player({"variables": [{"name": "m", "recipe": "image", "colour": 1}]})
    with pytest.raises(ValueError, match=r"variable 'v' \(recipe 'vector'\)"):  # its recipe says
        build_player({"variables": [{"name": "v", "recipe": "vector", "dim": 2, "colour": 1}]})


@pytest.mark.parametrize("lik", LIKELIHOODS)
def test_image_player_learns_with_missing_labels_and_modalities(lik):
    torch.manual_seed(0)
    p = build_player(
        image_spec(channels=3, variables=None)
        | {
            "variables": [
                {"name": "m0", "recipe": "image", "channels": 3, "width": 4, "likelihood": lik},
                {"name": "m1", "recipe": "image", "channels": 3, "width": 4, "likelihood": lik},
            ]
        }
    )
    x, y, lab = tiny_images(24, 3)
    miss = torch.arange(24) % 3 == 0
    b = Batch({"label": y, "m0": x, "m1": x.flip(-1)}, {"label": lab, "m1": ~miss})
    before = {k: v.detach().clone() for k, v in p.named_parameters()}
    for _ in range(3):
        stats = p.learn(b)
    assert torch.isfinite(stats["loss"])
    assert any(not torch.equal(before[k], v) for k, v in p.named_parameters())
    probs = p.infer("label", b.project(["m1"]))  # classify from any subset of modalities
    assert probs.shape == (24, 10) and torch.allclose(probs.sum(-1), torch.ones(24))
    gen = p.sample(5, given=Batch({"label": torch.arange(5)}))
    assert gen["label"].tolist() == [0, 1, 2, 3, 4] and gen["m0"].shape == (5, 3, 28, 28)
    assert p.infer("m1", b.project(["m0"])).shape == (24, 3, 28, 28)


def test_image_player_learns_to_classify():
    torch.manual_seed(0)
    p = build_player(image_spec(lr=3e-3, aux_weight=20.0))
    x, y, lab = tiny_images(200, labelled=0.5)
    b = Batch({"label": y, "m0": x}, {"label": lab})
    for _ in range(60):
        p.learn(b)
    acc = (p.infer("label", b.project(["m0"])).argmax(-1) == y).float().mean().item()
    assert acc > 0.6, acc


def test_players_of_every_kind_play_one_game():
    torch.manual_seed(0)
    image = build_player(image_spec())
    labels = build_player({"kind": "label"})
    mask = build_player(
        {
            "variables": [{"name": "s", "recipe": "digit_mask", "width": 4}],
            "latent": 4,
            "hidden": 16,
        }
    )
    assert isinstance(image, M2Player) and isinstance(labels, LabelPlayer)
    x, y, lab = tiny_images(40)
    sources = {
        "image": TensorSource(Batch({"label": y, "m0": x}, {"label": lab})),
        "labels": TensorSource(Batch({"label": y})),
        "mask": TensorSource(Batch({"label": y, "s": (x > 0.5).float()})),
    }
    alpha = [[0.6, 0.2, 0.2], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]]
    game = Game({"image": image, "labels": labels, "mask": mask}, alpha, sources, batch_size=16)
    assert game.interfaces[("mask", "image")] == ("label",)
    before = {
        n: [q.detach().clone() for q in p.parameters()]
        for n, p in game.runtime.local_players.items()
    }
    game.run(3)
    for n, p in game.runtime.local_players.items():
        assert torch.isfinite(game.state.last_stats[n]["loss"])
        assert any(not torch.equal(a, b) for a, b in zip(before[n], p.parameters())), n
    s = mask.sample(4)
    assert set(s.names) == {"label", "s"} and set(s["s"].unique().tolist()) <= {0.0, 1.0}


def test_symmetric_rule_on_m2():
    torch.manual_seed(0)
    p = build_player(image_spec(learning="wake_sleep"))
    x, y, lab = tiny_images(16)
    assert torch.isfinite(p.learn(Batch({"label": y, "m0": x}, {"label": lab}))["loss"])


def test_own_modality_from_a_file_outside_the_package(tmp_path, monkeypatch):
    shutil.copy(ROOT / "docs" / "examples" / "signal_modality.py", tmp_path / "my_signal.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("my_signal")
    try:
        assert "signal" in registered_modalities()
        torch.manual_seed(0)
        sig = build_player(
            {
                "variables": [{"name": "wave", "recipe": "signal", "length": 8}],
                "latent": 2,
                "hidden": 8,
            }
        )
        img = build_player(image_spec())
        n = 20
        y = torch.arange(n) % 10
        wave = torch.sin(torch.arange(8)[None] * (y[:, None] + 1) / 3.0)
        x, _, _ = tiny_images(n)
        game = Game(
            {"signal": sig, "image": img},
            [[0.5, 0.5], [0.5, 0.5]],
            {
                "signal": TensorSource(Batch({"label": y, "wave": wave})),
                "image": TensorSource(Batch({"label": y, "m0": x})),
            },
            batch_size=8,
        )
        assert game.interfaces[("signal", "image")] == ("label",)
        game.run(2)
        assert all(torch.isfinite(s["loss"]) for s in game.state.last_stats.values())
        assert sig.sample(3)["wave"].shape == (3, 8)
    finally:
        sys.modules.pop("my_signal", None)
        from modalities import registry

        registry._RECIPES.pop("signal", None)


def test_an_image_player_sends_its_mean_or_a_draw_as_configured():
    import pytest as _pytest

    def player(send, likelihood="bernoulli"):
        torch.manual_seed(0)
        var = {"name": "x", "recipe": "image", "width": 2, "likelihood": likelihood, "send": send}
        return build_player({"variables": [var], "latent": 2, "hidden": 8})

    mean, drawn = player("mean").sample(4)["x"], player("sample").sample(4)["x"]
    assert ((mean > 0) & (mean < 1)).all()  # sigmoid of the logits: grey levels
    assert set(drawn.unique().tolist()) <= {0.0, 1.0}  # a Bernoulli draw: black and white
    lap = player("sample", "laplace").sample(4)["x"]
    assert (
        lap.min() >= 0
        and lap.max() <= 1
        and not torch.equal(lap, player("mean", "laplace").sample(4)["x"])
    )
    logistic = player("sample", "discretized_logistic").sample(4)["x"]
    assert torch.equal((logistic * 255).round() / 255, logistic)  # on the 8-bit grid
    with _pytest.raises(ValueError, match="send.*'mean' or 'sample'.*'median'"):
        player("median")
