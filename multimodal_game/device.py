"""Device choice: ``auto`` picks CUDA when present, else the CPU."""

from __future__ import annotations

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
