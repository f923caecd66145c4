"""The ``hvae`` player: an unsupervised hierarchical VAE with binary latents whose latents are
exchangeable, the player of the paper's MNIST experiment (Fig. 1).

Generative story (``model``)::

    z0 ~ Bernoulli(1/2)^nz0                 the top latent
    z1 ~ Bernoulli(sigmoid(f(z0)))          the second latent (an MLP with a linear skip)
    x  ~ Bernoulli(sigmoid(g(z0, z1)))      a binary image (transposed convolutions)

Encoder (``guide``): q(z1 | x) (convolutions), then q(z0 | z1, x) (convolutions with z1 added to
every stage). Space: ``z0``, ``z1`` (latents, exchangeable) and ``x`` (binary image), so two such
players exchange complete triples (z0, z1, x) and a partner's samples are fully observed examples.

Learning: the paper authors' symmetric equilibrium learning (their ``HVAE.optimize``), the one
rule of this player. Each step has two terms, each weighted by the examples' weights:

* ``model``: -log p(z0, z1, x) on the batch made complete: rows that carry only x (own data) get
  (z0, z1) drawn from q(z | x) (no gradient through the draw); received triples are used as sent.
  The generative direction learns the data completed by the encoder.
* ``guide``: -log q(z0, z1 | x) on the player's own fresh draws from p (as many rows, with the
  same weights, as the rows that needed completing) and on the received triples. The encoder
  learns to invert the generator.

Neither term is an ELBO: with discrete latents the pair's fixed point makes p and q two
consistent conditionals of one joint (the authors' reading). Both terms are log-likelihoods of
complete data, so own data and a partner's triples enter alike with their game weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from multimodal_game.batch import Batch
from multimodal_game.player import PyroPlayer, check_samples, weighted_plate
from multimodal_game.spaces import Space, binary_image, latent
from multimodal_game.validation import validated

from .registry import register_player_kind
from .specs import HVAESpec

LATENTS = ("z0", "z1")


def _convs(width: int, out: int, extra: int = 0) -> tuple[nn.ModuleList, nn.ModuleList]:
    """28x28 -> 1x1 convolutions (28 -> 27 -> 13 -> 11 -> 9 -> 4 -> 1) and, with ``extra``
    inputs, one bias-free linear map per stage that adds them to that stage's channels."""
    chans = [1, width, 2 * width, 2 * width, 2 * width, 4 * width]
    geometry = [(2, 1), (3, 2), (3, 1), (3, 1), (3, 2)]
    convs = [nn.Conv2d(i, o, k, s) for i, o, (k, s) in zip(chans, chans[1:], geometry)]
    convs.append(nn.Conv2d(chans[-1], out, 4, 1))
    lins = [nn.Linear(extra, o, bias=False) for o in chans[1:]] if extra else []
    return nn.ModuleList(convs), nn.ModuleList(lins)


