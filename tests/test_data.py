import gzip
import shutil

import numpy as np
import pytest
import torch

from datasets import polymnist
from datasets.idx import DataFileError, read_idx
from datasets.mnist import load_bundled, load_fashion_mnist, load_mnist
from datasets.shards import make_shards


def test_bundled_split_is_stratified_disjoint_and_deterministic():
    xtr, ytr = load_bundled("train")
    xte, yte = load_bundled("test")
    assert xtr.shape == (8000, 28, 28) and xte.shape == (2000, 28, 28)
    assert xtr.dtype == torch.uint8 and ytr.dtype == torch.int64
    frac = ytr.bincount(minlength=10).float() / (
        ytr.bincount(minlength=10) + yte.bincount(minlength=10)
    )
    assert torch.all((frac - 0.8).abs() < 0.01)
    x2, _ = load_bundled("train")
    assert torch.equal(xtr, x2)
    # no test image equals a train image byte for byte at the same position of the file order
    assert not any(torch.equal(xte[0], xtr[i]) for i in range(200))


def test_full_mnist_offline_is_a_clear_error(tmp_path):
    with pytest.raises(DataFileError, match="bundled"):
        load_mnist("full", root=tmp_path)
    with pytest.raises(ValueError, match="unknown MNIST source"):
        load_mnist("emnist")


