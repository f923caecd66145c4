"""Typed experiment configs: examples load, errors name the key, overrides and printing."""

import importlib
import json
import os
import tomllib
from pathlib import Path

import pytest
import torch
from helpers import user_error

from experiments.config import load_toml, parse_set, resolve, to_toml
from experiments.registry import registry
from modalities import build_player
from multimodal_game.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
EXPERIMENTS = list(registry())


def _package(tmp_path, monkeypatch, name: str):
    """An empty experiment package folder ``name`` that ``experiments`` finds (its files: the
    caller's)."""
    import experiments

    pkg = tmp_path / "pkgs" / name
    pkg.mkdir(parents=True)
    monkeypatch.setattr(experiments, "__path__", [*experiments.__path__, str(pkg.parent)])
    return pkg


def test_a_new_experiment_is_one_package_found_by_the_cli_the_configs_and_the_report(
    tmp_path, monkeypatch, capsys
):
    from experiments import cli, report

    assert len(EXPERIMENTS) == 8 and {"fashion_ssl", "polymnist_cross"} <= set(EXPERIMENTS)
    pkg = _package(tmp_path, monkeypatch, "tiny_new")
    (pkg / "__init__.py").write_text(
        '"""A tiny experiment written by a test."""\n'
        "from pydantic import Field\n"
        "from ..common import run_package\n"
        "from ..config import GameConfig\n"
        "from ..tables import Items, Table\n"
        "class Config(GameConfig):\n"
        "    scale: float = Field(2.0, description='what the body multiplies')\n"
        "def main(argv=None):\n"
        "    return run_package(__name__, argv)\n"
        "TABLE = Table(row_headers=('style',), rows=((Items('s', keys='accuracy'),),),\n"
        "              columns=(Items('m', fixed=('accuracy',), path='accuracy.{s}'),))\n"
    )
    (pkg / "run.py").write_text(
        "def body(run):\n    return run.finish({'accuracy': {'a': 0.25 * run.cfg['scale']}})\n"
    )
    found = registry()
    assert found["tiny_new"].summary == "A tiny experiment written by a test."
    assert "tiny-new" in cli.experiments()
    cli.main(["run", "tiny-new", "--print-config", "--set", "scale=3"])
    printed = resolve(found["tiny_new"].config, [tomllib.loads(capsys.readouterr().out)])
    assert printed.scale == 3.0
    out = tmp_path / "run"
    assert cli.main(["run", "tiny-new", "--out", str(out), "--no-progress"])["accuracy"] == {
        "a": 0.5
    }
    record = report.add(out, "tiny", "mmgame run tiny-new", "a test", docs=tmp_path / "docs")
    text = report.render_record(json.loads(record.read_text()))  # from the declared table
    assert "| style | accuracy |\n|---|---|\n| a | 0.500 |" in text


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_shipped_example_config_loads_and_is_the_default(name):
    module = importlib.import_module(f"experiments.{name}")
    loaded = resolve(module.Config, [load_toml(CONFIGS / f"{name}.toml")])
    assert loaded == module.Config()
    body = importlib.import_module(f"experiments.{name}.run")
    if hasattr(body, "check"):  # the shipped defaults pass the checks before any work
        body.check(loaded.model_dump())


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_printed_config_reads_back_as_the_same_config(name, capsys):
    module = importlib.import_module(f"experiments.{name}")
    assert module.main(["--quick", "--print-config", "--set", "rounds=7"]) == {}
    text = capsys.readouterr().out
    assert "# rounds of" in text  # one comment per key
    again = resolve(module.Config, [tomllib.loads(text)])
    assert again.rounds == 7
    assert again == resolve(module.Config, [module.QUICK, {"rounds": 7}])


@pytest.mark.parametrize("name", ["polymnist_cross", "fashion_ssl", "polymnist_paper"])
def test_the_standard_and_large_profiles_grow_from_quick(name, capsys):
    module = importlib.import_module(f"experiments.{name}")
    assert module.main(["--profile", "standard", "--print-config"]) == {}
    standard = resolve(module.Config, [tomllib.loads(capsys.readouterr().out)])
    assert standard == resolve(module.Config, [module.STANDARD])
    quick, full = resolve(module.Config, [module.QUICK]), module.Config()
    assert quick.rounds < standard.rounds < full.rounds
    assert module.main(["--profile", "large", "--print-config"]) == {}
    large = resolve(module.Config, [tomllib.loads(capsys.readouterr().out)])
    assert large == resolve(module.Config, [module.LARGE]) != full
    assert large.rounds > standard.rounds  # the CPU's longest size; full is the GPU's


def test_profiles_that_do_not_exist_or_contradict_are_refused(capsys):
    from experiments import fashion_ssl, mnist_alpha

    with pytest.raises(SystemExit):
        mnist_alpha.main(["--profile", "standard", "--print-config"])
    assert "no standard profile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mnist_alpha.main(["--profile", "large", "--print-config"])
    assert "no large profile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fashion_ssl.main(["--quick", "--profile", "full", "--print-config"])
    assert "contradict" in capsys.readouterr().err


