"""The M2 objective in plain PyTorch, and one fused learning step for M2 players of one architecture.

:func:`m2_loss` is the player's -ELBO plus its classifier term written without Pyro, on a batch
split into its labelled and unlabelled rows, with the standard-normal noise of the reparametrised z
draws passed in. Drawn in the order that Pyro's guide draws them (labelled rows, then every class
of the unlabelled rows), the noise makes it equal to ``M2Player.loss`` to rounding (tested): it is
the test oracle, and the function that the fused step maps over players.

:class:`FusedM2Step` stacks the parameters of players that share an architecture
(``torch.func.stack_module_state`` layout) and computes every player's gradient in one
``torch.func.vmap`` of that function; each player then takes its own optimiser step, so optimiser
state, checkpoints and the per-player random streams are those of the one-by-one step. Rows are
padded with weight-0 examples to the largest labelled and unlabelled counts of the group, so the
players' batches may differ in composition.

Supported: ``learning="elbo"``, no consistency term, exact enumeration (``enumerate_top = 0``);
:func:`fusion_key` says why another player is not fusable.

:class:`FusedM2Sampler` makes the draws of such players in one ``vmap`` of ``decode``: each
player's labels and latents are drawn one by one on its own stream, exactly as ``M2Player.sample``
draws them, so the draws equal the one-by-one ones (up to float rounding in the decoders). It needs
variables whose sent value is deterministic given (c, z) (images and masks sent as their mean) and
plain sampling (``sample_best_of = 1``): :func:`sample_fusion_key`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import pyro
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal
from torch.distributions.utils import _standard_normal
from torch.optim.adam import adam

from multimodal_game.batch import Batch

# the players of this module are modalities.m2.M2Player instances (fused_kind "m2"); it does not
# import that module, which imports this one on first use
M2Player = Any


class Rows(NamedTuple):
    """Some rows of a batch: each variable's values and presence mask, and the rows' weights."""

    data: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    weight: torch.Tensor

    def observed(self, name: str) -> torch.Tensor:
        return self.present[name]


class Split(NamedTuple):
    """A batch split for :func:`m2_loss`: labelled rows (with their classes) and unlabelled rows."""

    lab: Rows
    labels: torch.Tensor
    unl: Rows


def split(player: M2Player, batch: Batch, pad_lab: int = 0, pad_unl: int = 0) -> Split:
    """``batch``'s labelled and unlabelled rows over the player's variables, each part padded to
    at least ``pad_lab`` / ``pad_unl`` rows with weight-0 copies of a row (they add nothing)."""
    lab = batch.observed_host(player.label)
    names = [v for v in player.recipes if v in batch.data]
    parts = []
    for rows, pad in ((lab, pad_lab), (~lab, pad_unl)):
        idx = rows.nonzero().flatten().to(batch.weight.device)
        weight = batch.weight[idx]
        extra = max(pad - len(idx), 0)
        if extra:
            idx = torch.cat([idx, idx.new_zeros(extra)])
            weight = torch.cat([weight, weight.new_zeros(extra)])
        data = {v: batch[v][idx] for v in names}
        present = {v: batch.observed(v)[idx] for v in names}
        parts.append((Rows(data, present, weight), idx))
    (lab_rows, lab_idx), (unl_rows, _) = parts
    labels = batch[player.label][lab_idx] if player.label in batch.data else lab_idx * 0
    return Split(lab_rows, labels.clamp(0, player.classes - 1), unl_rows)


class Noise(NamedTuple):
    """Standard-normal draws of z: (labelled rows, d) and (classes, unlabelled rows, d)."""

    lab: torch.Tensor
    unl: torch.Tensor


def draw_noise(player: M2Player, n_lab: int, n_unl: int) -> Noise:
    """The noise of one step, drawn as Pyro's guide draws it (labelled part first; a part with no
    rows draws nothing), from torch's current generator."""
    d, dev, dt = player.latent_dim, player.device, player.prior_logits.dtype
    lab = _standard_normal((n_lab, d), dtype=dt, device=dev) if n_lab else torch.zeros(0, d)
    unl = (
        _standard_normal((player.classes, n_unl, d), dtype=dt, device=dev)
        if n_unl
        else torch.zeros(player.classes, 0, d)
    )
    return Noise(lab.to(dev), unl.to(dev))


def _pad_noise(noise: Noise, n_lab: int, n_unl: int) -> Noise:
    lab = F.pad(noise.lab, (0, 0, 0, n_lab - noise.lab.shape[0]))
    unl = F.pad(noise.unl, (0, 0, 0, n_unl - noise.unl.shape[1]))
    return Noise(lab, unl)


