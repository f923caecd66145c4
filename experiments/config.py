"""Typed experiment configs: pydantic models, layered overrides, named errors, commented TOML.

An experiment's config is a :class:`GameConfig` subclass whose fields carry their defaults and a
one-line description. :func:`resolve` merges the layers (defaults, ``--quick``, ``--config`` TOML,
``--set key=value``, command-line flags) and validates the result before any work starts: an
unknown key, a wrong type or a value out of range is a :class:`ConfigError` naming the key, what was
expected and what was given. :func:`to_toml` prints the resolved config with a comment per key
(``--print-config``); the examples under ``experiments/configs/`` are such prints.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError

from modalities.specs import Likelihood, M2Spec
from multimodal_game.errors import ConfigError
from multimodal_game.validation import Strict, describe

__all__ = [
    "ConfigError",
    "GameConfig",
    "LIKELIHOOD",
    "PlayerSize",
    "Resources",
    "Section",
    "load_toml",
    "merge",
    "parse_set",
    "resolve",
    "to_toml",
]


# the image likelihoods, from the torch-free player specs
LIKELIHOOD = Likelihood


class Section(Strict):
    """A config table: unknown keys are errors, values are validated on assignment too."""


class Resources(Section):
    """What a player's Ray actor asks for."""

    num_cpus: float | None = Field(None, ge=0, description="CPU cores (None: Ray's default)")
    num_gpus: float = Field(0.0, ge=0, description="GPUs, fractions allowed")
    group: str | None = Field(
        None,
        min_length=1,
        description="players with one group share one actor (one data holder's process; their "
        "CPUs and GPUs add up), where with fuse_players those of one architecture take fused steps",
    )


class PlayerSize(Section):
    """One player's capacity (experiments whose players differ in size): see :func:`sized`."""

    width: PositiveInt = Field(
        description="width of the first variable's networks (a convolution's channels)"
    )
    hidden: PositiveInt = Field(description="units of the hidden layers")
    latent: PositiveInt = Field(description="dimension of the private latent z")


class GameConfig(Section):
    """Keys every experiment has; experiments subclass it and override defaults."""

    rounds: PositiveInt = Field(1000, description="rounds of each game")
    batch_size: PositiveInt = Field(128, description="rows each player learns from per round")
    eval_every: NonNegativeInt = Field(
        0, description="evaluate every N rounds (0: only at the end)"
    )
    checkpoint_every: NonNegativeInt = Field(
        0, description="write the game's checkpoint every N rounds (0: only at the end)"
    )
    log_every: NonNegativeInt = Field(
        0, description="a metrics.jsonl line every N rounds (0: about 100 per game)"
    )
    threads: NonNegativeInt = Field(
        0,
        description="torch threads of each process that runs players; 0: every core in process, "
        "one per actor on Ray (what each costs: docs/benchmarks.md). Runs on both runtimes are "
        "the same bit for bit given the same threads and fuse_players = false",
    )
    flush_denormals: bool = Field(
        True,
        description="CPU: treat subnormal floats as zero on every CPU thread of every process "
        "that runs players (multimodal_game.device.flush_denormals). As image players train, "
        "their backward pass produces subnormal values, where the CPU computes many times "
        "slower (measured: docs/benchmarks.md, denormals)",
    )
    fuse_players: bool = Field(
        True,
        description="M2 players of one architecture and options (learning 'elbo', no 'complete') "
        "in one process (in process: all; on Ray: a resources group) take one fused step and "
        "make their draws together, equal to their one-by-one steps up to float rounding",
    )
    check_every: PositiveInt = Field(
        1,
        description="rounds between two reads of the players' loss flags (a non-finite loss "
        "stops the game, naming the player and round; every checkpoint and the end check first). "
        "1: every round, before a partner learns from the player's samples",
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="modules imported before any player is built, here and in every Ray worker "
        "(e.g. one that registers your recipe)",
    )
    player_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per player name (or 'default'): keys merged into that player's spec, e.g. "
        "variables with a plugin's recipe, or learning = 'symmetric_equilibrium'",
    )
    resources: dict[str, Resources] = Field(
        default_factory=dict,
        description="Ray: per player name (or 'default') the actor's {num_cpus, num_gpus} and "
        "the group of players sharing it",
    )


class ParameterExchangeConfig(GameConfig):
    """Keys of the experiments that also run the parameter-exchange baselines (FedAvg, FedProx
    through Flower, extra ``[flower]``) on the same shards as the game."""

    fedavg_local_steps: list[PositiveInt] = Field(
        [1, 10, 50],
        description="FedAvg baselines: local steps E between two averagings, one run per E "
        "(empty: none); players of one architecture learn alone and average, weighted by shard "
        "size",
    )
    fedprox_local_steps: list[PositiveInt] = Field(
        [10], description="FedProx baselines: E of each run (empty: none)"
    )
    fedprox_mu: PositiveFloat | list[PositiveFloat] = Field(
        0.01,
        description="FedProx: weight mu of the proximal term mu/2 ||w - w_global||^2; a list "
        "runs one FedProx per mu (methods fedprox_E<E>_mu<mu>), to choose mu on validation",
    )


