"""Atomic, checksummed checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint holds ``format``, the state and ``checksum``: a BLAKE2 digest of every tensor's bytes,
dtype and shape and of every other value, in a fixed order. Loading recomputes it, so a flipped bit
anywhere in the data is an error naming the file rather than a silently different game.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

__all__ = [
    "CheckpointError",
    "checksum",
    "load_checkpoint",
    "remove_stale_temporaries",
    "save_checkpoint",
]

FORMAT = "multimodal-game/2"
# torch.save writes a zip archive (the legacy format: a pickle, protocol 2 or later)
_TORCH_HEADS = (b"PK\x03\x04", b"\x80")


def checksum(obj: Any) -> str:
    """A digest of a nested state (mappings in key order, sequences, tensors by their bytes)."""
    h = hashlib.blake2b(digest_size=20)

    def feed(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(o, dict):
            h.update(f"D{len(o)}".encode())
            for k in sorted(o, key=repr):
                feed(k)
                feed(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(f"L{len(o)}".encode())
            for v in o:
                feed(v)
        else:
            h.update(f"V{type(o).__name__}:{o!r}".encode())

    feed(obj)
    return h.hexdigest()


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files that killed writes of ``path`` left behind; returns them."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for tmp in stale:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return stale


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A crash or kill at any moment leaves either the previous checkpoint or the new one, never a
    partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # serialised in memory first: a full disk or a file-size limit then fails in the plain write
    # below with its errno (torch's own writer reports it as "unexpected pos"), and is named
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state, "checksum": checksum(state)}, buffer)
    data = buffer.getbuffer()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            free = shutil.disk_usage(path.parent).free
            raise CheckpointError(
                f"cannot write checkpoint {str(path)!r}: {e.strerror}; it needs "
                f"{len(data) / 1e6:.1f} MB and {free / 1e6:.1f} MB are free there (the previous "
                "checkpoint, if any, is intact; free space or raise the file-size limit, then "
                "--resume)"
            ) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs on load)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if not head.startswith(_TORCH_HEADS):
        what = "is empty" if not head else f"starts with {head!r}"
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a multimodal-game checkpoint: it is not a file "
            f"written by torch.save (a zip archive), it {what}"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever torch.load trips on, the file is the problem
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt or not a multimodal-game checkpoint: {e}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a multimodal-game checkpoint of format {FORMAT!r} "
            f"(found {state.get('format') if isinstance(state, dict) else type(state).__name__!r})"
        )
    stored = state.pop("checksum", None)
    body = {k: v for k, v in state.items() if k != "format"}
    if stored != checksum(body):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: its checksum does not match its contents "
            "(a bit flip on disk or an interrupted copy); use an earlier copy or start afresh"
        )
    return body


def policy_record(state: Mapping[str, Any], policy_name: str) -> dict[str, Any]:
    """The policy description a game checkpoint holds. Checkpoints written before policies
    described themselves kept only the alpha matrix and the warm-up: ``policy_name`` (the
    resuming game's) stands in for the name they lack."""
    if "policy" in state:
        return dict(state["policy"])
    return {
        "policy": policy_name,
        "alpha": state["alpha"],
        "warmup_rounds": state.get("warmup_rounds", 0),
    }
