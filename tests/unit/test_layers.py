"""The layers of pyproject.toml's import-linter contracts hold, and breaking one is caught.

`make test` runs `lint-imports` before pytest; these tests run it too, on this tree and on a copy
with one import pointing up (the topology importing the CLI) or one cycle, which must fail."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and of pyproject.toml, to break on purpose."""
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_every_package_is_in_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(CONFIG["root_packages"])


def test_the_tree_keeps_its_contracts():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_pointing_up_breaks_the_layers(tree: Path):
    model = tree / "topology" / "model.py"
    model.write_text(model.read_text() + "\n\ndef late():\n    from cli.main import main  # an upward import\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "topology is not allowed to import cli" in result.stdout


def test_two_siblings_of_one_layer_may_not_import_each_other(tree: Path):
    (tree / "liveview" / "upward.py").write_text("import csta_front.codec\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "liveview is not allowed to import csta_front" in result.stdout


def test_a_cycle_inside_a_package_is_caught(tree: Path):
    (tree / "topology" / "cycle_a.py").write_text("import topology.cycle_b\n")
    (tree / "topology" / "cycle_b.py").write_text("import topology.cycle_a\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "No import cycles" in result.stdout
