"""The experiment skeleton: arguments, config, run folder, hosts, games, results.

An experiment is a ``body(run) -> results`` function plus its defaults; :func:`run_package`
parses the command line, resolves the config (defaults, ``--quick``, ``--config``, then command-line
overrides), writes ``config.json`` with what will run, and calls the body with a :class:`Run` that
builds games from host builders, plays them with checkpoints and resume, and writes the results.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import importlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multimodal_game.errors import CheckpointError, ConfigError, Diverged, PlayerLost

if TYPE_CHECKING:  # torch and the game load only once a run starts: --help stays fast
    import torch

    from multimodal_game.game import Game

from .config import GameConfig, load_toml, parse_set, resolve, to_toml
from .folders import Terminated, claim, interrupted_line, locked, sigterm_unwinds

DEVICE_CHOICES = ("auto", "cpu", "cuda")

# Errors a user can fix from the message alone: printed as one line without a traceback.
USER_ERRORS = (ConfigError, CheckpointError, Diverged, PlayerLost)


@dataclass(frozen=True)
class Flag:
    """A command-line option that overrides config key ``key`` (applied before config.json)."""

    flag: str
    key: str
    type: Callable[[str], Any]
    help: str


def base_parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    p.add_argument("--config", type=Path, help="TOML file overriding the defaults")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (dotted, e.g. --set player.latent=32 or player.variables.0.width=16; repeatable)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as commented TOML and exit",
    )
    p.add_argument(
        "--debug", action="store_true", help="show the traceback of an expected error too"
    )
    p.add_argument(
        "--quick", action="store_true", help="small size that finishes on 2 CPU cores in minutes"
    )
    p.add_argument(
        "--profile",
        choices=("quick", "standard", "large", "full"),
        help="size: quick (= --quick), standard (about 30-45 minutes on 2 CPU cores), large "
        "(about 2 hours on 2 CPU cores), where the experiment has them, or full (the default)",
    )
    p.add_argument("--out", type=Path, help=f"run folder (default runs/{name}-<time>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="N",
        help="run once per seed (into <out>/seed<N>) and write mean and std of every number to "
        "<out>/results.json",
    )
    p.add_argument("--device", default="auto", help=f"one of {DEVICE_CHOICES} or cuda:N")
    p.add_argument(
        "--resume", action="store_true", help="continue from the run folder's checkpoints"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run that --out already holds (its files are deleted first); without "
        "it, and without --resume, a folder that holds a run is refused",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars or lines")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log the metrics.jsonl records as TensorBoard scalars under <out>/tensorboard "
        "(extra [tensorboard])",
    )
    p.add_argument(
        "--runtime",
        choices=("inprocess", "ray"),
        default="inprocess",
        help="where players live: this process, or one Ray actor each",
    )
    p.add_argument(
        "--ray-address",
        help="Ray cluster to join ('auto' or host:port); default: start a private local Ray",
    )
    p.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="KEY",
        help="with --resume: accept a changed config KEY (dotted, e.g. player.lr); rounds may always grow",
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


def with_overrides(name: str, spec: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with the config's ``player_overrides`` for ``default`` and then for ``name``
    merged in (tables merge, other values replace)."""
    overrides = cfg.get("player_overrides") or {}
    out = dict(spec)
    for key in ("default", name):
        for k, v in overrides.get(key, {}).items():
            out[k] = (
                {**out[k], **v} if isinstance(out.get(k), Mapping) and isinstance(v, Mapping) else v
            )
    return out


def preflight(cfg: Mapping[str, Any], *games: tuple[Mapping[str, Mapping], Any]) -> None:
    """Check every game an experiment plays, each given as ``(specs, alpha)`` (player name ->
    spec; alpha, a policy or None), before any work starts: ``player_overrides`` name
    players of some game, every player builds from its spec (no data), and each alpha (or
    policy; None: none) binds to its game's spaces. A :class:`ConfigError` names the player."""
    from multimodal_game.host import import_plugins

    import_plugins(cfg.get("plugins", ()))
    players = list(dict.fromkeys(nm for specs, _ in games for nm in specs))
    unknown = set(cfg.get("player_overrides") or {}) - set(players) - {"default"}
    if unknown:
        raise ConfigError(
            f"player_overrides for unknown players {sorted(unknown)}; players: {players}"
        )
    for specs, alpha in games:
        _preflight_game(specs, alpha, cfg)
        check_memory(specs, cfg["batch_size"])
    warmup, rounds = cfg.get("warmup_rounds", 0), cfg["rounds"]
    if warmup >= rounds and any(alpha is not None and len(specs) > 1 for specs, alpha in games):
        print(
            f"warning: warmup_rounds = {warmup} >= rounds = {rounds}: the players learn alone for "
            "the whole game and nothing is exchanged",
            file=sys.stderr,
            flush=True,
        )


