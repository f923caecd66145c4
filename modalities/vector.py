"""The ``vector`` recipe: a real feature vector (e.g. the features of a fixed public network, or
PCA features) with a Gaussian likelihood and a learnt per-dimension scale."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from multimodal_game.spaces import Variable, real

from .recipes import Recipe
from .registry import register_modality


class VectorDecoder(nn.Module):
    def __init__(self, in_dim: int, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


@register_modality("vector")
class VectorRecipe(Recipe):
    """``real(dim)``; MLP encoder and decoder of ``width`` units; sends the mean."""

    def __init__(self, name: str, dim: int = 16, width: int = 64, exchangeable: bool = True):
        super().__init__(name)
        if dim < 1 or width < 1:
            raise ValueError(f"vector {name!r}: dim and width must be positive, got {dim}, {width}")
        self.dim, self.width, self.exchangeable = dim, width, exchangeable

    def variable(self) -> Variable:
        return real(self.name, self.dim, self.exchangeable)

    def encoder(self, hidden: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.dim, self.width), nn.SiLU(), nn.Linear(self.width, hidden), nn.SiLU()
        )

    def decoder(self, in_dim: int) -> nn.Module:
        return VectorDecoder(in_dim, self.dim, self.width)

    def distribution(self, out: torch.Tensor, decoder: nn.Module) -> dist.Distribution:
        return dist.Normal(out, decoder.log_scale.exp().expand(out.shape)).to_event(1)

    def generate(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        return out

    def soft(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        return out
