"""Semi-supervised MNIST with the image-style (M2) player on the bundled 8k/2k split.

For each labelled count: the M2 player trained on labelled + unlabelled data for a time budget, and a
purely supervised classifier (the player's own q(c | x) network, cross-entropy on the labels only)
for the same budget. Prints JSON with test accuracies and wall times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import emit
from datasets.mnist import load_bundled
from datasets.shards import labelled_mask
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.device import resolve_device


def spec(width: int, latent: int, hidden: int, lr: float, aux: float, top: int = 0) -> dict:
    return {
        "variables": [
            {
                "name": "m0",
                "recipe": "image",
                "channels": 1,
                "width": width,
                "likelihood": "bernoulli",
            }
        ],
        "latent": latent,
        "hidden": hidden,
        "lr": lr,
        "aux_weight": aux,
        "enumerate_top": top,
    }


@torch.no_grad()
def accuracy(player, x, y, device) -> float:
    correct = 0
    for i in range(0, len(x), 500):
        b = Batch({"m0": x[i : i + 500].to(device)})
        correct += (player.infer("label", b).argmax(-1).cpu() == y[i : i + 500]).sum().item()
    return correct / len(x)


def run_one(n_labels: int, args, device) -> list[dict]:
    """One row per method (M2, supervised) with ``n_labels`` labels: accuracy, steps, seconds."""
    xtr, ytr = load_bundled("train")
    xte, yte = load_bundled("test")
    xtr = xtr[:, None].float().div(255).to(device)
    xte = xte[:, None].float().div(255)
    lab = labelled_mask(ytr, torch.arange(len(ytr)), n_labels, seed=args.seed)
    li, ui = lab.nonzero().flatten(), (~lab).nonzero().flatten()
    g = torch.Generator().manual_seed(args.seed)
    out = []
    for method in ("m2", "supervised"):
        seconds = args.seconds if method == "m2" else args.supervised_seconds
        torch.manual_seed(args.seed)
        p = build_player(
            spec(args.width, args.latent, args.hidden, args.lr, args.aux, args.enumerate_top)
        ).to(device)
        p.check_inputs = False  # the step as a game's host runs it (its data checked once)
        t0, steps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            bl = li[torch.randint(len(li), (args.batch // 2,), generator=g)]
            if method == "m2":
                bu = ui[torch.randint(len(ui), (args.batch // 2,), generator=g)]
                rows = torch.cat([bl, bu])
                present = torch.arange(len(rows)) < len(bl)
                p.learn(
                    Batch(
                        {"label": ytr[rows].to(device), "m0": xtr[rows]},
                        {"label": present.to(device)},
                    )
                )
            else:
                logits = p.c_logits(Batch({"m0": xtr[bl]}))
                loss = F.cross_entropy(logits, ytr[bl].to(device))
                p.optim.zero_grad()
                loss.backward()
                p.optim.step()
            steps += 1
        out.append(
            {
                "labels": n_labels,
                "method": method,
                "test_accuracy": accuracy(p, xte, yte, device),
                "steps": steps,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ssl_mnist", description=__doc__)
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument(
        "--seconds", type=float, default=300.0, help="M2 training budget per labelled count"
    )
    p.add_argument(
        "--supervised-seconds",
        type=float,
        default=60.0,
        help="budget of the supervised baseline (it converges in far fewer steps)",
    )
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--aux", type=float, default=50.0)
    p.add_argument(
        "--enumerate-top",
        type=int,
        default=2,
        help="M2's truncated guide: classes enumerated per unlabelled example (0 = all, exact; 2, "
        "the experiments' quick default, takes about twice the steps in the same time)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    res = {
        "benchmark": "ssl_mnist",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "config": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "runs": [row for n in args.labels for row in run_one(n, args, device)],
    }
    return emit(res, args.out)


if __name__ == "__main__":
    main()