def _write_idx(path, arr, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_idx_reader_checks_magic_and_size(tmp_path):
    imgs = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, 2051)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2, 3]), 2049)
    x, y = load_fashion_mnist("train", root=tmp_path)
    assert x.shape == (3, 28, 28) and y.tolist() == [1, 2, 3]
    bad = tmp_path / "bad"
    bad.write_bytes((9999).to_bytes(4, "big") + b"\0" * 8)
    with pytest.raises(DataFileError, match="magic number 9999"):
        read_idx(bad)
    trunc = tmp_path / "trunc"
    trunc.write_bytes((tmp_path / "train-labels-idx1-ubyte").read_bytes()[:-1])
    with pytest.raises(DataFileError, match="truncated"):
        read_idx(trunc)
    with pytest.raises(DataFileError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist("test", root=tmp_path / "nowhere")
    # a damaged gzip body (valid header): named with the file, not a bare zlib.error
    raw = bytearray((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    raw[20:40] = b"\xff" * 20
    broken = tmp_path / "broken-idx3-ubyte.gz"
    broken.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"broken-idx3-ubyte.gz' is corrupt"):
        read_idx(broken)


@pytest.fixture(scope="module")
def small_mnist():
    x, y = load_bundled("test")
    return x[:300], y[:300]


def _backgrounds():
    g = np.random.default_rng(0)
    return [g.integers(0, 256, size=(40 + 5 * k, 50, 3), dtype=np.uint8) for k in range(3)]


def test_generator_is_seeded_and_faithful(small_mnist):
    x, y = small_mnist
    a = polymnist.generate(x, y, _backgrounds(), modalities=3, seed=0)
    b = polymnist.generate(x, y, _backgrounds(), modalities=3, seed=0)
    c = polymnist.generate(x, y, _backgrounds(), modalities=3, seed=1)
    for k in a:
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["images"], c["images"])
    assert a["images"].shape == (300, 3, 3, 28, 28)
    idx = a["mnist_index"]
    # every modality uses each digit exactly once, and tuples share only the label
    for m in range(3):
        assert sorted(idx[:, m].tolist()) == list(range(300))
        assert torch.equal(y[idx[:, m]], a["labels"])
    assert (idx[:, 0] != idx[:, 1]).float().mean() > 0.5
    # the digit mask is the MNIST digit binarised at 128
    assert torch.equal(a["digit_masks"][:, 1], x[idx[:, 1]] >= 128)
    # under the digit the colours are inverted: a pixel and its inverse cannot both be the crop
    img = a["images"][0, 0].permute(1, 2, 0).numpy().astype(int)
    mask = a["digit_masks"][0, 0].numpy()
    bg = _backgrounds()[0].astype(int)
    found = False
    for yy in range(bg.shape[0] - 27):
        for xx in range(bg.shape[1] - 27):
            crop = bg[yy : yy + 28, xx : xx + 28]
            if np.array_equal(np.where(mask[..., None], 255 - crop, crop), img):
                found = True
                break
        if found:
            break
    assert found, "image is not an inverted-under-digit crop of its background"
    with pytest.raises(ValueError, match="need at least 3 backgrounds"):
        polymnist.generate(x, y, _backgrounds()[:2], modalities=3)


def test_png_layout_roundtrip_and_errors(tmp_path, small_mnist):
    x, y = small_mnist
    data = polymnist.generate(x[:40], y[:40], _backgrounds(), modalities=3, seed=0)
    polymnist.write_png_layout(data, tmp_path, "test")
    loaded = polymnist.load_png_release(tmp_path, "test")
    assert torch.equal(loaded["images"], data["images"]) and torch.equal(
        loaded["labels"], data["labels"]
    )
    # a label misnamed in m0: the file, its label and the other folders' label are named
    victim = sorted((tmp_path / "test" / "m0").iterdir())[0]
    index, label, _ = victim.name.split(".")
    renamed = victim.with_name(f"{index}.{(int(label) + 1) % 10}.png")
    victim.rename(renamed)
    with pytest.raises(
        DataFileError,
        match=rf"1 problem.*m0/{renamed.name} is labelled {renamed.name.split('.')[1]}, the other "
        rf"folders say {label}",
    ):
        polymnist.load_png_release(tmp_path, "test")
    renamed.rename(victim)
    # two files with one index, in every folder: both named
    for k in range(3):
        twin = tmp_path / "test" / f"m{k}" / f"{index}.{(int(label) + 1) % 10}.png"
        twin.write_bytes(victim.read_bytes())
    with pytest.raises(DataFileError, match=rf"3 problem.*m0: index {index} appears twice"):
        polymnist.load_png_release(tmp_path, "test")
    for k in range(3):
        (tmp_path / "test" / f"m{k}" / f"{index}.{(int(label) + 1) % 10}.png").unlink()
    # a missing modality folder in the middle is named
    shutil.rmtree(tmp_path / "test" / "m1")
    with pytest.raises(DataFileError, match=r"\['m1'\] missing"):
        polymnist.load_png_release(tmp_path, "test")
    # a cache beside the PNG folders: the loader says which one it reads
    polymnist.save_cache(data, tmp_path, "test")
    with pytest.warns(UserWarning, match="reading the cache .* are not read"):
        polymnist.load(tmp_path, "test")


def test_tensor_release_and_dataset(tmp_path, small_mnist):
    x, y = small_mnist
    data = polymnist.generate(x[:20], y[:20], _backgrounds(), modalities=3, seed=0)
    (tmp_path / "train").mkdir()
    for m in range(3):
        torch.save(data["images"][:, m].float() / 255, tmp_path / "train" / f"m{m}.pt")
    torch.save(data["labels"], tmp_path / "train" / "labels.pt")
    loaded = polymnist.load_tensor_release(tmp_path, "train")
    assert torch.equal(loaded["images"], data["images"])
    polymnist.save_cache(data, tmp_path / "gen", "train")
    ds = polymnist.PolyMNIST(tmp_path / "gen", "train", modalities=[0, 2])
    item = ds[3]
    assert set(item) == {"label", "m0", "m2", "mask"}
    assert item["m0"].shape == (3, 28, 28) and item["mask"].shape == (2, 1, 28, 28)
    assert item["m2"].min() >= 0 and item["m2"].max() <= 1
    with pytest.raises(ValueError, match="not in this PolyMNIST"):
        polymnist.PolyMNIST(tmp_path / "gen", "train", modalities=[5])


@pytest.mark.parametrize(
    "method, kw",
    [
        ("iid", {}),
        ("classes", {"class_sets": [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]}),
        ("dirichlet", {"beta": 0.3}),
        ("per_class", {"n_per_class": 5}),
        ("modality", {}),
        ("paired", {"modalities": [[0, 1], [2, 3]]}),
    ],
)
def test_shards_are_disjoint_reproducible_and_balanced(method, kw):
    _, y = load_bundled("test")
    shards = make_shards(y, method, 2, labelled_fraction=0.1, seed=3, **kw)
    again = make_shards(y, method, 2, labelled_fraction=0.1, seed=3, **kw)
    a, b = shards[0].indices, shards[1].indices
    assert len(set(a.tolist()) & set(b.tolist())) == 0
    for s, t in zip(shards, again):
        assert torch.equal(s.indices, t.indices) and torch.equal(s.labelled, t.labelled)
        assert abs(s.n_labelled - round(0.1 * len(s))) <= 1
    if method == "classes":
        assert set(y[a].tolist()) == {0, 1, 2, 3, 4}
    if method == "modality":
        assert shards[1].modalities == (1,)
    if method == "iid":
        assert len(a) + len(b) == len(y)
        lab = y[a[shards[0].labelled]].bincount(minlength=10)
        assert lab.max() - lab.min() <= 1  # class-balanced labelled part


def test_shard_errors():
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="5 players but only 4 examples"):
        make_shards(y, "iid", 5)
    with pytest.raises(ValueError, match="beta must be > 0"):
        make_shards(y, "dirichlet", 2, beta=0)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        make_shards(y, "iid", 2, labelled_fraction=1.5)
    with pytest.raises(TypeError, match="use the fraction argument"):
        make_shards(y, "iid", 2, labelled=1.0)  # 1.0 is not "one example" nor silently "all"
    assert make_shards(y, "iid", 2, labelled=1)[0].n_labelled == 1
    with pytest.raises(ValueError, match=r"player\(s\) \[.*\] without examples"):
        make_shards(torch.arange(3) % 3, "dirichlet", 3, beta=0.01, seed=0)
    with pytest.raises(ValueError, match="larger than the shard"):
        make_shards(y, "iid", 2, labelled=3)
    with pytest.raises(ValueError, match="unknown shard method"):
        make_shards(y, "random", 2)