def _emissions_log_prob(player: M2Player, c: torch.Tensor, z: torch.Tensor, rows: Rows):
    total = 0.0
    for name, emission in player.decode(c.expand(z.shape[:-1]), z, list(rows.data)).items():
        lp = emission.distribution().log_prob(rows.data[name])
        total = total + lp * rows.observed(name).to(lp.dtype)
    return total


def m2_loss(player: M2Player, s: Split, noise: Noise) -> tuple[torch.Tensor, torch.Tensor]:
    """(-ELBO, aux_weight x classifier term), each summed over weighted rows: labelled rows
    -log p(c) p(z) p(x | z, c) / q(z | x, c); unlabelled rows the exact expectation over q(c | x)
    of the same with -log q(c | x) added; z = mean + noise x scale of q(z | x, c)."""
    n_lab = s.lab.weight.shape[0]
    both = Rows(
        {v: torch.cat([s.lab.data[v], s.unl.data[v]]) for v in s.lab.data},
        {v: torch.cat([s.lab.observed(v), s.unl.observed(v)]) for v in s.lab.data},
        torch.cat([s.lab.weight, s.unl.weight]),
    )
    h = player._pool(player.encoders, both)
    hc = h if player.c_encoders is None else player._pool(player.c_encoders, both)
    logits = player.classifier(hc)
    log_prior = torch.log_softmax(player.prior_logits, -1)
    std = Normal(0.0, 1.0)

    elbo = h.new_zeros(())
    if n_lab:  # a part's size is the same for every player of a fused step: padded
        q = player.q_z(h[:n_lab], s.labels)
        z = q.mean + noise.lab * q.stddev
        term = std.log_prob(z).sum(-1) - q.log_prob(z)
        term = term + _emissions_log_prob(player, s.labels, z, s.lab)
        elbo = elbo - (s.lab.weight * (term + log_prior[s.labels])).sum()
    if s.unl.weight.shape[0]:
        classes = torch.arange(player.classes, device=h.device)[:, None]
        q = player.q_z(h[n_lab:], classes)  # batch shape (k, n_unl)
        z = q.mean + noise.unl * q.stddev
        term = std.log_prob(z).sum(-1) - q.log_prob(z)
        term = term + _emissions_log_prob(player, classes, z, s.unl)
        logq = torch.log_softmax(logits[n_lab:], -1).T  # (k, n_unl)
        expected = (logq.exp() * (term + log_prior[:, None] - logq)).sum(0)
        elbo = elbo - (s.unl.weight * expected).sum()

    shows = torch.stack([s.lab.observed(v) for v in s.lab.data]).any(0)
    logq_c = torch.log_softmax(logits[:n_lab], -1).gather(1, s.labels[:, None])[:, 0]
    aux = -player.aux_weight * (s.lab.weight * shows * logq_c).sum()
    return elbo, aux


def reference_loss(player: M2Player, batch: Batch) -> torch.Tensor:
    """``player.loss(batch)`` without Pyro: the same value (and, from the same random state, the
    same z draws)."""
    s = split(player, batch)
    noise = draw_noise(player, s.lab.weight.shape[0], s.unl.weight.shape[0])
    with pyro.validation_enabled(False):  # soft [0, 1] pixel targets, as in the player
        elbo, aux = m2_loss(player, s, noise)
    return (elbo + aux) / batch.weight.sum()


# a player's architecture is fixed when it is built; the runtime asks for it every round
_ARCHITECTURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _architecture(player: M2Player) -> tuple:
    found = _ARCHITECTURES.get(player)
    device = str(player.device)  # the one part that can change (``player.to``)
    if found is None or found[-1] != device:
        shapes = tuple((k, tuple(v.shape)) for k, v in player.named_parameters())
        recipes = tuple(repr(vars(r)) for r in player.recipes.values())
        found = _ARCHITECTURES[player] = (shapes, recipes, player.label, player.classes, device)
    return found


def sample_fusion_key(player: Any) -> tuple | str:
    """A key shared by players whose draws one fused sampler can make, or why not (a string)."""
    if getattr(player, "fused_kind", None) != "m2":
        return f"{type(player).__name__} is not an M2 player"
    if player.sample_best_of != 1:
        return "fused sampling needs sample_best_of = 1"
    if any(getattr(r, "send", None) != "mean" for r in player.recipes.values()):
        return "fused sampling needs every variable sent as its mean (images, masks)"
    return ("m2-sample", _architecture(player), player.sample_temperature)


