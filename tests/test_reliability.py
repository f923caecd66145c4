"""The README's promises, through the command line where a user meets them: every user error is
one line and exit status 2 before anything is written; seeds fix results; replays log once."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from multimodal_game.checkpoint import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY_MNIST_ALPHA = (
    "alphas = [0.5]\nrounds = 3\nwarmup_rounds = 1\nbatch_size = 16\nsamples = 20\n"
    "classifier_steps = 2\n[player.variables.0]\nwidth = 2\n[player]\nhidden = 8\nlatent = 2\n"
)


def one_line_error(main, argv, capsys) -> str:
    """Run an experiment's ``main``; it must exit 2 with one ``error:`` line (and the hint)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and lines[1:] == ["(run with --debug for the traceback)"]
    return lines[0]


def test_a_missing_polymnist_folder_is_one_line_before_config_json(tmp_path, capsys):
    from experiments import polymnist_cross

    out = tmp_path / "x"
    argv = ["--quick", "--data", str(tmp_path / "no_such_dir"), "--out", str(out), "--no-progress"]
    line = one_line_error(polymnist_cross.main, argv, capsys)
    assert "no_such_dir" in line and "does not exist" in line
    assert not out.exists()


def test_a_missing_fashion_folder_is_one_line_before_config_json(tmp_path, capsys):
    from experiments import fashion_ssl

    out = tmp_path / "y"
    argv = ["--quick", "--set", 'dataset="fashion"', "--set", f'data_root="{tmp_path}/nope"']
    line = one_line_error(fashion_ssl.main, [*argv, "--out", str(out), "--no-progress"], capsys)
    assert "Fashion-MNIST IDX files not found" in line and "nope" in line
    assert not out.exists()


def test_compile_without_a_cpp_compiler_is_one_line_before_config_json(
    tmp_path, capsys, monkeypatch
):
    from torch._inductor import config as inductor

    from experiments import fashion_ssl

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(inductor.cpp, "cxx", (None, "no-such-cxx"))
    out = tmp_path / "z"
    argv = ["--quick", "--set", "player.compile=true", "--device", "cpu", "--out", str(out)]
    line = one_line_error(fashion_ssl.main, [*argv, "--no-progress"], capsys)
    assert "player.compile: compile needs a C++ compiler" in line and "no-such-cxx" in line
    assert not out.exists()


def _png_release(root: Path, files: dict[str, list[str]]) -> None:
    pixel = np.zeros((28, 28, 3), dtype=np.uint8)
    for split in ("train", "test"):
        for mod, names in files.items():
            (root / split / mod).mkdir(parents=True, exist_ok=True)
            for name in names:
                Image.fromarray(pixel).save(root / split / mod / name)


def test_an_edited_polymnist_folder_names_every_bad_file_in_every_folder(tmp_path, capsys):
    from experiments import polymnist_cross

    good = ["0.3.png", "1.7.png", "2.1.png"]
    files = {f"m{k}": list(good) for k in range(5)}
    files["m1"].remove("1.7.png")  # missing from a later folder, not only the first pair
    files["m3"].remove("2.1.png")
    files["m4"][0] = "0.5.png"  # the same index with another label
    _png_release(tmp_path / "poly", files)
    out = tmp_path / "run"
    argv = ["--quick", "--data", str(tmp_path / "poly"), "--out", str(out), "--no-progress"]
    line = one_line_error(polymnist_cross.main, argv, capsys)
    assert "3 problem(s)" in line
    for bad in ("m1/1.7.png is missing", "m3/2.1.png is missing", "m4/0.5.png is labelled 5"):
        assert bad in line, line
    assert not out.exists()


def test_cuda_asked_for_without_cuda_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from experiments import expfam_equilibrium

    out = tmp_path / "z"
    argv = ["--quick", "--device", "cuda", "--out", str(out), "--no-progress"]
    line = one_line_error(expfam_equilibrium.main, argv, capsys)
    assert "--device cuda" in line and "no CUDA device" in line
    assert not out.exists()
    argv = ["--quick", "--device", "tpu", "--out", str(out), "--no-progress"]
    assert "unknown device 'tpu'" in one_line_error(expfam_equilibrium.main, argv, capsys)


def test_resume_of_a_mistyped_folder_is_an_error_not_a_fresh_run(tmp_path, capsys):
    from experiments import mnist_alpha

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_MNIST_ALPHA)
    typo = tmp_path / "rnu"
    argv = ["--config", str(cfg), "--resume", "--out", str(typo), "--no-progress"]
    line = one_line_error(mnist_alpha.main, argv, capsys)
    assert "nothing to resume" in line and "rnu" in line
    assert not typo.exists()


