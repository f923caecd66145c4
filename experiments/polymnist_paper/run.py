"""The body of ``experiments.polymnist_paper`` (see there for the set-up): loaded once a run starts, so
that ``--help`` answers without importing torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datasets import polymnist
from datasets.mnist import load_mnist
from datasets.shards import labelled_mask
from modalities import build_player
from modalities.specs import M2Spec, VariableSpec
from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError
from multimodal_game.evaluation import accuracy, save_grid
from multimodal_game.host import builders
from multimodal_game.sources import TensorSource

from ..common import Run, preflight, with_overrides
from ..polymnist_cross.run import check_data, data_root  # noqa: F401  (check_data: the folder)


def mask_variable(cfg: dict) -> VariableSpec:
    width = cfg["player"]["variables"][0]["width"]
    return VariableSpec(name="s", recipe="digit_mask", width=width)


def main_spec(cfg: dict, with_mask: bool) -> dict:
    player = M2Spec.model_validate(cfg["player"])
    if with_mask:
        update: dict = {"variables": [*player.variables, mask_variable(cfg)]}
        if cfg["complete_mask"]:  # s inferred from x: completed in learning, Gibbs at test time
            update |= {"complete": ["s"], "complete_sweeps": cfg["gibbs_sweeps"]}
        player = player.model_copy(update=update)
    return with_overrides("main", player.model_dump(), cfg)


def mnist_spec(cfg: dict) -> dict:
    """The main player's sizes over the mask alone (the weight of -log q(c|s): the default)."""
    default_aux = M2Spec.model_fields["aux_weight"].default
    update = {"variables": [mask_variable(cfg)], "aux_weight": default_aux}
    player = M2Spec.model_validate(cfg["player"]).model_copy(update=update)
    return with_overrides("mnist", player.model_dump(), cfg)


def check(cfg: dict) -> None:
    """Both players' specs and the synthetic_cs alpha, before any data is read."""
    a = cfg["alpha_own"]
    specs = {"main": main_spec(cfg, True), "mnist": mnist_spec(cfg)}
    preflight(cfg, (specs, [[a, 1 - a], [0.0, 1.0]]), ({"main": main_spec(cfg, False)}, None))


def pooled(data: dict, rows: torch.Tensor | None = None) -> Batch:
    """Every (tuple, style) pair as one example: x, style, label, s."""
    imgs, masks, labels = data["images"], data["digit_masks"], data["labels"]
    if rows is not None:
        imgs, masks, labels = imgs[rows], masks[rows], labels[rows]
    n, m = imgs.shape[:2]
    return Batch(
        {
            "x": imgs.reshape(n * m, *imgs.shape[2:]).float() / 255,
            "style": torch.arange(m).repeat(n),
            "label": labels.repeat_interleave(m),
            "s": masks.reshape(n * m, 1, 28, 28).float(),
        }
    )


def build_main(cfg: dict, seed: int, variant: str) -> tuple:
    """The main player and its private data (built where it lives)."""
    train = polymnist.load(data_root(cfg), "train")
    b = pooled(train)
    perm = torch.randperm(len(b), generator=torch.Generator().manual_seed(seed))
    if cfg["examples"]:
        perm = perm[: cfg["examples"]]
    b = b.index(perm)
    lab = labelled_mask(
        b["label"], torch.arange(len(b)), fraction=cfg["labelled_fraction"], seed=seed
    )
    present = {"label": lab}
    data = dict(b.data)
    if variant in ("base", "discriminative"):
        del data["s"]
    elif variant == "real_cs":
        # q(c | ...) pools the features of the variables present and is evaluated from x and the
        # style without s, so half of the examples show it those without s
        g = torch.Generator().manual_seed(seed + 1)
        present["s"] = torch.rand(len(b), generator=g) < 0.5
    elif variant == "synthetic_cs":
        present["s"] = torch.zeros(len(b), dtype=torch.bool)  # the player has no real masks
    elif variant == "real_cs_unpaired":
        # the images without their masks, and as many real MNIST (label, mask) rows, unpaired
        present["s"] = torch.zeros(len(b), dtype=torch.bool)
        own = Batch(data, present)
        cs = mnist_pairs(cfg)
        mixed = Batch.merge([own, cs])
        spec = main_spec(cfg, True)
        return build_player(spec), TensorSource(mixed, stratify_on="s", min_observed_fraction=0.5)
    with_mask = variant not in ("base", "discriminative")
    return build_player(main_spec(cfg, with_mask)), TensorSource(Batch(data, present))


