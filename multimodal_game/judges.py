"""Fixed judges: the evaluation's independent classifiers (one per view of the data; their
penultimate layer is also the FID feature space), trained once per version of their data and of
their recipe, kept in a cache and reused by every later run, method and seed.

A judge set is keyed by its *fingerprint*: a digest of the training rows (every view's tensor and the
labels, byte for byte) and of the recipe. Training is seeded and runs on the CPU, so the same
fingerprint gives bit-identical judges on one machine and one file serves CPU and GPU runs. The file
is an atomic, checksummed checkpoint: a corrupt file is named and rebuilt; a changed fingerprint
trains a new set and says so in one line. The judges' accuracies on the held-out rows they were
scored on travel with them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, checksum, load_checkpoint, save_checkpoint
from .evaluation import accuracy, predict

FORMAT = "multimodal-game/judges/1"


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
    width: int = 32,
    features: int = 64,
) -> DigitClassifier:
    """Train a ``DigitClassifier`` on real images (float in [0, 1], N x C x 28 x 28)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    clf = DigitClassifier(x.shape[1], width=width, features=features).to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    x, y = x.to(device), y.to(device)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=g).to(device)
        loss = nn.functional.cross_entropy(clf(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clf.eval()


@dataclasses.dataclass(frozen=True)
class JudgeRecipe:
    """How each judge is trained (``train_classifier``): its part of the fingerprint."""

    steps: int = 1500
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0  # view k's judge: seed + k
    width: int = 32
    features: int = 64


@dataclasses.dataclass
class Judges:
    """A judge per view, where they came from, and their accuracies on the scoring rows."""

    classifiers: dict[str, DigitClassifier]
    fingerprint: str
    path: Path
    accuracy: dict[str, float]
    trained: bool  # False: reused from the cache

    def to(self, device: torch.device | str) -> Judges:
        self.classifiers = {v: c.to(device) for v, c in self.classifiers.items()}
        return self


def as_input(x: torch.Tensor) -> torch.Tensor:
    """Images as the judges read them: float in [0, 1] (uint8 pixels divided by 255)."""
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def fingerprint(
    views: Mapping[str, torch.Tensor], labels: torch.Tensor, recipe: JudgeRecipe
) -> str:
    """The digest of the judges' training rows (byte for byte) and of their recipe."""
    return checksum(
        {"format": FORMAT, "views": dict(views), "labels": labels, **dataclasses.asdict(recipe)}
    )


def train_judges(
    views: Mapping[str, torch.Tensor], labels: torch.Tensor, recipe: JudgeRecipe
) -> dict[str, DigitClassifier]:
    """One classifier per view, seeded, on the CPU (deterministic for a fingerprint)."""
    out = {}
    for k, (view, x) in enumerate(views.items()):
        out[view] = train_classifier(
            as_input(x),
            labels,
            steps=recipe.steps,
            batch=recipe.batch,
            lr=recipe.lr,
            seed=recipe.seed + k,
            width=recipe.width,
            features=recipe.features,
        )
    return out


def score(
    classifiers: Mapping[str, DigitClassifier],
    views: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
) -> dict[str, float]:
    """Each judge's accuracy on held-out rows of its view."""
    return {v: accuracy(predict(c, as_input(views[v])), labels) for v, c in classifiers.items()}


def cached_judges(
    folder: str | Path,
    views: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    recipe: JudgeRecipe,
    scoring: tuple[Mapping[str, torch.Tensor], torch.Tensor],
    say: Callable[[str], None] = print,
) -> Judges:
    """The judges of ``views`` (name -> images, N x C x H x W, uint8 or float in [0, 1]) and
    ``labels`` under ``recipe``: loaded from ``folder`` when a set with their fingerprint is there,
    else trained, scored on ``scoring`` (views, labels) and saved. A corrupt file is named and
    rebuilt; a set trained for other data or another recipe is left where it is, and the change
    said in one line."""
    folder = Path(folder)
    fp = fingerprint(views, labels, recipe)
    path = folder / f"judges-{fp[:16]}.pt"
    if path.is_file():
        try:
            state = load_checkpoint(path)
            if state.get("judges") != FORMAT or state.get("fingerprint") != fp:
                raise CheckpointError(f"{str(path)!r} holds judges of another fingerprint")
            return Judges(_built(state), fp, path, state["accuracy"], trained=False)
        except CheckpointError as e:
            say(f"judges: {e}; training them again")
    elif any(folder.glob("judges-*.pt")):
        say(
            f"judges: none in {str(folder)!r} for this data and recipe (fingerprint {fp[:16]}: "
            "the data or the judges' config changed); training a new set"
        )
    t0 = time.perf_counter()
    classifiers = train_judges(views, labels, recipe)
    acc = score(classifiers, *scoring)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        path,
        {
            "judges": FORMAT,
            "fingerprint": fp,
            "recipe": dataclasses.asdict(recipe),
            "views": list(views),
            "training_rows": len(labels),
            "scoring_rows": len(scoring[1]),
            "accuracy": acc,
            "seconds": time.perf_counter() - t0,
            "state": {v: c.state_dict() for v, c in classifiers.items()},
        },
    )
    return Judges(classifiers, fp, path, acc, trained=True)


def _built(state: Mapping) -> dict[str, DigitClassifier]:
    recipe = state["recipe"]
    out = {}
    for view, weights in state["state"].items():
        clf = DigitClassifier(
            weights["body.0.weight"].shape[1], width=recipe["width"], features=recipe["features"]
        )
        clf.load_state_dict(weights)
        out[view] = clf.eval()
    return out
