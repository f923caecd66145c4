"""Runtimes: how players are placed in processes and how synthetic batches travel between them."""

from .base import Runtime
from .inprocess import InProcessRuntime

__all__ = ["InProcessRuntime", "Runtime", "make_runtime"]


def make_runtime(kind: str, **kwargs) -> Runtime:
    """``inprocess`` (default) or ``ray`` (optional extra ``multimodal-game[ray]``)."""
    if kind == "inprocess":
        return InProcessRuntime(**kwargs)
    if kind == "ray":
        from .ray_runtime import RayRuntime

        return RayRuntime(**kwargs)
    raise ValueError(f"unknown runtime {kind!r}; expected 'inprocess' or 'ray'")
