"""multimodal-game: players learn generative models together by exchanging synthetic samples.

The public API in one place; see the README for the concepts.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("multimodal-game")
except PackageNotFoundError:  # a checkout that was not installed
    __version__ = "0+unknown"

# Exported names and the module that defines each; imported on first use, so that light modules
# (errors, validation) and command lines answering --help do not load torch.
_EXPORTS = {
    "batch": ["Batch"],
    "events": ["Event"],
    "game": ["Game"],
    "handlers": ["Checkpointer", "Evaluator", "Progress", "RestartOnLoss", "attach_standard"],
    "host": ["HostSpec", "builders", "host_specs"],
    "player": ["Player", "PyroPlayer"],
    "policy": [
        "FixedAlpha",
        "LearnPlan",
        "OwnPlusPartners",
        "Policy",
        "RoundPlan",
        "Transfer",
        "Warmup",
    ],
    "runtime": ["PlayerHandle", "PlayerLost"],
    "sources": ["DataSource", "TensorSource"],
    "spaces": [
        "Space",
        "Variable",
        "binary_image",
        "categorical",
        "image",
        "interface",
        "latent",
        "real",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from .batch import Batch
    from .events import Event
    from .game import Game
    from .handlers import Checkpointer, Evaluator, Progress, RestartOnLoss, attach_standard
    from .host import HostSpec, builders, host_specs
    from .player import Player, PyroPlayer
    from .policy import FixedAlpha, LearnPlan, OwnPlusPartners, Policy, RoundPlan, Transfer, Warmup
    from .runtime import PlayerHandle, PlayerLost
    from .sources import DataSource, TensorSource
    from .spaces import Space, Variable, binary_image, categorical, image, interface, latent, real


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Batch",
    "Checkpointer",
    "DataSource",
    "Evaluator",
    "Event",
    "FixedAlpha",
    "Game",
    "HostSpec",
    "LearnPlan",
    "OwnPlusPartners",
    "Player",
    "PlayerHandle",
    "PlayerLost",
    "Policy",
    "Progress",
    "PyroPlayer",
    "RestartOnLoss",
    "RoundPlan",
    "Space",
    "TensorSource",
    "Transfer",
    "Variable",
    "Warmup",
    "__version__",
    "attach_standard",
    "binary_image",
    "builders",
    "categorical",
    "host_specs",
    "image",
    "interface",
    "latent",
    "real",
]
