"""Device choice: ``auto`` picks CUDA when present, else the CPU."""

from __future__ import annotations

import torch

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str = "auto") -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {choice} asked for, but torch sees no CUDA device here")
        return torch.device(choice)
    if choice == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {choice!r}; expected one of {CHOICES} (or cuda:N)")
