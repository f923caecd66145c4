"""Fixtures shared by the test modules: what is expensive to build is built once a session."""

import pytest

from datasets import polymnist


@pytest.fixture(scope="session")
def polymnist_dir(tmp_path_factory):
    """A PolyMNIST folder generated from the bundled digits (seed 0), shared by every test that
    reads one and writes nothing into it but judges (keyed by their fingerprint)."""
    return polymnist.ensure_generated(tmp_path_factory.mktemp("pm"), seed=0)