def fusion_key(player: Any) -> tuple | str:
    """A key shared by players that one fused step can train together, or the reason (a string)
    why this player cannot be fused."""
    if getattr(player, "fused_kind", None) != "m2":
        return f"{type(player).__name__} is not an M2 player"
    if (
        player.learning != "elbo"
        or player.consistency_weight
        or player.enumerate_top
        or player.complete
    ):
        return (
            "fused steps support learning='elbo' without consistency term, enumerate_top or "
            "complete"
        )
    return ("m2", _architecture(player), player.aux_weight)


class _Objective(nn.Module):
    """Wraps a player so that ``torch.func.functional_call`` can swap in stacked parameters."""

    def __init__(self, player: M2Player):
        super().__init__()
        self.player = player

    def forward(self, s: Split, noise: Noise) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        elbo, aux = m2_loss(self.player, s, noise)
        total = s.lab.weight.sum() + s.unl.weight.sum()
        loss = (elbo + aux) / total
        return loss, (loss.detach(), elbo.detach() / total, aux.detach() / total)


def _stack(items: Sequence[Any]) -> Any:
    return torch.utils._pytree.tree_map(lambda *xs: torch.stack(xs), *items)


def _stacked_parameters(per_player: Sequence[Sequence[torch.Tensor]], names: Sequence[str]) -> dict:
    """Each parameter (``per_player[i][k]``: player i's k-th) stacked over players, by name."""
    return {n: torch.stack([ps[k] for ps in per_player]).detach() for k, n in enumerate(names)}


class _Decoder(nn.Module):
    """Wraps a player's ``decode``: the values it sends for labels ``c`` and latents ``z``."""

    def __init__(self, player: M2Player):
        super().__init__()
        self.player = player

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: em.value() for name, em in self.player.decode(c, z).items()}


class _Fused:
    """Players that ``key`` says are alike, behind one wrapper module whose parameters
    ``torch.func.functional_call`` swaps for stacked ones (``_call`` under ``vmap``)."""

    def __init__(
        self,
        players: Sequence[M2Player],
        key: Callable[[Any], tuple | str],
        what: str,
        wrapper: type[nn.Module],
    ):
        keys = [key(p) for p in players]
        bad = [k for k in keys if isinstance(k, str)]
        if bad:
            raise ValueError(f"cannot fuse the {what} of these players: {bad[0]}")
        if len(set(keys)) != 1:
            raise ValueError(
                f"cannot fuse the {what} of players of different architectures or options"
            )
        self.players = list(players)
        self._module = wrapper(players[0])
        self._names = [n for n, _ in players[0].named_parameters()]
        # the players' parameter objects, in ``_names`` order: loading a state copies into them
        self._params = [list(p.parameters()) for p in players]

    def _call(self, params: dict[str, torch.Tensor], *args: Any) -> Any:
        full = {f"player.{k}": v for k, v in params.items()}
        return torch.func.functional_call(self._module, full, args)


class FusedM2Sampler(_Fused):
    """The draws of several M2 players of one architecture, decoded together (``vmap``)."""

    def __init__(self, players: Sequence[M2Player]):
        super().__init__(players, sample_fusion_key, "sampling", _Decoder)
        self._decode = torch.func.vmap(self._call)

    @torch.no_grad()
    def sample(
        self,
        counts: Sequence[int],
        streams: Sequence[Callable[[], AbstractContextManager]] | None = None,
    ) -> list[Batch]:
        """``counts[i]`` joint draws of player i, its labels and latents drawn on ``streams[i]()``
        as ``M2Player.sample`` draws them."""
        n = max(counts)
        cs, zs = [], []
        for i, (p, k) in enumerate(zip(self.players, counts)):
            with streams[i]() if streams else contextlib.nullcontext():
                c = p.prior_c().sample((k,))
                z = p.sample_temperature * torch.randn(k, p.latent_dim, device=p.device)
            cs.append(F.pad(c, (0, n - k)))
            zs.append(F.pad(z, (0, 0, 0, n - k)))
        params = _stacked_parameters(self._params, self._names)
        values = self._decode(params, torch.stack(cs), torch.stack(zs))
        label = self.players[0].label
        return [
            Batch({label: cs[i][:k], **{v: x[i, :k] for v, x in values.items()}})
            for i, k in enumerate(counts)
        ]


