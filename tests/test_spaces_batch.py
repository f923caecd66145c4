import pytest
import torch

from multimodal_game.batch import Batch
from multimodal_game.spaces import (
    Space,
    Variable,
    binary_image,
    categorical,
    image,
    interface,
    latent,
)


def test_variable_kinds_and_shapes():
    assert categorical("c", 10).event_shape == ()
    assert image("m0", 3).event_shape == (3, 28, 28)
    assert binary_image("s").kind == "binary_image"
    assert latent("z", 8).exchangeable is False
    with pytest.raises(ValueError, match="unknown kind"):
        Variable("v", "audio", (3,))
    with pytest.raises(ValueError, match="needs 3 positive"):
        Variable("m", "image", (28, 28))
    with pytest.raises(ValueError, match="at least 2 categories"):
        categorical("c", 1)


def test_interface_is_shared_exchangeable_vars_in_order():
    a = Space([categorical("label", 10), image("m0", 3), latent("z", 4)])
    b = Space([image("m0", 3), categorical("label", 10), image("m1", 3), latent("z", 9)])
    assert interface(a, b) == ("label", "m0")
    c = Space([categorical("label", 10, exchangeable=False), image("m0", 3)])
    assert interface(a, c) == ("m0",)
    assert interface(a, Space([image("m7", 3)])) == ()


def test_interface_mismatch_names_both_players_and_variable():
    a = Space([categorical("label", 10)])
    b = Space([categorical("label", 5)])
    with pytest.raises(ValueError, match=r"'label'.*'alice'.*'bob'"):
        interface(a, b, ("alice", "bob"))


def test_space_rejects_duplicates_and_unknown_lookup():
    with pytest.raises(ValueError, match="declared twice"):
        Space([categorical("c", 2), categorical("c", 2)])
    s = Space([categorical("c", 2)])
    with pytest.raises(KeyError, match="no variable 'x'"):
        s["x"]


def test_batch_presence_projection_and_merge():
    own = Batch(
        {"label": torch.tensor([1, 2, 0]), "x": torch.ones(3, 2)},
        {"label": torch.tensor([True, True, False])},
    )
    synth = Batch({"label": torch.tensor([4, 5])})
    merged = Batch.merge([own, synth], weights=[0.5, 2.0])
    assert len(merged) == 5
    assert merged.present["label"].tolist() == [True, True, False, True, True]
    assert merged.present["x"].tolist() == [True, True, True, False, False]
    assert torch.equal(merged["x"][3:], torch.zeros(2, 2))  # placeholder, never NaN
    assert merged.weight.tolist() == [0.5, 0.5, 0.5, 2.0, 2.0]
    proj = own.project(["label", "other"])
    assert proj.names == ("label",) and proj["label"].data_ptr() == own["label"].data_ptr()


def test_batch_errors_are_clear():
    with pytest.raises(ValueError, match="same number of examples"):
        Batch({"a": torch.zeros(3), "b": torch.zeros(4)})
    with pytest.raises(ValueError, match="bool tensor"):
        Batch({"a": torch.zeros(3)}, {"a": torch.ones(3)})
    with pytest.raises(ValueError, match="per-example shape"):
        Batch.merge([Batch({"a": torch.zeros(2, 3)}), Batch({"a": torch.zeros(2, 4)})])
    space = Space([image("m0", 3)])
    with pytest.raises(ValueError, match=r"'m0'.*expected per-example shape \(3, 28, 28\)"):
        Batch({"m0": torch.zeros(2, 1, 28, 28)}).check(space)
    with pytest.raises(ValueError, match="not in the space"):
        Batch({"m9": torch.zeros(2, 3, 28, 28)}).check(space, "p")


def test_tensor_source_oversamples_labelled_examples():
    from multimodal_game.sources import TensorSource

    y = torch.arange(100) % 10
    lab = torch.zeros(100, dtype=torch.bool)
    lab[:4] = True  # 4% labelled
    batch = Batch({"label": y, "x": torch.randn(100, 3)}, {"label": lab})
    g = torch.Generator().manual_seed(0)
    uniform = TensorSource(batch)
    assert sum(int(uniform.draw(64, g).observed("label").sum()) for _ in range(20)) < 20 * 10
    src = TensorSource(batch, "label", 0.25)
    for _ in range(5):
        d = src.draw(64, g)
        assert int(d.observed("label").sum()) == 16
        assert set(d["label"][d.observed("label")].tolist()) <= {0, 1, 2, 3}
    # the same generator state gives the same draw (resumable), also after .to()
    a = src.draw(8, torch.Generator().manual_seed(3))
    b = src.to("cpu").draw(8, torch.Generator().manual_seed(3))
    assert torch.equal(a["x"], b["x"])
    # a shard already labelled above the fraction is drawn uniformly
    full = TensorSource(Batch({"label": y}), "label", 0.25)
    assert full._stratified_count(64) is None


