"""Players back from a checkpoint or a run folder, in one call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from multimodal_game.checkpoint import load_checkpoint
from multimodal_game.errors import CheckpointError
from multimodal_game.host import import_plugins

from .registry import build_player


def load_players(path: str | Path, game: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """The players of a checkpoint, rebuilt from the specs it records and loaded with its state
    (parameters and optimiser), on ``device``. ``path``: a ``.ckpt`` file, or a run folder with
    ``game`` naming one of its games (``<game>.ckpt``; the folder's ``config.json`` plugins are
    imported first). Returns ``{player name: player}`` in the game's order."""
    path = Path(path)
    if path.is_dir():
        config = path / "config.json"
        if config.is_file():
            import_plugins(json.loads(config.read_text()).get("plugins", ()))
        games = sorted(p.stem for p in path.glob("*.ckpt"))
        if game is None or game not in games:
            said = "no game named" if game is None else f"no checkpoint {game + '.ckpt'!r}"
            raise CheckpointError(f"run folder {str(path)!r}: {said}; its games are {games}")
        path = path / f"{game}.ckpt"
    state = load_checkpoint(path)
    players = {}
    for name in state["names"]:
        host = state["hosts"][name]
        if not host.get("spec"):
            raise CheckpointError(
                f"checkpoint {str(path)!r}: player {name!r} records no spec (written by an older "
                "version, or a player not built by build_player): build it from its spec and "
                "load_state_dict(state['hosts'][name]['player'])"
            )
        player = build_player(host["spec"])
        player.load_state_dict(host["player"])
        players[name] = player.to(device)
    return players
