"""A player's own data is checked against its space when its host is built, with named errors."""

import pytest
import torch

from modalities import build_player
from multimodal_game.batch import Batch
from multimodal_game.errors import ConfigError, DataError
from multimodal_game.host import PlayerHost
from multimodal_game.sources import TensorSource

SPEC = {"variables": [{"name": "x", "recipe": "image", "width": 2}], "latent": 2, "hidden": 8}


def host(data: dict, present: dict | None = None) -> PlayerHost:
    return PlayerHost("alice", build_player(SPEC), TensorSource(Batch(data, present)), seed=0)


def good(n=6):
    return {"label": torch.arange(n) % 10, "x": torch.rand(n, 1, 28, 28)}


def test_good_data_passes_and_unlabelled_rows_may_hold_any_code():
    host(good())
    data = good()
    data["label"][0] = -1  # not observed: its code is never read
    host(data, {"label": torch.arange(6) > 0})
    host({"x": torch.rand(4, 1, 28, 28)})  # no label column at all: all unlabelled


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"x": torch.rand(6, 3, 28, 28)}, r"player 'alice'.*'x'.*\(1, 28, 28\).*\(6, 3, 28, 28\)"),
        (
            {"label": torch.arange(6) + 5},
            r"player 'alice': 'label' has 1 observed code\(s\) outside \[0, 10\), e.g. \[10\]",
        ),
        ({"label": torch.zeros(6)}, r"'label' holds torch.float32 values, expected integer"),
        ({"x": torch.full((6, 1, 28, 28), float("nan"))}, r"'x' holds non-finite values"),
        ({"img": torch.rand(6, 1, 28, 28)}, r"variable 'img' is not in the space"),
        # float64 images in [0, 1] used to pass here and fail in round 1 (double against float)
        (
            {"x": torch.rand(6, 1, 28, 28, dtype=torch.float64)},
            r"'x' .* holds torch.float64 values; images are float32 .*convert with .float\(\)",
        ),
        ({"x": torch.zeros(6, 1, 28, 28, dtype=torch.uint8)}, r"convert with .float\(\) / 255"),
    ],
)
def test_bad_data_is_named_before_any_learning(change, expected):
    with pytest.raises(DataError, match=expected):
        host({**good(), **change})


def test_a_missing_observed_variable_is_named():
    with pytest.raises(
        DataError, match=r"player 'alice' has no variable 'x' \(image\(1, 28, 28\)\)"
    ):
        host({"label": torch.arange(4)})
    assert issubclass(DataError, ConfigError)  # the command line prints it as one line


def test_a_corrupt_polymnist_cache_is_named_and_the_generated_one_rebuilt(tmp_path, capsys):

    from datasets import polymnist
    from datasets.idx import DataFileError

    root = polymnist.ensure_generated(tmp_path / "pm", seed=0)
    cache = polymnist.cache_path(root, "train")
    good = polymnist.load(root, "train")["images"].clone()
    raw = bytearray(cache.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 4096] = bytes(b ^ 0xFF for b in raw[mid : mid + 4096])  # damaged pixels
    cache.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="polymnist_train.pt.*corrupt"):
        polymnist.load(root, "train")
    with pytest.raises(DataFileError, match="polymnist_train.pt.*corrupt"):
        polymnist.check_folder(root)  # what a run checks before config.json
    capsys.readouterr()
    polymnist.ensure_generated(root, seed=0)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "polymnist_train.pt" in err[0] and "rebuilding" in err[0]
    assert torch.equal(polymnist.load(root, "train")["images"], good)
