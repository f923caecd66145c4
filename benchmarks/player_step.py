"""One learning step of the image-style (M2) player against the same loss written by hand.

The reference uses the player's own networks and computes the same objective in plain PyTorch:
labelled rows -log p(c) p(z) p(x | z, c) / q(z | x, c); unlabelled rows the exact expectation over
q(c | x) of the same with -log q(c | x); the auxiliary term; divided by the total weight. With the
same random state both draw the same z, so the losses agree to rounding (tested). Reported: the
median step time of each and their ratio, for labelled, unlabelled and mixed batches.
"""

from __future__ import annotations

import torch
from torch.distributions import Normal

from benchmarks.common import alternate, parser, report
from datasets.mnist import load_mnist
from modalities import build_player
from modalities.m2 import M2Player
from multimodal_game.batch import Batch


def make_player(width: int = 16, hidden: int = 128, latent: int = 16, seed: int = 0) -> M2Player:
    torch.manual_seed(seed)
    spec = {
        "variables": [{"name": "m0", "recipe": "image", "width": width}],
        "latent": latent,
        "hidden": hidden,
    }
    return build_player(spec)


def make_batch(n: int, kind: str, seed: int = 0) -> Batch:
    """``kind``: labelled, unlabelled or mixed (half each); bundled MNIST images."""
    x, y = load_mnist("bundled", "train")
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(y), (n,), generator=g)
    present = {"labelled": torch.ones(n), "unlabelled": torch.zeros(n)}.get(kind)
    if present is None:
        present = torch.arange(n) < n // 2
    return Batch({"label": y[rows], "m0": x[rows, None].float() / 255}, {"label": present.bool()})


def reference_loss(p: M2Player, batch: Batch) -> torch.Tensor:
    """The player's objective written directly in PyTorch (same networks, same draw order)."""
    h = p._pool(p.encoders, batch)
    logits = p.classifier(p._pool(p.c_encoders, batch) if p.c_encoders is not None else h)
    log_prior = torch.log_softmax(p.prior_logits, -1)
    lab = batch.observed(p.label)
    total = h.new_zeros(())
    for part, rows in (("lab", lab), ("unl", ~lab)):
        idx = rows.nonzero().flatten()
        if len(idx) == 0:
            continue
        w, hp = batch.weight[idx], h[idx]
        # labelled: the observed class (n,); unlabelled: every class (k, 1), enumerated
        c = batch[p.label][idx] if part == "lab" else torch.arange(p.k, device=h.device)[:, None]
        qz = p._q_z(hp, c)  # batch shape (n,) or (k, n)
        z = qz.rsample()
        term = Normal(0.0, 1.0).log_prob(z).sum(-1) - qz.log_prob(z)
        for name, r in p.recipes.items():
            if name not in batch.data:
                continue
            cc = c.expand(z.shape[:-1])
            lp = r.distribution(p._decode(name, z, cc), p.decoders[name]).log_prob(batch[name][idx])
            term = term + lp * batch.observed(name)[idx]
        if part == "lab":
            term = term + log_prior[c]
        else:
            logq = torch.log_softmax(logits[idx], -1).T  # (k, n)
            term = (logq.exp() * (term + log_prior[:, None] - logq)).sum(0)
        total = total - (w * term).sum()
    aux = p.extra_loss(batch) if p.aux_weight else None
    if aux is not None:
        total = total + aux
    return total / batch.weight.sum()


def reference_loss_checked(p: M2Player, batch: Batch) -> torch.Tensor:
    import pyro

    with pyro.validation_enabled(False):  # soft [0, 1] pixel targets, as in the player
        return reference_loss(p, batch)


def step_reference(p: M2Player, batch: Batch, opt: torch.optim.Optimizer) -> torch.Tensor:
    loss = reference_loss_checked(p, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def main(argv: list[str] | None = None) -> dict:
    ap = parser("player_step", __doc__)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 8, 2
    runs = []
    for kind in ("labelled", "unlabelled", "mixed"):
        batch = make_batch(args.batch, kind)
        pyro_p, ref_p = make_player(args.width), make_player(args.width)
        ref_opt = torch.optim.Adam(ref_p.parameters(), lr=ref_p.lr)
        t_pyro, t_ref = alternate(
            [
                lambda p=pyro_p, b=batch: p.learn(b),
                lambda p=ref_p, b=batch, o=ref_opt: step_reference(p, b, o),
            ],
            args.steps,
            args.warmup,
        )
        runs.append(
            {
                "batch": kind,
                "pyro_step_s": round(t_pyro, 5),
                "reference_step_s": round(t_ref, 5),
                "ratio": round(t_pyro / t_ref, 3),
            }
        )
    return report("player_step", args, target_ratio=1.15, runs=runs)


if __name__ == "__main__":
    main()
