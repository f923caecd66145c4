"""Shared plumbing of experiment CLIs: arguments, seeds, run folders, JSON and tables."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from multimodal_game.device import CHOICES, resolve_device


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
    return p


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def merge_config(defaults: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict:
    """Deep-merge ``override`` into ``defaults``; an unknown key is an error naming it."""
    out = dict(defaults)
    for k, v in override.items():
        if k not in defaults:
            raise ValueError(f"unknown config key {where + k!r}; known keys: {sorted(defaults)}")
        if isinstance(defaults[k], Mapping) and isinstance(v, Mapping):
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


def say(msg: str) -> None:
    print(msg, file=sys.stdout, flush=True)
