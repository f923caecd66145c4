"""Per-player random streams, independent of how players are laid out over processes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def seeded_state(seed: int) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g.get_state()


def derive_seed(seed: int, index: int) -> int:
    """A per-player seed: players of one game get different, reproducible streams."""
    return (int(seed) * 1_000_003 + 7919 * (index + 1)) % (2**63 - 1)


class RngStream:
    """A saved state of torch's global generators that a player's operations run under.

    Pyro samples from torch's global generator. Swapping in each player's own state around its
    operations makes its randomness independent of the other players and of the runtime (players in
    one process, or one per Ray actor), which is what makes in-process and Ray runs agree.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.cpu = seeded_state(seed)
        self.cuda: torch.Tensor | None = None
        if self.device.type == "cuda":
            cur = torch.cuda.get_rng_state(self.device)
            torch.cuda.manual_seed(int(seed))
            self.cuda = torch.cuda.get_rng_state(self.device)
            torch.cuda.set_rng_state(cur, self.device)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        saved_cpu = torch.get_rng_state()
        torch.set_rng_state(self.cpu)
        saved_cuda = None
        if self.cuda is not None:
            saved_cuda = torch.cuda.get_rng_state(self.device)
            torch.cuda.set_rng_state(self.cuda, self.device)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            torch.set_rng_state(saved_cpu)
            if self.cuda is not None:
                self.cuda = torch.cuda.get_rng_state(self.device)
                torch.cuda.set_rng_state(saved_cuda, self.device)

    def state(self) -> dict[str, torch.Tensor]:
        out = {"cpu": self.cpu.clone()}
        if self.cuda is not None:
            out["cuda"] = self.cuda.clone()
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.cpu = state["cpu"].clone()
        if "cuda" in state and self.cuda is not None:
            self.cuda = state["cuda"].clone()
