"""Fetch the data sets from upstream where there is internet; offline, say what works instead.

    python -m datasets.download mnist --root data          (torchvision's MNIST)
    python -m datasets.download fashion --root data        (torchvision's FashionMNIST)
    python -m datasets.download polymnist --root data      (the official PolyMNIST release)

(``mmgame data download ...`` is the same.) Every failure is a :class:`DataFileError` naming the
source and the offline alternative.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .idx import DataFileError

# The official PolyMNIST release of Sutter et al. (MoPoE), PNG files under PolyMNIST/{train,test}.
POLYMNIST_URL = "https://zenodo.org/record/4899160/files/PolyMNIST.zip"

OFFLINE = {
    "mnist": "the 10k MNIST digits bundled with the project work offline (source 'bundled')",
    "fashion": "`apt-get install -y dataset-fashion-mnist` installs the IDX files offline "
    "(/usr/share/datasets/fashion-mnist/)",
    "polymnist": "generate PolyMNIST from MNIST offline: `mmgame data polymnist generate --out DIR`",
}


def download_torchvision(name: str, root: str | Path) -> Path:
    """``name`` = ``mnist`` or ``fashion``: both splits into torchvision's layout under ``root``."""
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion": tvd.FashionMNIST}[name]
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # noqa: BLE001 - network and archive errors alike
        raise DataFileError(f"could not download {cls.__name__} ({e}); {OFFLINE[name]}") from None
    return Path(root)


def download_polymnist(root: str | Path, url: str = POLYMNIST_URL) -> Path:
    """Fetch and unpack the official release; returns the folder holding ``train/`` and ``test/``
    (what ``--data`` of the PolyMNIST experiments takes)."""
    from torchvision.datasets.utils import download_and_extract_archive

    root = Path(root)
    try:
        download_and_extract_archive(url, download_root=str(root), remove_finished=True)
    except Exception as e:  # noqa: BLE001 - network and archive errors alike
        raise DataFileError(
            f"could not download PolyMNIST from {url} ({e}); {OFFLINE['polymnist']}"
        ) from None
    found = sorted(
        p.parent for p in root.rglob("train") if p.is_dir() and (p.parent / "test").is_dir()
    )
    if not found:
        raise DataFileError(
            f"the archive from {url} holds no train/ and test/ folders under {str(root)!r}"
        )
    return found[0]


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        prog="python -m datasets.download", description=__doc__.splitlines()[0]
    )
    p.add_argument("dataset", choices=("mnist", "fashion", "polymnist"))
    p.add_argument(
        "--root", type=Path, default=Path("data"), help="where to put it (default: data)"
    )
    p.add_argument("--url", default=POLYMNIST_URL, help="PolyMNIST archive (a mirror)")
    args = p.parse_args(argv)
    try:
        if args.dataset == "polymnist":
            where = download_polymnist(args.root, args.url)
        else:
            where = download_torchvision(args.dataset, args.root)
    except DataFileError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"{args.dataset} is in {where}")
    return where


if __name__ == "__main__":
    main()
