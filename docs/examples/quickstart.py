"""Quickstart: two players learn digits together by exchanging synthetic (label, image) pairs.

Run from the repository root: python docs/examples/quickstart.py [rounds]
"""

import sys

import torch

from datasets.mnist import load_mnist
from modalities import build_player
from multimodal_game import Batch, Game, OwnPlusPartners, Progress, TensorSource
from multimodal_game.evaluation import accuracy

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
x, y = load_mnist("bundled", "train")
x = x[:, None].float() / 255
spec = {"variables": [{"name": "x", "recipe": "image", "width": 8}], "latent": 8, "hidden": 64}

# Player a holds digits 0-4, player b digits 5-9; a tenth of each shard is labelled.
sources = {}
for name, digits in (("a", y < 5), ("b", y >= 5)):
    rows = digits.nonzero().flatten()[:1000]
    labelled = torch.arange(len(rows)) % 10 == 0
    sources[name] = TensorSource(Batch({"label": y[rows], "x": x[rows]}, {"label": labelled}))

torch.manual_seed(0)
players = {"a": build_player(spec), "b": build_player(spec)}
game = Game(
    players, OwnPlusPartners(own_weight=0.5), sources, batch_size=64, warmup_rounds=rounds // 4
)
Progress("quickstart", every=max(1, rounds // 4)).attach(game)
game.run(rounds)

xt, yt = load_mnist("bundled", "test")
for name, player in game.players.items():  # handles: sample and infer where the player lives
    acc = accuracy(player, {"x": xt[:, None].float() / 255}, yt)
    samples = player.sample(10, given=Batch({"label": torch.arange(10)}))
    print(
        f"player {name}: test accuracy on all ten digits {acc:.3f}; samples {tuple(samples['x'].shape)}"
    )
