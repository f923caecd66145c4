"""Device choice: ``auto`` picks CUDA when present, else the CPU; and how the CPU treats
subnormal floats, in every thread."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import ConfigError

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str = "auto") -> torch.device:
    """The device ``choice`` names; one that is unknown or not here is a :class:`ConfigError`."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {choice} asked for, but torch sees no CUDA device here "
                "(use --device cpu or auto)"
            )
        try:
            device = torch.device(choice)
        except RuntimeError:
            raise ConfigError(
                f"unknown device {choice!r}; expected one of {CHOICES} (or cuda:N)"
            ) from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {choice}: torch sees {torch.cuda.device_count()} CUDA device(s) here"
            )
        return device
    if choice == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {choice!r}; expected one of {CHOICES} (or cuda:N)")


# -- subnormal floats on the CPU ------------------------------------------------------------------

# OpenMP runtimes whose thread pools run torch's CPU kernels (GNU, LLVM and Intel: all three export
# GOMP_parallel, the entry point GCC-compiled parallel regions call)
_OPENMP_RUNTIMES = ("libgomp", "libomp", "libiomp")
_ON_EACH_THREAD = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_GRAIN = 32768  # elements an ATen elementwise kernel gives one thread at least


@functools.cache
def _parallel_regions() -> tuple[Callable, ...]:
    """``GOMP_parallel`` of each OpenMP runtime loaded in this process (read once from
    /proc/self/maps: Linux only). A runtime loaded later starts its threads from the thread that
    first uses it, with that thread's mode."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return ()
    paths = dict.fromkeys(
        parts[5]
        for parts in (line.split(maxsplit=5) for line in maps.splitlines())
        if len(parts) == 6 and Path(parts[5]).name.startswith(_OPENMP_RUNTIMES)
    )
    regions = []
    for path in paths:
        lib = ctypes.CDLL(path)  # already loaded: the same handle, nothing new runs
        if hasattr(lib, "GOMP_parallel"):
            region = lib.GOMP_parallel
            region.argtypes = [_ON_EACH_THREAD, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
            region.restype = None
            regions.append(region)
    return tuple(regions)


def flush_denormals(on: bool) -> bool:
    """Treat subnormal floats as zero on the CPU (``on``), or compute them (not ``on``), in every
    thread that runs torch's CPU kernels. ``torch.set_flush_denormal`` sets the mode of the calling
    thread only, and the worker threads of torch's OpenMP pool copy it only when they start: set
    after the pool exists, it reached one of two threads (tests/test_config.py). So the mode is
    also set inside one parallel region of each OpenMP runtime loaded, on every thread of its team.
    Returns whether a parallel op now keeps the mode on every thread (False also where the CPU has
    no such mode)."""
    if not torch.set_flush_denormal(on):
        return False
    threads = torch.get_num_threads()
    if threads > 1:

        def each(_data: int | None) -> None:
            torch.set_flush_denormal(on)

        callback = _ON_EACH_THREAD(each)
        for region in _parallel_regions():
            region(callback, None, threads, 0)
    return denormals_flushed() is on


def denormals_flushed() -> bool | None:
    """Whether an elementwise op that every CPU thread shares flushes subnormal results to zero:
    True on every thread, False on none, None when the threads disagree."""
    n = _GRAIN * 4 * max(1, torch.get_num_threads())
    zero = torch.full((n,), 1e-30) * 1e-10 == 0  # 1e-40: subnormal in float32
    if bool(zero.all()):
        return True
    return False if not bool(zero.any()) else None
