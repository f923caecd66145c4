"""Random variables, probability spaces and the interface between two players' spaces."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch

KINDS = ("categorical", "image", "binary_image", "latent", "real")


@dataclass(frozen=True)
class Variable:
    """A named random variable.

    ``kind`` is one of ``categorical`` (shape ``(k,)``: k categories, values are integer codes),
    ``image`` / ``binary_image`` (shape ``(c, h, w)``), ``latent`` or ``real`` (shape ``(d,)``).
    ``exchangeable`` says whether the owning player sends and receives samples of it.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    exchangeable: bool = True

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"variable name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(
                f"variable {self.name!r}: unknown kind {self.kind!r}; expected one of {KINDS}"
            )
        shape = tuple(int(s) for s in self.shape)
        object.__setattr__(self, "shape", shape)
        want = 3 if self.kind in ("image", "binary_image") else 1
        if len(shape) != want or any(s <= 0 for s in shape):
            raise ValueError(
                f"variable {self.name!r} of kind {self.kind!r} needs {want} positive dimension(s), got {shape}"
            )
        if self.kind == "categorical" and shape[0] < 2:
            raise ValueError(f"categorical variable {self.name!r} needs at least 2 categories")

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one example's value (categoricals are stored as integer codes, shape ``()``)."""
        return () if self.kind == "categorical" else self.shape

    @property
    def dtype(self) -> torch.dtype:
        return torch.long if self.kind == "categorical" else torch.float32

    @property
    def cardinality(self) -> int:
        if self.kind != "categorical":
            raise TypeError(f"variable {self.name!r} is {self.kind}, not categorical")
        return self.shape[0]

    def same_type(self, other: Variable) -> bool:
        return self.kind == other.kind and self.shape == other.shape

    def describe(self) -> str:
        return f"{self.kind}{self.shape}"

    def check_values(self, value: torch.Tensor, owner: str = "") -> None:
        """Raise a ``ValueError`` naming the variable when ``value`` has the wrong per-example shape."""
        if tuple(value.shape[1:]) != self.event_shape:
            where = f" of {owner}" if owner else ""
            raise ValueError(
                f"variable {self.name!r}{where}: expected per-example shape {self.event_shape}, "
                f"got tensor of shape {tuple(value.shape)}"
            )


def categorical(name: str, k: int, exchangeable: bool = True) -> Variable:
    return Variable(name, "categorical", (k,), exchangeable)


def image(name: str, c: int = 1, h: int = 28, w: int = 28, exchangeable: bool = True) -> Variable:
    return Variable(name, "image", (c, h, w), exchangeable)


def binary_image(
    name: str, c: int = 1, h: int = 28, w: int = 28, exchangeable: bool = True
) -> Variable:
    return Variable(name, "binary_image", (c, h, w), exchangeable)


def latent(name: str, d: int, exchangeable: bool = False) -> Variable:
    return Variable(name, "latent", (d,), exchangeable)


def real(name: str, d: int, exchangeable: bool = True) -> Variable:
    return Variable(name, "real", (d,), exchangeable)


class Space(Mapping[str, Variable]):
    """The set of named variables one player models."""

    def __init__(self, variables: Iterable[Variable]):
        self._vars: dict[str, Variable] = {}
        for v in variables:
            if not isinstance(v, Variable):
                raise TypeError(f"Space takes Variable objects, got {type(v).__name__}")
            if v.name in self._vars:
                raise ValueError(f"variable {v.name!r} declared twice in one space")
            self._vars[v.name] = v
        if not self._vars:
            raise ValueError("a space needs at least one variable")

    def __getitem__(self, name: str) -> Variable:
        try:
            return self._vars[name]
        except KeyError:
            raise KeyError(f"no variable {name!r} in space {sorted(self._vars)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    @property
    def exchangeable(self) -> tuple[str, ...]:
        return tuple(n for n, v in self._vars.items() if v.exchangeable)

    @property
    def observable(self) -> tuple[str, ...]:
        """Variables that data can carry (everything but latents)."""
        return tuple(n for n, v in self._vars.items() if v.kind != "latent")

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{n}:{v.describe()}{'' if v.exchangeable else '*'}" for n, v in self._vars.items()
        )
        return f"Space({inner})"


def interface(a: Space, b: Space, names: tuple[str, str] = ("a", "b")) -> tuple[str, ...]:
    """Exchangeable variables of ``a`` that ``b`` also declares exchangeable, with equal kind and shape.

    The order follows ``a``. A variable that both spaces declare exchangeable under the same name but
    with a different kind or shape is an error naming both players and the variable: silently
    dropping it would hide a configuration mistake.
    """
    shared = []
    for name in a.exchangeable:
        if name not in b or not b[name].exchangeable:
            continue
        va, vb = a[name], b[name]
        if not va.same_type(vb):
            raise ValueError(
                f"variable {name!r} is {va.describe()} in player {names[0]!r} but "
                f"{vb.describe()} in player {names[1]!r}: exchangeable variables with the same name "
                "must have the same kind and shape"
            )
        shared.append(name)
    return tuple(shared)
