"""Evaluation of players through their handles: accuracy from any subset of variables, label
fidelity and coherence of conditional samples, feature-space FID, and sample grids."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import nn

from .batch import Batch


@torch.no_grad()
def predict_proba(
    player: Any, inputs: Mapping[str, torch.Tensor], label: str = "label", chunk: int = 1000
) -> torch.Tensor:
    """q(label | inputs) of ``player`` (a handle or a player), in chunks; ``inputs`` may hold any
    subset of the player's observed variables (and fixed ones such as a style)."""
    n = len(next(iter(inputs.values())))
    out = []
    for i in range(0, n, chunk):
        given = Batch({k: v[i : i + chunk] for k, v in inputs.items()})
        out.append(player.infer(label, given).cpu())
    return torch.cat(out)


def accuracy(
    player_or_probs: Any,
    inputs_or_labels: Any,
    labels: torch.Tensor | None = None,
    label: str = "label",
    chunk: int = 1000,
) -> float:
    """Accuracy of ``player`` on ``inputs`` (a mapping of variables) against ``labels``; or, with
    two arguments, of class probabilities / predictions against labels."""
    if labels is None:
        probs, labels = player_or_probs, inputs_or_labels
    else:
        probs = predict_proba(player_or_probs, inputs_or_labels, label, chunk)
    pred = probs.argmax(-1) if probs.dim() == 2 else probs
    return (pred.cpu() == labels.cpu()).float().mean().item()


@torch.no_grad()
def conditional_samples(
    player: Any, labels: torch.Tensor, variable: str, label: str = "label"
) -> torch.Tensor:
    """``player``'s samples of ``variable`` given each label in ``labels`` (on the CPU)."""
    return player.sample(len(labels), given=Batch({label: labels}))[variable].cpu()


def agreement(classifier: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``x`` that ``classifier`` assigns to ``labels`` (coherence, label fidelity)."""
    return (predict(classifier, x) == labels.cpu()).float().mean().item()


def frechet_distance(
    feats_a: torch.Tensor | np.ndarray, feats_b: torch.Tensor | np.ndarray
) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``tr sqrt(Ca Cb)`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric positive semi-definite ``Ca^1/2 Cb Ca^1/2`` (same spectrum), which is exact and
    stays real where a general matrix square root picks up rounding-error imaginary parts."""
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (n, d) with equal d, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("FID needs at least two examples per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca = np.atleast_2d(np.cov(a, rowvar=False))
    cb = np.atleast_2d(np.cov(b, rowvar=False))
    return gaussian_frechet(mu_a, ca, mu_b, cb)


def gaussian_frechet(mu_a: np.ndarray, ca: np.ndarray, mu_b: np.ndarray, cb: np.ndarray) -> float:
    """Fréchet distance between N(mu_a, ca) and N(mu_b, cb)."""
    w, v = np.linalg.eigh((ca + ca.T) / 2)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root_a @ cb @ root_a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = np.asarray(mu_a) - np.asarray(mu_b)
    return float(diff @ diff + np.trace(ca) + np.trace(cb) - 2 * tr_covmean)


def save_grid(tiles: torch.Tensor, path: str | Path, scale: int = 2) -> Path:
    """Write ``tiles`` (rows, cols, C, H, W; values in [0, 1]) as one PNG, each pixel ``scale``
    times larger."""
    if tiles.dim() != 5:
        raise ValueError(f"tiles must be (rows, cols, C, H, W), got shape {tuple(tiles.shape)}")
    img = rearrange(tiles.detach().cpu().clamp(0, 1), "r c ch h w -> (r h) (c w) ch")
    arr = (img.numpy() * 255).astype(np.uint8)
    pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    path = Path(path)
    pil.save(path)
    return path


@torch.no_grad()
def predict(clf: nn.Module, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    dev = next(clf.parameters()).device
    return torch.cat(
        [clf(x[i : i + chunk].to(dev)).argmax(-1).cpu() for i in range(0, len(x), chunk)]
    )


FEATURE_SPACES = ("penultimate", "classes")


@torch.no_grad()
def features(
    clf: nn.Module, x: torch.Tensor, chunk: int = 1000, space: str = "penultimate"
) -> torch.Tensor:
    """Features of ``x`` for FID: the classifier's ``penultimate`` layer (the usual choice; it also
    scores image quality such as blur) or its ``classes`` probabilities (what digits are drawn,
    nearly blind to quality)."""
    if space not in FEATURE_SPACES:
        raise ValueError(f"unknown feature space {space!r}; expected one of {FEATURE_SPACES}")
    dev = next(clf.parameters()).device

    def f(xs: torch.Tensor) -> torch.Tensor:
        h = clf.features(xs.to(dev))
        return h if space == "penultimate" else torch.softmax(clf.head(h), -1)

    return torch.cat([f(x[i : i + chunk]).cpu() for i in range(0, len(x), chunk)])


# -- metrics comparable with the multimodal-VAE literature ---------------------------------------


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    seed: int = 0,
) -> float:
    """Test accuracy of a logistic regression (scikit-learn, standardised inputs) fitted on
    representations: the linear-probe metric of the multimodal-VAE papers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    probe.fit(train_features.double().numpy(), train_labels.numpy())
    return float(probe.score(test_features.double().numpy(), test_labels.numpy()))


def inception_fid(
    real: torch.Tensor, fake: torch.Tensor, weights: str | Path, chunk: int = 200
) -> float:
    """FID in Inception-v3 pool features (torchmetrics), for images in [0, 1] (1 or 3 channels).
    ``weights``: the FID Inception weights file (``pt_inception-2015-12-05-*.pth``), which must be
    supplied: nothing is downloaded. Needs the ``[fid]`` extra (torch-fidelity)."""
    from .errors import ConfigError

    weights = Path(weights)
    if not weights.is_file():
        raise ConfigError(
            f"Inception weights {str(weights)!r} do not exist; FID in Inception space needs the "
            "file pt_inception-2015-12-05-6726825d.pth (torch-fidelity's release) supplied by you"
        )
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:
        raise ConfigError(f"Inception FID needs the [fid] extra ({e})") from None
    fid = FrechetInceptionDistance(
        feature=2048, normalize=True, feature_extractor_weights_path=str(weights)
    )
    for imgs, is_real in ((real, True), (fake, False)):
        for i in range(0, len(imgs), chunk):
            x = imgs[i : i + chunk].float()
            fid.update(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x, real=is_real)
    return float(fid.compute())
