"""Partitioners that split a data set among players, each shard with a labelled and an unlabelled part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class Shard:
    """Indices into a data set, which of them keep their label, and (optionally) which modalities."""

    indices: torch.Tensor
    labelled: torch.Tensor  # bool, same length as indices
    modalities: tuple[int, ...] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def n_labelled(self) -> int:
        return int(self.labelled.sum())


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _check_players(n_players: int, n_examples: int) -> None:
    if n_players < 1:
        raise ValueError(f"need at least one player, got {n_players}")
    if n_players > n_examples:
        raise ValueError(
            f"{n_players} players but only {n_examples} examples: some shard would be empty"
        )


def iid(labels: torch.Tensor, n_players: int, seed: int = 0) -> list[torch.Tensor]:
    """Uniformly random, equal-sized (up to one) disjoint shards."""
    _check_players(n_players, len(labels))
    perm = torch.randperm(len(labels), generator=_gen(seed))
    return [torch.sort(c).values for c in perm.tensor_split(n_players)]


def by_classes(
    labels: torch.Tensor, class_sets: Sequence[Sequence[int]], seed: int = 0
) -> list[torch.Tensor]:
    """Player k gets the examples whose class is in ``class_sets[k]`` (e.g. digits 0-4 / 5-9).

    A class named by several players is split between them at random."""
    g = _gen(seed)
    owners: dict[int, list[int]] = {}
    for k, cs in enumerate(class_sets):
        for c in cs:
            owners.setdefault(int(c), []).append(k)
    parts: list[list[torch.Tensor]] = [[] for _ in class_sets]
    for c, ks in owners.items():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        for k, chunk in zip(ks, idx.tensor_split(len(ks))):
            parts[k].append(chunk)
    out = [
        torch.sort(torch.cat(p)).values if p else torch.empty(0, dtype=torch.long) for p in parts
    ]
    empty = [k for k, o in enumerate(out) if len(o) == 0]
    if empty:
        raise ValueError(f"players {empty} get no example: their classes do not occur in the data")
    return out


def dirichlet(
    labels: torch.Tensor, n_players: int, beta: float, seed: int = 0, *, empty_ok: bool = False
) -> list[torch.Tensor]:
    """Non-IID: each class is split among players in proportions drawn from Dirichlet(beta).
    A player left without examples is an error, unless ``empty_ok`` (the caller names it)."""
    if not beta > 0:
        raise ValueError(f"Dirichlet beta must be > 0, got {beta}")
    _check_players(n_players, len(labels))
    g = _gen(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in range(n_players)]
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        # Dirichlet via normalised Gamma draws from the seeded generator
        gam = torch._standard_gamma(torch.full((n_players,), float(beta)), generator=g)
        # a draw clamped at float32's smallest normal number is off by its whole value: where
        # the largest draw is within 2^20 of it, the class's proportions are drawn in log space
        exact = gam.max() > 2**20 * torch.finfo(gam.dtype).tiny
        props = gam / gam.sum() if exact else _log_space(beta, n_players, g)
        cuts = (torch.cumsum(props, 0)[:-1] * len(idx)).round().long().tolist()
        for k, chunk in enumerate(torch.tensor_split(idx, cuts)):
            parts[k].append(chunk)
    out = [torch.sort(torch.cat(p)).values for p in parts]
    empty = [k for k, p in enumerate(out) if len(p) == 0]
    if empty and not empty_ok:
        raise ValueError(
            f"Dirichlet(beta={beta}) shards left player(s) {empty} without examples; use a larger "
            "beta (more even shards), fewer players or another seed"
        )
    return out


def _log_space(beta: float, n: int, g: torch.Generator) -> torch.Tensor:
    """Dirichlet(beta) proportions drawn in log space, for a beta so small that the float32
    Gamma(beta) draws fell at or near the smallest normal number (torch clamps them there, and
    normalising clamped draws splits a class evenly): Gamma(beta) = Gamma(beta + 1) U^(1 / beta)."""
    f64 = torch.float64
    big = torch._standard_gamma(torch.full((n,), float(beta) + 1.0, dtype=f64), generator=g)
    log_gam = big.log() + torch.rand(n, dtype=f64, generator=g).log() / float(beta)
    return torch.softmax(log_gam, 0).float()


def per_class(
    labels: torch.Tensor, n_players: int, n_per_class: int, seed: int = 0
) -> list[torch.Tensor]:
    """Balanced: every player gets ``n_per_class`` examples of every class (disjoint)."""
    g = _gen(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in range(n_players)]
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        need = n_players * n_per_class
        if need > len(idx):
            raise ValueError(
                f"class {c} has {len(idx)} examples, fewer than {n_players} players x {n_per_class}"
            )
        idx = idx[torch.randperm(len(idx), generator=g)][:need]
        for k in range(n_players):
            parts[k].append(idx[k * n_per_class : (k + 1) * n_per_class])
    return [torch.sort(torch.cat(p)).values for p in parts]


def labelled_mask(
    labels: torch.Tensor,
    indices: torch.Tensor,
    count: int | None = None,
    *,
    fraction: float | None = None,
    seed: int = 0,
    balanced: bool = True,
) -> torch.Tensor:
    """Which examples of a shard keep their label, class-balanced: ``count`` examples, or a
    ``fraction`` of the shard (two keys, so that ``1`` - one example - is never mistaken for
    ``1.0`` - all of them). Neither: all labels kept. Classes get ``count / classes`` each
    (remainder to the classes seen first in a seeded order); a class with too few examples gives
    its share to others. ``balanced=False``: a uniform draw from the shard instead, so that the
    labels follow the shard's own class proportions (label-skewed shards).
    """
    n = len(indices)
    if count is not None and fraction is not None:
        raise ValueError("give a labelled count or a labelled fraction, not both")
    if count is None and fraction is None:
        return torch.ones(n, dtype=torch.bool)
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"labelled fraction must be in [0, 1], got {fraction}")
        count = int(round(fraction * n))
    else:
        if isinstance(count, (float, bool)):
            raise TypeError(
                f"labelled count must be an integer, got {count!r}; for a share of the shard "
                "use the fraction argument (labelled_fraction)"
            )
        count = int(count)
        if count < 0 or count > n:
            raise ValueError(
                f"labelled count {count} is larger than the shard ({n} examples)"
                if count > n
                else f"labelled count must be >= 0, got {count}"
            )
    g = _gen(seed)
    if not balanced:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=g)[:count]] = True
        return mask
    y = labels[indices]
    classes = torch.unique(y)
    pools = {int(c): torch.nonzero(y == c).flatten() for c in classes}
    pools = {c: p[torch.randperm(len(p), generator=g)] for c, p in pools.items()}
    take = dict.fromkeys(pools, 0)
    left = count
    while (
        left > 0
    ):  # round-robin over classes that still have examples: balanced as far as possible
        progressed = False
        for c in pools:
            if left and take[c] < len(pools[c]):
                take[c] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    mask = torch.zeros(n, dtype=torch.bool)
    for c, p in pools.items():
        mask[p[: take[c]]] = True
    return mask


def make_shards(
    labels: torch.Tensor,
    method: str,
    n_players: int,
    *,
    labelled: int | None = None,
    labelled_fraction: float | None = None,
    seed: int = 0,
    beta: float = 0.5,
    class_sets: Sequence[Sequence[int]] | None = None,
    n_per_class: int | None = None,
    modalities: Sequence[Sequence[int]] | None = None,
) -> list[Shard]:
    """Split ``labels``' examples among players.

    ``method``: ``iid``, ``classes`` (with ``class_sets``), ``dirichlet`` (with ``beta``),
    ``per_class`` (with ``n_per_class``), ``modality`` (player k gets style k of disjoint tuples) or
    ``paired`` (player k gets the modalities ``modalities[k]`` of disjoint tuples).
    """
    labels = torch.as_tensor(labels)
    if method in ("iid", "modality", "paired"):
        parts = iid(labels, n_players, seed)
    elif method == "classes":
        if class_sets is None or len(class_sets) != n_players:
            raise ValueError("method 'classes' needs one class set per player (class_sets)")
        parts = by_classes(labels, class_sets, seed)
    elif method == "dirichlet":
        parts = dirichlet(labels, n_players, beta, seed)
    elif method == "per_class":
        if n_per_class is None:
            raise ValueError("method 'per_class' needs n_per_class")
        parts = per_class(labels, n_players, n_per_class, seed)
    else:
        raise ValueError(
            f"unknown shard method {method!r}; expected iid, classes, dirichlet, per_class, modality or paired"
        )
    if method == "modality":
        mods: list[tuple[int, ...] | None] = [(k,) for k in range(n_players)]
    elif method == "paired":
        if modalities is None or len(modalities) != n_players:
            raise ValueError("method 'paired' needs one modality subset per player (modalities)")
        mods = [tuple(m) for m in modalities]
    else:
        mods = [None] * n_players
    return [
        Shard(
            p,
            labelled_mask(labels, p, labelled, fraction=labelled_fraction, seed=seed + 1 + k),
            mods[k],
        )
        for k, p in enumerate(parts)
    ]
