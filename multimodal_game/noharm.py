"""A game that never hurts: each player's own weight alpha_ii set from its own held-out rows.

Every ``every`` rounds (after ``start``, the warm-up's end) each player is scored where it lives on
labelled rows of its own that it never trains on (accuracy of ``infer(label)``); only that number
comes back. The first score is the player's reference (what it reached alone). While a player's
score is below its best so far by more than ``tolerance``, the synthetic part is hurting it, and
its own weight moves a ``step`` of the way to 1 (the partners' weights shrink in proportion); at a
new best, it moves a ``step`` back towards the base alpha's.

What this does to the equilibrium: each row of alpha becomes a function of its player's validation
score. Where no player is hurt, the base alpha (and its Nash equilibrium) is kept; a player that
the exchange keeps hurting goes towards alpha_ii = 1, learning alone, and its own best response no
longer depends on the others (its row of the exponential-family system ``(I - A) M = D S`` becomes
``M_i = S_i``). The other players still learn from its samples. The fixed alpha is a special case
(``step = 0``). Validation noise can raise alpha_ii of a player that was not hurt: ``tolerance``
is the accuracy drop below which it does not react.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .alpha import validate_alpha
from .batch import Batch
from .policy import FixedAlpha, RoundOutcome


def validation_accuracy(player: Any, batch: Batch, label: str) -> float:
    """Share of ``batch``'s rows whose ``label`` the player infers right (where it lives)."""
    probs = player.infer(label, batch)
    return float((probs.argmax(-1).cpu() == batch[label].cpu()).float().mean())


class NoHarmAlpha(FixedAlpha):
    """``alpha`` (a matrix, or a fixed policy such as ``OwnPlusPartners``) whose diagonal follows each player's held-out score; ``validation`` maps a player name to its
    held-out labelled rows (a player without any keeps its row). The rows go only to their own
    player; the policy sees one number per player and update."""

    def __init__(
        self,
        alpha: Any,
        validation: Mapping[str, Batch],
        *,
        every: int = 50,
        start: int = 0,
        step: float = 0.5,
        tolerance: float = 0.0,
        label: str = "label",
    ):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if not 0 <= step <= 1:
            raise ValueError(f"step must be in [0, 1], got {step}")
        super().__init__(alpha)
        self.validation = dict(validation)
        self.every, self.start, self.step = int(every), int(start), float(step)
        self.tolerance, self.label = float(tolerance), label
        self.best: dict[str, float] = {}
        self.log: list[dict[str, Any]] = []
        self._base: torch.Tensor | None = None
        self._current: torch.Tensor | None = None

    def bind(self, names, spaces, batch_size) -> None:
        if isinstance(self._alpha_in, FixedAlpha):  # e.g. OwnPlusPartners: its matrix is the base
            self._alpha_in.bind(names, spaces, batch_size)
            self.composition = self._alpha_in.composition
            self._alpha_in = self._alpha_in.alpha
        super().bind(names, spaces, batch_size)
        unknown = set(self.validation) - set(self.names)
        if unknown:
            raise ValueError(f"validation rows for unknown players {sorted(unknown)}")
        self._base = self._bound().alpha.clone()

    def observe(self, outcome: RoundOutcome) -> None:
        if outcome.round < self.start or outcome.round % self.every:
            return
        assert self._base is not None, "NoHarmAlpha is not bound to a game yet"
        alpha = self.alpha.clone()
        scores = {}
        for i, name in enumerate(self.names):
            if name not in self.validation:
                continue
            score = outcome.players[name].call(
                validation_accuracy, self.validation[name], self.label
            )
            scores[name] = score
            best = self.best.get(name)
            base = float(self._base[i, i])
            own = float(alpha[i, i])
            if best is not None and score < best - self.tolerance:
                own = own + self.step * (1.0 - own)  # the exchange hurts: more own data
            elif best is not None and score > best:
                own = own - self.step * (own - base)  # a new best: back towards the base
            self.best[name] = score if best is None else max(best, score)
            alpha[i] = self._row(i, own)
        self.log.append({"round": outcome.round, "scores": scores, "alpha": alpha.tolist()})
        self._set(alpha)

    def _row(self, i: int, own: float) -> torch.Tensor:
        """Row i with own weight ``own`` and the base's partner weights scaled to the rest."""
        row = self._base[i].clone()
        partners = 1.0 - float(row[i])
        row = row * ((1.0 - own) / partners) if partners > 0 else row
        row[i] = own if partners > 0 else 1.0
        return row

    def _set(self, alpha: torch.Tensor) -> None:
        alpha = validate_alpha(alpha, self.names)
        self._current = alpha
        self._plan = self._plan_of(alpha)

    def describe(self) -> dict[str, Any]:
        assert self._base is not None
        return {
            "policy": type(self).__name__,
            "alpha": self._base.tolist(),
            "every": self.every,
            "step": self.step,
            "tolerance": self.tolerance,
            "composition": self.composition,
            "warmup_rounds": 0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "alpha": None if self._current is None else self._current.clone(),
            "best": dict(self.best),
            "log": list(self.log),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = dict(state.get("best", {}))
        self.log = list(state.get("log", []))
        if state.get("alpha") is not None:
            self._set(torch.as_tensor(state["alpha"], dtype=torch.float64))