@pytest.mark.filterwarnings("error:Encountered")  # a Pyro NaN warning would fail the test
def test_player_overrides_reach_every_game_and_a_nan_is_named_first(tmp_path, capsys):
    """``player1`` plays in the alpha sweep, not in the baseline game: its override is accepted,
    and the divergence it causes is the first thing the user reads (no Pyro NaN warnings)."""
    from experiments import mnist_alpha

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_MNIST_ALPHA)
    out = tmp_path / "run"
    argv = ["--config", str(cfg), "--out", str(out), "--no-progress"]
    line = one_line_error(
        mnist_alpha.main, [*argv, "--set", "player_overrides.player1={lr=1e6}"], capsys
    )
    assert re.match(r"error: player 'player1' diverged \(non-finite loss\) in round \d", line)
    assert json.loads((out / "config.json").read_text())["player_overrides"] == {
        "player1": {"lr": 1e6}
    }
    assert not list(out.glob("*.ckpt"))  # a non-finite state is never checkpointed
    line = one_line_error(
        mnist_alpha.main,
        [*argv[:-3], "--out", str(tmp_path / "b"), "--set", "player_overrides.nobody={lr=1}"],
        capsys,
    )
    assert "['nobody']; players: ['player0', 'player1', 'baseline']" in line


def test_a_text_file_as_checkpoint_says_what_it_is_not(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("hello, these are my notes\n")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(e.value) == (
        f"checkpoint {str(path)!r} is not a multimodal-game checkpoint: it is not a file written "
        "by torch.save (a zip archive), it starts with b'hello, t'"
    )
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="it is empty"):
        load_checkpoint(tmp_path / "empty.ckpt")


def _losses_of_a_fresh_script() -> list[float]:
    """What a user's script does: build players with a seed, play a game with a seed."""
    from modalities import build_player
    from multimodal_game import Batch, Game, TensorSource

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    g = torch.Generator().manual_seed(0)
    data = Batch({"label": torch.arange(32) % 10, "x": torch.rand(32, 1, 28, 28, generator=g)})
    players = {n: build_player(spec, seed=k) for k, n in enumerate("ab")}
    game = Game(
        players,
        [[0.5, 0.5], [0.5, 0.5]],
        {"a": TensorSource(data), "b": TensorSource(data)},
        batch_size=8,
        seed=1,
    )
    game.run(2)
    return list(game.losses().values())


def test_build_player_with_a_seed_makes_the_same_script_repeatable():
    first = _losses_of_a_fresh_script()
    torch.rand(7)  # whatever the global random stream did in between
    assert _losses_of_a_fresh_script() == first


def test_images_outside_the_likelihoods_range_are_named_when_the_host_is_built():
    from modalities import build_player
    from multimodal_game import Batch, Game, TensorSource
    from multimodal_game.errors import DataError

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    pixels = torch.randint(0, 256, (16, 1, 28, 28)).float()  # forgot to divide by 255
    data = Batch({"label": torch.arange(16) % 10, "x": pixels})
    with pytest.raises(DataError, match=r"'x' .* outside \[0, 1\] .*divide by 255"):
        Game({"a": build_player(spec)}, [[1.0]], {"a": TensorSource(data)})
    ok = Batch({"label": torch.arange(16) % 10, "x": pixels / 255})
    Game({"a": build_player(spec)}, [[1.0]], {"a": TensorSource(ok)})


def test_learn_called_directly_names_images_outside_the_range_and_steps_on_good_ones():
    from modalities import build_player
    from multimodal_game import Batch, Game, TensorSource
    from multimodal_game.errors import DataError

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    player = build_player(spec, seed=0)
    pixels = torch.randint(0, 256, (16, 1, 28, 28)).float()  # forgot to divide by 255
    before = {k: v.clone() for k, v in player.parameters_state().items()}
    with pytest.raises(DataError, match=r"'x' .* outside \[0, 1\] .*divide by 255"):
        player.learn(Batch({"label": torch.arange(16) % 10, "x": pixels}))
    after = player.parameters_state()
    assert all(torch.equal(before[k], after[k]) for k in before)  # refused before the step
    unlabelled = {"label": torch.zeros(16, dtype=torch.bool)}
    player.learn(Batch({"label": torch.zeros(16, dtype=torch.long), "x": pixels / 255}, unlabelled))
    assert any(not torch.equal(before[k], v) for k, v in player.parameters_state().items())
    # a host checks its source once and the game's steps go unchecked (no read per step)
    game = Game(
        {"a": player}, [[1.0]], {"a": TensorSource(Batch({"x": pixels / 255}))}, batch_size=8
    )
    assert player.check_inputs is False
    game.close()


