"""In-process vs Ray runtime: start-up time and round time for 2 and 4 image players.

Players are small M2 players over one MNIST image variable and the label (bundled data, one iid
shard each), alpha uniform. Start-up = building the game (and, for Ray, starting the local Ray and
one actor per player); round time = median of timed rounds after warm-up rounds.
"""

from __future__ import annotations

import statistics
import time
from functools import partial

import torch

from benchmarks.common import parser, report
from datasets.mnist import load_mnist
from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.game import Game
from multimodal_game.host import HostSpec
from multimodal_game.rng import derive_seed
from multimodal_game.sources import TensorSource


def build_mnist_host(k: int, n_players: int, width: int) -> tuple:
    """Player k and its shard (every n-th training image), built inside the host's process."""
    x, y = load_mnist("bundled", "train")
    rows = torch.arange(k, len(y), n_players)
    data = Batch({"label": y[rows], "m0": x[rows, None].float() / 255})
    spec = {
        "variables": [{"name": "m0", "recipe": "image", "width": width}],
        "latent": 8,
        "hidden": 64,
    }
    return build_player(spec), TensorSource(data)


def measure(runtime: str, n: int, args) -> dict:
    specs = [
        HostSpec(
            f"p{k}",
            partial(build_mnist_host, k, n, args.width),
            derive_seed(0, k),
            num_cpus=args.num_cpus,
        )
        for k in range(n)
    ]
    alpha = torch.full((n, n), 1.0 / n, dtype=torch.float64)
    t0 = time.perf_counter()
    game = Game.from_specs(specs, alpha, runtime=runtime, batch_size=args.batch)
    startup = time.perf_counter() - t0
    try:
        for _ in range(args.warmup):
            game.step()
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            game.step()
            times.append(time.perf_counter() - t)
    finally:
        t = time.perf_counter()
        game.close()
        shutdown = time.perf_counter() - t
    med = statistics.median(times)
    return {
        "runtime": runtime,
        "players": n,
        "startup_s": round(startup, 3),
        "shutdown_s": round(shutdown, 3),
        "round_s": round(med, 4),
        "round_per_player_s": round(med / n, 4),
    }


def main(argv: list[str] | None = None) -> dict:
    p = parser("runtime", __doc__)
    p.add_argument("--players", type=int, nargs="+", default=[2, 4])
    p.add_argument("--runtimes", nargs="+", default=["inprocess", "ray"])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=8)
    p.add_argument(
        "--num-cpus", type=float, help="Ray CPUs reserved per player (default: an equal share)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup = 8, 2
    runs = []
    for runtime in args.runtimes:
        if runtime == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                runs.append({"runtime": "ray", "skipped": "ray is not installed"})
                continue
        for n in args.players:
            runs.append(measure(runtime, n, args))
    return report("runtime", args, runs=runs)


if __name__ == "__main__":
    main()