class GenerativeExchangeConfig(GameConfig):
    """Keys of the experiments that also run the one-shot generative exchange FedCVAE-Ens
    (multimodal_game.fedcvae) over the players that learnt alone."""

    fedcvae: bool = Field(
        True,
        description="also run FedCVAE-Ens: each alone-trained player's decoder p(x | c, z) and "
        "labelled class counts go to a server once; it trains a classifier of each player's "
        "architecture on labelled decoder samples and sends it back",
    )
    fedcvae_samples: PositiveInt = Field(
        10000, description="labelled decoder samples the FedCVAE server draws and trains on"
    )
    fedcvae_steps: NonNegativeInt = Field(
        0,
        description="steps of the FedCVAE server's classifiers (0: the experiment's classifier "
        "steps, discriminative_steps or classifier_steps)",
    )


def sized(player: Mapping[str, Any], size: Mapping[str, Any], **first: Any) -> dict:
    """The m2 spec ``player`` at capacity ``size``: its hidden and latent sizes, and its first
    variable's width (and ``first``'s other options of that variable)."""
    spec = M2Spec.model_validate(player)
    head = spec.variables[0].model_copy(update={"width": size["width"], **first})
    update = {"variables": [head, *spec.variables[1:]]}
    update |= {"hidden": size["hidden"], "latent": size["latent"]}
    return spec.model_copy(update=update).model_dump()


def merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict:
    """Deep-merge ``override`` into ``base`` (tables merge, everything else replaces); a key that
    ``base`` lacks is an error naming it and the closest known key (an empty table takes any key)."""
    out = dict(base)
    for k, v in override.items():
        if k not in base and base:
            close = difflib.get_close_matches(k, list(base), n=1)
            hint = f"; did you mean {where + close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key {where + k!r}{hint} (known: {sorted(base)})")
        if isinstance(base.get(k), Mapping) and isinstance(v, Mapping):
            if "kind" in v and v["kind"] != base[k].get("kind", v["kind"]):
                out[k] = dict(v)  # another kind of player: its own keys, not the old kind's
                continue
            out[k] = merge(base[k], v, where + k + ".")
        elif isinstance(base.get(k), list) and isinstance(v, Mapping) and all(map(_index, v)):
            out[k] = _merge_items(base[k], v, where + k)  # --set player.variables.0.width=16
        else:
            out[k] = v
    return out


def _index(key: Any) -> bool:
    return str(key).isdigit()


def _merge_items(base: list, override: Mapping[str, Any], where: str) -> list:
    """``base`` with item ``i`` merged with ``override["i"]`` (an item past the end is an error)."""
    items = list(base)
    for i, item in override.items():
        if int(i) >= len(items):
            raise ConfigError(f"config key {where}.{i}: {where} has {len(items)} item(s)")
        old = items[int(i)]
        both = isinstance(old, Mapping) and isinstance(item, Mapping)
        items[int(i)] = merge(old, item, f"{where}.{i}.") if both else item
    return items


def resolve(model: type[GameConfig], layers: Sequence[Mapping[str, Any]]) -> GameConfig:
    """Merge ``layers`` over ``model``'s defaults and validate (a :class:`ConfigError` if wrong)."""
    cfg: dict[str, Any] = model().model_dump()
    for layer in layers:
        cfg = merge(cfg, layer)
    try:
        return model.model_validate(cfg)
    except ValidationError as e:
        raise ConfigError(f"config {describe(e)}") from None


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables; a missing or malformed file is a :class:`ConfigError` naming it."""
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}") from None


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``["player.latent=16", "data=runs/x"]`` -> nested tables. A value is read as TOML (numbers,
    booleans, arrays, inline tables) and as a plain string when it is not TOML."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. player.latent=16), got {item!r}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *tables, last = key.strip().split(".")
        node = out
        for t in tables:
            node = node.setdefault(t, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {t!r} is set to a value and a table")
        node[last] = value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_toml(cfg: BaseModel, table: str = "") -> str:
    """``cfg`` as TOML with each key's description as a comment above it (None values left out:
    TOML has no null, and leaving a key out means its default)."""
    plain, tables = [], []
    for name, field in type(cfg).model_fields.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        comment = f"# {field.description}\n" if field.description else ""
        if isinstance(value, BaseModel):
            tables.append(comment + to_toml(value, f"{table}{name}."))
        elif (
            isinstance(value, dict)
            or isinstance(value, list)
            and value
            and isinstance(value[0], BaseModel)
        ):  # a table, or a list of tables (an array of tables unless it fits inline)
            text = tomli_w.dumps({name: _plain(value)}).strip()
            if not text.startswith("["):  # written inline: a key of this table
                plain.append(comment + text)
                continue
            wrapped: dict[str, Any] = {name: _plain(value)}
            for part in reversed(table.rstrip(".").split(".") if table else []):
                wrapped = {part: wrapped}
            tables.append(comment + tomli_w.dumps(wrapped).strip())
        else:
            plain.append(comment + tomli_w.dumps({name: _plain(value)}).strip())
    head = [f"[{table.rstrip('.')}]"] if table else []
    return "\n".join(head + plain) + "\n" + "".join("\n" + t + "\n" for t in tables)
