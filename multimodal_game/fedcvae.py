"""One-shot generative exchange, FedCVAE-Ens (Heinbaugh et al., ICLR 2023, "Data-Free One-Shot
Federated Learning Under Very High Statistical Heterogeneity").

Each player trains a conditional generative model p(x | c, z) on its own data, alone. Then, once:
every player sends its decoder and its class counts to a server; the server draws labels in
proportion to every player's class counts, makes one image per label with that player's decoder
(z from the prior) and trains a classifier on these labelled samples only; the classifier goes back
to the players. Nothing of a player's rows travels: only the decoder's parameters and ``classes``
counts go up, and the classifier comes down.

Here a player's decoder is reached through its handle (``handle.sample(n, given)``: the samples are
what the server would draw from the decoder it received), and its bytes are counted from the
decoder's parameters (:func:`decoder_bytes`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .batch import Batch


def allocation(class_counts: Mapping[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """How many samples of each class the server draws from each player's decoder: ``n`` split
    over all (player, class) pairs in proportion to the players' class counts (largest remainder,
    ties to the earlier pair), so that the server's data follows the union of the players' data."""
    names = list(class_counts)
    if not names:
        raise ValueError("FedCVAE needs at least one player's class counts")
    counts = torch.stack([torch.as_tensor(class_counts[k], dtype=torch.float64) for k in names])
    if counts.dim() != 2 or (counts < 0).any():
        raise ValueError("class counts must be one non-negative count per class for each player")
    total = counts.sum()
    if total <= 0:
        raise ValueError("FedCVAE: no player holds a labelled example, so no label can be drawn")
    if n < 1:
        raise ValueError(f"FedCVAE draws at least one sample, got n = {n}")
    share = counts.flatten() * (n / total)
    take = share.floor().long()
    order = torch.argsort(-(share - take), stable=True)
    take[order[: n - int(take.sum())]] += 1
    take = take.view_as(counts)
    return {k: take[i] for i, k in enumerate(names)}


@torch.no_grad()
def server_dataset(
    decoders: Mapping[str, Any],
    class_counts: Mapping[str, torch.Tensor],
    n: int,
    *,
    label: str = "label",
    variable: str = "x",
    seed: int = 0,
) -> Batch:
    """The server's labelled training set: for each player, its allocated labels (``allocation``)
    and one sample of ``variable`` per label from its decoder (anything with ``sample(n, given)``,
    e.g. a player handle), shuffled with ``seed``. Every row is a decoder's sample."""
    take = allocation(class_counts, n)
    labels, images = [], []
    for name, decoder in decoders.items():
        c = torch.repeat_interleave(torch.arange(len(take[name])), take[name])
        if len(c) == 0:
            continue
        made = decoder.sample(len(c), given=Batch({label: c}))
        labels.append(c)
        images.append(made[variable].cpu())
    y, x = torch.cat(labels), torch.cat(images)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return Batch({label: y[perm], variable: x[perm]})


def parameter_bytes(parameters: Any) -> int:
    """Bytes of a collection of tensors (a module's ``parameters()``), as sent."""
    return int(sum(p.numel() * p.element_size() for p in parameters))


def decoder_bytes(player: Any) -> int:
    """Bytes of a player's decoder p(x | c, z): its ``decoder_parameters()``."""
    return parameter_bytes(player.decoder_parameters())


def classifier_bytes(player: Any) -> int:
    """Bytes of a player's classifier q(c | x): its ``classifier_parameters()``."""
    return parameter_bytes(player.classifier_parameters())


def fedcvae_bytes(decoders: Mapping[str, int], models: Mapping[str, int], classes: int) -> int:
    """Bytes over the wire of the one exchange, both directions: each decoder and its ``classes``
    int64 counts up, each player's classifier down."""
    return int(sum(decoders.values()) + 8 * classes * len(decoders) + sum(models.values()))


def fedcvae_ens(
    decoders: Mapping[str, Any],
    class_counts: Mapping[str, torch.Tensor],
    fit: Callable[[str, Batch], Any],
    n: int,
    *,
    label: str = "label",
    variable: str = "x",
    seed: int = 0,
) -> tuple[dict[str, Any], Batch]:
    """FedCVAE-Ens: the server's data from the decoders, then ``fit(name, data)`` trains the
    classifier that goes back to player ``name`` (e.g. one of that player's architecture) on it.
    Returns the classifiers by player and the server's data."""
    data = server_dataset(decoders, class_counts, n, label=label, variable=variable, seed=seed)
    return {name: fit(name, data) for name in decoders}, data
