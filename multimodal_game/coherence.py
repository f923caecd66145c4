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
  the drawn label);
* label fidelity of variable k: k generated from the true labels, judged against them (and, given
  real rows' judge features, the FID of those samples).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .evaluation import conditional_samples, frechet_distance, predict_proba


def _log_posterior(speakers: Mapping[str, Any], data: Mapping[str, torch.Tensor], subset, label):
    logs = [predict_proba(speakers[v], {v: data[v]}, label).clamp_min(1e-30).log() for v in subset]
    return torch.stack(logs).sum(0)


CHUNK = 500  # rows a speaker draws, and a judge reads, at once


@torch.no_grad()
def _judged(judge: nn.Module, x: torch.Tensor, chunk: int = 1000) -> tuple[torch.Tensor, Any]:
    """(predicted labels, penultimate features or None) of ``x``: one pass of the judge; features
    where it has ``features`` and ``head`` (the FID feature space)."""
    dev = next(judge.parameters()).device
    split = hasattr(judge, "features") and hasattr(judge, "head")
    preds, feats = [], []
    for i in range(0, len(x), chunk):
        xs = x[i : i + chunk].to(dev)
        if split:
            h = judge.features(xs)
            feats.append(h.cpu())
            preds.append(judge.head(h).argmax(-1).cpu())
        else:
            preds.append(judge(xs).argmax(-1).cpu())
    return torch.cat(preds), (torch.cat(feats) if split else None)


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
    real_features: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """See the module docstring. ``data``: the test rows, ``label`` and every variable of
    ``speakers``; ``subset_rows``: rows used for the subset coherences (None: all).

    One pass: each speaker reads its variable once, and generates once, in one draw, for every
    label it is asked to draw from (the other variables' readings, every subset's, the joint
    draw and the true labels); each judge then reads that draw once. Also returned: each
    variable's label fidelity (its samples from the true labels, judged against them) and, with
    ``real_features`` (each variable's judge features of real rows), their FID."""
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
    rows = slice(None) if subset_rows is None else slice(0, subset_rows)
    subsets = [
        s for size in range(1, len(variables)) for s in itertools.combinations(variables, size)
    ]
    guess = {s: sum(log_post[v][rows] for v in s).argmax(-1) for s in subsets}
    g = torch.Generator().manual_seed(seed)
    drawn = torch.randint(classes, (joint_samples,), generator=g)
    pair, subset_hits, votes, fidelity, fid = {}, {s: [] for s in subsets}, [], {}, {}
    for t in variables:
        # every label t is asked to generate from, with the truth each part is judged against
        asks = [(("pair", k), pred[k], y) for k in variables if k != t]
        asks += [(("subset", s), guess[s], y[rows]) for s in subsets if t not in s]
        asks += [(("joint",), drawn, None), (("fidelity",), y, y)]
        wanted = torch.cat([a[1] for a in asks])
        gen = torch.cat(  # in chunks: one large draw is slower than a few of its size
            [
                conditional_samples(speakers[t], wanted[i : i + CHUNK], t, label)
                for i in range(0, len(wanted), CHUNK)
            ]
        )
        read, feats = _judged(judges[t], gen, CHUNK)
        at = 0
        for key, labels, truth in asks:
            part = slice(at, at + len(labels))
            at += len(labels)
            hit = float((read[part] == truth).float().mean()) if truth is not None else None
            if key[0] == "pair":
                pair[f"{key[1]}->{t}"] = hit
            elif key[0] == "subset":
                subset_hits[key[1]].append(hit)
            elif key[0] == "joint":
                votes.append(read[part])
            else:
                fidelity[t] = hit
                if real_features is not None and feats is not None:
                    fid[t] = frechet_distance(feats[part], real_features[t])
    by_size = {
        str(size): float(np.mean([np.mean(subset_hits[s]) for s in subsets if len(s) == size]))
        for size in range(1, len(variables))
    }
    pair = {f"{k}->{j}": pair[f"{k}->{j}"] for k, j in itertools.permutations(variables, 2)}
    stacked = torch.stack(votes)
    agree = (stacked == stacked[0]).all(0)
    out = {
        "accuracy": acc,
        "mean_accuracy": float(np.mean(list(acc.values()))),
        "coherence": pair,
        "mean_coherence": float(np.mean(list(pair.values()))),
        "coherence_from_subset": by_size,
        "joint_coherence": float(agree.float().mean()),
        "joint_coherence_true": float((agree & (stacked[0] == drawn)).float().mean()),
        "label_fidelity": fidelity,
    }
    if fid:
        out["fid"] = fid
    return out
