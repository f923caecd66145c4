"""The alpha matrix: validation and the allocation of a batch among data sources."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def validate_alpha(alpha, names: Sequence[str], tol: float = 1e-6) -> torch.Tensor:
    """Return ``alpha`` as a float64 tensor after checking it; every violation is a ``ValueError``.

    Requirements: square N x N for N players, finite, entries >= 0, each row sums to 1 (within
    ``tol``) and every diagonal entry is positive (a player always learns from its own data).
    """
    n = len(names)
    try:
        a = torch.as_tensor(alpha, dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"alpha must be a numeric N x N matrix: {e}") from None
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"alpha must be a square matrix, got shape {tuple(a.shape)}")
    if a.shape[0] != n:
        raise ValueError(
            f"alpha is {a.shape[0]} x {a.shape[1]} but there are {n} players {list(names)}"
        )
    bad = (~torch.isfinite(a)).nonzero()
    if len(bad):
        i, j = bad[0].tolist()
        raise ValueError(f"alpha[{i}][{j}] (player {names[i]!r} from {names[j]!r}) is not finite")
    neg = (a < 0).nonzero()
    if len(neg):
        i, j = neg[0].tolist()
        raise ValueError(
            f"alpha[{i}][{j}] = {a[i, j].item():g} is negative (player {names[i]!r} from {names[j]!r})"
        )
    for i in range(n):
        s = a[i].sum().item()
        if abs(s - 1.0) > tol:
            raise ValueError(f"row {i} of alpha (player {names[i]!r}) sums to {s:.8g}, not 1")
        if a[i, i] <= 0:
            raise ValueError(
                f"alpha[{i}][{i}] must be > 0: player {names[i]!r} must give weight to its own data"
            )
    return a


def allocate(row: Sequence[float], total: int) -> list[int]:
    """Split ``total`` batch slots among sources in proportion to ``row`` (largest remainder).

    Rounding rule (largest remainder, Hamilton's method): each source first gets the floor of its
    proportional share ``alpha_ij * total``; the slots left over go to the largest fractional parts,
    ties to the lower index. A source with a positive share that ends with no slot then takes one
    from the source holding the most, so that no positive alpha is silently dropped. The game
    weights each example by ``alpha_ij * total / n_ij``, so the loss matches alpha exactly anyway.
    """
    row = [float(x) for x in row]
    positive = [k for k, x in enumerate(row) if x > 0]
    if total < len(positive):
        raise ValueError(
            f"batch size {total} is smaller than the number of data sources with positive alpha "
            f"({len(positive)}): every source needs at least one example per batch"
        )
    shares = [x * total for x in row]
    counts = [int(s) for s in shares]
    left = total - sum(counts)
    order = sorted(positive, key=lambda k: (-(shares[k] - counts[k]), k))
    for k in order[:left]:
        counts[k] += 1
    for k in positive:
        if counts[k] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[k] = 1
    return counts
