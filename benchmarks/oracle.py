"""Test oracle: the M2 player's objective written by hand in plain PyTorch.

It uses the player's networks through their public pieces (``encode``, ``c_logits``, ``q_z``,
``decode``) and computes -ELBO and the classifier term directly: labelled rows
-log p(c) p(z) p(x | z, c) / q(z | x, c); unlabelled rows the exact expectation over q(c | x) of the
same with -log q(c | x); plus aux_weight x -log q(c | x) on labelled rows; divided by the total
weight. With the same random state it draws the same z as the Pyro player. Also used by
``benchmarks.player_step`` as the hand-written step it times against.
"""

from __future__ import annotations

import pyro
import torch
from torch.distributions import Normal

from modalities.m2 import M2Player
from multimodal_game.batch import Batch


def reference_loss(p: M2Player, batch: Batch) -> torch.Tensor:
    feats = p.encode(batch)
    logits = p.c_logits(batch, feats)
    log_prior = torch.log_softmax(p.prior_logits, -1)
    lab = batch.observed(p.label)
    total = feats.z.new_zeros(())
    for part, rows in (("lab", lab), ("unl", ~lab)):
        idx = rows.nonzero().flatten()
        if len(idx) == 0:
            continue
        w = batch.weight[idx]
        # labelled: the observed class (n,); unlabelled: every class (k, 1), enumerated
        c = batch[p.label][idx] if part == "lab" else torch.arange(p.k)[:, None]
        qz = p.q_z(feats.z[idx], c)  # batch shape (n,) or (k, n)
        z = qz.rsample()
        term = Normal(0.0, 1.0).log_prob(z).sum(-1) - qz.log_prob(z)
        names = [v for v in p.recipes if v in batch.data]
        for name, emission in p.decode(c.expand(z.shape[:-1]), z, names).items():
            term = (
                term
                + emission.distribution().log_prob(batch[name][idx]) * batch.observed(name)[idx]
            )
        if part == "lab":
            term = term + log_prior[c]
        else:
            logq = torch.log_softmax(logits[idx], -1).T  # (k, n)
            term = (logq.exp() * (term + log_prior[:, None] - logq)).sum(0)
        total = total - (w * term).sum()
    if p.aux_weight:
        has_data = torch.stack([batch.observed(v) for v in p.recipes if v in batch.data]).any(0)
        logq_c = torch.log_softmax(logits, -1).gather(1, batch[p.label][:, None])[:, 0]
        total = total - p.aux_weight * (batch.weight * (lab & has_data) * logq_c).sum()
    return total / batch.weight.sum()


def reference_loss_checked(p: M2Player, batch: Batch) -> torch.Tensor:
    with pyro.validation_enabled(False):  # soft [0, 1] pixel targets, as in the player
        return reference_loss(p, batch)