def test_wrong_type_names_the_key_the_expectation_and_the_value():
    from experiments.polymnist_cross import Config

    with pytest.raises(ConfigError) as e:
        resolve(Config, [{"rounds": "four"}])
    msg = str(e.value)
    assert "'rounds'" in msg and "valid integer" in msg and "'four'" in msg
    with pytest.raises(
        ConfigError, match=r"'player.variables.0.*likelihood'.*'bernoulli'.*'pixels'"
    ):
        resolve(Config, [{"player": {"variables": {"0": {"likelihood": "pixels"}}}}])
    with pytest.raises(ConfigError, match=r"'player.lr': Input should be greater than 0"):
        resolve(Config, [{"player": {"lr": -1}}])
    with pytest.raises(ConfigError, match=r"did you mean 'player.variables.0.width'"):
        resolve(Config, [{"player": {"variables": {"0": {"widht": 3}}}}])
    with pytest.raises(ConfigError, match=r"player.variables.2: player.variables has 1 item"):
        resolve(Config, [{"player": {"variables": {"2": {"width": 3}}}}])
    with pytest.raises(ConfigError, match=r"pair \[0, 7\] needs two distinct styles") as e:
        resolve(Config, [{"pairs": [[0, 7]]}])
    assert "rounds" not in str(e.value)  # a check across keys: its message, not the whole config


def test_set_parses_toml_values_into_dotted_tables():
    assert parse_set(
        ["player.width=16", "data=runs/x", "alpha=[[1, 0], [0, 1]]", "x.y.z=true"]
    ) == {
        "player": {"width": 16},
        "data": "runs/x",
        "alpha": [[1, 0], [0, 1]],
        "x": {"y": {"z": True}},
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["player.width"])


def test_set_and_flags_override_in_order_and_land_in_config_json(tmp_path):
    from experiments import expfam_equilibrium

    out = tmp_path / "run"
    argv = ["--quick", "--set", "rounds=3", "--set", "players=4", "--players", "2"]
    expfam_equilibrium.main([*argv, "--set", "dim=1", "--out", str(out), "--no-progress"])
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["rounds"], cfg["players"], cfg["dim"]) == (3, 2, 1)
    assert cfg["threads"] == os.cpu_count()  # the default in process: every core, as it ran


def test_malformed_toml_and_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("rounds = \n")
    with pytest.raises(ConfigError, match=r"bad.toml' is not valid TOML.*line 1"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "none.toml")


