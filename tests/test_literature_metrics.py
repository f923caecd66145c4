"""Metrics comparable with the multimodal-VAE literature: reference classifiers, linear probe,
Inception FID's offline error."""

import pytest
import torch

from datasets.polymnist_classifiers import PolyMNISTReferenceClassifier, load_reference_classifiers
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError
from multimodal_game.evaluation import features, inception_fid, linear_probe


def write_reference(folder, modalities=2, seed=0):
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(modalities):
        torch.save(
            PolyMNISTReferenceClassifier().state_dict(),
            folder / f"pretrained_img_to_digit_clf_m{k}",
        )
    return folder


def test_reference_classifiers_load_from_release_state_dicts(tmp_path):
    folder = write_reference(tmp_path / "clf")
    clfs = load_reference_classifiers(folder, modalities=2)
    x = torch.rand(7, 3, 28, 28)
    assert clfs[1](x).shape == (7, 10) and not clfs[1].training  # dropout off: deterministic
    assert torch.equal(clfs[1](x), clfs[1](x))
    assert features(clfs[0], x).shape == (7, 128)  # the FID feature space
    again = PolyMNISTReferenceClassifier()
    again.load_state_dict(torch.load(folder / "pretrained_img_to_digit_clf_m1"))
    assert torch.equal(again.eval()(x), clfs[1](x))
    with pytest.raises(ConfigError, match="clf_m2' does not exist"):
        load_reference_classifiers(folder, modalities=3)
    (folder / "pretrained_img_to_digit_clf_m0").write_bytes(b"not a state dict")
    with pytest.raises(ConfigError, match="not a PolyMNIST classifier state dict"):
        load_reference_classifiers(folder, modalities=2)


def test_linear_probe_reads_what_is_linearly_there():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (400,), generator=g)
    informative = torch.nn.functional.one_hot(y, 3).float() + 0.1 * torch.randn(400, 3, generator=g)
    noise = torch.randn(400, 3, generator=g)
    assert linear_probe(informative[:200], y[:200], informative[200:], y[200:]) > 0.95
    assert linear_probe(noise[:200], y[:200], noise[200:], y[200:]) < 0.6


def test_m2_infers_the_posterior_mean_of_its_latent():
    p = build_player(
        {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 3, "hidden": 8}
    )
    x = torch.rand(5, 1, 28, 28)
    z = p.infer("z", Batch({"x": x}))
    assert z.shape == (5, 3)
    # the mixture of the per-class means, weighted by q(c | x)
    feats = p.encode(Batch({"x": x}))
    probs = torch.softmax(p.c_logits(Batch({"x": x}), feats), -1)
    per_class = torch.stack([p.q_z(feats.z, torch.full((5,), c)).mean for c in range(10)], 1)
    assert torch.allclose(z, (probs[..., None] * per_class).sum(1), atol=1e-5)


def test_inception_fid_without_weights_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="pt_inception-2015-12-05"):
        inception_fid(torch.rand(4, 3, 28, 28), torch.rand(4, 3, 28, 28), tmp_path / "none.pth")


def test_label_fidelity_on_a_case_with_a_known_answer():
    """A classifier that reads the class from the brightness of the first pixel: samples made for
    classes [0, 1, 2, 3] whose first pixel encodes [0, 1, 1, 3] carry their label 3 times in 4."""
    from multimodal_game.evaluation import agreement

    class FirstPixel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return torch.nn.functional.one_hot(x[:, 0, 0, 0].round().long(), 10).float()

    x = torch.zeros(4, 1, 28, 28)
    x[:, 0, 0, 0] = torch.tensor([0.0, 1.0, 1.0, 3.0])
    assert agreement(FirstPixel(), x, torch.tensor([0, 1, 2, 3])) == 0.75
