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


def test_the_package_exports_its_public_api():
    import multimodal_game

    assert multimodal_game.__version__
    assert (ROOT / "multimodal_game" / "py.typed").is_file()
    for name in multimodal_game.__all__:
        assert hasattr(multimodal_game, name), name


def test_every_imported_distribution_is_declared():
    """Each third-party module the package imports belongs to a distribution that pyproject.toml
    declares (as a dependency or in an optional extra)."""
    import ast
    import re
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    declared = {re.split(r"[<>=\[ ;]", s)[0].lower().replace("_", "-") for s in specs}
    local = {"multimodal_game", "modalities", "datasets", "experiments", "benchmarks", "tests"}
    dists = packages_distributions()
    missing = set()
    for pkg in sorted(local - {"tests"}):
        for f in (root / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )  # fmt: skip
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local:
                        continue
                    owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                    if not owners & declared:
                        missing.add(f"{top} ({f.relative_to(root)})")
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_the_declared_python_range_holds():
    """requires-python says >= 3.11 (tomllib); every module compiles under each installed newer
    interpreter (pyenv's 3.12 / 3.13 on this machine; skipped where there is none)."""
    import glob
    import subprocess
    import tomllib

    root = Path(__file__).resolve().parents[1]
    assert (
        tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"]
        == ">=3.11"
    )
    found = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.1[2-9]*/bin/python")))
    if not found:
        pytest.skip("no Python >= 3.12 installed besides this one")
    files = [
        str(f)
        for pkg in ("multimodal_game", "modalities", "datasets", "experiments")
        for f in (root / pkg).rglob("*.py")
    ]
    code = "import ast, sys\nfor f in sys.argv[1:]:\n    ast.parse(open(f).read(), f)\n"
    for python in found:
        subprocess.run([python, "-c", code, *files], check=True, capture_output=True)


def test_a_benchmark_writes_its_json_to_a_file_or_into_a_folder(tmp_path, capsys):
    import json

    from benchmarks.common import emit

    result = {"benchmark": "demo", "value": 1}
    emit(result, tmp_path / "named.json")
    emit(result, tmp_path)
    assert json.loads((tmp_path / "named.json").read_text()) == result
    assert json.loads((tmp_path / "demo.json").read_text()) == result
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == result