def test_bad_alpha_and_bad_player_are_reported_before_any_work(tmp_path, capsys):
    from experiments import fashion_ssl

    out = tmp_path / "run"
    tiny = [  # small enough that a missed check fails fast, and later
        *("--set", 'dataset="mnist"', "--set", "shard_size=40", "--set", "labelled=[5]"),
        *("--set", "discriminative_steps=1", "--set", "central_examples=40"),
        *("--set", "test_examples=10", "--set", "rounds=1", "--set", "warmup_rounds=0"),
    ]
    for setting, expected in [
        ("alpha=[[1, 0], [0, 1]]", "alpha: alpha is 2 x 2 but there are 4 players"),
        ("players=[{width=4,hidden=8,latent=2},{width=0,hidden=8,latent=2}]", "'players.1.width'"),
        ("resources={style9={num_cpus=1}}", "resources for unknown players ['style9']"),
    ]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            fashion_ssl.main(["--set", setting, *tiny, "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and expected in err, err
        assert not out.exists()  # nothing ran, not even config.json


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    from experiments import expfam_equilibrium

    with pytest.raises(ConfigError, match="'dim'"):
        expfam_equilibrium.main(["--set", "dim=0", "--debug", "--out", str(tmp_path / "r")])


def test_expfam_refuses_resume_and_restarts(capsys):
    from experiments import expfam_equilibrium

    for flag in (["--resume", "--out", "x"], ["--max-restarts", "1"]):
        with pytest.raises(SystemExit):
            expfam_equilibrium.main(flag)
        assert "not supported" in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec, expected",
    [
        (
            {"variables": [{"name": "x", "recipe": "image"}], "label": {"clases": 5}},
            "'label.clases'",
        ),
        (
            {"variables": [{"name": "x", "recipe": "image"}], "hidden": 0},
            "'hidden': Input should be greater than 0",
        ),
        (
            {"variables": [{"name": "x", "recipe": "image"}], "lr": -1},
            "'lr': Input should be greater than 0",
        ),
        (
            {"variables": {"name": "x", "recipe": "image"}},
            "'variables': Input should be a valid list",
        ),
        ({"variables": []}, "'variables'"),
        ({"variables": [{"name": "x", "recipe": "image"}], "learning": "sgld"}, "'learning'"),
        ({"kind": "label", "label": {"classes": 1}}, "'label.classes'"),
    ],
)
def test_player_specs_are_validated_with_named_keys(spec, expected):
    with pytest.raises(ConfigError) as e:
        build_player(spec)
    assert expected in str(e.value)


def test_to_toml_leaves_none_out_and_comments_tables():
    from experiments.expfam_equilibrium import Config

    text = to_toml(resolve(Config, [{"resources": {"player0": {"num_gpus": 0.5}}}]))
    parsed = tomllib.loads(text)
    assert parsed["resources"] == {"player0": {"num_gpus": 0.5}}  # num_cpus None: left out
    assert "# Ray: per player name" in text


def test_a_plugin_that_cannot_be_imported_and_an_override_for_no_one_are_named(tmp_path, capsys):
    from experiments import mnist_alpha

    out = ["--out", str(tmp_path / "r")]
    err = user_error(capsys, mnist_alpha.main, ["--set", 'plugins=["no_such_plugin"]', *out])
    assert "plugin module 'no_such_plugin' cannot be imported" in err
    err = user_error(capsys, mnist_alpha.main, ["--set", "player_overrides.player7={lr=1.0}", *out])
    assert "player_overrides for unknown players ['player7']" in err
    # an override reaches the spec, and a bad one is named with its player
    err = user_error(
        capsys, mnist_alpha.main, ["--set", "player_overrides.player1={hidden=0}", *out]
    )
    assert "player 'player1'" in err and "'hidden'" in err


def test_a_recipe_without_soft_warns_when_the_consistency_term_would_skip_it():
    from modalities import register_modality
    from modalities.recipes import ImageRecipe, Recipe

    @register_modality("hard_image_for_test")
    class HardImage(ImageRecipe):
        soft = Recipe.soft  # no differentiable stand-in

    spec = {"variables": [{"name": "x", "recipe": "hard_image_for_test", "width": 2}]}
    with pytest.warns(UserWarning, match="'x'.*no soft\\(\\) stand-in.*consistency term"):
        build_player({**spec, "consistency_weight": 1.0})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_player(spec)  # no consistency term: nothing to warn about


def test_help_and_the_player_specs_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "from experiments import fashion_ssl\n"
        "from modalities.specs import M2Spec, HVAESpec, LabelPlayerSpec\n"
        "M2Spec(variables=[{'name': 'x', 'recipe': 'image'}]), HVAESpec(), LabelPlayerSpec()\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    fashion_ssl.main(['--help'])\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_resources_group_reaches_every_players_host_spec():
    from multimodal_game.host import host_specs

    builders = {"a": print, "b": print, "labels": print}
    resources = {"default": {"group": "site"}, "labels": {"group": "labeller", "num_cpus": 1}}
    specs = host_specs(builders, 0, "cpu", resources)
    assert [(s.name, s.group, s.num_cpus) for s in specs] == [
        ("a", "site", None),
        ("b", "site", None),
        ("labels", "labeller", 1.0),
    ]
    assert [s.group for s in host_specs(builders, 0, "cpu")] == [None, None, None]


def test_a_run_flushes_subnormals_on_every_thread_unless_told_not_to_and_restores(
    tmp_path, monkeypatch
):
    from experiments import cli
    from multimodal_game.device import denormals_flushed

    pkg = _package(tmp_path, monkeypatch, "tiny_flush")
    (pkg / "__init__.py").write_text(
        '"""Reads how the CPU threads treat a subnormal float inside a run."""\n'
        "from ..common import run_package\n"
        "from ..config import GameConfig\n"
        "class Config(GameConfig):\n"
        "    pass\n"
        "def main(argv=None):\n"
        "    return run_package(__name__, argv)\n"
    )
    (pkg / "run.py").write_text(
        "from multimodal_game.device import denormals_flushed\n"
        "def body(run):\n"
        "    return run.finish({'flushed': denormals_flushed()})\n"
    )
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.ones(1 << 20).mul_(2)  # torch's worker threads exist before any run sets the mode
    try:
        run = ["run", "tiny-flush", "--no-progress", "--set", "threads=2", "--out"]
        assert cli.main([*run, str(tmp_path / "a")])["flushed"] is True  # the default
        kept = cli.main([*run, str(tmp_path / "b"), "--set", "flush_denormals=false"])
        assert kept["flushed"] is False
        assert denormals_flushed() is False  # the process's mode is restored after a run
    finally:
        torch.set_num_threads(saved)


def test_flushing_subnormals_reaches_the_worker_threads_torchs_own_call_misses():
    from multimodal_game.device import denormals_flushed, flush_denormals

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert flush_denormals(False)
        torch.ones(1 << 20).mul_(2)  # the pool's threads start now, computing subnormals
        torch.set_flush_denormal(True)  # the calling thread only
        assert denormals_flushed() is None
        assert flush_denormals(True) and denormals_flushed() is True
        assert float(torch.tensor([1e-39]) * 3.0) == 0.0
        assert flush_denormals(False) and denormals_flushed() is False
    finally:
        flush_denormals(False)
        torch.set_num_threads(saved)
