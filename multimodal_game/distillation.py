"""Ensemble distillation on a public pool: the baseline for players of different architectures.

Parameters cannot be averaged across architectures, but predictions can. Players learn alone
(alpha = I) on their private shards and, every ``every`` rounds, all of them classify the same
rows of a public unlabelled pool; the server averages their logits (the ensemble) and sends the
average back; each player then takes ``steps`` gradient steps towards it (the Kullback-Leibler
divergence from the ensemble's softened distribution to its own), and goes on learning alone. This
is FedMD's communicate / aggregate / digest round (Li & Wang 2019) with FedDF's averaged-logit
teacher (Lin et al. 2020), run by the clients since no model leaves its owner.

What it needs, beyond the game: a pool of unlabelled examples of the players' variables that every
party may read (here: training images outside every shard). What crosses the wire: only logits on
public rows, ``rows x classes`` numbers per player up and the ensemble's down; which rows are used is
drawn from a seed all parties share, so no row travels. The privacy assumption changes in one
place: the public pool must exist and be shareable; the private shards stay where they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .accounting import averagings
from .batch import Batch
from .errors import ConfigError
from .events import Event


def _logits(player: Any, batch: Batch) -> torch.Tensor:
    with torch.no_grad():
        return player.c_logits(batch).detach().float().cpu()


def _can_distil(player: Any) -> str | None:
    """Why ``player`` cannot take a distillation step (None when it can)."""
    if not callable(getattr(player, "c_logits", None)):
        return "it has no c_logits(batch) (logits of its label given its variables)"
    if not callable(getattr(player, "parameters", None)):
        return "it has no parameters() to learn with"
    return None


def _distil(
    player: Any, batch: Batch, teacher: torch.Tensor, steps: int, temperature: float, lr: float
) -> float:
    """``steps`` Adam steps of T^2 KL(softmax(teacher / T) || softmax(own / T)); returns the loss
    before the first. The digest has an optimiser of its own, fresh each time: the player's own
    carries the momentum of its much larger ELBO gradients, which would swamp these (and a
    stateless digest keeps resume exact)."""
    target = torch.softmax(teacher.to(batch.device) / temperature, -1)
    optim = torch.optim.Adam([p for p in player.parameters() if p.requires_grad], lr=lr)
    first = None
    for _ in range(steps):
        own = torch.log_softmax(player.c_logits(batch) / temperature, -1)
        loss = torch.nn.functional.kl_div(own, target, reduction="batchmean") * temperature**2
        first = float(loss.detach()) if first is None else first
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
    player.zero_grad(set_to_none=True) if hasattr(player, "zero_grad") else None
    return first


def distillation_bytes(players: int, rows: int, classes: int, rounds: int, every: int) -> int:
    """Bytes an ensemble-distillation run moves, both directions: per distillation each player's
    ``rows x classes`` float32 logits up and the ensemble's down."""
    return averagings(rounds, every) * 2 * players * rows * classes * 4


class EnsembleDistillation:
    """Every ``every`` rounds, and after the last one: ``rows`` rows of ``pool`` (drawn with a
    generator seeded by ``seed`` and the round, so a resumed game draws the same), each player's
    logits on them, their mean, and ``steps`` distillation steps (Adam, ``lr``) of every player
    towards it; ``last_loss``: each player's divergence from the ensemble before its steps.
    Attach it to a game whose alpha is the identity. ``pool``: public rows of the variables every
    player reads; its label, if any, is dropped."""

    def __init__(
        self,
        pool: Batch | Mapping[str, torch.Tensor],
        *,
        every: int,
        rows: int = 256,
        steps: int = 1,
        temperature: float = 1.0,
        lr: float = 1e-3,
        seed: int = 0,
        label: str = "label",
    ):
        if every < 1:
            raise ConfigError(f"ensemble distillation every {every} rounds: it must be >= 1")
        if rows < 1 or steps < 1:
            raise ConfigError(
                f"ensemble distillation needs rows >= 1 and steps >= 1 ({rows}, {steps})"
            )
        if temperature <= 0:
            raise ConfigError(f"distillation temperature must be > 0, got {temperature}")
        data = pool if isinstance(pool, Batch) else Batch(dict(pool))
        variables = [v for v in data.names if v != label]
        if not variables or len(data) == 0:
            raise ConfigError(
                "the public pool of ensemble distillation holds no rows of any variable"
            )
        self.pool = data.project(variables)
        self.every, self.rows, self.steps = int(every), int(rows), int(steps)
        self.temperature, self.seed, self.lr = float(temperature), int(seed), float(lr)
        self.last_loss: dict[str, float] = {}

    def attach(self, game: Any) -> EnsembleDistillation:
        game.add_handler(Event.STARTED, self._start, first=True)
        game.add_handler(Event.ROUND_COMPLETED, self, every=self.every, first=True)
        return self

    def _start(self, game: Any, **_: Any) -> None:
        for n in game.names:
            why = game.call(n, _can_distil)
            if why:
                raise ConfigError(f"ensemble distillation: player {n!r} cannot distil: {why}")

    def batch(self, round: int) -> Batch:
        """The public rows of a round's distillation (the same for every party)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(round))
        idx = torch.randint(len(self.pool), (self.rows,), generator=g)
        return self.pool.index(idx)

    def __call__(self, game: Any) -> None:
        batch = self.batch(game.state.round)
        logits = {n: game.call(n, _logits, batch) for n in game.names}
        shapes = {tuple(v.shape) for v in logits.values()}
        if len(shapes) != 1:
            raise ConfigError(f"ensemble distillation: players' logits differ in shape: {shapes}")
        teacher = torch.stack(list(logits.values())).mean(0)
        for n in game.names:
            self.last_loss[n] = game.call(
                n, _distil, batch, teacher, self.steps, self.temperature, self.lr
            )
