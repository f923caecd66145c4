"""Semi-supervised players in the spirit of Kingma et al.'s M2, over any set of registered recipes.

Model: c ~ Cat(pi), z ~ N(0, I), x_v ~ p_v(x_v | z, c) for every observed variable v.
Guide: q(c | x) from the mean of per-variable classifier features over the present variables
(enumerated exactly for unlabelled rows), q(z | x, c) from the mean of per-variable encoder
features. A variable missing in an example is left out of the likelihood and of the encoder means,
so one class covers image-style players ({c, m_k}), partial views ({c, s}, {c, m0, m1}) and any
user recipe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from torch import nn

from multimodal_game.batch import Batch
from multimodal_game.player import PyroPlayer, weighted_plate
from multimodal_game.spaces import Space, latent

from .recipes import LabelRecipe, Recipe, flat_apply


def _frozen(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with its parameters detached: gradients reach ``x`` but not the module."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return torch.func.functional_call(module, params, (x,))


def mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


class M2Player(PyroPlayer):
    """A semi-supervised generative player over ``label`` and the variables of ``recipes``."""

    def __init__(
        self,
        recipes: Sequence[Recipe],
        label: LabelRecipe | None = None,
        latent_dim: int = 16,
        hidden: int = 128,
        aux_weight: float = 50.0,
        lr: float = 1e-3,
        optimizer: str = "adam",
        learning: str = "elbo",
        shared_encoder: bool = False,
        consistency_weight: float = 0.0,
    ):
        label = label or LabelRecipe()
        if not recipes:
            raise ValueError("an M2 player needs at least one observed variable besides the label")
        names = [r.name for r in recipes]
        if len(set(names)) != len(names) or label.name in names:
            raise ValueError(f"variable names must be distinct, got {[label.name, *names]}")
        space = Space([label.variable(), *(r.variable() for r in recipes), latent("z", latent_dim)])
        super().__init__(space, lr=lr, optimizer=optimizer, learning=learning)
        self.recipes = {r.name: r for r in recipes}
        self.label = label.name
        self.k = label.classes
        self.latent_dim = latent_dim
        self.aux_weight = float(aux_weight)
        self.consistency_weight = float(consistency_weight)
        self.encoders = nn.ModuleDict({r.name: r.encoder(hidden) for r in recipes})
        # M2 proper has its own network for q(c | x); sharing the encoder of q(z | x, c) is cheaper
        # but lets the reconstruction gradients (thousands of pixels) drown the classifier's.
        self.c_encoders = (
            None if shared_encoder else nn.ModuleDict({r.name: r.encoder(hidden) for r in recipes})
        )
        self.decoders = nn.ModuleDict({r.name: r.decoder(latent_dim + self.k) for r in recipes})
        self.classifier = mlp(hidden, hidden, self.k)
        self.z_net = mlp(hidden + self.k, hidden, 2 * latent_dim)
        self.prior_logits = nn.Parameter(torch.zeros(self.k))
        self._features: tuple[Batch, torch.Tensor, torch.Tensor] | None = None

    # -- networks ---------------------------------------------------------------------------------
    def features(self, batch: Batch) -> torch.Tensor:
        """Input of q(z | x, c): mean of the encoder features over the variables present."""
        if self._features is not None and self._features[0] is batch:
            return self._features[1]
        return self._pool(self.encoders, batch)

    def c_logits(self, batch: Batch) -> torch.Tensor:
        """Logits of q(c | x) from the variables present in each example (the prior if none)."""
        if self._features is not None and self._features[0] is batch:
            return self.classifier(self._features[2])
        return self.classifier(self._pool(self._q_c_encoders, batch))

    @property
    def _q_c_encoders(self) -> nn.ModuleDict:
        """The encoders that q(c | x) reads: its own, or those of q(z | x, c) when shared."""
        return self.encoders if self.c_encoders is None else self.c_encoders

    def _pool(self, encoders: nn.ModuleDict, batch: Batch, call=None) -> torch.Tensor:
        """Mean of the encoders' features over the variables present in each example (0 if none).
        ``call(module, x)`` replaces ``module(x)`` (e.g. to run it with frozen parameters)."""
        total, count = None, None
        for name, enc in encoders.items():
            if name not in batch.data:
                continue
            p = batch.observed(name).to(batch[name].dtype)[:, None]
            h = (enc(batch[name]) if call is None else call(enc, batch[name])) * p
            total = h if total is None else total + h
            count = p if count is None else count + p
        if total is None:
            hidden = self.classifier[0].in_features
            return torch.zeros(len(batch), hidden, device=self.device)
        return total / count.clamp_min(1.0)

    def _q_z(self, h: torch.Tensor, c: torch.Tensor) -> dist.Distribution:
        onehot = F.one_hot(c, self.k).to(h.dtype)
        shape = torch.broadcast_shapes(onehot.shape[:-1], h.shape[:-1])  # enumerated c: (k, 1)
        inp = torch.cat([h.expand(*shape, h.shape[-1]), onehot.expand(*shape, self.k)], -1)
        loc, log_scale = self.z_net(inp).chunk(2, -1)
        return dist.Normal(loc, F.softplus(log_scale) + 1e-4).to_event(1)

    def _decode(self, name: str, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(c, self.k).to(z.dtype).expand(*z.shape[:-1], self.k)
        return flat_apply(self.decoders[name], torch.cat([z, onehot], -1), 1)

    def _parts(self, batch: Batch) -> list[tuple[str, torch.Tensor]]:
        """Row indices of the labelled and the unlabelled examples (the non-empty ones), found on
        the host from the batch's CPU masks, so that a CUDA step does not wait for the device."""
        lab = batch.observed_host(self.label)
        out = []
        for part, rows in (("lab", lab), ("unl", ~lab)):
            idx = rows.nonzero().flatten()
            if len(idx):
                out.append((part, idx.to(self.device, non_blocking=True)))
        return out

    # -- Pyro model and guide ---------------------------------------------------------------------
    def model(self, batch: Batch | None, n: int | None = None):
        prior_c = dist.Categorical(logits=self.prior_logits)
        if batch is None:
            zeros = torch.zeros(n, self.latent_dim, device=self.device)
            with weighted_plate("unl", torch.ones(n, device=self.device)):
                c = pyro.sample("c_unl", prior_c)
                z = pyro.sample("z_unl", dist.Normal(zeros, 1.0).to_event(1))
                out = {self.label: c}
                for name, r in self.recipes.items():
                    out[name] = pyro.sample(
                        f"{name}_unl", r.distribution(self._decode(name, z, c), self.decoders[name])
                    )
            return out
        for part, idx in self._parts(batch):
            zeros = torch.zeros(len(idx), self.latent_dim, device=self.device)
            with weighted_plate(part, batch.weight[idx]):
                obs_c = batch[self.label][idx] if part == "lab" else None
                c = pyro.sample(f"c_{part}", prior_c, obs=obs_c)
                z = pyro.sample(f"z_{part}", dist.Normal(zeros, 1.0).to_event(1))
                for name, r in self.recipes.items():
                    if name not in batch.data:
                        continue
                    present = batch.observed(name)[idx]
                    d = r.distribution(self._decode(name, z, c), self.decoders[name])
                    with poutine.mask(mask=present):
                        pyro.sample(f"{name}_{part}", d, obs=batch[name][idx])

    def guide(self, batch: Batch) -> None:
        h = self.features(batch)
        logits = self.c_logits(batch)
        for part, idx in self._parts(batch):
            hp = h[idx]
            with weighted_plate(part, batch.weight[idx]):
                if part == "lab":
                    c = batch[self.label][idx]
                else:
                    c = pyro.sample(
                        "c_unl",
                        dist.Categorical(logits=logits[idx]),
                        infer={"enumerate": "parallel"},
                    )
                pyro.sample(f"z_{part}", self._q_z(hp, c))

    def extra_loss(self, batch: Batch) -> torch.Tensor | None:
        """Auxiliary supervised term of M2: -aux_weight * log q(c | x) on labelled rows with data."""
        if self.aux_weight == 0:
            return None
        logits = self.c_logits(batch)
        has_data = torch.zeros(len(batch), dtype=torch.bool, device=logits.device)
        for name in self.recipes:
            has_data |= batch.observed(name)
        rows = batch.observed(self.label) & has_data
        logq = -F.cross_entropy(logits, batch[self.label], reduction="none")
        total = -self.aux_weight * (batch.weight * rows * logq).sum()
        if self.consistency_weight:
            total = total + self.consistency_weight * batch.weight.sum() * self.consistency(
                len(batch)
            )
        return total

    def consistency(self, n: int) -> torch.Tensor:
        """Mean -log q(c | x) over ``n`` examples generated for classes c drawn uniformly.

        M2 decoders readily ignore c (z explains the image), so the pairs (c, x) the player samples
        carry the label only by chance (measured: 10-25% after a few hundred steps with 100 labels),
        and a consumer learns label noise from them. This term, with gradients into the decoders
        only, makes generated images carry their class (as InfoGAN's mutual-information term
        does)."""
        c = torch.randint(self.k, (n,), device=self.device)
        z = torch.randn(n, self.latent_dim, device=self.device)
        gen = {}
        for name, r in self.recipes.items():
            x = r.soft(self._decode(name, z, c), self.decoders[name])
            if x is not None:
                gen[name] = x
        if not gen:
            return torch.zeros((), device=self.device)
        # q(c | x) is held fixed here: only the decoders learn from this term, so they must make
        # images that the classifier trained on real labels recognises (training both lets them
        # agree on a private code that no other classifier reads).
        h = self._pool(self._q_c_encoders, Batch(gen), call=_frozen)
        return F.cross_entropy(_frozen(self.classifier, h), c)

    def loss(self, batch: Batch) -> torch.Tensor:
        # Encode once per step: the guide and the auxiliary term share the features.
        h = self._pool(self.encoders, batch)
        hc = h if self.c_encoders is None else self._pool(self._q_c_encoders, batch)
        self._features = (batch, h, hc)
        try:
            with pyro.validation_enabled(False):  # soft [0, 1] targets are fine for Bernoulli here
                return super().loss(batch)
        finally:
            self._features = None

    # -- sampling and inference -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, given: Batch | None = None) -> Batch:
        if given is not None and self.label in given.data:
            c = given[self.label].to(self.device)
            n = len(c)
        else:
            c = dist.Categorical(logits=self.prior_logits).sample((n,))
        z = torch.randn(n, self.latent_dim, device=self.device)
        out = {self.label: c}
        for name, r in self.recipes.items():
            out[name] = r.generate(self._decode(name, z, c), self.decoders[name])
        return Batch(out)

    @torch.no_grad()
    def infer(self, name: str, given: Batch) -> torch.Tensor:
        """``label``: q(c | present variables), shape (n, k). Another variable: its reconstruction
        from the present ones, through c = argmax q(c | x) and the mean of q(z | x, c)."""
        given = given.to(self.device)
        h = self.features(given)
        probs = torch.softmax(self.c_logits(given), -1)
        if name == self.label:
            return probs
        if name not in self.recipes:
            raise KeyError(f"player has no variable {name!r}; it has {sorted(self.space)}")
        c = (
            given[self.label]
            if self.label in given.data and bool(given.observed(self.label).all())
            else probs.argmax(-1)
        )
        z = self._q_z(h, c).mean
        return self.recipes[name].generate(self._decode(name, z, c), self.decoders[name])


