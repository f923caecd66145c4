"""PolyMNIST (Sutter, Daunhawer & Vogt, ICLR 2021): loader of the official release and a seeded generator.

Construction: for each class and each modality independently, a random permutation of that class's
MNIST images (so tuples share only the label); the digit is binarised at 128; a random 28x28 window
of the modality's background photo is cropped; the crop's colours are inverted under the digit.

CLI::

    python -m datasets.polymnist generate --out DIR --seed 0 --mnist bundled [--backgrounds DIR]
    python -m datasets.polymnist show DIR --out grid.png
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from multimodal_game.batch import Batch

from .idx import DataFileError
from .mnist import load_mnist

DEFAULT_BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")
_NAME = re.compile(r"^(\d+)\.(\d+)\.png$")


def default_backgrounds() -> list[np.ndarray]:
    """Five sample photos that ship inside scikit-image's wheel (RGB uint8)."""
    import skimage.data

    return [np.ascontiguousarray(getattr(skimage.data, n)()[..., :3]) for n in DEFAULT_BACKGROUNDS]


def load_backgrounds(directory: str | Path) -> list[np.ndarray]:
    files = sorted(
        p for p in Path(directory).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    if not files:
        raise DataFileError(f"no background images (.png/.jpg) in {str(directory)!r}")
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def generate(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    backgrounds: Sequence[np.ndarray],
    modalities: int = 5,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Build PolyMNIST tuples from MNIST digits.

    Returns uint8 ``images`` (N, M, 3, 28, 28), int64 ``labels`` (N,), bool ``digit_masks``
    (N, M, 28, 28) — the binarised MNIST digit under each image, the paper's variable s — and int64
    ``mnist_index`` (N, M), the MNIST example each image was made from. Same seed, same bytes.
    """
    images = np.asarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(
            f"expected N x 28 x 28 digits and N labels, got {images.shape} and {labels.shape}"
        )
    if len(backgrounds) < modalities:
        raise ValueError(
            f"{modalities} modalities need at least {modalities} backgrounds, got {len(backgrounds)}"
        )
    for k, bg in enumerate(backgrounds[:modalities]):
        if bg.ndim != 3 or bg.shape[2] != 3 or bg.shape[0] < 28 or bg.shape[1] < 28:
            raise ValueError(
                f"background {k} must be an RGB image of at least 28x28, got {bg.shape}"
            )
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")  # tuples grouped by class, in a fixed order
    n = len(labels)
    idx = np.empty((n, modalities), dtype=np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rows = np.flatnonzero(labels[order] == c)
        for m in range(modalities):
            idx[rows, m] = members[rng.permutation(len(members))]
    out_labels = labels[order]
    masks = images[idx] >= 128  # (N, M, 28, 28)
    out = np.empty((n, modalities, 28, 28, 3), dtype=np.uint8)
    for m in range(modalities):
        bg = backgrounds[m]
        ys = rng.integers(0, bg.shape[0] - 28 + 1, size=n)
        xs = rng.integers(0, bg.shape[1] - 28 + 1, size=n)
        windows = np.lib.stride_tricks.sliding_window_view(
            bg, (28, 28), axis=(0, 1)
        )  # H', W', 3, 28, 28
        crops = windows[ys, xs].transpose(0, 2, 3, 1)  # N, 28, 28, 3
        out[:, m] = np.where(masks[:, m, :, :, None], 255 - crops, crops)
    # shuffle the tuples so that classes are mixed (still seeded)
    perm = rng.permutation(n)
    return {
        "images": torch.from_numpy(np.ascontiguousarray(out[perm].transpose(0, 1, 4, 2, 3))),
        "labels": torch.from_numpy(out_labels[perm]),
        "digit_masks": torch.from_numpy(masks[perm]),
        "mnist_index": torch.from_numpy(idx[perm]),
    }


def write_png_layout(
    data: dict[str, torch.Tensor], root: Path, split: str, workers: int = 4
) -> None:
    """The official layout: ``root/split/m{k}/{i}.{label}.png``, tuples paired by file name."""
    imgs = data["images"].numpy()
    labels = data["labels"].numpy()
    n, m = imgs.shape[:2]
    for k in range(m):
        (root / split / f"m{k}").mkdir(parents=True, exist_ok=True)

    def save(i: int) -> None:
        for k in range(m):
            # compress_level fixed so bytes are reproducible; PNG is lossless either way.
            Image.fromarray(imgs[i, k].transpose(1, 2, 0)).save(
                root / split / f"m{k}" / f"{i}.{labels[i]}.png", compress_level=6
            )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(save, range(n)))


def cache_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"polymnist_{split}.pt"


def checksum_path(root: str | Path, split: str) -> Path:
    """The cache's SHA-256, written beside it: what a load checks the cache against."""
    return cache_path(root, split).with_suffix(".pt.sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def save_cache(data: dict[str, torch.Tensor], root: Path, split: str) -> Path:
    """Write the cache and then its checksum (each atomically: a crash leaves either the old
    pair, or a cache whose checksum is missing or wrong, which a load names)."""
    path = cache_path(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    digest = _sha256(tmp)
    tmp.replace(path)
    side = checksum_path(root, split)
    side_tmp = side.with_suffix(".tmp")
    side_tmp.write_text(digest + "\n")
    side_tmp.replace(side)
    return path


def cache_problem(root: str | Path, split: str) -> str | None:
    """What is wrong with a split's cache: its checksum file is missing (a cache written before
    caches carried one) or does not match its bytes; None when it matches."""
    side = checksum_path(root, split)
    if not side.is_file():
        return f"has no checksum file {side.name} (written by an older version)"
    want = side.read_text().strip()
    if _sha256(cache_path(root, split)) != want:
        return f"does not match its checksum in {side.name}: the file is corrupt"
    return None


# how many problems of a PNG folder one error lists (the rest are counted)
MAX_LISTED = 20


def _modality_folders(base: Path, split: str) -> list[Path]:
    mods = sorted(
        (p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"m\d+", p.name)),
        key=lambda p: int(p.name[1:]),
    )
    if not mods:
        raise DataFileError(f"no modality folders m0, m1, ... in {str(base)!r}")
    gaps = sorted(set(range(int(mods[-1].name[1:]) + 1)) - {int(p.name[1:]) for p in mods})
    if gaps:
        raise DataFileError(
            f"PolyMNIST {split}: modality folder(s) {[f'm{k}' for k in gaps]} missing in "
            f"{str(base)!r} (found {[p.name for p in mods]})"
        )
    return mods


def _paired_files(base: Path, mods: Sequence[Path], split: str) -> list[tuple[int, int, str]]:
    """``(index, label, file name)`` of every tuple, checked across all modality folders at once:
    one :class:`DataFileError` lists every file that is missing from a folder, named against the
    pattern, or labelled differently from the same index in another folder (up to
    ``MAX_LISTED``)."""
    problems: list[str] = []
    labels: dict[int, dict[str, int]] = {}  # index -> folder -> label
    for mod in mods:
        for f in sorted(mod.iterdir()):
            if f.is_dir() or f.suffix != ".png":
                continue
            mt = _NAME.match(f.name)
            if not mt:
                problems.append(f"{mod.name}/{f.name} is not named <index>.<label>.png")
                continue
            i, y = int(mt.group(1)), int(mt.group(2))
            seen = labels.setdefault(i, {})
            if mod.name in seen:
                problems.append(
                    f"{mod.name}: index {i} appears twice (labels {seen[mod.name]} and {y})"
                )
            seen[mod.name] = y
    names = [m.name for m in mods]
    for i in sorted(labels):
        seen = labels[i]
        counts: dict[int, int] = {}
        for y in seen.values():
            counts[y] = counts.get(y, 0) + 1
        label = max(counts, key=lambda y: (counts[y], -y))
        for mod in names:
            if mod not in seen:
                problems.append(f"{mod}/{i}.{label}.png is missing")
            elif seen[mod] != label:
                problems.append(
                    f"{mod}/{i}.{seen[mod]}.png is labelled {seen[mod]}, the other folders say "
                    f"{label}"
                )
    if problems:
        more = len(problems) - MAX_LISTED
        listed = "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
        raise DataFileError(
            f"PolyMNIST {split} folder {str(base)!r} has {len(problems)} problem(s) across its "
            f"modality folders {names} (files are <index>.<label>.png, paired by name): {listed}"
        )
    tuples = [(i, next(iter(seen.values()))) for i, seen in labels.items()]
    return sorted((i, y, f"{i}.{y}.png") for i, y in tuples)


def load_png_release(root: str | Path, split: str = "train") -> dict[str, torch.Tensor]:
    """Read the official PNG release, pairing tuples by identical file name (never by glob order)."""
    base = Path(root) / split
    if not base.is_dir():
        raise DataFileError(f"PolyMNIST folder {str(base)!r} does not exist")
    mods = _modality_folders(base, split)
    parsed = _paired_files(base, mods, split)
    images = np.empty((len(parsed), len(mods), 3, 28, 28), dtype=np.uint8)
    for t, (_, _, f) in enumerate(parsed):
        for k, mod in enumerate(mods):
            path = mod / f
            try:
                arr = np.asarray(Image.open(path).convert("RGB"))
            except OSError as e:
                raise DataFileError(f"PolyMNIST image {str(path)!r} cannot be read: {e}") from None
            if arr.shape != (28, 28, 3):
                raise DataFileError(
                    f"PolyMNIST image {str(path)!r} is {arr.shape}, expected 28x28 RGB"
                )
            images[t, k] = arr.transpose(2, 0, 1)
    return {
        "images": torch.from_numpy(images),
        "labels": torch.tensor([p[1] for p in parsed], dtype=torch.int64),
    }


def load_tensor_release(root: str | Path, split: str = "train") -> dict[str, torch.Tensor]:
    """Read ``root/split/m{k}.pt`` + ``labels.pt`` (loaded with weights_only=True)."""
    base = Path(root) / split
    files = sorted(
        base.glob("m*.pt"), key=lambda p: int(p.stem[1:]) if p.stem[1:].isdigit() else 1 << 30
    )
    if not files or not (base / "labels.pt").is_file():
        raise DataFileError(f"no m{{k}}.pt and labels.pt in {str(base)!r}")
    mods = []
    for f in files:
        t = torch.load(f, weights_only=True)
        if t.dtype != torch.uint8:
            t = (t.float().clamp(0, 1) * 255).round().to(torch.uint8)
        mods.append(t)
    labels = torch.load(base / "labels.pt", weights_only=True).long()
    for f, t in zip(files, mods):
        if t.shape[1:] != (3, 28, 28) or len(t) != len(labels):
            raise DataFileError(
                f"{str(f)!r} holds {tuple(t.shape)}, expected ({len(labels)}, 3, 28, 28)"
            )
    return {"images": torch.stack(mods, 1), "labels": labels}


def check_folder(root: str | Path) -> None:
    """Check a PolyMNIST folder for both splits without reading any image: a generator cache (its
    checksum) or the tensor release is there, or the PNG release's folders pair up file by file.
    Every problem of both splits is named at once in one :class:`DataFileError`."""
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"PolyMNIST folder {str(root)!r} does not exist")
    problems = []
    for split in ("train", "test"):
        try:
            _check_split(root, split)
        except DataFileError as e:
            problems.append(str(e))
    if problems:
        raise DataFileError(" | ".join(problems))


def _check_split(root: Path, split: str) -> None:
    base = root / split
    if cache_path(root, split).is_file() and checksum_path(root, split).is_file():
        problem = cache_problem(root, split)
        if problem:
            raise DataFileError(f"PolyMNIST cache {str(cache_path(root, split))!r} {problem}")
        return
    if cache_path(root, split).is_file() or (base / "labels.pt").is_file():
        return
    if not base.is_dir():
        raise DataFileError(
            f"PolyMNIST folder {str(base)!r} does not exist (expected {str(root)!r} to hold "
            f"train/ and test/ with m0, m1, ... or the cache {cache_path(root, split).name})"
        )
    _paired_files(base, _modality_folders(base, split), split)


def load(root: str | Path, split: str = "train") -> dict[str, torch.Tensor]:
    """Load PolyMNIST from a folder: the generator's cache, the tensor release, or the PNG release."""
    root = Path(root)
    if cache_path(root, split).is_file():
        if (root / split).is_dir():
            warnings.warn(
                f"PolyMNIST: reading the cache {str(cache_path(root, split))!r}; the files under "
                f"{str(root / split)!r} are not read (delete the cache to read them again)",
                stacklevel=2,
            )
        problem = cache_problem(root, split) if checksum_path(root, split).is_file() else None
        if problem:
            raise DataFileError(
                f"PolyMNIST cache {str(cache_path(root, split))!r} {problem}; delete it (the "
                "default generated folder is rebuilt on the next run)"
            )
        try:
            return torch.load(cache_path(root, split), weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad cache file
            raise DataFileError(
                f"PolyMNIST cache {str(cache_path(root, split))!r} is corrupt: {e}"
            ) from None
    if (root / split / "labels.pt").is_file():
        return load_tensor_release(root, split)
    return load_png_release(root, split)


def ensure_generated(
    root: str | Path, seed: int = 0, mnist: str = "bundled", modalities: int = 5
) -> Path:
    """Generate the cache (no PNGs) under ``root`` unless it is already there and matches its
    checksum; a corrupt cache (or one without a checksum) is rebuilt, saying so in one line."""
    root = Path(root)
    for split in ("train", "test"):
        problem = cache_problem(root, split) if cache_path(root, split).is_file() else "missing"
        if problem and problem != "missing":
            print(
                f"PolyMNIST cache {str(cache_path(root, split))!r} {problem}; rebuilding it",
                file=sys.stderr,
                flush=True,
            )
        if problem:
            root.mkdir(parents=True, exist_ok=True)
            x, y = load_mnist(mnist, split)
            data = generate(x, y, default_backgrounds(), modalities, seed + (split == "test"))
            save_cache(data, root, split)
    return root


def to_batch(
    data: dict[str, torch.Tensor],
    modalities: Sequence[int] | None = None,
    rows: torch.Tensor | slice | None = None,
    with_masks: bool = False,
) -> Batch:
    """A Batch with ``label`` and ``m{k}`` images as float in [0, 1] (and ``s{k}`` digit masks)."""
    rows = slice(None) if rows is None else rows
    imgs = data["images"][rows]
    mods = range(imgs.shape[1]) if modalities is None else modalities
    out = {"label": data["labels"][rows]}
    for k in mods:
        out[f"m{k}"] = imgs[:, k].float() / 255.0
        if with_masks:
            out[f"s{k}"] = data["digit_masks"][rows][:, k, None].float()
    return Batch(out)


class PolyMNIST(torch.utils.data.Dataset):
    """Examples as ``{"label", "m0".., "mask"}``: images float in [0, 1], ``mask`` the digit masks of
    the selected modalities (M_sel x 1 x 28 x 28) where the data carries them."""

    def __init__(
        self, root: str | Path, split: str = "train", modalities: Sequence[int] | None = None
    ):
        self.data = load(root, split)
        m = self.data["images"].shape[1]
        self.modalities = list(range(m)) if modalities is None else list(modalities)
        bad = [k for k in self.modalities if not 0 <= k < m]
        if bad:
            raise ValueError(f"modalities {bad} not in this PolyMNIST (m0..m{m - 1})")

    def __len__(self) -> int:
        return len(self.data["labels"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"label": self.data["labels"][i]}
        for k in self.modalities:
            item[f"m{k}"] = self.data["images"][i, k].float() / 255.0
        if "digit_masks" in self.data:
            item["mask"] = self.data["digit_masks"][i, self.modalities, None].float()
        return item


def grid_tiles(data: dict[str, torch.Tensor]) -> torch.Tensor:
    """Styles x digits tiles (rows m0..m_{M-1}, columns digits 0-9): (M, 10, 3, 28, 28) in [0, 1]."""
    imgs, labels = data["images"], data["labels"]
    first = [int(torch.nonzero(labels == c)[0]) for c in range(10)]
    return imgs[first].transpose(0, 1).float() / 255


def main(argv: list[str] | None = None) -> None:
    from rich.progress import track

    p = argparse.ArgumentParser(
        prog="python -m datasets.polymnist", description="Generate or show PolyMNIST."
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate PolyMNIST from MNIST")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--mnist", choices=("bundled", "full"), default="bundled")
    g.add_argument("--mnist-root", default="data")
    g.add_argument(
        "--backgrounds",
        type=Path,
        help="folder of background photos (default: scikit-image samples)",
    )
    g.add_argument("--modalities", type=int, default=5)
    g.add_argument(
        "--no-png", action="store_true", help="write only the fast cache, not the PNG layout"
    )
    s = sub.add_parser("show", help="draw a styles x digits grid")
    s.add_argument("root", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", default="test")
    args = p.parse_args(argv)
    if args.cmd == "generate":
        t0 = time.perf_counter()
        bgs = load_backgrounds(args.backgrounds) if args.backgrounds else default_backgrounds()
        for split in track(("train", "test"), description="generating PolyMNIST"):
            x, y = load_mnist(args.mnist, split, root=args.mnist_root)
            data = generate(x, y, bgs, args.modalities, args.seed + (split == "test"))
            save_cache(data, args.out, split)
            if not args.no_png:
                write_png_layout(data, args.out, split)
        print(f"PolyMNIST written to {args.out} in {time.perf_counter() - t0:.1f} s")
    else:
        from multimodal_game.evaluation import save_grid

        save_grid(grid_tiles(load(args.root, args.split)), args.out)
        print(f"grid written to {args.out}")


if __name__ == "__main__":
    main()