def test_tensor_source_errors_name_the_problem():
    from multimodal_game.sources import TensorSource

    batch = Batch(
        {"label": torch.zeros(4, dtype=torch.long)}, {"label": torch.zeros(4, dtype=torch.bool)}
    )
    with pytest.raises(ValueError, match="nothing to oversample"):
        TensorSource(batch, "label", 0.5)
    with pytest.raises(ValueError, match="not a variable"):
        TensorSource(batch, "digit", 0.5)
    with pytest.raises(ValueError, match="needs stratify_on"):
        TensorSource(batch, None, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TensorSource(batch, "label", 1.5)


def test_merge_drops_empty_parts_with_their_weights():
    a = Batch({"x": torch.ones(2, 1)})
    empty = Batch({"x": torch.zeros(0, 1)})
    c = Batch({"x": torch.full((3, 1), 2.0)})
    m = Batch.merge([a, empty, c], [0.5, 9.0, 2.0])
    assert m.weight.tolist() == [0.5, 0.5, 2.0, 2.0, 2.0]
    assert m.to("cpu") is m  # nothing to move


def test_batch_to_compares_devices_not_names():
    from multimodal_game.batch import _on

    t = torch.zeros(1)
    assert _on(t, torch.device("cpu"))
    assert not _on(t, torch.device("meta"))


def test_host_masks_follow_draws_merges_and_moves():
    """The CPU copy of each presence mask (read by players to split rows without a device sync)
    stays equal to the mask through every operation a round performs."""
    from multimodal_game.sources import TensorSource

    lab = torch.arange(50) % 7 == 0
    src = TensorSource(
        Batch({"label": torch.arange(50) % 10, "x": torch.randn(50, 2)}, {"label": lab})
    )
    g = torch.Generator().manual_seed(1)
    own = src.draw(12, g)
    synth = Batch({"label": torch.zeros(5, dtype=torch.long)})  # a sample: fully labelled
    other = Batch({"x": torch.randn(3, 2)})  # no label at all
    merged = Batch.merge([own, synth.head(4).project(["label"]), other], [0.5, 1.0, 2.0]).to("cpu")
    back = Batch.from_state(merged.state())
    for b in (own, merged, merged.index(torch.tensor([0, 13, 17])), back, merged.with_weight(1.0)):
        for name in ("label", "x"):
            assert name in b.host
            assert torch.equal(b.observed_host(name), b.observed(name))
    assert (
        merged.observed_host("label")[12:16].all() and not merged.observed_host("label")[16:].any()
    )
    # unknown host copy (as for masks handed in on a GPU): read back from the mask
    blind = Batch._trusted(merged.data, merged.present, merged.weight, {})
    assert torch.equal(blind.observed_host("label"), merged.observed("label"))
    assert not blind.observed_host("missing").any()


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    import numpy as np

    from multimodal_game.evaluation import frechet_distance, gaussian_frechet

    # diagonal covariances: ||mu_a - mu_b||^2 + sum (sqrt(a_k) - sqrt(b_k))^2
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    va, vb = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert gaussian_frechet(mu_a, np.diag(va), mu_b, np.diag(vb)) == pytest.approx(expected)
    # a full covariance against itself rotated: equal covariances give just the mean term
    r = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    c = r @ np.diag(va) @ r.T
    assert gaussian_frechet(mu_a, c, mu_a + 1, c) == pytest.approx(3.0, abs=1e-9)
    # from samples: close to the closed form
    rng = np.random.default_rng(1)
    a = rng.normal(mu_a, np.sqrt(va), size=(200_000, 3))
    b = rng.normal(mu_b, np.sqrt(vb), size=(200_000, 3))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    with pytest.raises(ValueError, match="at least two examples"):
        frechet_distance(a[:1], b)
