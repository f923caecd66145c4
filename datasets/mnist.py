"""MNIST: the bundled 10k digits (offline default), full MNIST, and Fashion-MNIST."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .idx import DataFileError, find_idx, read_idx

BUNDLED = "bundled"
FASHION_DEFAULT_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path("data/fashion-mnist"))


def bundled_path() -> Path:
    return Path(str(resources.files("datasets") / "data" / "mnist10k.npz"))


def _stratified_split(
    labels: np.ndarray, train_fraction: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic class-stratified split: the first 80% of each class (in file order) train."""
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(train_fraction * len(idx)))
        train.append(idx[:k])
        test.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_bundled(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled 10k real MNIST digits, split 8,000 train / 2,000 test (class-stratified)."""
    path = bundled_path()
    if not path.is_file():
        raise DataFileError(f"bundled MNIST file {str(path)!r} is missing from the installation")
    with np.load(path) as d:
        images, labels = d["images"], d["labels"]
    tr, te = _stratified_split(labels)
    idx = {"train": tr, "test": te}.get(split)
    if idx is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return torch.from_numpy(images[idx]), torch.from_numpy(labels[idx].astype(np.int64))


def _load_torchvision(
    cls_name: str, root: Path, split: str, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        ds = cls(str(root), train=(split == "train"), download=download)
    except (RuntimeError, OSError) as e:
        raise DataFileError(str(e)) from None
    return ds.data.clone(), ds.targets.clone().long()


def load_mnist(
    source: str = BUNDLED, split: str = "train", root: str | Path = "data", download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (uint8, N x 28 x 28) and labels (int64).

    ``source="bundled"`` works offline (10k digits shipped with the project); ``"full"`` reads
    torchvision's MNIST under ``root`` (``download=True`` fetches it where there is internet).
    """
    if source == BUNDLED:
        return load_bundled(split)
    if source != "full":
        raise ValueError(f"unknown MNIST source {source!r}; expected 'bundled' or 'full'")
    try:
        return _load_torchvision("MNIST", Path(root), split, download)
    except DataFileError as e:
        raise DataFileError(
            f"full MNIST not found under {str(root)!r} ({e}). Where there is internet: "
            f"`mmgame data download mnist --root {root}` (or load_mnist('full', download=True)); "
            "offline: the bundled 10k digits, source 'bundled'."
        ) from None


def check_fashion_mnist(root: str | Path | None = None) -> None:
    """Read both splits of Fashion-MNIST once (a second or so): a missing or bad file is a
    :class:`DataFileError` before any work starts."""
    for split in ("train", "test"):
        load_fashion_mnist(split, root)


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST from the four IDX files in ``root`` (default: Debian's package directory), or
    torchvision's FashionMNIST layout under ``root``."""
    stem = "train" if split == "train" else "t10k"
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dirs = [Path(root)] if root is not None else list(FASHION_DEFAULT_DIRS)
    for d in dirs:
        img = find_idx(d, f"{stem}-images-idx3-ubyte")
        lab = find_idx(d, f"{stem}-labels-idx1-ubyte")
        if img and lab:
            images, labels = read_idx(img), read_idx(lab)
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataFileError(
                    f"Fashion-MNIST files in {str(d)!r} disagree: {images.shape} images, {labels.shape} labels"
                )
            return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
    if root is not None:
        try:
            return _load_torchvision("FashionMNIST", Path(root), split, download)
        except DataFileError:
            pass
    raise DataFileError(
        f"Fashion-MNIST IDX files not found in {[str(d) for d in dirs]}. Offline: "
        "`apt-get install -y dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist/); "
        "with internet: `mmgame data download fashion --root DIR`, then data_root = DIR."
    )
