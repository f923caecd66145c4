"""Repository hygiene: no large generated files are tracked."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"datasets/data/mnist10k.npz"}  # the bundled offline MNIST subset (1.6 MB)


def test_no_tracked_file_is_over_5_mb():
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [f for f in out.decode().split("\0") if f]
    assert files
    large = [
        f
        for f in files
        if f not in ALLOWED and (ROOT / f).is_file() and (ROOT / f).stat().st_size > 5 * 2**20
    ]
    assert large == [], (
        f"tracked files over 5 MB (generated data belongs in ignored folders): {large}"
    )
