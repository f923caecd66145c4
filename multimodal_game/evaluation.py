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


class DigitClassifier(nn.Module):
    """A small CNN for 28x28 digits; its penultimate layer is the feature space for FID."""

    def __init__(self, channels: int = 1, classes: int = 10, width: int = 32, features: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * 49, features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(features, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int = 500,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> DigitClassifier:
    """Train a ``DigitClassifier`` on real images (float in [0, 1], N x C x 28 x 28)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    clf = DigitClassifier(x.shape[1]).to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    x, y = x.to(device), y.to(device)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=g).to(device)
        loss = nn.functional.cross_entropy(clf(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clf.eval()


@torch.no_grad()
def predict(clf: nn.Module, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    dev = next(clf.parameters()).device
    return torch.cat(
        [clf(x[i : i + chunk].to(dev)).argmax(-1).cpu() for i in range(0, len(x), chunk)]
    )


FEATURE_SPACES = ("penultimate", "classes")


@torch.no_grad()
def features(
    clf: DigitClassifier, x: torch.Tensor, chunk: int = 1000, space: str = "penultimate"
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
