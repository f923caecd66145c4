import json

import pytest

from datasets import polymnist
from experiments import polymnist_cross

TINY = """
rounds = 2
batch_size = 16
eval_every = 2
checkpoint_every = 2
classifier_steps = 3
eval_examples = 30
pair_tuples = 10
label_only_examples = 20
mask_player_examples = 40
[player]
width = 2
latent = 2
hidden = 8
"""


@pytest.fixture(scope="module")
def polymnist_dir(tmp_path_factory):
    return polymnist.ensure_generated(tmp_path_factory.mktemp("pm"), seed=0)


def test_polymnist_cross_runs_end_to_end(tmp_path, polymnist_dir):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "run"
    common = [
        "--config",
        str(cfg),
        "--data",
        str(polymnist_dir),
        "--out",
        str(out),
        "--no-progress",
    ]
    res = polymnist_cross.main([*common, "--device", "cpu"])
    saved = json.loads((out / "results.json").read_text())
    for tag in ("game", "alone", "central"):
        assert set(saved[tag]["accuracy"]) == {f"m{k}" for k in range(5)}
        assert len(saved[tag]["coherence"]) == 5
        assert all(v >= 0 for v in saved[tag]["fid"].values())
    # the label-only player exchanges labels only: 8 bytes per received example
    received = saved["bytes_per_round"]["received"]
    assert received["labels"] % 8 == 0 and received["labels"] < 16 * 8
    # alpha: uniform over own data and players with a non-empty interface; rows sum to 1
    assert all(abs(sum(r) - 1) < 1e-9 for r in saved["alpha"])
    for png in ("accuracy.png", "generated_game.png", "translations_game.png"):
        assert (out / png).stat().st_size > 500
    assert res["game"]["mean_accuracy"] == pytest.approx(saved["game"]["mean_accuracy"])
    # resume: the checkpoints exist and a resumed run picks them up without replaying rounds
    assert (out / "game.ckpt").is_file()
    again = polymnist_cross.main([*common, "--resume"])
    assert again["game"]["accuracy"] == res["game"]["accuracy"]


def test_unknown_config_key_is_an_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("roundz = 3\n")
    with pytest.raises(ValueError, match="unknown config key 'roundz'"):
        polymnist_cross.main(["--config", str(cfg), "--out", str(tmp_path / "r"), "--no-progress"])
