"""Evaluation in one call, on the multimodal literature's axes (MultiVae's ``CoherenceEvaluator``):
per-variable accuracy, pairwise cross coherence, coherence from every subset of variables, and
joint coherence.

Players are reached through their handles (or the players themselves). ``speakers`` maps each
modality variable (``"m0"``, ``"m1"``, ...) to the player that speaks for it: the one whose
q(label | variable) reads it and whose p(variable | label) generates it. ``judges`` are
independent classifiers of each variable (trained on real data, never by a player).

* accuracy of variable k: argmax q_k(label | x_k) against the true label;
* coherence k -> j: the label predicted from x_k, then variable j generated from it by j's speaker,
  judged by j's classifier against the true label;
* coherence from a subset S (1 to M-1 variables): the label predicted from S by the product of its
  speakers' posteriors (their log-probabilities summed, a uniform prior; one speaker holding every
  variable of S would read them together), then every variable outside S generated from it and
  judged; the mean over targets, then over the subsets of each size;
* joint coherence: a label drawn uniformly, every variable generated from it by its speaker, and
  the share of draws whose judges all agree (with each other; ``joint_coherence_true``: also with
  the drawn label).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .evaluation import conditional_samples, predict, predict_proba


def _log_posterior(speakers: Mapping[str, Any], data: Mapping[str, torch.Tensor], subset, label):
    logs = [predict_proba(speakers[v], {v: data[v]}, label).clamp_min(1e-30).log() for v in subset]
    return torch.stack(logs).sum(0)


@torch.no_grad()
def evaluate(
    speakers: Mapping[str, Any],
    data: Mapping[str, torch.Tensor],
    judges: Mapping[str, nn.Module],
    *,
    label: str = "label",
    classes: int = 10,
    subset_rows: int | None = None,
    joint_samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """See the module docstring. ``data``: the test rows, ``label`` and every variable of
    ``speakers``; ``subset_rows``: rows used for the subset coherences (None: all)."""
    variables: Sequence[str] = list(speakers)
    missing = [v for v in (*variables, label) if v not in data] + [
        v for v in variables if v not in judges
    ]
    if missing:
        raise ValueError(f"evaluate: no data or judge for {sorted(set(missing))}")
    y = data[label].cpu()
    log_post = {v: _log_posterior(speakers, data, [v], label) for v in variables}
    pred = {v: lp.argmax(-1) for v, lp in log_post.items()}
    acc = {v: float((pred[v] == y).float().mean()) for v in variables}
    pair = {}
    for k, j in itertools.permutations(variables, 2):
        gen = conditional_samples(speakers[j], pred[k], j, label)
        pair[f"{k}->{j}"] = float((predict(judges[j], gen) == y).float().mean())
    rows = slice(None) if subset_rows is None else slice(0, subset_rows)
    by_size: dict[str, float] = {}
    for size in range(1, len(variables)):
        scores = []
        for subset in itertools.combinations(variables, size):
            lp = sum(log_post[v][rows] for v in subset)
            guess = lp.argmax(-1)
            targets = [v for v in variables if v not in subset]
            hits = [
                float(
                    (
                        predict(judges[t], conditional_samples(speakers[t], guess, t, label))
                        == y[rows]
                    )
                    .float()
                    .mean()
                )
                for t in targets
            ]
            scores.append(float(np.mean(hits)))
        by_size[str(size)] = float(np.mean(scores))
    g = torch.Generator().manual_seed(seed)
    drawn = torch.randint(classes, (joint_samples,), generator=g)
    votes = torch.stack(
        [predict(judges[v], conditional_samples(speakers[v], drawn, v, label)) for v in variables]
    )
    agree = (votes == votes[0]).all(0)
    return {
        "accuracy": acc,
        "mean_accuracy": float(np.mean(list(acc.values()))),
        "coherence": pair,
        "mean_coherence": float(np.mean(list(pair.values()))),
        "coherence_from_subset": by_size,
        "joint_coherence": float(agree.float().mean()),
        "joint_coherence_true": float((agree & (votes[0] == drawn)).float().mean()),
    }