class LabelPlayer(PyroPlayer):
    """A label-only player: a categorical model of the label distribution, learnt by SVI."""

    def __init__(self, label: LabelRecipe | None = None, lr: float = 0.05, optimizer: str = "adam"):
        label = label or LabelRecipe()
        super().__init__(Space([label.variable()]), lr=lr, optimizer=optimizer)
        self.label = label.name
        self.logits = nn.Parameter(torch.zeros(label.classes))

    def model(self, batch: Batch | None, n: int | None = None):
        w = torch.ones(n, device=self.device) if batch is None else batch.weight
        with weighted_plate("data", w):
            present = None if batch is None else batch.observed(self.label)
            with poutine.mask(mask=present) if present is not None else contextlib.nullcontext():
                c = pyro.sample(
                    "c",
                    dist.Categorical(logits=self.logits),
                    obs=None if batch is None else batch[self.label],
                )
        return {self.label: c}

    def guide(self, batch: Batch) -> None:
        pass

    @torch.no_grad()
    def sample(self, n: int, given: Batch | None = None) -> Batch:
        return Batch({self.label: dist.Categorical(logits=self.logits).sample((n,))})

    @torch.no_grad()
    def infer(self, name: str, given: Batch) -> torch.Tensor:
        return torch.softmax(self.logits, -1).expand(len(given), -1)
