"""Downloads: where the source answers they unpack into a loadable layout; offline they name the
alternative."""

import functools
import http.server
import threading
import zipfile

import pytest
import torch

from datasets import polymnist
from datasets.download import download_polymnist, download_torchvision
from datasets.idx import DataFileError


def test_polymnist_download_unpacks_a_loadable_release(tmp_path):
    # an archive in the official layout, served over HTTP on loopback
    x = torch.randint(0, 255, (20, 28, 28), dtype=torch.uint8)
    data = polymnist.generate(x, torch.arange(20) % 10, polymnist.default_backgrounds()[:2], 2, 0)
    staged = tmp_path / "staged" / "PolyMNIST"
    for split in ("train", "test"):
        polymnist.write_png_layout(data, staged, split)
    archive = tmp_path / "PolyMNIST.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in staged.rglob("*.png"):
            z.write(f, f.relative_to(staged.parent))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/PolyMNIST.zip"
        where = download_polymnist(tmp_path / "data", url)
    finally:
        server.shutdown()
    loaded = polymnist.load(where, "test")
    assert torch.equal(loaded["labels"], data["labels"])
    assert torch.equal(loaded["images"], data["images"])


def test_offline_download_names_the_alternative(tmp_path, monkeypatch):
    with pytest.raises(DataFileError, match="generate PolyMNIST from MNIST offline"):
        download_polymnist(tmp_path, "http://127.0.0.1:9/PolyMNIST.zip")
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataFileError, match="apt-get install -y dataset-fashion-mnist"):
        download_torchvision("fashion", tmp_path)
