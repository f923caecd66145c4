"""Test oracle: the M2 player's objective written by hand in plain PyTorch.

It is :func:`modalities.m2_fused.reference_loss` (the function the fused step maps over players):
-ELBO and the classifier term computed directly from the player's networks, divided by the total
weight; with the same random state it draws the same z as the Pyro player. Also used by
``benchmarks.player_step`` as the hand-written step it times against.
"""

from __future__ import annotations

from modalities.m2_fused import reference_loss

# the name the tests and benchmarks import (the function already turns validation off)
reference_loss_checked = reference_loss

__all__ = ["reference_loss", "reference_loss_checked"]