def test_the_readme_api_section_is_the_quickstart_and_runs_the_same_twice(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The Python API") :]
    snippet = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    script = (ROOT / "docs/examples/quickstart.py").read_text()
    assert snippet == script[script.index("import sys") :]
    runs = []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, str(ROOT / "docs/examples/quickstart.py"), "8"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )
        assert run.returncode == 0, run.stderr
        runs.append([ln for ln in run.stdout.splitlines() if ln.startswith("player ")])
    assert len(runs[0]) == 2 and all("(10, 1, 28, 28)" in ln for ln in runs[0])
    assert runs[0] == runs[1]
    assert (tmp_path / "runs/quickstart/game.ckpt").is_file()


def test_load_players_rebuilds_every_player_of_a_checkpoint_and_of_a_run_folder(tmp_path):
    import torch

    from modalities import build_player, load_players
    from multimodal_game import Batch, Game, TensorSource
    from multimodal_game.errors import CheckpointError

    specs = {
        f"p{k}": {"variables": [{"name": "x", "recipe": "image", "width": w}], "latent": 2}
        for k, w in enumerate((2, 3))
    }
    g = torch.Generator().manual_seed(0)
    data = Batch({"label": torch.arange(12) % 10, "x": torch.rand(12, 1, 28, 28, generator=g)})
    game = Game(
        {n: build_player(s, seed=k) for k, (n, s) in enumerate(specs.items())},
        torch.full((2, 2), 0.5, dtype=torch.float64),
        {n: TensorSource(data) for n in specs},
        batch_size=4,
    )
    game.run(2)
    game.save(tmp_path / "game.ckpt")
    back = load_players(tmp_path, "game")
    assert list(back) == ["p0", "p1"]
    for n, p in back.items():
        mine = game.runtime.hosts[n].player
        assert p.spec == mine.spec and p.spec["variables"][0]["width"] == (2, 3)[int(n[1])]
        assert all(torch.equal(a, b) for a, b in zip(p.parameters(), mine.parameters()))
        assert torch.equal(p.c_logits(data), mine.c_logits(data))
    assert list(load_players(tmp_path / "game.ckpt")) == ["p0", "p1"]
    with pytest.raises(CheckpointError, match=r"no checkpoint 'gam.ckpt'.*\['game'\]"):
        load_players(tmp_path, "gam")


def _tiny_alpha(tmp_path, rounds: int, every: int = 2) -> list[str]:
    cfg = tmp_path / f"tiny{rounds}.toml"
    text = TINY_MNIST_ALPHA.replace("rounds = 3", f"rounds = {rounds}")
    cfg.write_text(text.replace("alphas = [0.5]", f"alphas = [0.5]\ncheckpoint_every = {every}"))
    return ["--config", str(cfg), "--no-progress"]


def test_a_folder_that_holds_a_run_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    from experiments import mnist_alpha

    out = tmp_path / "run"
    mnist_alpha.main([*_tiny_alpha(tmp_path, 4), "--out", str(out)])
    assert load_checkpoint(out / "alpha0.50.ckpt")["round"] == 4
    # the same command without --resume, fewer rounds: refused, the finished run untouched
    line = one_line_error(mnist_alpha.main, [*_tiny_alpha(tmp_path, 2), "--out", str(out)], capsys)
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert load_checkpoint(out / "alpha0.50.ckpt")["round"] == 4
    argv = [*_tiny_alpha(tmp_path, 2), "--out", str(out), "--overwrite"]
    mnist_alpha.main(argv)  # replaced: the old run's files went first
    assert load_checkpoint(out / "alpha0.50.ckpt")["round"] == 2
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert records and max(r["round"] for r in records if "round" in r) <= 2
    both = ["--resume", "--overwrite"]
    assert "contradict" in one_line_error(mnist_alpha.main, [*argv, *both], capsys)


