"""Evaluation: accuracy, conditional (cross-style) coherence and feature-space FID."""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg
from torch import nn


def accuracy(probs_or_pred: torch.Tensor, labels: torch.Tensor) -> float:
    pred = probs_or_pred.argmax(-1) if probs_or_pred.dim() == 2 else probs_or_pred
    return (pred.cpu() == labels.cpu()).float().mean().item()


def frechet_distance(
    feats_a: torch.Tensor | np.ndarray, feats_b: torch.Tensor | np.ndarray
) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (n, d) with equal d, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("FID needs at least two examples per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(ca @ cb, disp=False)
    if not np.isfinite(
        covmean
    ).all():  # near-singular product: regularise, as the reference FID does
        eps = np.eye(ca.shape[0]) * 1e-6
        covmean = linalg.sqrtm((ca + eps) @ (cb + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(covmean))


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
