"""multimodal-game: players learn generative models together by exchanging synthetic samples.

The public API in one place; see the README for the concepts.
"""

from importlib.metadata import PackageNotFoundError, version

from .batch import Batch
from .events import Event
from .game import Game
from .handlers import Checkpointer, Evaluator, Progress, RestartOnLoss, attach_standard
from .host import HostSpec
from .player import Player, PyroPlayer
from .policy import FixedAlpha, LearnPlan, OwnPlusPartners, Policy, RoundPlan, Transfer, Warmup
from .runtime import PlayerHandle, PlayerLost
from .sources import DataSource, TensorSource
from .spaces import Space, Variable, binary_image, categorical, image, interface, latent, real

try:
    __version__ = version("multimodal-game")
except PackageNotFoundError:  # a checkout that was not installed
    __version__ = "0+unknown"

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
    "categorical",
    "image",
    "interface",
    "latent",
    "real",
]
