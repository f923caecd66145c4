"""A run folder belongs to one run: a folder that already holds a run is refused unless the run
resumes it (``--resume``) or replaces it (``--overwrite``); a lock refuses a second process on the
same folder; an interrupted run says where its last checkpoint is and how to resume."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from multimodal_game.errors import ConfigError

LOCK = ".lock"
# what a run writes into its folder: any of them means the folder holds a run
RUN_FILES = ("config.json", "results.json", "metrics.jsonl")


def holds_a_run(out: Path) -> bool:
    """Whether ``out`` holds a run's files (its own, or a seed's of a several-seed run)."""
    if not out.is_dir():
        return False
    return any((out / f).is_file() for f in RUN_FILES) or any(out.glob("seed*/config.json"))


def claim(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a folder that holds a run unless resumed or overwritten; with ``overwrite``, the
    old run's files go first (only a folder that holds a run is emptied)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: choose one")
    if not holds_a_run(out) or resume:
        return
    if not overwrite:
        raise ConfigError(
            f"run folder {str(out)!r} already holds a run: --resume continues it, --overwrite "
            "replaces it, or choose another --out"
        )
    with locked(out):  # not while another process writes it
        for child in out.iterdir():
            if child.name != LOCK:
                shutil.rmtree(child) if child.is_dir() else child.unlink()


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block: a second process on the same folder is refused, naming
    the holder. The lock is the kernel's (``flock``): a process that dies, however it dies, holds
    nothing, so a stale lock file from a dead process is found free and taken over."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise ConfigError(
                f"run folder {str(out)!r} is in use by {holder}; wait for it, or choose another "
                "--out"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(
            fd, f"process {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def last_checkpoint(out: Path) -> Path | None:
    """The newest checkpoint under ``out`` (a several-seed run's seed folders included)."""
    found = [*out.glob("*.ckpt"), *out.glob("seed*/*.ckpt")] if out.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def resume_command(package: str, argv: Sequence[str], out: Path) -> str:
    """The command line that resumes this run: its own, with ``--out`` and ``--resume``."""
    args = [a for a in argv if a != "--overwrite"]
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join([os.path.basename(sys.executable), "-m", package, *args])


def interrupted_line(package: str, argv: Sequence[str], out: Path | None, why: str) -> str:
    """One line for a run stopped by Ctrl-C or SIGTERM: its last checkpoint and how to resume."""
    if out is None:
        return f"{why}: stopped before the run folder was made; nothing to resume"
    ck = last_checkpoint(out)
    where = f"last checkpoint {str(ck)!r}" if ck else "no checkpoint yet"
    return f"{why}: {where}; resume with: {resume_command(package, argv, out)}"


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the run unwinds as it does for Ctrl-C."""


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` for the block (the previous handler restored after)."""

    def raise_terminated(signum, frame):
        raise Terminated()

    try:
        old = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