# Bytes of training memory per pixel of an image variable per row of a batch, per unit of the
# image networks' width: measured on this project's CPU VM for m2 players of width 12 and 32
# (one learn step's peak resident memory at 256 and 2,048 rows: 0.47 and 1.13 MB more per row,
# about 48 x width bytes per pixel; the decoder runs once per class for unlabelled rows)
BYTES_PER_PIXEL_AND_WIDTH = 48


def memory_estimate(specs: Mapping[str, Mapping[str, Any]], batch_size: int) -> int:
    """Bytes that one round's learn steps may hold at once: every m2 player's image variables at
    ``2 * batch_size`` rows (a game batch: own rows with synthetic rows on top), all players
    together (fused steps train a group at once)."""
    total = 0
    for spec in specs.values():
        if spec.get("kind", "m2") != "m2":
            continue
        for v in spec.get("variables", ()):
            if v.get("recipe") == "image":
                pixels = v.get("channels", 1) * 28 * 28
                total += BYTES_PER_PIXEL_AND_WIDTH * v.get("width", 32) * pixels * 2 * batch_size
    return total


def available_memory() -> int | None:
    """Bytes this machine can still give (MemAvailable), or None where it cannot be read."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path("/proc/meminfo").read_text().splitlines()
        return 1024 * int(next(x for x in lines if x.startswith("MemAvailable")).split()[1])
    return None


def check_memory(specs: Mapping[str, Mapping[str, Any]], batch_size: int) -> None:
    """Refuse a batch size whose estimated training memory exceeds what this machine has free;
    warn above half of it."""
    need, have = memory_estimate(specs, batch_size), available_memory()
    if have is None or need == 0:
        return
    text = f"batch_size = {batch_size}: the players' learn steps need about {need / 2**30:.1f} GiB"
    if need > have:
        raise ConfigError(
            f"{text}, more than the {have / 2**30:.1f} GiB this machine has free; use a smaller "
            "batch_size"
        )
    if need > have / 2:
        print(f"warning: {text} of the {have / 2**30:.1f} GiB free", file=sys.stderr, flush=True)


def _preflight_game(specs: Mapping[str, Mapping[str, Any]], alpha: Any, cfg: Mapping) -> None:
    from modalities import build_player
    from multimodal_game.host import host_specs
    from multimodal_game.policy import as_policy

    spaces = {}
    for nm, spec in specs.items():
        try:
            spaces[nm] = build_player(spec).space
        except (ValueError, TypeError) as e:
            raise ConfigError(f"player {nm!r}: {e}") from None
    host_specs({nm: None for nm in specs}, 0, "cpu", cfg.get("resources"))
    if alpha is None:
        return
    try:
        as_policy(copy.deepcopy(alpha)).bind(list(specs), spaces, cfg["batch_size"])
    except (ValueError, TypeError) as e:
        raise ConfigError(f"alpha: {e}") from None


class Run:
    """One run of an experiment: its config, device, run folder, and the games it plays."""

    def __init__(
        self,
        name: str,
        args: argparse.Namespace,
        cfg: dict,
        device: torch.device,
        out: Path,
        record: dict | None = None,
    ):
        self.name, self.args, self.cfg, self.device, self.out = name, args, cfg, device, out
        # what determines the trajectory; kept in every checkpoint and compared on --resume
        self.record = record if record is not None else {**cfg, "seed": args.seed}
        self.seed = args.seed
        self.t0 = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def results_text(self, saved: dict) -> str:
        """The experiment's declared results table (its package's ``TABLE``, the one the results
        page shows) rendered for the terminal, under the run's name and size."""
        module = importlib.import_module(f"experiments.{self.name}")
        table = getattr(module, "TABLE", None)
        if table is None:
            return ""
        from rich.console import Console
        from rich.markdown import Markdown

        console = Console(width=160, record=True)
        with console.capture() as cap:
            console.print(f"{self.name} ({self.profile}, {self.cfg['rounds']} rounds)")
            console.print(Markdown(table.render(saved, self.cfg)))
        return cap.get()

    @property
    def profile(self) -> str:
        """The size profile this run plays: quick, standard, large or full."""
        return profile_of(self.args)

    def game(
        self,
        tag: str,
        builders: Mapping[str, Callable[[], Any]],
        alpha: Any,
        *,
        warmup_rounds: int = 0,
        rounds: int | None = None,
        hooks: Sequence[Callable] = (),
        on_round: Callable[[Game], Any] | None = None,
        setup: Callable[[Game], Any] | None = None,
        game_options: Mapping[str, Any] | None = None,
    ) -> Game:
        """Build the hosts where they live, then play ``rounds`` (default ``cfg["rounds"]``) with
        the checkpoint ``<out>/<tag>.ckpt`` (picked up by ``--resume``); ``on_round(game)`` runs after
        every round. The caller closes the game."""
        from multimodal_game.events import Event
        from multimodal_game.game import Game
        from multimodal_game.handlers import attach_standard
        from multimodal_game.host import host_specs

        t0 = time.perf_counter()
        specs = host_specs(
            builders, self.seed, self.device, self.cfg.get("resources"), self.cfg.get("plugins")
        )
        options = {"fuse_players": bool(self.cfg.get("fuse_players"))}
        if self.args.runtime == "ray":
            options.update(
                address=self.args.ray_address,
                threads=self.cfg["threads"],
                flush_denormals=bool(self.cfg.get("flush_denormals")),
            )
        game = Game.from_specs(
            specs,
            alpha,
            runtime=self.args.runtime,
            runtime_options=options,
            # game_options may set its own batch size (e.g. a variant with an extra half batch)
            **{
                "batch_size": self.cfg["batch_size"],
                "seed": self.seed,
                "warmup_rounds": warmup_rounds,
                "check_every": self.cfg.get("check_every", 1),
                **dict(game_options or {}),
            },
        )
        game.state.meta = {"config": self.record}
        try:
            ck = self.out / f"{tag}.ckpt"
            if self.args.resume:
                if ck.is_file():
                    game.load(ck)
                else:  # e.g. a sweep value added since: say it, do not start fresh silently
                    say(f"{tag}: no checkpoint {str(ck)!r} to resume; this game starts at round 0")
            attach_standard(
                game,
                hooks=hooks,
                eval_every=self.cfg.get("eval_every", 0),
                checkpoint_every=self.cfg.get("checkpoint_every", 0),
                checkpoint_path=ck,
                progress=not self.args.no_progress,
                description=tag,
                max_restarts=self.args.max_restarts,
                metrics_path=self.out / "metrics.jsonl",
                tensorboard=self.out / "tensorboard" if self.args.tensorboard else None,
                log_every=self.cfg["log_every"] or max(1, (rounds or self.cfg["rounds"]) // 100),
            )
            if on_round is not None:
                game.add_handler(Event.ROUND_COMPLETED, on_round)
            if setup is not None:  # e.g. attach a handler that changes the policy
                setup(game)
            game.run(self.cfg["rounds"] if rounds is None else rounds)
        except BaseException:
            game.close()
            raise
        self.seconds[tag] = time.perf_counter() - t0
        return game

    @contextlib.contextmanager
    def timed(self, tag: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.seconds[tag] = time.perf_counter() - t0

    def finish(self, results: dict, summary: str = "") -> dict:
        """Add timings, write ``results.json``, print ``summary`` and where the results are."""
        from multimodal_game.handlers import plot_curves

        results = {
            **results,
            "seconds": self.seconds,
            "total_seconds": time.perf_counter() - self.t0,
        }
        saved = write_results(self.out, results)
        if (self.out / "metrics.jsonl").is_file():
            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        text = summary or self.results_text(saved)
        if text:
            say(text)
        say(f"wall time {results['total_seconds']:.0f} s; results in {self.out}/results.json")
        return saved


def run_package(package: str, argv: Sequence[str] | None = None) -> dict:
    """Run experiment package ``package`` (its ``__name__``) as it declares itself: its docstring,
    ``Config``, profiles ``QUICK`` / ``STANDARD`` / ``LARGE``, ``FLAGS`` and ``RESUMABLE``.

    Parse ``argv``, import the body ``<package>.run`` (only now: ``--help`` does not load torch),
    resolve and validate the config (``run.check(cfg)``, if there is one, validates what the model
    cannot: player specs, alpha; ``run.check_data(cfg)`` the data files), write ``config.json``,
    seed everything and call ``run.body(run)`` (inside a Ray session with ``--runtime ray``). An
    expected user error (a :class:`ConfigError`, a bad checkpoint, a lost or diverged player)
    prints one line and exits with status 2; ``--debug`` shows its traceback."""
    front = sys.modules[package]
    name, config, flags = package.rsplit(".", 1)[-1], front.Config, getattr(front, "FLAGS", ())
    profiles = {k: getattr(front, k.upper(), None) for k in ("quick", "standard", "large")}
    p = base_parser(name, front.__doc__.strip().splitlines()[0])
    for f in flags:
        p.add_argument(f.flag, dest=f"set_{f.key}", type=f.type, help=f.help)
    args = p.parse_args(argv)
    if args.quick and args.profile not in (None, "quick"):
        p.error(f"--quick and --profile {args.profile} contradict each other")
    if args.profile in ("standard", "large") and profiles[args.profile] is None:
        have = ", ".join(f"--profile {k}" for k, v in profiles.items() if v is not None)
        p.error(f"{name} has no {args.profile} profile (its sizes: {have}, and the default full)")
    args.profile = profile_of(args)
    args.quick = args.profile == "quick"
    if not getattr(front, "RESUMABLE", True) and (args.resume or args.max_restarts):
        p.error(
            f"{name} tracks every round from the first and runs in minutes: --resume and "
            "--max-restarts are not supported; run it again"
        )
    if args.resume and args.out is None:
        p.error(f"--resume needs --out: the run folder to continue (e.g. --out runs/{name}-...)")
    try:
        module = importlib.import_module(f"{package}.run")
        checks = [
            _unseeded(getattr(module, c)) for c in ("check", "check_data") if hasattr(module, c)
        ]
        if hasattr(module, "check_seed"):  # what depends on the seed too, e.g. its data shards
            checks.append(module.check_seed)
        layer = profiles.get(args.profile)
        args.folder = {"out": None}  # the run folder, once made (what an interruption names)
        with sigterm_unwinds():
            if not args.seeds:
                return _run(name, config, layer, module.body, args, flags, checks)
            return _run_seeds(name, config, layer, module.body, args, flags, checks)
    except (KeyboardInterrupt, Terminated) as e:
        if args.debug:
            raise
        why = "interrupted (Ctrl-C)" if isinstance(e, KeyboardInterrupt) else "terminated (SIGTERM)"
        argv_used = list(sys.argv[1:] if argv is None else argv)
        out = args.folder["out"] if hasattr(args, "folder") else None
        print(interrupted_line(package, argv_used, out, why), file=sys.stderr, flush=True)
        raise SystemExit(130 if isinstance(e, KeyboardInterrupt) else 143) from None
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr, flush=True)
        print("(run with --debug for the traceback)", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def not_comparable(cfg: Mapping[str, Any], asked_threads: int, runtime: str) -> str:
    """Why a run on ``runtime`` would not give bit for bit the numbers of the same config on the
    other runtime ('' when it would): the default ``threads = 0`` resolves to every core in
    process and one thread per Ray actor, and fused steps run in process only unless a Ray
    actor holds a group (``resources``)."""
    why = []
    cores = max(1, os.cpu_count() or 1)
    if asked_threads == 0 and cores > 1:
        why.append(f"threads = 0 is {cores} threads in process and 1 per Ray actor")
    groups = any("group" in (r or {}) for r in (cfg.get("resources") or {}).values())
    if cfg.get("fuse_players") and not groups:
        why.append("fuse_players fuses steps in process, while each Ray actor steps its one player")
    if not why:
        return ""
    other = "Ray" if runtime != "ray" else "in process"
    return (
        f"this run is not bit-comparable with the same config run {other}: {'; '.join(why)} "
        "(set threads and fuse_players = false for runs that must match)"
    )


def _unseeded(check: Callable[[dict], None]) -> Callable[[dict, int], None]:
    """A check of the config alone, called as every check is: ``check(cfg, seed)``."""
    return lambda cfg, seed: check(cfg)


def profile_of(args: argparse.Namespace) -> str:
    """The run's size: ``quick``, ``standard``, ``large`` or ``full``."""
    return getattr(args, "profile", None) or ("quick" if args.quick else "full")


def resolve_config(
    config: type[GameConfig],
    profile: Mapping[str, Any] | None,
    args: argparse.Namespace,
    flags: Sequence[Flag] = (),
) -> GameConfig:
    """Defaults, then the profile's layer (``--quick`` / ``--profile``), ``--config``, ``--set``
    and the experiment's own flags."""
    layers: list[Mapping[str, Any]] = [profile] if profile else []
    if args.config is not None:
        layers.append(load_toml(args.config))
    layers.append(parse_set(args.set))
    layers.append({f.key: v for f in flags if (v := getattr(args, f"set_{f.key}")) is not None})
    return resolve(config, layers)


def _run_seeds(name, config, quick, body, args, flags, checks) -> dict:
    """One run per seed in ``<out>/seed<N>``, then ``<out>/results.json`` with every numeric
    result's mean, standard deviation and values across the seeds."""
    started = [
        s for s in args.seeds if args.resume and (args.out / f"seed{s}" / "config.json").is_file()
    ]
    if args.resume and not started:
        check_resumable(args.out / f"seed{args.seeds[0]}")
    cfg = resolve_config(config, quick, args, flags).model_dump()
    for seed in [] if args.print_config else args.seeds:  # every seed's checks first
        for check in checks:
            check(cfg, seed)
    out = run_folder(name, args)
    with locked(out):
        return _play_seeds(name, config, quick, body, args, flags, checks, out, started)


def _play_seeds(name, config, quick, body, args, flags, checks, out: Path, started) -> dict:
    per_seed = {}
    for seed in args.seeds:
        one = argparse.Namespace(
            **{
                **vars(args),
                "seed": seed,
                "seeds": None,
                "out": out / f"seed{seed}",
                # a seed the interrupted run had not reached starts afresh
                "resume": args.resume and seed in started,
                "overwrite": False,  # the whole folder was claimed above
            }
        )
        per_seed[seed] = _run(name, config, quick, body, one, flags, checks)
    summary = aggregate(list(per_seed.values()))
    saved = write_results(out, {"seeds": list(per_seed), "summary": summary})
    say(f"{len(per_seed)} seeds {list(per_seed)}: mean and std in {out}/results.json")
    return saved


def aggregate(results: Sequence[Any]) -> Any:
    """Mean, std (population) and values of every number found at the same place in each of
    ``results`` (lists of equal length element by element, e.g. one row per alpha of a sweep);
    other values are left out."""
    if all(isinstance(r, Mapping) for r in results):
        keys = [k for k in results[0] if all(k in r for r in results)]
        out = {k: aggregate([r[k] for r in results]) for k in keys}
        return {k: v for k, v in out.items() if v is not None}
    if all(isinstance(r, list) for r in results) and len({len(r) for r in results}) == 1:
        items = [aggregate(list(column)) for column in zip(*results)]
        return items if items and all(v is not None for v in items) else None
    if all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in results):
        values = [float(r) for r in results]
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        return {"mean": mean, "std": std, "values": values}
    return None


def _run(name, config, quick, body, args, flags, checks) -> dict:
    from multimodal_game.device import resolve_device

    resolved = resolve_config(config, quick, args, flags)
    if args.print_config:
        print(to_toml(resolved), end="")
        return {}
    cfg = resolved.model_dump()
    asked = cfg["threads"]
    if cfg["threads"] == 0:  # every core in process, one per actor; recorded as what ran
        cfg["threads"] = 1 if args.runtime == "ray" else max(1, os.cpu_count() or 1)
    args.not_comparable = not_comparable(cfg, asked, args.runtime)
    if args.not_comparable and args.runtime == "ray" and not args.print_config:  # recorded always
        print(f"note: {args.not_comparable}", file=sys.stderr, flush=True)
    device = resolve_device(args.device)
    if args.resume:
        check_resumable(args.out)
    if (cfg.get("player") or {}).get("compile"):
        from modalities.m2_fused import compile_problem

        problem = compile_problem(device)
        if problem:
            raise ConfigError(f"player.compile: {problem} (or set player.compile = false)")
    for check in checks:
        check(cfg, args.seed)
    out = run_folder(name, args)
    with locked(out):
        return _play(name, body, args, cfg, device, out)


def _play(name, body, args, cfg, device, out) -> dict:
    """Write ``config.json`` into the claimed, locked folder ``out`` and play ``body``."""
    import torch

    from multimodal_game.device import denormals_flushed, flush_denormals

    record = {"experiment": name, **cfg, "seed": args.seed, "device": str(device)}
    if args.resume:
        check_resume(out, record, args.allow_change)
    write_json(
        out / "config.json",
        {
            **record,
            "quick": bool(args.quick),
            "profile": profile_of(args),
            # why this run's numbers are not bit for bit those of the same config on the other
            # runtime ("" where they are)
            "runtime_difference": getattr(args, "not_comparable", ""),
            "provenance": provenance(),
        },
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg["threads"])
    flush = bool(cfg.get("flush_denormals"))
    if flush and not flush_denormals(True):
        print(
            "flush_denormals: not every CPU thread flushes subnormal floats here "
            f"(denormals_flushed: {denormals_flushed()}); long runs may slow as players train",
            file=sys.stderr,
        )
    seed_everything(args.seed)
    try:
        with runtime_session(args):
            return body(Run(name, args, cfg, device, out, _plain_json(record)))
    finally:
        torch.set_num_threads(threads)
        if flush:
            flush_denormals(False)


# Keys that a resumed run may change without changing the trajectory of what is already played.
# (flush_denormals changes what is still to come only where a value is subnormal)
RESUMABLE_CHANGES = ("rounds", "check_every", "flush_denormals")


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], where: str = "") -> list[str]:
    """``key: old -> new`` for every (nested) key whose value differs."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += config_changes(a, b, f"{where}{k}.")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a != b:
            out += config_changes(dict(enumerate(a)), dict(enumerate(b)), f"{where}{k}.")
        elif a != b:
            out.append(f"{where}{k}: {a!r} -> {b!r}")
    return out


def check_resumable(out: Path) -> None:
    """``--resume`` of a folder that no run wrote (a mistyped ``--out``) is an error, not a fresh
    start."""
    if not (out / "config.json").is_file():
        what = "does not exist" if not out.exists() else "holds no config.json"
        raise ConfigError(
            f"--resume: run folder {str(out)!r} {what}, so there is nothing to resume "
            "(check --out, or drop --resume to start a new run)"
        )


def check_resume(out: Path, record: Mapping[str, Any], allowed: Sequence[str] = ()) -> None:
    """Refuse to resume ``out`` with a config that differs from the one its checkpoints were
    written with, listing each difference (``allowed`` and ``RESUMABLE_CHANGES`` excepted)."""
    from multimodal_game.checkpoint import load_checkpoint

    new = _plain_json(record)
    ok = set(RESUMABLE_CHANGES) | set(allowed or ())
    for ck in sorted(out.glob("*.ckpt")):
        old = load_checkpoint(ck).get("meta", {}).get("config")
        if old is None:
            continue
        changes = [c for c in config_changes(old, new) if c.split(":")[0] not in ok]
        if changes:
            raise ConfigError(
                f"cannot resume {str(ck)!r}: the config differs from the one it was written "
                f"with ({'; '.join(changes)}). Use the old values, a new --out, or "
                f"--allow-change KEY for a change that is meant."
            )


def _plain_json(obj: Any) -> Any:
    return json.loads(json.dumps(_jsonable(obj)))


def provenance() -> dict[str, Any]:
    """Versions of what ran and the git commit of the checkout (None outside one)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def ver(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "multimodal-game": ver("multimodal-game"),
        "torch": torch.__version__,
        "pyro-ppl": ver("pyro-ppl"),
        "python": sys.version.split()[0],
        "git_commit": commit,
        "command": " ".join(sys.argv),
    }


def memo(fn: Callable) -> Callable:
    """Cache ``fn``'s result per process for arguments that are plain data (configs, seeds):
    every host built in one process reads its data once."""
    cache: dict[str, Any] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        key = json.dumps(args, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = fn(*args)
        return cache[key]

    return wrapper


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_folder(name: str, args: argparse.Namespace) -> Path:
    """The run's folder (``--out``, or a new one under ``runs/``), claimed for this run: one that
    already holds a run is refused unless resumed or overwritten (experiments.folders)."""
    out = args.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    claim(out, resume=args.resume, overwrite=getattr(args, "overwrite", False))
    out.mkdir(parents=True, exist_ok=True)
    box = getattr(args, "folder", None)
    if box is not None and box.get("out") is None:  # the outermost folder: what resumes
        box["out"] = out
    return out


def _jsonable(obj: Any) -> Any:
    import numpy as np
    import torch

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


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A rich table rendered to text (printed by :meth:`Run.finish`)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*(str(v) for v in r))
    console = Console(width=160, record=True)
    with console.capture() as cap:
        console.print(t)
    return cap.get()


def say(msg: str) -> None:
    print(msg, file=sys.stdout, flush=True)