def test_show_draws_styles_by_digits(tmp_path):
    from PIL import Image

    x, y = load_bundled("test")
    rows = torch.cat([torch.nonzero(y == c)[:6, 0] for c in range(10)])
    data = polymnist.generate(x[rows], y[rows], _backgrounds(), modalities=3, seed=0)
    tiles = polymnist.grid_tiles(data)
    assert tiles.shape == (3, 10, 3, 28, 28)
    first_seven = int(torch.nonzero(data["labels"] == 7)[0])
    assert torch.equal(tiles[2, 7], data["images"][first_seven, 2].float() / 255)
    polymnist.save_cache(data, tmp_path, "test")
    polymnist.main(["show", str(tmp_path), "--out", str(tmp_path / "grid.png")])
    assert Image.open(tmp_path / "grid.png").size == (10 * 28 * 2, 3 * 28 * 2)


def test_the_folder_check_names_the_faults_of_both_splits_at_once(tmp_path, small_mnist):
    x, y = small_mnist
    for split in ("train", "test"):
        data = polymnist.generate(x[:20], y[:20], _backgrounds(), modalities=2, seed=0)
        polymnist.write_png_layout(data, tmp_path, split)
        victim = sorted((tmp_path / split / "m1").iterdir())[0]
        victim.unlink()  # one missing file in each split
    with pytest.raises(DataFileError) as e:
        polymnist.check_folder(tmp_path)
    text = str(e.value)
    assert "train" in text and "test" in text and text.count("is missing") == 2
