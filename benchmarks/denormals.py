"""A trained player's step with subnormal floats computed, or flushed to zero.

As an image player trains, values in its learning step fall into float32's subnormal range (below
1.2e-38), where the CPU computes many times slower; on a polymnist_paper player they arise inside
the backward pass (its parameters, their gradients, the optimiser state and the modules' outputs
hold none). ``multimodal_game.device.flush_denormals(True)`` treats them as zero on every CPU
thread (the experiments' default, ``flush_denormals``). This benchmark loads a player from a
polymnist_paper checkpoint (``--checkpoint RUN/base.ckpt``; ``--player`` names it), builds a batch
of real PolyMNIST images as the experiment pools them, and times the player's learning step with
flushing off and on, alternated step by step, beside a freshly initialised player of the same spec,
at one thread and at every core. Reported: the median steps and the paired speed-up with its 95%
interval.
"""

from __future__ import annotations

import copy
import statistics

import torch

from benchmarks.common import alternate_times, parser, report, speedup_fields
from multimodal_game.device import flush_denormals


def _player(checkpoint: str, name: str):
    from modalities import build_player
    from multimodal_game.checkpoint import load_checkpoint

    host = load_checkpoint(checkpoint)["hosts"][name]
    spec = copy.deepcopy(host["spec"])
    fresh, trained = build_player(copy.deepcopy(spec)), build_player(spec)
    fresh.check_inputs = trained.check_inputs = False  # the step as a game's host runs it
    trained.load_state_dict(host["player"]["module"])
    trained.optim.load_state_dict(host["player"]["optim"])
    return fresh, trained


def _batch(data: str, n: int, variables: set[str]):
    from datasets import polymnist
    from experiments.polymnist_paper.run import pooled
    from multimodal_game.batch import Batch

    b = pooled(polymnist.load(data, "train"), torch.arange(n))
    b = b.index(torch.randperm(len(b), generator=torch.Generator().manual_seed(0))[:n])
    data_ = {k: v for k, v in b.data.items() if k in variables}
    return Batch(data_, {"label": torch.ones(n, dtype=torch.bool)})


def _stepper(player, batch, flush: bool):
    def step() -> None:
        flush_denormals(flush)  # on every CPU thread, as a run sets it
        player.learn(batch)

    return step


def main(argv: list[str] | None = None) -> dict:
    ap = parser("denormals", __doc__)
    ap.add_argument("--checkpoint", required=True, help="a polymnist_paper checkpoint (.ckpt)")
    ap.add_argument("--player", default="main", help="the player's name in the checkpoint")
    ap.add_argument("--data", default="data/polymnist-bundled", help="generated PolyMNIST folder")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 5
    fresh, trained = _player(args.checkpoint, args.player)
    batch = _batch(args.data, args.batch, set(trained.recipes) | {trained.label})
    rows, saved = [], torch.get_num_threads()
    try:
        for threads in sorted({1, saved}):
            torch.set_num_threads(threads)
            for name, player in (("trained", trained), ("fresh", fresh)):
                off, on = (copy.deepcopy(player) for _ in range(2))
                t_off, t_on = alternate_times(
                    [_stepper(off, batch, False), _stepper(on, batch, True)], args.steps, 2
                )
                rows.append(
                    {
                        "threads": threads,
                        "player": name,
                        "step_s_subnormals": round(statistics.median(t_off), 4),
                        "step_s_flushed": round(statistics.median(t_on), 4),
                        **speedup_fields(t_off, t_on),
                    }
                )
    finally:
        flush_denormals(False)  # every thread computes subnormals again
        torch.set_num_threads(saved)
    return report("denormals", args, runs=rows)


if __name__ == "__main__":
    main()
