"""A game round against the sum of each player's standalone sample + learn on the same batches.

Three M2 image players on bundled-MNIST shards, alpha uniform. The standalone side calls
``player.sample`` and ``player.learn`` directly on batches assembled beforehand (the same sizes and
composition as the game's), so the ratio is what the game's bookkeeping adds: plans, one shared
draw per producer, projection, merging, per-player random streams.
"""

from __future__ import annotations

from functools import partial

import torch

from benchmarks.common import alternate, parser, report
from benchmarks.runtime import build_mnist_host
from multimodal_game.batch import Batch
from multimodal_game.game import Game
from multimodal_game.host import HostSpec


def build_game(n: int, batch: int, width: int, device: str = "cpu", fuse: bool = False) -> Game:
    specs = [HostSpec(f"p{k}", partial(build_mnist_host, k, n, width), k, device) for k in range(n)]
    alpha = torch.full((n, n), 1.0 / n, dtype=torch.float64)
    options = {"fuse_players": True} if fuse else None
    return Game.from_specs(specs, alpha, batch_size=batch, runtime_options=options)


def standalone_round(game: Game, own: dict[str, Batch]) -> None:
    """What the players do in a round, called directly: sample once, learn once each."""
    players = game.runtime.local_players
    plan = game.plan()
    draws = {
        j: players[j].sample(max(t.count for t in plan.requests_for(j))) for j in plan.producers
    }
    for name in game.names:
        learn = plan.learn[name]
        parts, weights = [own[name]], [learn.own_weight]
        for t in learn.transfers:
            parts.append(draws[t.producer].head(t.count).project(t.variables))
            weights.append(t.weight)
        players[name].learn(Batch.merge(parts, weights))


def compare(game: Game, steps: int, warmup: int) -> tuple[float, float]:
    """Median seconds of a game round and of the same work called directly (standalone_round)."""
    g = torch.Generator().manual_seed(0)
    own = {
        n: game.runtime.hosts[n].source.draw(game.plan().learn[n].own_count, g) for n in game.names
    }
    return tuple(alternate([game.step, lambda: standalone_round(game, own)], steps, warmup))


def main(argv: list[str] | None = None) -> dict:
    ap = parser("round_overhead", __doc__)
    ap.add_argument("--players", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 8, 2
    game = build_game(args.players, args.batch, args.width)
    tg, ta = compare(game, args.steps, args.warmup)
    return report(
        "round_overhead",
        args,
        game_round_s=round(tg, 5),
        standalone_sum_s=round(ta, 5),
        ratio=round(tg / ta, 3),
        target_ratio=1.05,
    )


if __name__ == "__main__":
    main()
