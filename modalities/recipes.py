"""Built-in recipes: image (1 or 3 channels), digit_mask (binary image), label, latent."""

from __future__ import annotations

from collections.abc import Callable

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.distributions.torch_distribution import TorchDistribution
from torch import nn
from torch.distributions import constraints

from multimodal_game.spaces import Variable, binary_image, categorical, image, latent

from .registry import register_modality
from .specs import LIKELIHOODS, SENDS  # noqa: F401  (spelled out in the torch-free specs)


def frozen_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with its parameters detached: gradients reach ``x`` but not the module."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return torch.func.functional_call(module, params, (x,))


def flat_apply(
    module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, event_dims: int
) -> torch.Tensor:
    """Apply ``module`` to a tensor with extra leading (enumeration) dimensions."""
    lead = x.shape[: x.dim() - event_dims]
    y = module(x.reshape(-1, *x.shape[x.dim() - event_dims :]))
    return y.reshape(*lead, *y.shape[1:])


class Recipe:
    """How to encode, decode and score one variable. Subclasses set ``kind`` and the networks."""

    recipe_name = "?"
    # False for recipes that describe a player's label or latent rather than data it observes
    observable = True

    def __init__(self, name: str):
        self.name = name

    def variable(self) -> Variable:
        raise NotImplementedError(f"recipe {type(self).__name__} must define variable()")

    def encoder(self, hidden: int) -> nn.Module:
        raise NotImplementedError(f"recipe {type(self).__name__} must define encoder()")

    def decoder(self, in_dim: int) -> nn.Module:
        raise NotImplementedError(f"recipe {type(self).__name__} must define decoder()")

    def distribution(self, out: torch.Tensor, decoder: nn.Module) -> dist.Distribution:
        raise NotImplementedError(f"recipe {type(self).__name__} must define distribution()")

    def generate(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        """The value the player sends when it samples (the mean, or the mode for binary data)."""
        raise NotImplementedError(f"recipe {type(self).__name__} must define generate()")

    def soft(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor | None:
        """A differentiable stand-in for ``generate`` (for training terms on generated data), or
        None where there is none (a discrete variable)."""
        return None


class DiscretizedLogistic(TorchDistribution):
    """Pixels on the 256-level grid of [0, 1] (8-bit images / 255), each a logistic(loc, scale)
    discretised to its bin: P(x) = F((x + h - loc) / s) - F((x - h - loc) / s) with F the logistic
    CDF and h = 1/510 half a bin; the two edge bins take the tails (x = 0: F((h - loc) / s); x = 1:
    1 - F((1 - h - loc) / s)). A probability, not a density, so likelihoods of different players
    compare on equal terms (PixelCNN++'s likelihood with one component; Salimans et al. 2017)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.unit_interval
    has_rsample = False
    half_bin = 1.0 / 510.0

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args=None):
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        super().__init__(self.loc.shape, torch.Size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return DiscretizedLogistic(self.loc.expand(batch_shape), self.scale.expand(batch_shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        h = self.half_bin
        inv = 1.0 / self.scale
        plus, minus = (value - self.loc + h) * inv, (value - self.loc - h) * inv
        log_cdf_plus = plus - F.softplus(plus)  # log F(plus)
        log_sf_minus = -F.softplus(minus)  # log (1 - F(minus))
        delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        # a bin far in a sharp tail: its mass underflows, the density at its centre times its width
        mid = (value - self.loc) * inv
        log_density = (
            mid
            - 2.0 * F.softplus(mid)
            - torch.log(self.scale)
            + torch.log(torch.tensor(2 * h, dtype=value.dtype, device=value.device))
        )
        inner = torch.where(delta > 1e-5, torch.log(delta.clamp_min(1e-12)), log_density)
        return torch.where(value < h, log_cdf_plus, torch.where(value > 1 - h, log_sf_minus, inner))

    def sample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(
                1e-6, 1 - 1e-6
            )
            x = self.loc + self.scale * (torch.log(u) - torch.log1p(-u))
            return (x.clamp(0.0, 1.0) * 255).round() / 255

    @property
    def mean(self) -> torch.Tensor:  # the location, clamped to the unit interval
        return self.loc.clamp(0.0, 1.0)


class ConvEncoder(nn.Module):
    def __init__(self, channels: int, width: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 49, hidden),
            nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    def __init__(self, in_dim: int, channels: int, width: int, learn_scale: bool):
        super().__init__()
        self.width = width
        self.fc = nn.Sequential(nn.Linear(in_dim, 2 * width * 49), nn.SiLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.SiLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
        )
        # one learnt log-scale per channel for Laplace / Gaussian likelihoods
        self.log_scale = nn.Parameter(torch.full((channels, 1, 1), -1.0)) if learn_scale else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(h).view(-1, 2 * self.width, 7, 7))


@register_modality("image")
class ImageRecipe(Recipe):
    """A 28x28 image with 1 or 3 channels, values in [0, 1]; conv networks scaled by ``width``."""

    def __init__(
        self,
        name: str,
        channels: int = 1,
        width: int = 32,
        likelihood: str = "bernoulli",
        exchangeable: bool = True,
        send: str = "mean",
    ):
        super().__init__(name)
        if send not in SENDS:
            raise ValueError(f"image {name!r}: send must be one of {SENDS}, got {send!r}")
        self.send = send
        if channels not in (1, 3):
            raise ValueError(f"image {name!r}: channels must be 1 or 3, got {channels}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"image {name!r}: unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}"
            )
        if width < 1:
            raise ValueError(f"image {name!r}: width must be positive, got {width}")
        self.channels, self.width, self.likelihood, self.exchangeable = (
            channels,
            width,
            likelihood,
            exchangeable,
        )

    def variable(self) -> Variable:
        return image(self.name, self.channels, 28, 28, self.exchangeable)

    def encoder(self, hidden: int) -> nn.Module:
        return ConvEncoder(self.channels, self.width, hidden)

    def decoder(self, in_dim: int) -> nn.Module:
        if self.likelihood == "discretized_logistic":  # a location and a log-scale per pixel
            return ConvDecoder(in_dim, 2 * self.channels, self.width, False)
        return ConvDecoder(
            in_dim, self.channels, self.width, self.likelihood in ("laplace", "gaussian")
        )

    def _location_logits(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder output's location part (all of it unless a scale is predicted too)."""
        if self.likelihood == "discretized_logistic":
            return out[..., : self.channels, :, :]
        return out

    def distribution(self, out: torch.Tensor, decoder: nn.Module) -> dist.Distribution:
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out).to_event(3)
        if self.likelihood == "continuous_bernoulli":
            return dist.ContinuousBernoulli(logits=out).to_event(3)
        if self.likelihood == "discretized_logistic":
            loc = torch.sigmoid(out[..., : self.channels, :, :])
            scale = F.softplus(out[..., self.channels :, :, :] - 3.0) + 1e-3
            return DiscretizedLogistic(loc, scale).to_event(3)
        scale = decoder.log_scale.exp().expand(out.shape)
        loc = torch.sigmoid(out)
        if self.likelihood == "laplace":
            return dist.Laplace(loc, scale).to_event(3)
        return dist.Normal(loc, scale).to_event(3)

    def generate(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        # "mean": sigmoid(logits), the mean for Bernoulli and the location for Laplace/Gaussian;
        # "sample": a draw of p(x | z, c), as the utility E_p[log q] reads it (kept in [0, 1])
        if self.send == "sample":
            return self.distribution(out, decoder).sample().clamp(0.0, 1.0)
        return torch.sigmoid(self._location_logits(out))

    def soft(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        return torch.sigmoid(self._location_logits(out))


@register_modality("digit_mask")
class DigitMaskRecipe(ImageRecipe):
    """A binary image (e.g. the binarised MNIST digit s): Bernoulli likelihood, sent as its mode."""

    def __init__(self, name: str, width: int = 16, exchangeable: bool = True, send: str = "mean"):
        super().__init__(
            name,
            channels=1,
            width=width,
            likelihood="bernoulli",
            exchangeable=exchangeable,
            send=send,
        )

    def variable(self) -> Variable:
        return binary_image(self.name, 1, 28, 28, self.exchangeable)

    def generate(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        if self.send == "sample":
            return torch.bernoulli(torch.sigmoid(out))
        return (out > 0).float()  # the mode


@register_modality("label")
class LabelRecipe(Recipe):
    """The class variable: categorical with ``classes`` values (an m2 player's ``label`` table)."""

    observable = False

    def __init__(self, name: str = "label", classes: int = 10, exchangeable: bool = True):
        super().__init__(name)
        self.classes, self.exchangeable = classes, exchangeable

    def variable(self) -> Variable:
        return categorical(self.name, self.classes, self.exchangeable)


@register_modality("latent")
class LatentRecipe(Recipe):
    """A private continuous latent variable of ``dim`` dimensions (an m2 player's ``latent``)."""

    observable = False

    def __init__(self, name: str = "z", dim: int = 16):
        super().__init__(name)
        if dim < 1:
            raise ValueError(f"latent {name!r}: dim must be positive, got {dim}")
        self.dim = dim

    def variable(self) -> Variable:
        return latent(self.name, self.dim)


class _OneHotEncoder(nn.Module):
    def __init__(self, classes: int, hidden: int):
        super().__init__()
        self.classes = classes
        self.net = nn.Sequential(nn.Linear(classes, hidden), nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(nn.functional.one_hot(x, self.classes).to(self.net[0].weight.dtype))


@register_modality("categorical")
class CategoricalRecipe(Recipe):
    """A categorical variable other than the player's label (e.g. the PolyMNIST style): one-hot
    encoder, a linear decoder to logits; the player sends a sample."""

    def __init__(self, name: str, classes: int, exchangeable: bool = True):
        super().__init__(name)
        if classes < 2:
            raise ValueError(f"categorical {name!r}: needs at least 2 classes, got {classes}")
        self.classes, self.exchangeable = int(classes), exchangeable

    def variable(self) -> Variable:
        return categorical(self.name, self.classes, self.exchangeable)

    def encoder(self, hidden: int) -> nn.Module:
        return _OneHotEncoder(self.classes, hidden)

    def decoder(self, in_dim: int) -> nn.Module:
        return nn.Linear(in_dim, self.classes)

    def distribution(self, out: torch.Tensor, decoder: nn.Module) -> dist.Distribution:
        return dist.Categorical(logits=out)

    def generate(self, out: torch.Tensor, decoder: nn.Module) -> torch.Tensor:
        return dist.Categorical(logits=out).sample()