def mnist_pairs(cfg: dict) -> Batch:
    """Real (label, digit mask) pairs of MNIST training digits."""
    x, y = load_mnist("bundled", "train")
    n = cfg["mnist_examples"]
    return Batch({"label": y[:n], "s": (x[:n] >= 128).float()[:, None]})


def build_mnist(cfg: dict) -> tuple:
    """The lightweight (label, digit mask) player on MNIST."""
    return build_player(mnist_spec(cfg)), TensorSource(mnist_pairs(cfg))


def style_accuracy(player, test: dict, n: int, style: str = "given") -> dict[str, float]:
    """Per-style test accuracy of q(c | x, style) with the true style of each test image given,
    or (``style="inferred"``) of q(c | x) with the style unobserved."""
    acc = {}
    labels = test["labels"][:n]
    for k in range(test["images"].shape[1]):
        x = test["images"][:n, k].float() / 255
        given = {"x": x} if style == "inferred" else {"x": x, "style": torch.full((len(x),), k)}
        acc[f"m{k}"] = accuracy(player, given, labels)
    acc["avg"] = float(np.mean(list(acc.values())))
    return acc


@torch.no_grad()
def styles_by_digits(player, out: Path, tag: str, tries: int = 2000) -> float:
    """A 5 x 10 grid: for every digit, samples until each style has been drawn (style is sampled
    jointly). Returns the fraction of cells filled; empty cells stay black."""
    grid = torch.zeros(5, 10, 3, 28, 28)
    filled = torch.zeros(5, 10, dtype=torch.bool)
    c = torch.arange(10).repeat_interleave(tries // 10)
    s = player.sample(len(c), given=Batch({"label": c}))
    for i in range(len(c)):
        st, d = int(s["style"][i]), int(c[i])
        if not filled[st, d]:
            grid[st, d], filled[st, d] = s["x"][i], True
    save_grid(grid, out / f"generated_{tag}.png")
    return filled.float().mean().item()


def discriminative(cfg: dict, run: Run):
    """The main player's classifier q(c | x) trained alone by cross-entropy on its labelled
    images (style left out), for as many steps of as many rows as the games."""
    torch.manual_seed(run.seed)
    player, source = build_main(cfg, run.seed, "discriminative")
    player.to(run.device)
    images = source.batch.project(["x", "label"])
    player.fit_classifier(images, cfg["rounds"], cfg["batch_size"], seed=run.seed)
    return player


def build_host(name: str, cfg: dict, seed: int, variant: str) -> tuple:
    return build_main(cfg, seed, variant) if name == "main" else build_mnist(cfg)


def body(run: Run) -> dict:
    cfg = run.cfg
    test = polymnist.load(data_root(cfg), "test")
    if "digit_masks" not in polymnist.load(data_root(cfg), "train"):
        raise ConfigError(
            f"polymnist_paper needs digit masks, and {str(data_root(cfg))!r} has none: "
            "use a generated PolyMNIST folder (mmgame data polymnist generate)"
        )
    results: dict = {"accuracy": {}, "grid_filled": {}, "style_at_test": cfg["style_at_test"]}
    for variant in cfg["variants"]:
        if variant == "discriminative":
            player = discriminative(cfg, run)
            # q(c | x) never saw a style: it is read from the image alone
            results["accuracy"][variant] = style_accuracy(
                player, test, cfg["test_examples"], "inferred"
            )
            continue
        names, alpha, options, warmup = ["main"], [[1.0]], {}, 0
        if variant == "synthetic_cs":
            a = cfg["alpha_own"]
            names, alpha = ["main", "mnist"], [[a, 1 - a], [0.0, 1.0]]  # MNIST player: MNIST only
            warmup = int(cfg["mask_pretrain"] * cfg["rounds"])
        if variant == "real_cs_unpaired":  # the (c, s) half comes on top of the images' rows
            options = {"batch_size": 2 * cfg["batch_size"]}
        game = run.game(
            variant,
            builders(build_host, names, cfg, run.seed, variant),
            alpha,
            warmup_rounds=warmup,
            game_options=options,
        )
        results["accuracy"][variant] = style_accuracy(
            game.players["main"], test, cfg["test_examples"], cfg["style_at_test"]
        )
        results["grid_filled"][variant] = styles_by_digits(game.players["main"], run.out, variant)
        if variant == "synthetic_cs":
            results["exchange"] = game.accounting()
        game.close()
    return run.finish(results)
