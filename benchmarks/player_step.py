"""One learning step of the image-style (M2) player against the same loss written by hand.

The reference is the oracle ``benchmarks/oracle.py`` (also the tests' oracle): the player's
own networks and the same objective in plain PyTorch; the losses agree to rounding (tested).
Reported: the median step time of each and their ratio, for labelled, unlabelled and mixed batches;
and the cost of an unlabelled step against a labelled one, exact (every class enumerated) and with
the truncated guide (``enumerate_top``), the three alternated.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.common import alternate, parser, report
from benchmarks.oracle import reference_loss_checked
from datasets.mnist import load_mnist
from modalities import build_player
from modalities.m2 import M2Player
from multimodal_game.batch import Batch


def make_player(
    width: int = 16, hidden: int = 128, latent: int = 16, seed: int = 0, **options: Any
) -> M2Player:
    """An image player (``options``: more keys of its m2 spec, e.g. enumerate_top)."""
    torch.manual_seed(seed)
    spec = {
        "variables": [{"name": "m0", "recipe": "image", "width": width}],
        "latent": latent,
        "hidden": hidden,
        **options,
    }
    player = build_player(spec)
    player.check_inputs = False  # the step as a game's host runs it (its data checked once)
    return player


def make_batch(n: int, kind: str, seed: int = 0) -> Batch:
    """``kind``: labelled, unlabelled or mixed (half each); bundled MNIST images."""
    x, y = load_mnist("bundled", "train")
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(y), (n,), generator=g)
    present = {"labelled": torch.ones(n), "unlabelled": torch.zeros(n)}.get(kind)
    if present is None:
        present = torch.arange(n) < n // 2
    return Batch({"label": y[rows], "m0": x[rows, None].float() / 255}, {"label": present.bool()})


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
    ap.add_argument(
        "--enumerate-top", type=int, default=2, help="classes the truncated guide keeps"
    )
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
    lab, unl = make_batch(args.batch, "labelled"), make_batch(args.batch, "unlabelled")
    exact, top = make_player(args.width), make_player(args.width, enumerate_top=args.enumerate_top)
    t_lab, t_exact, t_top = alternate(
        [lambda: exact.learn(lab), lambda: exact.learn(unl), lambda: top.learn(unl)],
        args.steps,
        args.warmup,
    )
    cost = {
        "labelled_step_s": round(t_lab, 5),
        "unlabelled_exact_step_s": round(t_exact, 5),
        "unlabelled_top_step_s": round(t_top, 5),
        "exact_over_labelled": round(t_exact / t_lab, 3),
        "top_over_labelled": round(t_top / t_lab, 3),
    }
    return report(
        "player_step", args, target_ratio=1.15, runs=runs, unlabelled_cost=cost, target_cost=2.0
    )


if __name__ == "__main__":
    main()
