"""Validate plain mappings (TOML tables, player specs) against pydantic models, with errors that
name the key, what was expected and what was given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A table whose unknown keys are errors (a typo such as ``clases`` is never ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def describe(error: ValidationError, prefix: str = "") -> str:
    """One clause per problem: the dotted key, what was expected, what was given."""
    lines = []
    for e in error.errors():
        # a tagged union's tag (spelled "field=value", e.g. "recipe=image") is not a key
        key = prefix + ".".join(str(p) for p in e["loc"] if "=" not in str(p))
        msg = e["msg"].removeprefix("Value error, ")
        if not e["loc"]:  # a check across keys: its message names them
            lines.append(msg)
        elif e["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r}")
        elif e["type"] == "missing":
            lines.append(f"key {key!r} is required")
        else:
            lines.append(f"key {key!r}: {msg}, got {e.get('input')!r}")
    return "; ".join(lines)


def validated(model: type[M], data: Mapping[str, Any] | Any, what: str, prefix: str = "") -> M:
    """``model`` from ``data``; a :class:`ConfigError` starting with ``what`` when it is wrong."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what}: expected a table, got {type(data).__name__} {data!r}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(f"{what}: {describe(e, prefix)}") from None
