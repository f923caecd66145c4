"""The PolyMNIST release's own per-style digit classifiers (Sutter et al., shipped with the data), so
that coherence and FID can be set against the multimodal-VAE literature's tables."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from multimodal_game.errors import ConfigError


class PolyMNISTReferenceClassifier(nn.Module):
    """The per-style digit classifier of the PolyMNIST release (Sutter et al., MoPoE; also used by
    MMVAE+ and MultiVae), so that coherence and FID can be set against those papers' tables. Its
    layer names match the released state dicts (``pretrained_img_to_digit_clf_m{k}``); the
    128-unit layer is the feature space for FID. Input: 3 x 28 x 28 images in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 10, kernel_size=4, stride=2, padding=1), nn.Dropout2d(0.5), nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=4, stride=2, padding=1), nn.Dropout2d(0.5), nn.ReLU(),
            nn.Flatten(), nn.Linear(980, 128), nn.Dropout(0.5), nn.ReLU(),
            nn.Linear(128, 10),
        )  # fmt: skip

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder[:-1](x)

    @property
    def head(self) -> nn.Module:
        return self.encoder[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def load_reference_classifiers(
    folder: str | Path, modalities: int = 5, device: torch.device | str = "cpu"
) -> dict[int, PolyMNISTReferenceClassifier]:
    """The released PolyMNIST classifiers ``folder/pretrained_img_to_digit_clf_m{k}`` (state
    dicts, loaded with ``weights_only=True``), one per style, in evaluation mode."""
    out = {}
    for k in range(modalities):
        path = Path(folder) / f"pretrained_img_to_digit_clf_m{k}"
        if not path.is_file():
            raise ConfigError(
                f"reference classifier {str(path)!r} does not exist (the PolyMNIST release ships "
                "them under clf/ or trained_classifiers/: `mmgame data download polymnist`)"
            )
        clf = PolyMNISTReferenceClassifier()
        try:
            clf.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:  # noqa: BLE001 - a wrong or damaged file, whatever the error
            raise ConfigError(
                f"reference classifier {str(path)!r} is not a PolyMNIST classifier state dict: {e}"
            ) from None
        out[k] = clf.to(device).eval()
    return out
