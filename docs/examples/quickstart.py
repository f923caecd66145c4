"""Quickstart: two players learn digits together by exchanging synthetic (label, image) pairs.

Run from the repository root: python docs/examples/quickstart.py [rounds]
The README's "Python API" section is this file from its imports on (a test keeps them equal).
"""

import sys

import torch

from datasets.mnist import load_mnist
from modalities import build_player
from multimodal_game import Batch, Checkpointer, Game, OwnPlusPartners, Progress, TensorSource
from multimodal_game.evaluation import accuracy

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
x, y = load_mnist("bundled", "train")  # uint8 (N, 28, 28) digits and int64 labels
x = x[:, None].float() / 255  # images are float (N, C, H, W) in [0, 1]; others are an error

# Player a holds digits 0-4, player b digits 5-9; a tenth of each shard is labelled: the
# presence mask marks which labels a player observes (the others are enumerated, as in M2).
sources = {}
for name, digits in (("a", y < 5), ("b", y >= 5)):
    rows = digits.nonzero().flatten()[:1000]
    labelled = torch.arange(len(rows)) % 10 == 0
    batch = Batch({"label": y[rows], "x": x[rows]}, present={"label": labelled})
    sources[name] = TensorSource(batch, "label", 0.25)  # every draw at least 1/4 labelled

# A player is a Pyro M2 model built from a plain spec; the seed fixes its initial parameters.
spec = {"variables": [{"name": "x", "recipe": "image", "width": 8}], "latent": 8, "hidden": 64}
players = {name: build_player(spec, seed=k) for k, name in enumerate(sources)}
# own data weighs 1/2, the partner's synthetic pairs the other 1/2, after rounds/4 rounds alone
policy = OwnPlusPartners(own_weight=0.5)
game = Game(players, policy, sources, batch_size=64, seed=0, warmup_rounds=rounds // 4)
Progress("quickstart", every=max(1, rounds // 4)).attach(game)
Checkpointer("runs/quickstart/game.ckpt").attach(game, every=rounds)  # game.load(path) resumes
game.run(rounds)

xt, yt = load_mnist("bundled", "test")
for name, player in game.players.items():  # handles: sample and infer where the player lives
    acc = accuracy(player, {"x": xt[:, None].float() / 255}, yt)
    samples = player.sample(10, given=Batch({"label": torch.arange(10)}))
    print(f"player {name}: test accuracy {acc:.3f}; samples {tuple(samples['x'].shape)}")