class Encoder(nn.Module):
    """Logits of a binary latent from an image (and, with ``extra``, another latent)."""

    def __init__(self, width: int, out: int, extra: int = 0):
        super().__init__()
        self.convs, self.lins = _convs(width, out, extra)

    def forward(self, x: torch.Tensor, given: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for k, conv in enumerate(self.convs[:-1]):
            h = conv(h)
            if len(self.lins):
                h = h + self.lins[k](given)[..., None, None]
            h = torch.tanh(h)
        return self.convs[-1](h).flatten(1)


class Decoder(nn.Module):
    """Logits of a 1x28x28 binary image from a latent vector (1 -> 4 -> 9 -> 11 -> 13 -> 27 -> 28)."""

    def __init__(self, latent_dim: int, width: int):
        super().__init__()
        chans = [latent_dim, 4 * width, 2 * width, 2 * width, 2 * width, width, 1]
        geometry = [(4, 1), (3, 2), (3, 1), (3, 1), (3, 2), (2, 1)]
        layers: list[nn.Module] = []
        for i, o, (k, s) in zip(chans, chans[1:], geometry):
            layers += [nn.ConvTranspose2d(i, o, k, s), nn.Tanh()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[..., None, None])


class Prior01(nn.Module):
    """Logits of p(z1 | z0): a two-layer tanh MLP plus a linear skip."""

    def __init__(self, nz0: int, nz1: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(nz0, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.out = nn.Linear(hidden, nz1)
        self.skip = nn.Linear(nz0, nz1, bias=False)

    def forward(self, z0: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(z0)) + self.skip(z0)


class HVAEPlayer(PyroPlayer):
    """An unsupervised two-level binary-latent VAE over ``x``; see the module docstring."""

    learning_rules = ("symmetric_equilibrium",)

    def __init__(
        self,
        nz0: int = 30,
        nz1: int = 100,
        width: int = 32,
        hidden: int = 600,
        lr: float = 1e-3,
        optimizer: str = "adam",
        image: str = "x",
        exchange_latents: bool = True,
    ):
        space = Space(
            [
                latent("z0", nz0, exchange_latents),
                latent("z1", nz1, exchange_latents),
                binary_image(image),
            ]
        )
        super().__init__(space, lr=lr, optimizer=optimizer, learning="symmetric_equilibrium")
        self.nz0, self.nz1, self.image = int(nz0), int(nz1), image
        self.p_z1 = Prior01(nz0, nz1, hidden)
        self.p_x = Decoder(nz0 + nz1, width)
        self.q_z1 = Encoder(width, nz1)
        self.q_z0 = Encoder(width, nz0, extra=nz1)

    # -- the two directions, in Pyro -----------------------------------------------------------------
    def model(self, batch: Batch | None, n: int | None = None) -> dict[str, torch.Tensor]:
        """p(z0) p(z1 | z0) p(x | z0, z1); observes every variable of ``batch`` (which must be
        complete), samples ``n`` examples when ``batch`` is None."""
        w = torch.ones(n, device=self.device) if batch is None else batch.weight
        obs = (lambda k: None) if batch is None else batch.data.get
        half = torch.zeros(len(w), self.nz0, device=self.device)
        with weighted_plate("data", w):
            z0 = pyro.sample("z0", dist.Bernoulli(logits=half).to_event(1), obs=obs("z0"))
            z1 = pyro.sample("z1", dist.Bernoulli(logits=self.p_z1(z0)).to_event(1), obs=obs("z1"))
            x = pyro.sample(
                self.image,
                dist.Bernoulli(logits=self.p_x(torch.cat([z0, z1], -1))).to_event(3),
                obs=obs(self.image),
            )
        return {"z0": z0, "z1": z1, self.image: x}

    def guide(self, batch: Batch) -> dict[str, torch.Tensor]:
        """q(z1 | x) q(z0 | z1, x); observes the latents ``batch`` carries, samples the others."""
        x = batch[self.image]
        obs = batch.data.get
        with weighted_plate("data", batch.weight):
            z1 = pyro.sample("z1", dist.Bernoulli(logits=self.q_z1(x)).to_event(1), obs=obs("z1"))
            z0 = pyro.sample(
                "z0", dist.Bernoulli(logits=self.q_z0(x, z1)).to_event(1), obs=obs("z0")
            )
        return {"z0": z0, "z1": z1}

    @staticmethod
    def _log_prob(fn, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Weighted log-density of a fully observed run of ``fn``."""
        return poutine.trace(fn).get_trace(*args, **kwargs).log_prob_sum()

    # -- learning -----------------------------------------------------------------------------------
    def _complete(self, batch: Batch) -> tuple[Batch, torch.Tensor]:
        """The batch with every row's latents (drawn from q where missing) and the mask of rows
        that were complete as given (received triples)."""
        x = batch[self.image]
        given = torch.ones(len(batch), dtype=torch.bool, device=x.device)
        for k in LATENTS:
            given = given & batch.observed(k)
        with torch.no_grad():
            drawn = self.guide(Batch({self.image: x}))
        data = {self.image: x}
        for k in LATENTS:
            if k in batch.data:
                data[k] = torch.where(batch.observed(k)[:, None], batch[k], drawn[k])
            else:
                data[k] = drawn[k]
        return Batch(data, weight=batch.weight), given

    def objectives(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``model`` and ``guide`` (see the module docstring), each summed over weighted rows."""
        complete, given = self._complete(batch)
        terms = {"model": -self._log_prob(self.model, complete)}
        w_dream = batch.weight[~given]
        parts = [complete.index(given.nonzero().flatten())]
        if len(w_dream):
            with torch.no_grad():
                dreamt = self.model(None, n=len(w_dream))
            parts.insert(0, Batch(dreamt, weight=w_dream))
        terms["guide"] = -self._log_prob(self.guide, Batch.merge(parts))
        return terms

    # -- sampling and inference ---------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, given: Batch | None = None) -> Batch:
        """``n`` triples (z0, z1, x) from p, x a binary draw as in the authors' exchange."""
        return Batch(self.model(None, n=n))

    @torch.no_grad()
    def image_probabilities(self, n: int) -> torch.Tensor:
        """p(x = 1 | z0, z1) for ``n`` draws of the latents (the authors' ``single_shot``): what
        the player's samples look like without the pixel noise, for figures and FID."""
        half = torch.zeros(n, self.nz0, device=self.device)
        z0 = dist.Bernoulli(logits=half).sample()
        z1 = dist.Bernoulli(logits=self.p_z1(z0)).sample()
        return torch.sigmoid(self.p_x(torch.cat([z0, z1], -1)))

    @torch.no_grad()
    def infer(self, name: str, given: Batch) -> torch.Tensor:
        """``z1``: q(z1 = 1 | x); ``z0``: q(z0 = 1 | z1, x) at the given z1 (else a draw of it)."""
        given = given.to(self.device)
        x = given[self.image]
        if name == "z1":
            return torch.sigmoid(self.q_z1(x))
        if name == "z0":
            z1 = given["z1"] if "z1" in given.data else self.guide(Batch({self.image: x}))["z1"]
            return torch.sigmoid(self.q_z0(x, z1))
        raise KeyError(f"player infers z0 or z1, not {name!r}; its space is {sorted(self.space)}")

    @torch.no_grad()
    def log_prob(self, batch: Batch, samples: int = 1) -> torch.Tensor:
        """log p(x) of each example by importance sampling with q(z | x) as proposal (the IWAE
        bound with ``samples`` = K draws; K = 1 is the ELBO); exact log p(z0, z1, x) for rows
        that carry both latents."""
        check_samples(samples)
        batch = batch.to(self.device)
        x = batch[self.image]
        n = len(x)
        xs = Batch({self.image: x.repeat(samples, 1, 1, 1)})
        q = poutine.trace(self.guide).get_trace(xs)
        z = {k: q.nodes[k]["value"] for k in LATENTS}
        p = poutine.trace(self.model).get_trace(Batch({self.image: xs[self.image], **z}))
        q.compute_log_prob()
        p.compute_log_prob()
        log_p = sum(p.nodes[k]["log_prob"] for k in (*LATENTS, self.image))
        log_q = sum(q.nodes[k]["log_prob"] for k in LATENTS)
        iwae = torch.logsumexp((log_p - log_q).view(samples, n), 0) - math.log(samples)
        if not all(k in batch.data for k in LATENTS):
            return iwae
        complete = batch.observed("z0") & batch.observed("z1")
        if not bool(complete.any()):
            return iwae
        exact = poutine.trace(self.model).get_trace(
            Batch({self.image: x, "z0": batch["z0"], "z1": batch["z1"]})
        )
        exact.compute_log_prob()
        joint = sum(exact.nodes[k]["log_prob"] for k in (*LATENTS, self.image))
        return torch.where(complete, joint, iwae)


@register_player_kind("hvae")
def build_hvae(spec: Mapping[str, Any]) -> HVAEPlayer:
    s = validated(HVAESpec, spec, "hvae player spec")
    return HVAEPlayer(
        s.nz0,
        s.nz1,
        s.width,
        s.hidden,
        lr=s.lr,
        optimizer=s.optimizer,
        image=s.image,
        exchange_latents=s.exchange_latents,
    )
