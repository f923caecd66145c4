"""Shared plumbing of experiment CLIs: arguments, seeds, run folders, JSON and tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from multimodal_game.device import CHOICES, resolve_device
from multimodal_game.game import Game
from multimodal_game.handlers import attach_standard
from multimodal_game.host import HostSpec
from multimodal_game.rng import derive_seed


def base_parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    p.add_argument("--config", type=Path, help="TOML file overriding the defaults")
    p.add_argument(
        "--quick", action="store_true", help="small size that finishes on 2 CPU cores in minutes"
    )
    p.add_argument("--out", type=Path, help=f"run folder (default runs/{name}-<time>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help=f"one of {CHOICES} or cuda:N")
    p.add_argument(
        "--resume", action="store_true", help="continue from the run folder's checkpoints"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--runtime",
        choices=("inprocess", "ray"),
        default="inprocess",
        help="where players live: this process, or one Ray actor each",
    )
    p.add_argument(
        "--ray-address",
        help="Ray cluster to join ('auto' or host:port); default: start a local Ray on loopback",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="restart a lost player from the last checkpoint up to N times (default: stop)",
    )
    return p


@contextlib.contextmanager
def runtime_session(args: argparse.Namespace) -> Iterator[None]:
    """Start (or join) Ray once for the whole run when ``--runtime ray``; nothing otherwise."""
    if args.runtime != "ray":
        yield
        return
    try:
        from multimodal_game.runtime.ray_runtime import init_ray
    except ImportError as e:
        raise SystemExit(f"error: {e}") from e
    import ray

    started = init_ray(args.ray_address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def host_specs(
    builders: Mapping[str, Callable[[], Any]],
    seed: int,
    device: torch.device | str,
    resources: Mapping[str, Mapping[str, float]] | None = None,
) -> list[HostSpec]:
    """One ``HostSpec`` per player; ``resources`` maps a player name (or ``default``) to
    ``{num_cpus, num_gpus}`` for the Ray runtime."""
    resources = resources or {}
    unknown = set(resources) - set(builders) - {"default"}
    if unknown:
        raise ValueError(
            f"resources for unknown players {sorted(unknown)}; players: {list(builders)}"
        )
    specs = []
    for k, (name, build) in enumerate(builders.items()):
        res = {
            "num_cpus": None,
            "num_gpus": 0.0,
            **resources.get("default", {}),
            **resources.get(name, {}),
        }
        bad = set(res) - {"num_cpus", "num_gpus"}
        if bad:
            raise ValueError(
                f"resources of {name!r}: unknown keys {sorted(bad)}; use num_cpus, num_gpus"
            )
        specs.append(
            HostSpec(
                name,
                build,
                derive_seed(seed, k),
                str(device),
                None if res["num_cpus"] is None else float(res["num_cpus"]),
                float(res["num_gpus"]),
            )
        )
    return specs


def make_game(
    specs: list[HostSpec],
    alpha: Any,
    batch_size: int,
    args: argparse.Namespace,
    warmup_rounds: int = 0,
) -> Game:
    options = {"address": args.ray_address} if args.runtime == "ray" else {}
    return Game.from_specs(
        specs,
        alpha,
        runtime=args.runtime,
        runtime_options=options,
        batch_size=batch_size,
        seed=args.seed,
        warmup_rounds=warmup_rounds,
    )


def play(
    game: Game,
    tag: str,
    rounds: int,
    cfg: Mapping[str, Any],
    args: argparse.Namespace,
    out: Path,
    hooks=(),
) -> Game:
    """Run ``game`` for ``rounds`` with the run folder's checkpoint ``<tag>.ckpt`` (resumable)."""
    ck = out / f"{tag}.ckpt"
    if args.resume and ck.is_file():
        game.load(ck)
    attach_standard(
        game,
        hooks=hooks,
        eval_every=cfg.get("eval_every", 0),
        checkpoint_every=cfg.get("checkpoint_every", 0),
        checkpoint_path=ck,
        progress=not args.no_progress,
        description=tag,
        max_restarts=args.max_restarts,
    )
    game.run(rounds)
    return game


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def merge_config(defaults: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict:
    """Deep-merge ``override`` into ``defaults``; an unknown key is an error naming it."""
    out = dict(defaults)
    for k, v in override.items():
        if k not in defaults and not (where and not defaults):  # an empty table takes any key
            raise ValueError(f"unknown config key {where + k!r}; known keys: {sorted(defaults)}")
        if isinstance(defaults.get(k), Mapping) and isinstance(v, Mapping):
            out[k] = merge_config(defaults[k], v, where + k + ".")
        else:
            out[k] = v
    return out


def load_config(
    defaults: Mapping[str, Any], args: argparse.Namespace, quick: Mapping | None = None
) -> dict:
    cfg = dict(defaults)
    if args.quick and quick:
        cfg = merge_config(cfg, quick)
    if args.config is not None:
        if not args.config.is_file():
            raise SystemExit(f"error: config file {str(args.config)!r} does not exist")
        with open(args.config, "rb") as f:
            cfg = merge_config(cfg, tomllib.load(f))
    return cfg


def run_folder(name: str, args: argparse.Namespace) -> Path:
    out = args.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def setup(name: str, args: argparse.Namespace, defaults: Mapping, quick: Mapping | None = None):
    """Resolve config, device and run folder; write the resolved config; seed everything."""
    cfg = load_config(defaults, args, quick)
    device = resolve_device(args.device)
    out = run_folder(name, args)
    cfg_record = {**cfg, "seed": args.seed, "device": str(device), "quick": bool(args.quick)}
    write_json(out / "config.json", cfg_record)
    seed_everything(args.seed)
    return cfg, device, out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2) + "\n")
    tmp.replace(path)
    return path


def write_results(out: Path, results: Any) -> dict:
    """Write ``out/results.json`` and return what it holds (plain JSON: string keys, lists)."""
    path = write_json(out / "results.json", results)
    return json.loads(path.read_text())


def say(msg: str) -> None:
    print(msg, file=sys.stdout, flush=True)
