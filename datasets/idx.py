"""Reading IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed, with checks."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from multimodal_game.errors import ConfigError

_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension; images: 3 dimensions (uint8 data)


class DataFileError(ConfigError):
    """A data file is missing, truncated or not what its name says (a user error: command lines
    print it as one line, before any work)."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes; a bad magic number or a truncated body is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} does not exist")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataFileError(f"data file {str(path)!r} is corrupt: {e}") from None
    if len(raw) < 8:
        raise DataFileError(f"data file {str(path)!r} is truncated ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise DataFileError(
            f"data file {str(path)!r} has magic number {magic}, not an IDX file of unsigned bytes "
            f"(expected 2049 for labels or 2051 for images)"
        )
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataFileError(
            f"data file {str(path)!r} is truncated or padded: header says {dims} "
            f"({expected} bytes), file holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def find_idx(root: Path, stem: str) -> Path | None:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (root / name).is_file():
            return root / name
    return None
