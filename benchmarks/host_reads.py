"""Host reads per round: how often a game reads a tensor's value back, and from where.

A read (``item()``, ``tolist()``, ``bool()``, ``int()``, ``float()``, ``cpu()``, ``numpy()``) of a
CUDA tensor waits for the device: a synchronisation. On the CPU they cannot be told apart from
harmless reads, so every read is counted, each named by the innermost function of this project
(or of the library) that made it. M2 image players on bundled-MNIST shards, fused and one by one,
the loss and draw flags read every ``check_every`` rounds. With ``--device cuda`` the players live
on the GPU and the device synchronisations the profiler sees are counted too (``syncs_per_round``).
"""

from __future__ import annotations

import collections
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from benchmarks.common import check_device, parser, report
from benchmarks.round_overhead import build_game
from multimodal_game.game import Game

READS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy")
ROOT = Path(__file__).resolve().parents[1]
OURS = tuple(str(ROOT / d) for d in ("multimodal_game", "modalities", "datasets", "experiments"))


def _site(frame) -> str:
    """``file:function`` of the innermost frame of this project above ``frame`` (or ``frame``'s)."""
    inner = frame
    while frame is not None:
        if frame.f_code.co_filename.startswith(OURS):
            break
        frame = frame.f_back
    f = frame or inner
    name = Path(f.f_code.co_filename)
    where = name.relative_to(ROOT) if name.is_relative_to(ROOT) else name.name
    return f"{where}:{f.f_code.co_name}"


@contextlib.contextmanager
def counting() -> Iterator[collections.Counter]:
    """Count the tensor reads made inside the block, by site."""
    counts: collections.Counter = collections.Counter()
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def counted(name, original):
        def read(self, *args, **kwargs):
            counts[_site(sys._getframe(1))] += 1
            return original(self, *args, **kwargs)

        return read

    for name, original in saved.items():
        setattr(torch.Tensor, name, counted(name, original))
    try:
        yield counts
    finally:
        for name, original in saved.items():
            setattr(torch.Tensor, name, original)


SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpyAsync DtoH")


def count_cuda_syncs(fn: Callable[[], object]) -> int:
    """Host-device synchronisations (stream / device synchronise, copies to the host) that the
    profiler sees while ``fn`` runs; each one stalls the host until the GPU catches up."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if any(n in e.key for n in SYNCS))


def count_reads(game: Game, rounds: int) -> collections.Counter:
    """The reads of the game's next ``rounds`` rounds, by site."""
    with counting() as counts:
        for _ in range(rounds):
            game.step()
    return counts


def main(argv: list[str] | None = None) -> dict:
    ap = parser("host_reads", __doc__, device=True)
    ap.add_argument("--players", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--check-every", type=int, default=10)
    args = ap.parse_args(argv)
    check_device(args.device)
    if args.quick:
        args.rounds = 10
    out = {}
    for fuse in (False, True):
        for check_every in (1, args.check_every):
            game = build_game(args.players, args.batch, args.width, args.device, fuse=fuse)
            game.check_every = check_every
            game.run(3)  # optimiser states and cached architectures exist
            counts = count_reads(game, args.rounds)
            key = f"{'fused' if fuse else 'one_by_one'}_check_every_{check_every}"
            out[key] = {
                "reads_per_round": sum(counts.values()) / args.rounds,
                "by_site": {s: n / args.rounds for s, n in counts.most_common()},
            }
            if args.device == "cuda":
                syncs = count_cuda_syncs(lambda g=game: g.run(args.rounds))
                out[key]["syncs_per_round"] = syncs / args.rounds
    return report("host_reads", args, **out)


if __name__ == "__main__":
    main()
