"""Every experiment, found rather than listed: a subpackage of this package that defines
``Config`` (a :class:`~experiments.config.GameConfig`) and ``main`` in its torch-free
``__init__``, with its body in ``run.py``. The command line (``mmgame run``), the
config tests and ``docs/experiments.md`` read this one registry, so a new experiment is its module,
its body and its config TOML. Reading it imports the torch-free front modules only."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from .config import GameConfig


@dataclass(frozen=True)
class Experiment:
    name: str  # module name, e.g. "fashion_ssl"
    module: ModuleType

    @property
    def command(self) -> str:
        """Its name on ``mmgame run`` (dashes)."""
        return self.name.replace("_", "-")

    @property
    def config(self) -> type[GameConfig]:
        return self.module.Config

    @property
    def profiles(self) -> dict[str, dict]:
        """The size profiles it defines beside the full default (``quick``, ``standard``,
        ``large``)."""
        found = {k: getattr(self.module, k.upper(), None) for k in ("quick", "standard", "large")}
        return {k: dict(v) for k, v in found.items() if v is not None}

    @property
    def summary(self) -> str:
        return (self.module.__doc__ or self.name).strip().splitlines()[0]


def _is_experiment(module: ModuleType) -> bool:
    config = getattr(module, "Config", None)
    return (
        isinstance(config, type)
        and issubclass(config, GameConfig)
        and callable(getattr(module, "main", None))
    )


def registry(package: str = "experiments") -> dict[str, Experiment]:
    """``{name: Experiment}`` of every experiment module in ``package``, sorted by name."""
    pkg = importlib.import_module(package)
    found = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or not info.ispkg:  # plain modules are shared code
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if _is_experiment(module):
            found[info.name] = Experiment(info.name, module)
    return found