class FusedM2Step(_Fused):
    """One learning step for several M2 players of one architecture, their gradients computed
    together (``vmap`` over stacked parameters), each then stepped by its own optimiser."""

    def __init__(self, players: Sequence[M2Player]):
        super().__init__(players, fusion_key, "learning", _Objective)
        self._grads = torch.func.vmap(torch.func.grad(self._call, has_aux=True))

    def learn(
        self,
        batches: Sequence[Batch],
        streams: Sequence[Callable[[], AbstractContextManager]] | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """One step of every player on its batch; ``streams[i]()`` is the context (e.g. its
        ``RngStream.active``) under which player i's noise is drawn. Returns each player's loss
        and objectives, normalised by its total weight, as ``learn`` does."""
        players = self.players
        batches = [b.to(p.device) for p, b in zip(players, batches)]
        counts = [_counts(p, b) for p, b in zip(players, batches)]
        n_lab = max(c[0] for c in counts)
        n_unl = max(c[1] for c in counts)
        noises = []
        for i, (p, (nl, nu)) in enumerate(zip(players, counts)):
            with streams[i]() if streams else contextlib.nullcontext():
                noises.append(_pad_noise(draw_noise(p, nl, nu), n_lab, n_unl))
        splits = [split(p, b, n_lab, n_unl) for p, b in zip(players, batches)]
        params = _stacked_parameters(self._params, self._names)
        with pyro.validation_enabled(False):
            grads, (loss, elbo, aux) = self._grads(params, _stack(splits), _stack(noises))
        if not _one_adam_step(players, self._params, [grads[n] for n in self._names]):
            for i, p in enumerate(players):
                opt = p.optim
                opt.zero_grad(set_to_none=True)
                for param, g in zip(self._params[i], self._names):
                    param.grad = grads[g][i]
                opt.step()
        out = []
        for i, p in enumerate(players):
            terms = {"loss": loss[i], "elbo": elbo[i]}
            if p.aux_weight:
                terms["classifier"] = aux[i]
            out.append(terms)
        return out


_ADAM_KEYS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach")


def _one_adam_step(
    players: Sequence[M2Player],
    per_player: Sequence[Sequence[torch.Tensor]],
    grads: Sequence[torch.Tensor],
) -> bool:
    """Every player's Adam step in one (fused-kernel) call of ``torch.optim.adam.adam`` on the players' own
    optimiser states (created as ``torch.optim.Adam`` creates them), so that checkpoints hold what
    per-player steps would; False (nothing done) unless every optimiser is a plain Adam with one
    parameter group and the same settings."""
    opts = [p.optim for p in players]
    if any(type(o) is not torch.optim.Adam or len(o.param_groups) != 1 for o in opts):
        return False
    group = opts[0].param_groups[0]
    settings = {k: group.get(k) for k in _ADAM_KEYS}
    if any({k: o.param_groups[0].get(k) for k in _ADAM_KEYS} != settings for o in opts):
        return False
    if settings["amsgrad"] or settings["maximize"] or group.get("capturable"):
        return False
    # torch's fused kernel (CPU and CUDA): one pass over all players' tensors, about 3.5x faster
    # here than ``foreach``; equal to the players' own steps up to float rounding (tested)
    fused = next(iter(per_player[0])).device.type in ("cpu", "cuda")
    params, gs, avgs, sqs, steps = [], [], [], [], []
    for i, (own, opt) in enumerate(zip(per_player, opts)):
        for param, grad in zip(own, grads):
            state = opt.state[param]
            if not state:  # as torch.optim.Adam's first step makes it
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            if fused and state["step"].device != param.device:
                # the fused CUDA kernel wants its step counters beside the parameters (as a fused
                # torch.optim.Adam keeps them); a plain Adam step accepts them there too
                state["step"] = state["step"].to(param.device)
            param.grad = None
            params.append(param.data)
            gs.append(grad[i])
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
    beta1, beta2 = settings["betas"]
    adam(
        params,
        gs,
        avgs,
        sqs,
        [],
        steps,
        fused=fused,
        foreach=None if fused else True,
        amsgrad=False,
        beta1=beta1,
        beta2=beta2,
        lr=settings["lr"],
        weight_decay=settings["weight_decay"],
        eps=settings["eps"],
        maximize=False,
    )
    return True


def _counts(player: M2Player, batch: Batch) -> tuple[int, int]:
    lab = int(batch.observed_host(player.label).sum())
    return lab, len(batch) - lab
