"""Training the evaluation's independent classifiers: one by one, or stacked in one ``vmap``.

PolyMNIST experiments train one ``DigitClassifier`` per style before any game (the judges of
accuracy and coherence). They share an architecture, so their steps could be stacked as in the
PyTorch model-ensembling recipe (``torch.func.stack_module_state`` + ``vmap``, one Adam over the
stacked parameters); a third side runs each forward under bfloat16 autocast. Milliseconds per classifier-step, both alternated step by step, at one
thread and at every core.
"""

from __future__ import annotations

import copy
import statistics

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from benchmarks.common import alternate_times, paired_speedup, parser, report
from multimodal_game.judges import DigitClassifier


def one_by_one(
    models: list[nn.Module], x: torch.Tensor, y: torch.Tensor, batch: int, bf16: bool = False
):
    """Each model's Adam step in turn (``bf16``: its forward under bfloat16 autocast)."""
    optims = [torch.optim.Adam(m.parameters(), lr=2e-3) for m in models]

    def step() -> None:
        for k, (model, opt) in enumerate(zip(models, optims)):
            idx = torch.randint(x.shape[1], (batch,))
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(x[k, idx])
            loss = nn.functional.cross_entropy(logits.float(), y[k, idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return step


def stacked(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor, batch: int):
    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    opt = torch.optim.Adam(params.values(), lr=2e-3)
    rows = torch.arange(len(models))[:, None]

    def loss(p, b, xb, yb):
        return nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    def step() -> None:
        idx = torch.randint(x.shape[1], (len(models), batch))
        total = vmap(loss)(params, buffers, x[rows, idx], y[rows, idx]).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> dict:
    ap = parser("classifiers", __doc__)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 5
    torch.manual_seed(0)
    x = torch.rand(args.models, 2000, args.channels, 28, 28)
    y = torch.randint(10, (args.models, 2000))
    saved, rows = torch.get_num_threads(), []
    try:
        for threads in sorted({1, saved}):
            torch.set_num_threads(threads)
            models = [DigitClassifier(args.channels) for _ in range(args.models)]
            fns = [
                one_by_one(copy.deepcopy(models), x, y, args.batch),
                stacked(copy.deepcopy(models), x, y, args.batch),
                one_by_one(copy.deepcopy(models), x, y, args.batch, bf16=True),
            ]
            seq, vm, bf16 = alternate_times(fns, args.steps, warmup=2)
            per = 1000 / args.models
            rows.append(
                {
                    "threads": threads,
                    "one_by_one_ms_per_classifier_step": per * statistics.median(seq),
                    "vmap_ms_per_classifier_step": per * statistics.median(vm),
                    "vmap_speedup": paired_speedup(seq, vm),
                    "bf16_ms_per_classifier_step": per * statistics.median(bf16),
                    "bf16_speedup": paired_speedup(seq, bf16),
                }
            )
    finally:
        torch.set_num_threads(saved)
    return report("classifiers", args, rows=rows)


if __name__ == "__main__":
    main()