def test_a_second_process_on_a_folder_is_refused_and_a_dead_ones_lock_is_not(tmp_path, capsys):
    import os

    from experiments import mnist_alpha
    from experiments.folders import locked

    out = tmp_path / "run"
    with locked(out):  # another run holds the folder
        line = one_line_error(
            mnist_alpha.main, [*_tiny_alpha(tmp_path, 2), "--out", str(out)], capsys
        )
    assert f"in use by process {os.getpid()}" in line
    assert not (out / "config.json").exists()
    # a lock file left by a process that died: the kernel's lock went with it
    (out / ".lock").write_text("process 999999 on elsewhere since long ago\n")
    mnist_alpha.main([*_tiny_alpha(tmp_path, 2), "--out", str(out)])
    assert (out / "results.json").is_file()


@pytest.mark.parametrize(
    "signame, code, said",
    [("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGINT", 130, "interrupted (Ctrl-C)")],
)
def test_a_signal_stops_in_one_line_that_names_the_checkpoint_and_resumes(
    tmp_path, signame, code, said
):
    import shlex
    import signal
    import time

    out = tmp_path / "run"
    argv = [*_tiny_alpha(tmp_path, 3000, every=5), "--out", str(out)]
    cmd = [sys.executable, "-m", "experiments.mnist_alpha", *argv]
    # a shell's background job starts with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: the run under test gets the default, as in a terminal
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while not (out / "alpha0.50.ckpt").is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, signame))
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{said}: last checkpoint"), err
    assert "alpha0.50.ckpt" in lines[0] and lines[0].endswith("--resume")
    resume = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert resume[:3] == ["python", "-m", "experiments.mnist_alpha"]
    stopped = load_checkpoint(out / "alpha0.50.ckpt")["round"]
    assert 0 < stopped < 3000
    # the printed command resumes it (fewer rounds to go: the same run, cut short)
    again = [sys.executable, *resume[1:], "--set", f"rounds={stopped + 5}"]
    done = subprocess.run(again, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(out / "alpha0.50.ckpt")["round"] == stopped + 5


def test_a_file_size_limit_while_a_checkpoint_is_written_is_one_line_naming_it(tmp_path):
    # a real EFBIG: the run's process may write files of at most 64 KiB (a checkpoint is larger)
    out = tmp_path / "run"
    argv = [*_tiny_alpha(tmp_path, 2), "--out", str(out)]
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); "
        "from experiments import mnist_alpha; mnist_alpha.main(sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-2].startswith("error: cannot write checkpoint") and "alpha0.50.ckpt" in lines[-2]
    assert "File too large" in lines[-2] and "MB are free there" in lines[-2]
    assert lines[-1] == "(run with --debug for the traceback)"
    assert not list(out.glob(".*.tmp"))  # no partial file left


def test_empty_shards_in_a_config_are_one_line_naming_the_players_before_config_json(
    tmp_path, capsys
):
    from experiments import mnist_alpha, polymnist_cross

    out = tmp_path / "run"
    argv = ["--quick", "--set", "pair_tuples=0", "--out", str(out), "--no-progress"]
    line = one_line_error(polymnist_cross.main, argv, capsys)
    assert "pair_tuples = 0" in line and "pair" in line and not out.exists()
    argv = [*_tiny_alpha(tmp_path, 2), "--set", "classes=[[0, 1, 2, 3, 4], []]", "--out", str(out)]
    line = one_line_error(mnist_alpha.main, argv, capsys)
    assert "classes.1" in line and "at least 1" in line and not out.exists()


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path, capsys):
    from experiments import polymnist_cross
    from experiments.common import available_memory

    out = tmp_path / "run"
    argv = ["--quick", "--set", "batch_size=100000", "--out", str(out), "--no-progress"]
    line = one_line_error(polymnist_cross.main, argv, capsys)
    assert "batch_size = 100000" in line and "GiB this machine has free" in line
    assert not out.exists()
    # the estimate grows with the rows: the quick default is far inside what is free
    from experiments.common import memory_estimate
    from experiments.config import resolve
    from experiments.polymnist_cross import QUICK, Config
    from experiments.polymnist_cross.run import player_specs

    specs = player_specs(resolve(Config, [QUICK]).model_dump())
    assert memory_estimate(specs, 100000) == 100000 / 64 * memory_estimate(specs, 64)
    assert memory_estimate(specs, QUICK["batch_size"]) < available_memory() / 2


def test_a_warmup_as_long_as_the_game_is_a_warning_before_any_work(tmp_path, capsys):
    from experiments import mnist_alpha

    argv = [*_tiny_alpha(tmp_path, 2), "--set", "warmup_rounds=5", "--out", str(tmp_path / "r")]
    mnist_alpha.main([*argv, "--print-config"])  # nothing runs, nothing is checked
    capsys.readouterr()
    mnist_alpha.main(argv)
    err = capsys.readouterr().err
    assert err.count("warmup_rounds = 5 >= rounds = 2") == 1 and "nothing is exchanged" in err


