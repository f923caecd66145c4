"""Game policies: what each round's exchange is (who samples how much for whom, with what weight).

A policy is to the game what Flower's ``Strategy.configure_fit(server_round, ...)`` is to a
federated server: asked once per round, it returns a typed :class:`RoundPlan`. The game loop only
carries plans out. A fixed alpha, a warm-up before the exchange and the default "own weight plus
partners" alpha are policies here; a time-varying or data-driven alpha is one more subclass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from .alpha import allocate, validate_alpha
from .spaces import Space, interface


@dataclass(frozen=True)
class Transfer:
    """``count`` synthetic examples of ``variables`` from ``producer`` to ``consumer``, each
    weighted ``weight`` in the consumer's loss."""

    producer: str
    consumer: str
    count: int
    weight: float
    variables: tuple[str, ...]
    # a ``statistics.Statistics`` when the interface travels as a summary, None for samples
    statistics: Any = None


@dataclass(frozen=True)
class LearnPlan:
    """One player's batch in one round: ``own_count`` own examples of weight ``own_weight`` and the
    synthetic transfers it receives."""

    own_count: int
    own_weight: float
    transfers: tuple[Transfer, ...] = ()


COMPOSITIONS = ("displace", "on_top")


@dataclass(frozen=True)
class RoundPlan:
    """Everything the game needs to play one round. ``alpha`` is the matrix the plan realises."""

    names: tuple[str, ...]
    alpha: torch.Tensor
    learn: Mapping[str, LearnPlan]

    @cached_property
    def transfers(self) -> tuple[Transfer, ...]:
        return tuple(t for n in self.names for t in self.learn[n].transfers)

    @cached_property
    def _by_producer(self) -> dict[str, tuple[Transfer, ...]]:
        out: dict[str, list[Transfer]] = {}
        for t in self.transfers:
            out.setdefault(t.producer, []).append(t)
        return {n: tuple(out[n]) for n in self.names if n in out}

    @property
    def exchanges(self) -> bool:
        return bool(self.transfers)

    @property
    def interfaces(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """(producer, consumer) -> the variables that travel between them."""
        return {(t.producer, t.consumer): t.variables for t in self.transfers}

    def requests_for(self, producer: str) -> tuple[Transfer, ...]:
        """What ``producer`` samples for its consumers this round (one joint draw serves all)."""
        return self._by_producer.get(producer, ())

    @property
    def producers(self) -> list[str]:
        return list(self._by_producer)

    def counts(self, name: str) -> list[int]:
        """Examples of each source (in player order; own data at ``name``'s own index)."""
        row = dict.fromkeys(self.names, 0)
        row[name] = self.learn[name].own_count
        for t in self.learn[name].transfers:
            row[t.producer] = t.count
        return list(row.values())

    @classmethod
    def from_alpha(
        cls,
        alpha: torch.Tensor,
        names: Sequence[str],
        spaces: Mapping[str, Space],
        batch_size: int,
        composition: str = "displace",
    ) -> RoundPlan:
        """Counts by :func:`allocate` (largest remainder) and weights ``alpha_ij * B / n_ij``, so
        that each player's loss weights its sources exactly by its row of alpha.

        ``composition``: ``displace`` splits the B rows of a batch by alpha (at alpha_ii = 0.5 a
        player sees B/2 own rows a step); ``on_top`` keeps B own rows and adds B synthetic rows
        split over the partners (the paper authors' batches), with the same weights per source,
        so the loss follows alpha as before, from twice the rows."""
        if composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}, got {composition!r}")
        learn = {}
        for i, ni in enumerate(names):
            row = alpha[i].tolist()
            if composition == "on_top" and row[i] < 1:
                rest = 1.0 - row[i]
                partners = [0.0 if j == i else a / rest for j, a in enumerate(row)]
                counts = allocate(partners, batch_size)
                counts[i] = batch_size
            else:
                counts = allocate(row, batch_size)
            weights = [
                alpha[i, j].item() * batch_size / c if c else 0.0 for j, c in enumerate(counts)
            ]
            transfers = []
            for j, nj in enumerate(names):
                if i == j or alpha[i, j] == 0:
                    continue
                shared = interface(spaces[nj], spaces[ni], (nj, ni))
                if not shared:
                    raise ValueError(
                        f"alpha[{i}][{j}] > 0 but players {ni!r} and {nj!r} share no exchangeable "
                        f"variable ({ni!r}: {spaces[ni]}, {nj!r}: {spaces[nj]})"
                    )
                transfers.append(Transfer(nj, ni, counts[j], weights[j], shared))
            learn[ni] = LearnPlan(counts[i], weights[i], tuple(transfers))
        return cls(tuple(names), alpha, learn)

    @classmethod
    def own_only(cls, names: Sequence[str], batch_size: int) -> RoundPlan:
        eye = torch.eye(len(names), dtype=torch.float64)
        return cls(tuple(names), eye, {n: LearnPlan(batch_size, 1.0) for n in names})


