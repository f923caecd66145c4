"""A user's own modality in one file: a 1-D signal with a Gaussian likelihood.

Importing this file registers the recipe "signal"; nothing in multimodal_game/ or modalities/ changes.
"""

import pyro.distributions as dist
import torch
from torch import nn

from modalities import register_modality
from modalities.recipes import Recipe
from multimodal_game.spaces import real


class SignalDecoder(nn.Module):
    def __init__(self, in_dim: int, length: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, 64), nn.SiLU(), nn.Linear(64, length))
        self.log_scale = nn.Parameter(torch.zeros(length))

    def forward(self, h):
        return self.net(h)


@register_modality("signal")
class SignalRecipe(Recipe):
    def __init__(self, name: str, length: int = 32):
        super().__init__(name)
        self.length = length

    def variable(self):
        return real(self.name, self.length)

    def encoder(self, hidden: int):
        return nn.Sequential(nn.Linear(self.length, hidden), nn.SiLU())

    def decoder(self, in_dim: int):
        return SignalDecoder(in_dim, self.length)

    def distribution(self, out, decoder):
        return dist.Normal(out, decoder.log_scale.exp()).to_event(1)

    def generate(self, out, decoder):
        return out