def test_a_player_with_fewer_examples_than_a_batch_or_no_label_is_warned_once(recwarn):
    from helpers import image_spec

    from modalities import build_player
    from multimodal_game import Batch, Game, TensorSource

    x = torch.rand(6, 1, 28, 28)
    small = Batch({"label": torch.arange(6), "x": x}, {"label": torch.ones(6, dtype=torch.bool)})
    blind = Batch({"label": torch.arange(6), "x": x}, {"label": torch.zeros(6, dtype=torch.bool)})
    players = {"a": build_player(image_spec()), "b": build_player(image_spec())}
    sources = {"a": TensorSource(small, "label", 0.25), "b": TensorSource(blind)}
    Game(players, [[0.5, 0.5], [0.5, 0.5]], sources, batch_size=8)
    texts = [str(w.message) for w in recwarn]
    assert sum("'a' holds 6 examples, fewer than batch_size = 8" in t for t in texts) == 1
    assert sum("'b' observes no value of 'label'" in t for t in texts) == 1
    assert not any("'a' observes no value" in t for t in texts)


def test_a_methods_players_are_released_before_the_next_method_starts(tmp_path, monkeypatch):
    import gc
    import weakref

    from experiments import fashion_ssl
    from experiments.common import Run

    played, alive_at_start = [], []
    game = Run.game

    def watched(self, tag, *args, **kwargs):
        gc.collect()
        alive_at_start.append((tag, [ref() is not None for ref in played]))
        g = game(self, tag, *args, **kwargs)
        played.extend(weakref.ref(p) for p in g.runtime.local_players.values())
        return g

    monkeypatch.setattr(Run, "game", watched)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'dataset = "mnist"\nshard_size = 60\nlabelled = [20]\nrounds = 2\nwarmup_rounds = 1\n'
        "batch_size = 16\ndiscriminative_steps = 2\ncentral_examples = 100\ntest_examples = 30\n"
        "fedavg_local_steps = [1]\nfedprox_local_steps = []\nfedmd_every = 0\n"
        "players = [" + ", ".join(["{width = 2, hidden = 8, latent = 2}"] * 2) + "]\n"
        "federated_player = {width = 2, hidden = 8, latent = 2}\n"
    )
    fashion_ssl.main(["--config", str(cfg), "--out", str(tmp_path / "r"), "--no-progress"])
    assert len(alive_at_start) >= 4 and len(played) >= 6
    assert all(not any(alive) for _, alive in alive_at_start), alive_at_start


def test_a_closed_games_player_with_its_own_compiled_step_is_freed():
    import gc
    import weakref

    from modalities import build_player, m2_fused
    from multimodal_game import Batch, Game, TensorSource

    spec = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}
    player = build_player(spec, seed=0)
    m2_fused.solo_step(player)  # what a compile player's learn() builds and keeps
    data = Batch({"label": torch.arange(8), "x": torch.rand(8, 1, 28, 28)})
    game = Game({"a": player}, [[1.0]], {"a": TensorSource(data)}, batch_size=8)
    ref = weakref.ref(player)
    del player
    game.close()
    gc.collect()
    assert ref() is None  # its compiled step (which holds it) went with the game


def test_a_labelled_fraction_that_leaves_no_label_is_warned_through_the_command_line(
    tmp_path, polymnist_dir
):
    from experiments import polymnist_cross

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "rounds = 1\nwarmup_rounds = 0\nbatch_size = 8\neval_every = 0\ncheckpoint_every = 0\n"
        "classifier_steps = 2\neval_examples = 20\nvalidation_tuples = 0\nmodalities = 2\n"
        "pairs = []\nlabel_only_examples = 0\nmask_player_examples = 0\n"
        "fedavg_local_steps = []\nfedprox_local_steps = []\nlabelled_fraction = 0.0001\n"
        "[player.variables.0]\nwidth = 2\n[player]\nlatent = 2\nhidden = 8\n"
    )
    argv = ["--config", str(cfg), "--data", str(polymnist_dir), "--out", str(tmp_path / "r")]
    with pytest.warns(UserWarning) as caught:
        polymnist_cross.main([*argv, "--no-progress", "--set", f"judges_cache={tmp_path / 'j'}"])
    texts = [str(w.message) for w in caught]
    for player in ("style0", "style1"):  # every game that holds the player says it
        assert sum(f"'{player}' observes no value of 'label'" in t for t in texts) >= 1
