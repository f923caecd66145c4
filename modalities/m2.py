"""Semi-supervised players in the spirit of Kingma et al.'s M2, over any set of registered recipes.

Generative story (``model``, told once and used by learning, sampling, the sleep phase and the
consistency term through :meth:`M2Player.decode`):

    c ~ Cat(pi)                      the label
    z ~ N(0, I)                      a private latent
    x_v ~ p_v(x_v | z, c)            every observed variable v (image, digit mask, ...)

Guide: q(c | x) from the mean of per-variable classifier features over the variables present
(enumerated exactly for unlabelled rows), then q(z | x, c) from the mean of per-variable encoder
features. ``enumerate_top = m`` (0 < m < classes) is a cheaper member of the family: the guide's
q(c | x) is truncated to its m most likely classes and renormalised, so an unlabelled row runs the
decoders m times instead of once per class (see :meth:`M2Player.elbo`).

Sampling: c ~ p(c) (or given), then x from the story. ``sample_best_of = K > 1`` draws K candidates
x for each c and keeps the one with the highest q(c | x): the label distribution is unchanged, but
the pairs sent follow a selected distribution p_K(x | c), not p(x | c), so the game's equilibrium
theory (utility E_{p_j}[log p_i]) describes the selected distributions; an option for label-faithful
exchange, off by default. ``sample_temperature = t < 1`` draws z ~ N(0, t^2 I) instead of the
prior (the "truncation trick"): images nearer each class's typical one, again a selected
distribution rather than the model's; 1 (the default) is the model. A variable missing in an example is left out of the likelihood and of the encoder means,
so one class covers image-style players ({c, m_k}), partial views ({c, s}, {c, m0, m1}) and any
user recipe.

Objectives, combined in :meth:`M2Player.objectives`: ``elbo`` (-ELBO, Pyro), ``classifier``
(``aux_weight`` x -log q(c | x) on labelled rows, M2's auxiliary term) and ``consistency``
(``consistency_weight`` x -log q(c | x) on the player's own generated images, gradients into the
decoders only). The consistency term changes the player's utility: it is no longer a
log-likelihood, so the game's equilibrium theory does not cover players that use it.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from torch import nn

from multimodal_game.batch import Batch
from multimodal_game.player import PyroPlayer, check_samples, weighted_plate
from multimodal_game.spaces import Space, latent

from .recipes import LabelRecipe, Recipe, flat_apply, frozen_call
from .specs import M2Spec


def _onehot(c: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """``F.one_hot(c, k)`` as ``dtype``, written elementwise so that it also runs under
    ``torch.func.vmap`` (one_hot checks its values, which vmap cannot)."""
    return (c[..., None] == torch.arange(k, device=c.device)).to(dtype)


def mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


class Features(NamedTuple):
    """Encoder features of a batch: ``z`` feeds q(z | x, c), ``c`` feeds q(c | x)."""

    z: torch.Tensor
    c: torch.Tensor


class Emission:
    """p(x_v | z, c) for one variable: the decoder's output read by the variable's recipe."""

    __slots__ = ("recipe", "out", "decoder")

    def __init__(self, recipe: Recipe, out: torch.Tensor, decoder: nn.Module):
        self.recipe, self.out, self.decoder = recipe, out, decoder

    def distribution(self) -> dist.Distribution:
        return self.recipe.distribution(self.out, self.decoder)

    def value(self) -> torch.Tensor:
        """What the player sends when it samples (see ``Recipe.generate``)."""
        return self.recipe.generate(self.out, self.decoder)

    def soft(self) -> torch.Tensor | None:
        """A differentiable stand-in for ``value`` (None for discrete variables)."""
        return self.recipe.soft(self.out, self.decoder)


class M2Player(PyroPlayer):
    """A semi-supervised generative player over ``label`` and the variables of ``recipes``."""

    learning_rules = ("elbo", "wake_sleep", "symmetric_equilibrium")
    fused_kind = "m2"  # what modalities.m2_fused can train and sample together

    def __init__(self, spec: M2Spec, recipes: Sequence[Recipe]):
        """The player ``spec`` describes (validated: :class:`~modalities.specs.M2Spec`), over
        ``recipes``, the recipes built from ``spec.variables`` (:func:`modalities.build_player`
        builds both from a plain mapping)."""
        if [r.name for r in recipes] != [v.name for v in spec.variables]:
            raise ValueError(
                f"recipes {[r.name for r in recipes]} do not match the spec's variables "
                f"{[v.name for v in spec.variables]}"
            )
        label = LabelRecipe(spec.label.name, spec.label.classes, spec.label.exchangeable)
        latent_dim, hidden = spec.latent, spec.hidden
        space = Space([label.variable(), *(r.variable() for r in recipes), latent("z", latent_dim)])
        super().__init__(space, lr=spec.lr, optimizer=spec.optimizer, learning=spec.learning)
        self.enumerate_top = 0 if spec.enumerate_top == label.classes else spec.enumerate_top
        self.sample_best_of = spec.sample_best_of
        self.sample_temperature = float(spec.sample_temperature)
        self.recipes = {r.name: r for r in recipes}
        self.complete, self.complete_sweeps = tuple(spec.complete), spec.complete_sweeps
        self.label = label.name
        self.classes = label.classes
        self.latent_dim = latent_dim
        self.aux_weight = float(spec.aux_weight)
        self.consistency_weight = float(spec.consistency_weight)
        self.compile_step = spec.compile
        self.precision = spec.precision
        self.encoders = nn.ModuleDict({r.name: r.encoder(hidden) for r in recipes})
        # M2 proper has its own network for q(c | x); sharing the encoder of q(z | x, c) is cheaper
        # but lets the reconstruction gradients (thousands of pixels) drown the classifier's.
        self.c_encoders = (
            None
            if spec.shared_encoder
            else nn.ModuleDict({r.name: r.encoder(hidden) for r in recipes})
        )
        self.decoders = nn.ModuleDict(
            {r.name: r.decoder(latent_dim + self.classes) for r in recipes}
        )
        self.classifier = mlp(hidden, hidden, self.classes)
        self.z_net = mlp(hidden + self.classes, hidden, 2 * latent_dim)
        self.prior_logits = nn.Parameter(torch.zeros(self.classes))

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The parameters of p(x | c, z), all that sampling given a label needs (z from N(0, I)):
        what a one-shot generative exchange (multimodal_game.fedcvae) sends."""
        return list(self.decoders.parameters())

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The parameters of q(c | x): its encoders and its classifier head."""
        return [*self._q_c_encoders.parameters(), *self.classifier.parameters()]

    # -- the generative story ---------------------------------------------------------------------
    def prior_c(self) -> dist.Distribution:
        # valid by construction; validating would read the parameters back from the device
        return dist.Categorical(logits=self.prior_logits, validate_args=False)

    def prior_z(self, n: int) -> dist.Distribution:
        loc = torch.zeros(n, self.latent_dim, device=self.device)
        return dist.Normal(loc, torch.ones_like(loc), validate_args=False).to_event(1)

    def decode(
        self, c: torch.Tensor, z: torch.Tensor, names: Sequence[str] | None = None
    ) -> dict[str, Emission]:
        """p(x_v | z, c) for each variable in ``names`` (default: all). ``c`` may carry an
        enumeration dimension (shape (k, 1) against z of shape (n, d))."""
        onehot = _onehot(c, self.classes, z.dtype).expand(*z.shape[:-1], self.classes)
        h = torch.cat([z, onehot], -1)
        return {
            name: Emission(
                self.recipes[name],
                flat_apply(functools.partial(self._net, self.decoders[name]), h, 1),
                self.decoders[name],
            )
            for name in (self.recipes if names is None else names)
        }

    def model(
        self, batch: Batch | None = None, features: Features | None = None, n: int | None = None
    ) -> dict[str, torch.Tensor] | None:
        """The story on the labelled and the unlabelled rows of ``batch`` (each its own plate);
        ``batch=None``: ``n`` examples observing nothing (the sleep phase's dreams)."""
        prior_c = self.prior_c()  # one node for both parts: their gradients meet there
        if batch is None:
            return self._story(prior_c, "unl", torch.ones(n, device=self.device))
        for part, idx in self._parts(batch):
            labels = batch[self.label][idx] if part == "lab" else None
            weight = batch.weight[idx]
            if part == "unl" and self.enumerate_top:
                idx, labels, q = self._top(batch, features, idx)
                weight = batch.weight[idx] * q
            observed = {
                v: (batch[v][idx], batch.observed(v)[idx]) for v in self.recipes if v in batch.data
            }
            self._story(prior_c, part, weight, labels, observed)
        return None

    def _top(
        self, batch: Batch, features: Features | None, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The truncated guide on unlabelled rows ``idx``: each row repeated once per candidate
        class (its ``enumerate_top`` most likely under q(c | x)), the candidates, and q~(c | x), q
        renormalised over them (it carries gradients to q(c | x)). Deterministic, so the model and
        the guide of one step see the same candidates."""
        features = self.encode(batch) if features is None else features
        top_logits, cands = self.c_logits(batch, features)[idx].topk(self.enumerate_top, -1)
        rows = idx[:, None].expand_as(cands).reshape(-1)
        return rows, cands.reshape(-1), torch.softmax(top_logits, -1).reshape(-1)

    def _story(
        self,
        prior_c: dist.Distribution,
        part: str,
        weight: torch.Tensor,
        labels: torch.Tensor | None = None,
        observed: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """c ~ p(c); z ~ p(z); x_v ~ p(x_v | z, c), each x_v observed where its mask says so
        (``observed=None``: every variable sampled)."""
        with weighted_plate(part, weight):
            c = pyro.sample(f"c_{part}", prior_c, obs=labels)
            z = pyro.sample(f"z_{part}", self.prior_z(len(weight)))
            values = {self.label: c}
            for name, emission in self.decode(
                c, z, None if observed is None else list(observed)
            ).items():
                value, present = (None, None) if observed is None else observed[name]
                with (
                    poutine.mask(mask=present) if present is not None else contextlib.nullcontext()
                ):
                    values[name] = pyro.sample(f"{name}_{part}", emission.distribution(), obs=value)
        return values

    # -- the guide --------------------------------------------------------------------------------
    def encode(self, batch: Batch) -> Features:
        """Features of the variables present in each example, for q(z | x, c) and q(c | x)."""
        h = self._pool(self.encoders, batch)
        hc = h if self.c_encoders is None else self._pool(self.c_encoders, batch)
        return Features(h, hc)

    def c_logits(self, batch: Batch, features: Features | None = None) -> torch.Tensor:
        """Logits of q(c | x) from the variables present in each example (the prior if none)."""
        h = self._pool(self._q_c_encoders, batch) if features is None else features.c
        return self.classifier(h)

    def guide(self, batch: Batch, features: Features | None = None, n: int | None = None) -> None:
        """q(c | x) (enumerated where the label is missing), then q(z | x, c)."""
        features = self.encode(batch) if features is None else features
        logits = self.c_logits(batch, features)
        for part, idx in self._parts(batch):
            if part == "unl" and self.enumerate_top:
                rows, c, q = self._top(batch, features, idx)
                with weighted_plate(part, batch.weight[rows] * q):
                    pyro.sample(f"z_{part}", self.q_z(features.z[rows], c))
                continue
            with weighted_plate(part, batch.weight[idx]):
                if part == "lab":
                    c = batch[self.label][idx]
                else:
                    q_c = dist.Categorical(logits=logits[idx])
                    c = pyro.sample("c_unl", q_c, infer={"enumerate": "parallel"})
                pyro.sample(f"z_{part}", self.q_z(features.z[idx], c))

    def elbo(self, batch: Batch, features: Features | None = None) -> torch.Tensor:
        """-ELBO on ``batch`` (summed over weighted examples). With ``enumerate_top`` an unlabelled
        row's bound is sum_c q~(c | x) ELBO(x, c) + H(q~(c | x)) over its candidate classes: Pyro
        scores the first part (each candidate a labelled copy of the row, weighted by q~), and the
        entropy is added here. It is a true ELBO for the truncated guide, so no looser a bound
        than M2's whenever q(c | x) puts (almost) no mass outside its top classes."""
        features = self.encode(batch) if features is None else features
        loss = super().elbo(batch, features)
        if not self.enumerate_top:
            return loss
        for part, idx in self._parts(batch):
            if part == "unl":
                _, _, q = self._top(batch, features, idx)
                q = q.view(len(idx), self.enumerate_top)
                entropy = -(q * q.clamp_min(1e-30).log()).sum(-1)
                loss = loss - (batch.weight[idx] * entropy).sum()
        return loss

    def _net(self, module: nn.Module, x: torch.Tensor, call=None) -> torch.Tensor:
        """``module(x)`` (``call(module, x)`` if given); with ``precision`` bf16 under bfloat16
        autocast, its result back in float32."""
        if self.precision == "fp32":
            return module(x) if call is None else call(module, x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            y = module(x) if call is None else call(module, x)
        return y.float()

    @property
    def _q_c_encoders(self) -> nn.ModuleDict:
        """The encoders that q(c | x) reads: its own, or those of q(z | x, c) when shared."""
        return self.encoders if self.c_encoders is None else self.c_encoders

    def _pool(self, encoders: nn.ModuleDict, batch: Batch, call=None) -> torch.Tensor:
        """Mean of the encoders' features over the variables present in each example (0 if none);
        ``batch`` is a Batch or anything with its ``data``, ``observed`` and ``weight``.
        ``call(module, x)`` replaces ``module(x)`` (e.g. to run it with frozen parameters)."""
        total, count = None, None
        for name, enc in encoders.items():
            if name not in batch.data:
                continue
            x = batch.data[name]
            p = batch.observed(name).to(x.dtype)[:, None]
            h = self._net(enc, x, call) * p
            total = h if total is None else total + h
            count = p if count is None else count + p
        if total is None:
            hidden = self.classifier[0].in_features
            return torch.zeros(batch.weight.shape[0], hidden, device=self.device)
        return total / count.clamp_min(1.0)

    def q_z(self, h: torch.Tensor, c: torch.Tensor) -> dist.Distribution:
        """q(z | x, c) from encoder features ``h`` (``Features.z``) and the class ``c``."""
        onehot = _onehot(c, self.classes, h.dtype)
        shape = torch.broadcast_shapes(onehot.shape[:-1], h.shape[:-1])  # enumerated c: (k, 1)
        inp = torch.cat([h.expand(*shape, h.shape[-1]), onehot.expand(*shape, self.classes)], -1)
        loc, log_scale = self.z_net(inp).chunk(2, -1)
        return dist.Normal(loc, F.softplus(log_scale) + 1e-4).to_event(1)

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

    # -- the objectives ---------------------------------------------------------------------------
    def objectives(self, batch: Batch) -> dict[str, torch.Tensor]:
        """-ELBO, the weighted classifier term and the weighted consistency term (those with a
        positive weight), each summed over the batch's weighted examples."""
        if self.complete:
            batch = self.completed(batch)
        features = self.encode(batch)  # once per step: the guide and the classifier term share it
        with pyro.validation_enabled(False):  # soft [0, 1] targets are fine for Bernoulli here
            terms = {"elbo": self.elbo(batch, features)}
        if self.aux_weight:
            terms["classifier"] = self.aux_weight * self.classifier_loss(batch, features)
        if self.consistency_weight:
            terms["consistency"] = (
                self.consistency_weight * batch.weight.sum() * self.consistency_loss(len(batch))
            )
        if self.learning == "symmetric_equilibrium":
            terms.update(self.symmetric_terms(batch, features))
        terms.update(self.sleep_terms(batch))
        return terms

    @torch.no_grad()
    def completed(self, batch: Batch, c: torch.Tensor | None = None) -> Batch:
        """``batch`` with each variable of ``complete`` drawn from the player's own model in the
        rows that show some variable but miss it (the paper authors' Gibbs completion, one step):
        c as observed (else ``c``, else drawn from q(c | present variables)), z ~ q(z | x, c),
        then x_v from p(x_v | z, c) as the player would send it. Learning on completed rows makes
        q(c | ...) read such variables beside the others, although the data never show them
        together (e.g. images without digit masks, and (label, mask) pairs without images)."""
        shows = self._shows_data(batch)
        need = {v: shows & ~batch.observed(v) for v in self.complete}
        if not any(bool(m.any()) for m in need.values()):
            return batch
        features = self.encode(batch)
        if c is None:
            c = dist.Categorical(logits=self.c_logits(batch, features)).sample()
        if self.label in batch.data:
            c = torch.where(batch.observed(self.label), batch[self.label], c)
        z = self.q_z(features.z, c).sample()
        made = self.decode(c, z, list(need))
        data = dict(batch.data)
        present = {k: batch.observed(k) for k in data}
        for v, rows in need.items():
            value = made[v].value()
            old = data.get(v, torch.zeros_like(value))
            where = rows.view(-1, *([1] * (value.dim() - 1)))
            data[v] = torch.where(where, value.to(old.dtype), old)
            present[v] = batch.observed(v) | rows
        return Batch(data, present, batch.weight)

    @torch.no_grad()
    def gibbs_label(self, given: Batch, sweeps: int) -> torch.Tensor:
        """q(c | present variables) with the variables s of ``complete`` that ``given`` misses
        inferred: ``sweeps`` Gibbs sweeps alternating c ~ q(c | x, s) and s ~ p(s | z, c) with
        z ~ q(z | x, c), averaging q(c | x, s) over the sweeps (a Rao-Blackwellised estimate of
        the label's marginal under the chain; the first c is drawn from q(c | x))."""
        probs = torch.softmax(self.c_logits(given), -1)
        total = torch.zeros_like(probs)
        for _ in range(sweeps):
            made = self.completed(given, dist.Categorical(probs=probs).sample())
            probs = torch.softmax(self.c_logits(made), -1)
            total = total + probs
        return total / sweeps

    def symmetric_terms(self, batch: Batch, features: Features) -> dict[str, torch.Tensor]:
        """The paper authors' symmetric equilibrium learning (their ``JModel.optimize(...,
        symmetric=True)``), read as two conditionals of one joint, q(c | x) and p(x | c):

        * ``sym_x``: -ELBO of p(x | c~) with c~ ~ q(c | x) drawn (no gradient through the draw) for
          every example that shows a variable - the generative direction learns from the
          classifier's labels;
        * ``sym_c``: -log q(c | x~) with x~ ~ p(x | c, z), z ~ p(z), made for each labelled
          example's class (no gradient into the decoders) - the classifier learns from the
          generator's images.

        Each is weighted by the examples' weights, like the data terms. Together with the data
        terms (``elbo``, ``classifier``) each conditional learns from the data and from the other
        conditional's completions; the fixed point makes the two conditionals consistent."""
        w = batch.weight
        with torch.no_grad():
            c_tilde = dist.Categorical(logits=self.c_logits(batch, features)).sample()
        has_data = self._shows_data(batch)
        data = {k: v for k, v in batch.data.items() if k != self.label}
        present = {k: batch.observed(k) for k in data}
        relabelled = Batch({**data, self.label: c_tilde}, present, w * has_data)
        with pyro.validation_enabled(False):
            sym_x = (
                self.elbo(relabelled) if bool(has_data.any()) else torch.zeros((), device=w.device)
            )
        labelled = batch.observed(self.label)
        if not bool(labelled.any()):
            return {"sym_x": sym_x, "sym_c": torch.zeros((), device=w.device)}
        rows = labelled.nonzero().flatten()
        c = batch[self.label][rows]
        with torch.no_grad():
            z = torch.randn(len(rows), self.latent_dim, device=self.device)
            made = {name: em.value() for name, em in self.decode(c, z).items()}
        logits = self.c_logits(Batch(made))
        sym_c = (w[rows] * F.cross_entropy(logits, c, reduction="none")).sum()
        return {"sym_x": sym_x, "sym_c": sym_c}

    def classifier_loss(self, batch: Batch, features: Features | None = None) -> torch.Tensor:
        """-sum of weight x log q(c | x) over labelled examples that observe some variable."""
        logits = self.c_logits(batch, features)
        rows = batch.observed(self.label) & self._shows_data(batch)
        logq = -F.cross_entropy(logits, batch[self.label], reduction="none")
        return -(batch.weight * rows * logq).sum()

    def _shows_data(self, batch: Batch) -> torch.Tensor:
        """Which examples observe at least one of the player's variables."""
        shows = torch.zeros(len(batch), dtype=torch.bool, device=batch.weight.device)
        for name in self.recipes:
            shows |= batch.observed(name)
        return shows

    def soft_decode(self, c: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """The differentiable stand-ins of the variables decoded from (c, z) (those that have one)."""
        soft = {name: emission.soft() for name, emission in self.decode(c, z).items()}
        return {name: x for name, x in soft.items() if x is not None}

    def consistency_loss(self, n: int) -> torch.Tensor:
        """Mean -log q(c | x) over ``n`` examples generated for classes c drawn uniformly.

        M2 decoders readily ignore c (z explains the image), so the pairs (c, x) the player samples
        can carry the label only by chance, and a consumer learns label noise from them. This term,
        with gradients into the decoders only, makes generated images carry their class (as
        InfoGAN's mutual-information term does)."""
        c = torch.randint(self.classes, (n,), device=self.device)
        z = torch.randn(n, self.latent_dim, device=self.device)
        gen = self.soft_decode(c, z)
        if not gen:
            return torch.zeros((), device=self.device)
        # q(c | x) is held fixed here: only the decoders learn from this term, so they must make
        # images that the classifier trained on real labels recognises (training both lets them
        # agree on a private code that no other classifier reads).
        h = self._pool(self._q_c_encoders, Batch(gen), call=frozen_call)
        return F.cross_entropy(frozen_call(self.classifier, h), c)

    def fit_classifier(
        self, data: Batch, steps: int, batch_size: int = 128, seed: int = 0
    ) -> torch.Tensor:
        """Train q(c | x) alone on ``data``'s labelled examples (mean cross-entropy, this player's
        optimiser): the discriminative baseline of the same architecture. Returns the last loss."""
        rows = data.observed(self.label).nonzero().flatten()
        if len(rows) == 0:
            raise ValueError("fit_classifier needs labelled examples; the batch has none")
        inputs = {v: data[v][rows] for v in self.recipes if v in data.data}
        labels = data[self.label][rows]
        g = torch.Generator().manual_seed(seed)
        loss = torch.zeros(())
        for _ in range(steps):
            idx = torch.randint(len(labels), (batch_size,), generator=g)
            logits = self.c_logits(Batch({v: x[idx].to(self.device) for v, x in inputs.items()}))
            loss = F.cross_entropy(logits, labels[idx].to(self.device))
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            self.optim.step()
        return loss.detach()

    def learn(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One optimiser step (see :meth:`Player.learn`); with ``compile`` through the compiled
        plain-PyTorch objective (:class:`~modalities.m2_fused.FusedM2Step` of this player alone),
        which draws the same noise from the same generator; the Pyro step where a parameter has a
        gradient hook (FedProx), which only backward runs."""
        if not self.compile_step or _fused_module().has_gradient_hooks(self):
            return super().learn(batch)
        self.check_input(batch)
        return _fused_module().solo_step(self).learn([batch])[0]

    def release(self) -> None:
        """Drop this player's compiled step (kept per player until then); a runtime calls this
        when it closes, so that a closed game's players can be freed."""
        _fused_module().release(self)

    # -- fused steps (several players of one architecture; see modalities.m2_fused) ---------------
    def fusion_key(self) -> tuple | None:
        """Equal for players that one fused step can train together; None if this one cannot."""
        return _key_or_none(_fused_module().fusion_key(self))

    def sample_fusion_key(self) -> tuple | None:
        """Equal for players whose draws one fused sampler can make; None if this one cannot."""
        return _key_or_none(_fused_module().sample_fusion_key(self))

    @staticmethod
    def fused_step(players: Sequence[M2Player]):
        """A :class:`~modalities.m2_fused.FusedM2Step` over ``players``."""
        return _fused_module().FusedM2Step(players)

    @staticmethod
    def fused_sampler(players: Sequence[M2Player]):
        """A :class:`~modalities.m2_fused.FusedM2Sampler` over ``players``."""
        return _fused_module().FusedM2Sampler(players)

    # -- sampling and inference -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, given: Batch | None = None) -> Batch:
        if given is not None and self.label in given.data:
            c = given[self.label].to(self.device)
            n = len(c)
        else:
            c = self.prior_c().sample((n,))
        k = self.sample_best_of
        if k > 1:  # k candidates per label, the one q(c | x) finds most typical of it is kept
            c_all = c.repeat(k)
            z = self.sample_temperature * torch.randn(k * n, self.latent_dim, device=self.device)
            values = {name: em.value() for name, em in self.decode(c_all, z).items()}
            logq = torch.log_softmax(self.c_logits(Batch(values)), -1)
            score = logq.gather(1, c_all[:, None])[:, 0].view(k, n)
            pick = score.argmax(0) * n + torch.arange(n, device=self.device)
            return Batch({self.label: c, **{name: v[pick] for name, v in values.items()}})
        z = self.sample_temperature * torch.randn(n, self.latent_dim, device=self.device)
        values = {name: emission.value() for name, emission in self.decode(c, z).items()}
        return Batch({self.label: c, **values})

    @torch.no_grad()
    def log_prob(self, batch: Batch, samples: int = 1) -> torch.Tensor:
        """An estimate of log p(x_present [, c]) for each example: the label summed out exactly
        (log-sum-exp over classes) where it is missing, z integrated by importance sampling with
        q(z | x, c) as proposal - the IWAE bound with ``samples`` = K draws per class:

            log sum_c p(c) (1/K) sum_k p(z_k) p(x | z_k, c) / q(z_k | x, c),   z_k ~ q(z | x, c).

        A lower bound on log p(x) in expectation, increasing with K towards it; K = 1 is an ELBO
        whose label term is exact (tighter than M2's ELBO with q(c | x)). Variables missing in an
        example are left out of it, as in learning."""
        check_samples(samples)
        batch = batch.to(self.device)
        # as in learning: Bernoulli pixels may be grey levels (the likelihood stays defined)
        with pyro.validation_enabled(False):
            return self._log_prob_chunks(batch, samples)

    def _log_prob_chunks(self, batch: Batch, samples: int) -> torch.Tensor:
        parts = [
            _m2_log_prob(self, batch.index(slice(i, i + M2_LOG_PROB_CHUNK)), samples)
            for i in range(0, len(batch), M2_LOG_PROB_CHUNK)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, device=self.device)

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        """``label``: q(c | present variables), shape (n, k) (with ``complete`` and
        ``complete_sweeps``, the completed variables that ``given`` misses are inferred by
        :meth:`gibbs_label`). ``z``: the posterior mean of the
        latent, E_q[z | x] (the representation a linear probe reads). Another variable: its reconstruction
        from the present ones, through c = argmax q(c | x) and the mean of q(z | x, c)."""
        given = given.to(self.device)
        if name == self.label and self.complete and self.complete_sweeps:
            missing = [v for v in self.complete if not bool(given.observed(v).all())]
            if missing:
                return self.gibbs_label(given, self.complete_sweeps)
        features = self.encode(given)
        probs = torch.softmax(self.c_logits(given, features), -1)
        if name == self.label:
            return probs
        if name == "z":  # the posterior mean E_q[z | x] = sum_c q(c | x) E[z | x, c]
            classes = torch.arange(self.classes, device=self.device)[:, None]
            means = self.q_z(features.z, classes).mean  # (k, n, latent)
            return torch.einsum("nk,knd->nd", probs, means)
        if name not in self.recipes:
            raise KeyError(f"player has no variable {name!r}; it has {sorted(self.space)}")
        c = (
            given[self.label]
            if self.label in given.data and bool(given.observed(self.label).all())
            else probs.argmax(-1)
        )
        z = self.q_z(features.z, c).mean
        return self.decode(c, z, [name])[name].value()


def _fused_module():
    from . import m2_fused  # loaded on first use

    return m2_fused


def _key_or_none(key: tuple | str) -> tuple | None:
    return None if isinstance(key, str) else key


M2_LOG_PROB_CHUNK = 256  # rows per pass: K x classes x rows decoder evaluations at a time


def _m2_log_prob(player: M2Player, batch: Batch, samples: int) -> torch.Tensor:
    feats = player.encode(batch)
    dev = player.device
    classes = torch.arange(player.classes, device=dev)[:, None]  # (k, 1): every class at once
    q = player.q_z(feats.z, classes)  # batch shape (k, n)
    z = q.sample((samples,))  # (K, k, n, d)
    log_w = dist.Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z)  # (K, k, n)
    for name, emission in player.decode(
        classes, z, [v for v in player.recipes if v in batch.data]
    ).items():
        lp = emission.distribution().log_prob(batch[name])  # (K, k, n)
        log_w = log_w + lp * batch.observed(name).to(lp.dtype)
    per_class = torch.logsumexp(log_w, 0) - math.log(samples)  # (k, n): log p(x | c), IWAE
    log_joint = per_class + torch.log_softmax(player.prior_logits, -1)[:, None]
    summed = torch.logsumexp(log_joint, 0)  # the label summed out exactly
    if player.label not in batch.data:
        return summed
    labels = batch[player.label].clamp(0, player.classes - 1)
    given = log_joint.gather(0, labels[None])[0]
    return torch.where(batch.observed(player.label), given, summed)


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

    @torch.no_grad()
    def log_prob(self, batch: Batch, samples: int = 1) -> torch.Tensor:
        """Exact log p(c) of each example's label (0 where it is missing)."""
        check_samples(samples)
        batch = batch.to(self.device)
        if self.label not in batch.data:
            return torch.zeros(len(batch), device=self.device)
        lp = torch.log_softmax(self.logits, -1)[batch[self.label].clamp(0, len(self.logits) - 1)]
        return torch.where(batch.observed(self.label), lp, torch.zeros((), device=self.device))
