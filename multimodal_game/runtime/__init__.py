"""Runtimes: how players are placed in processes and how synthetic batches travel between them."""

from ..errors import Diverged, PlayerLost
from .base import LearnRequest, PlayerHandle, Runtime
from .inprocess import InProcessRuntime

__all__ = [
    "Diverged",
    "InProcessRuntime",
    "LearnRequest",
    "PlayerHandle",
    "PlayerLost",
    "Runtime",
    "make_runtime",
]


def make_runtime(kind: str, **kwargs) -> Runtime:
    """``inprocess`` (default) or ``ray`` (optional extra ``multimodal-game[ray]``)."""
    if kind == "inprocess":
        return InProcessRuntime(**kwargs)
    if kind == "ray":
        try:
            from .ray_runtime import RayRuntime
        except ImportError as e:
            raise RuntimeError(
                "the Ray runtime needs Ray, which is not installed: "
                "pip install 'multimodal-game[ray]' (or pip install ray)"
            ) from e

        return RayRuntime(**kwargs)
    raise ValueError(f"unknown runtime {kind!r}; expected 'inprocess' or 'ray'")
