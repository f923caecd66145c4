"""Bytes over the wire, counted the same way for every method (torch-free: the report uses it)."""

from __future__ import annotations

from collections.abc import Mapping


def averagings(rounds: int, every: int) -> int:
    """Averagings in a run of ``rounds``: every ``every`` rounds and after the last one."""
    return -(-int(rounds) // int(every))


def parameter_exchange_bytes(param_bytes: Mapping[str, int], rounds: int, every: int) -> int:
    """Bytes a FedAvg / FedProx run moves over the wire, both directions: the initial model down
    to each player, then per averaging every player's parameters up and the average down."""
    total = sum(param_bytes.values())
    return total + averagings(rounds, every) * 2 * total
