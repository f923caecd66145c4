"""A tiny semi-supervised Pyro player (Gaussian mixture with a learnt classifier) for core tests."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from multimodal_game.batch import Batch
from multimodal_game.player import PyroPlayer, weighted_plate
from multimodal_game.spaces import Space, categorical, real


class MixturePlayer(PyroPlayer):
    """p(c) p(x | c) with x ~ N(mu_c, 1); guide q(c | x) is a linear classifier (enumerated)."""

    def __init__(self, k: int = 3, d: int = 2, lr: float = 0.05, learning: str = "elbo"):
        super().__init__(Space([categorical("label", k), real("x", d)]), lr=lr, learning=learning)
        self.k, self.d = k, d
        self.prior_logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter(torch.randn(k, d))
        self.classifier = nn.Linear(d, k)

    def model(self, batch: Batch | None, n: int | None = None):
        if batch is None:
            with weighted_plate("unl", torch.ones(n)):
                c = pyro.sample("c_unl", dist.Categorical(logits=self.prior_logits))
                x = pyro.sample("x_unl", dist.Normal(self.means[c], 1.0).to_event(1))
            return {"label": c, "x": x}
        lab = batch.observed("label")
        for part, rows in (("lab", lab), ("unl", ~lab)):
            if not bool(rows.any()):
                continue
            x, xp = batch["x"][rows], batch.observed("x")[rows]
            with weighted_plate(part, batch.weight[rows]):
                c = pyro.sample(
                    f"c_{part}",
                    dist.Categorical(logits=self.prior_logits),
                    obs=batch["label"][rows] if part == "lab" else None,
                )
                with poutine.mask(mask=xp):
                    pyro.sample(f"x_{part}", dist.Normal(self.means[c], 1.0).to_event(1), obs=x)

    def guide(self, batch: Batch) -> None:
        rows = ~batch.observed("label")
        if not bool(rows.any()):
            return
        with weighted_plate("unl", batch.weight[rows]):
            pyro.sample(
                "c_unl",
                dist.Categorical(logits=self.classifier(batch["x"][rows])),
                infer={"enumerate": "parallel"},
            )

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        c = dist.Categorical(logits=self.prior_logits).sample((n,))
        x = dist.Normal(self.means[c], 1.0).sample()
        return Batch({"label": c, "x": x})

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        return torch.softmax(self.classifier(given["x"]), -1)


def mixture_data(n: int, k: int = 3, d: int = 2, labelled: float = 0.3, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    centres = torch.arange(k, dtype=torch.float32)[:, None] * 4.0 * torch.ones(k, d)
    c = torch.randint(k, (n,), generator=g)
    x = centres[c] + torch.randn(n, d, generator=g)
    present = torch.rand(n, generator=g) < labelled
    return Batch({"label": torch.where(present, c, 0), "x": x}, {"label": present})


def params_of(player) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in player.named_parameters()}


def build_mixture_host(data_seed: int) -> tuple:
    """A HostSpec builder: the player and its private shard, made inside the host's process."""
    from multimodal_game.sources import TensorSource

    return MixturePlayer(), TensorSource(mixture_data(100, seed=data_seed))


def build_image_host(i: int, width: int = 2) -> tuple:
    """A HostSpec builder: an M2 image player (bundled MNIST, 20 of its 100 rows labelled)."""
    from datasets.mnist import load_mnist
    from modalities import build_player
    from multimodal_game.sources import TensorSource

    x, y = load_mnist("bundled", "train")
    spec = {
        "variables": [{"name": "x", "recipe": "image", "width": width}],
        "latent": 3,
        "hidden": 16,
    }
    rows = slice(100 * i, 100 * i + 100)
    present = {"label": torch.arange(100) < 20}
    data = Batch({"label": y[rows], "x": x[rows, None].float() / 255}, present)
    return build_player(spec), TensorSource(data)


def build_label_host() -> tuple:
    from multimodal_game.expfam import CategoricalPlayer
    from multimodal_game.sources import TensorSource

    return CategoricalPlayer(3), TensorSource(Batch({"label": torch.tensor([0, 1, 2, 2])}))


def three_player_specs(seed: int = 0) -> list:
    from functools import partial

    from multimodal_game.host import HostSpec
    from multimodal_game.rng import derive_seed

    builders = {
        "p0": partial(build_mixture_host, 1),
        "p1": partial(build_mixture_host, 2),
        "labels": build_label_host,
    }
    # fractional CPUs: three actors fit on a 2-core machine
    return [
        HostSpec(n, b, derive_seed(seed, k), num_cpus=0.5)
        for k, (n, b) in enumerate(builders.items())
    ]


THREE_ALPHA = [[0.5, 0.3, 0.2], [0.3, 0.5, 0.2], [0.25, 0.25, 0.5]]


def user_error(capsys, main, argv) -> str:
    """Run ``main(argv)``, expect the one-line user error (exit status 2), return stderr."""
    import pytest

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def image_spec(width: int = 2) -> dict:
    """The smallest M2 image player's spec (28 x 28 grey images)."""
    return {
        "variables": [{"name": "x", "recipe": "image", "width": width}],
        "latent": 2,
        "hidden": 8,
    }


def image_data(n: int, seed: int) -> Batch:
    """``n`` random grey images with labels 0-9 in turn, every other one labelled."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return Batch({"label": torch.arange(n) % 10, "x": x}, {"label": torch.arange(n) % 2 == 0})


def fused_against_one_by_one(players, batches, steps: int, rtol: float, atol: float):
    """``steps`` fused steps of ``players`` (a ``FusedM2Step``) beside the one-by-one steps of
    copies, each player on its batch and its own random stream; every loss and objective compared
    within (rtol, atol). Returns the copies and both sets of streams."""
    import copy

    from modalities.m2_fused import FusedM2Step
    from multimodal_game.rng import RngStream

    device = players[0].device
    alone = [copy.deepcopy(p) for p in players]
    fused_streams = [RngStream(i, device) for i in range(len(players))]
    own_streams = [RngStream(i, device) for i in range(len(players))]
    fused = FusedM2Step(players)
    for _ in range(steps):
        out = fused.learn(batches, [s.active for s in fused_streams])
        for p, b, s, o in zip(alone, batches, own_streams, out):
            with s.active():
                ref = p.learn(b)
            assert o.keys() == ref.keys()
            for k in ref:  # the loss and each objective (elbo, classifier, consistency)
                assert torch.allclose(o[k], ref[k], rtol=rtol, atol=atol), (k, o[k], ref[k])
    return alone, fused_streams, own_streams


def three_batches(n: int = 24) -> list[Batch]:
    """Three batches of bundled MNIST digits, all labelled, none and half, with uneven weights."""
    from benchmarks.player_step import make_batch

    kinds = ("labelled", "unlabelled", "mixed")
    return [
        Batch(b.data, b.present, torch.rand(n) + 0.5)
        for b in (make_batch(n, k, seed=i) for i, k in enumerate(kinds))
    ]