@dataclass(frozen=True)
class RoundOutcome:
    """What a policy sees after a round (:meth:`Policy.observe`): how many rounds have been
    played, each player's learning statistics of that round (detached, on its device) and the
    players' handles (``sample``, ``infer``, ``call`` where each lives, on its evaluation random
    stream: observing never changes the training trajectory)."""

    round: int
    stats: Mapping[str, Mapping[str, torch.Tensor]]
    players: Mapping[str, Any]


class Policy:
    """Base class. ``bind`` is called once by the game with the players' names and spaces;
    ``plan(round)`` gives the plan of round ``round`` (0-based, the round about to be played);
    ``observe(outcome)`` is called after every round (as a Flower strategy that configures a
    round also aggregates its results), so a data-driven policy updates itself there. What
    ``observe`` changes belongs in ``state_dict``: it is checkpointed after the round."""

    names: tuple[str, ...] = ()
    spaces: Mapping[str, Space] = {}
    batch_size: int = 0

    def bind(self, names: Sequence[str], spaces: Mapping[str, Space], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.names, self.spaces, self.batch_size = tuple(names), dict(spaces), int(batch_size)

    def plan(self, round: int) -> RoundPlan:
        raise NotImplementedError(f"{type(self).__name__} must define plan()")

    def observe(self, outcome: RoundOutcome) -> None:
        """Called by the game after every round, before its handlers; nothing by default."""

    @property
    def alpha(self) -> torch.Tensor:
        """The alpha matrix of the exchange (after any warm-up)."""
        raise NotImplementedError(f"{type(self).__name__} must define alpha()")

    @property
    def interfaces(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """Every (producer, consumer) pair that may exchange, with the variables that travel."""
        raise NotImplementedError(f"{type(self).__name__} must define interfaces()")

    def describe(self) -> dict[str, Any]:
        """What a resumed game must share with the one that wrote the checkpoint."""
        return {"policy": type(self).__name__, "alpha": self.alpha.tolist(), "warmup_rounds": 0}

    def state_dict(self) -> dict[str, Any]:
        """State that changes while the game runs (none for fixed policies)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class FixedAlpha(Policy):
    """The paper's game: one alpha matrix for every round (``composition``: how a batch is
    made, see :meth:`RoundPlan.from_alpha`)."""

    def __init__(self, alpha: Any, composition: str = "displace"):
        if composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}, got {composition!r}")
        self._alpha_in = alpha
        self.composition = composition
        self._plan: RoundPlan | None = None

    def bind(self, names: Sequence[str], spaces: Mapping[str, Space], batch_size: int) -> None:
        super().bind(names, spaces, batch_size)
        alpha = validate_alpha(self.matrix(), self.names)
        self._plan = self._plan_of(alpha)

    def _plan_of(self, alpha: torch.Tensor) -> RoundPlan:
        return RoundPlan.from_alpha(
            alpha, self.names, self.spaces, self.batch_size, self.composition
        )

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        return out if self.composition == "displace" else {**out, "composition": self.composition}

    def matrix(self) -> Any:
        """The alpha matrix to validate (subclasses may build it from the spaces)."""
        return self._alpha_in

    def _bound(self) -> RoundPlan:
        if self._plan is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a game yet")
        return self._plan

    def plan(self, round: int) -> RoundPlan:
        return self._bound()

    @property
    def alpha(self) -> torch.Tensor:
        return self._bound().alpha

    @property
    def interfaces(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return self._bound().interfaces


class OwnPlusPartners(FixedAlpha):
    """``own_weight`` on a player's own data, the rest spread over the players it shares an
    exchangeable variable with: ``uniform``ly, or in proportion to the values one example of the
    interface carries (``interface_size``: a shared image counts more than a shared label).
    ``own_weight=None``: uniform over own data and those partners. A player with no partner keeps
    all weight on its own data."""

    WEIGHTINGS = ("uniform", "interface_size")

    def __init__(
        self,
        own_weight: float | None = 0.5,
        weighting: str = "uniform",
        composition: str = "displace",
    ):
        if weighting not in self.WEIGHTINGS:
            raise ValueError(
                f"unknown partner weighting {weighting!r}; expected one of {self.WEIGHTINGS}"
            )
        if own_weight is not None and not 0 < own_weight <= 1:
            raise ValueError(f"own_weight must be in (0, 1], got {own_weight}")
        super().__init__(None, composition)
        self.own_weight, self.weighting = own_weight, weighting

    def matrix(self) -> torch.Tensor:
        return partner_alpha(self.names, self.spaces, self.own_weight, self.weighting)


def partner_alpha(
    names: Sequence[str],
    spaces: Mapping[str, Space],
    own_weight: float | None = 0.5,
    weighting: str = "uniform",
) -> torch.Tensor:
    """The alpha matrix of :class:`OwnPlusPartners`."""
    n = len(names)
    a = torch.zeros(n, n, dtype=torch.float64)
    for i, ni in enumerate(names):
        for j, nj in enumerate(names):
            shared = interface(spaces[nj], spaces[ni], (nj, ni)) if i != j else ()
            if shared:
                size = sum(math.prod(spaces[nj][v].event_shape) for v in shared)
                a[i, j] = float(size) if weighting == "interface_size" else 1.0
    partners = a.sum(1, keepdim=True)
    if own_weight is None:
        a += torch.eye(n, dtype=torch.float64)
        return a / a.sum(1, keepdim=True)
    a = (1 - own_weight) * a / partners.clamp_min(1)
    a += torch.diag(torch.where(partners[:, 0] > 0, own_weight, 1.0).to(torch.float64))
    return a


class Warmup(Policy):
    """Own data only for the first ``rounds`` rounds, then ``inner``'s plans.

    Samples of untrained generators are noise (labels their images do not carry); consuming them
    from round 1 drags every player down before any can help another.
    """

    def __init__(self, inner: Policy, rounds: int):
        if rounds < 0:
            raise ValueError(f"warmup_rounds must be >= 0, got {rounds}")
        self.inner, self.rounds = inner, int(rounds)
        self._own: RoundPlan | None = None

    def bind(self, names: Sequence[str], spaces: Mapping[str, Space], batch_size: int) -> None:
        super().bind(names, spaces, batch_size)
        self.inner.bind(names, spaces, batch_size)
        self._own = RoundPlan.own_only(self.names, self.batch_size)

    def plan(self, round: int) -> RoundPlan:
        if round < self.rounds:
            assert self._own is not None, "Warmup is not bound to a game yet"
            return self._own
        return self.inner.plan(round)

    @property
    def alpha(self) -> torch.Tensor:
        return self.inner.alpha

    @property
    def interfaces(self) -> dict[tuple[str, str], tuple[str, ...]]:
        return self.inner.interfaces

    def observe(self, outcome: RoundOutcome) -> None:
        self.inner.observe(outcome)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "warmup_rounds": self.rounds}

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)


def as_policy(alpha_or_policy: Any, warmup_rounds: int = 0) -> Policy:
    """A policy from an alpha matrix (or a policy), wrapped in a warm-up when asked for."""
    policy = alpha_or_policy if isinstance(alpha_or_policy, Policy) else FixedAlpha(alpha_or_policy)
    return Warmup(policy, warmup_rounds) if warmup_rounds else policy
