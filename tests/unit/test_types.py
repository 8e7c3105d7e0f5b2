"""The pure cores type-check, the check bites, and the packages say they are typed.

`make test` runs mypy (pyproject.toml's [tool.mypy]) after lint-imports; these tests run it too: on
this tree, and on tiny bad modules in a temp dir under the project's own config, each of which
must fail for the reason the config's strictness is there."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONFIG = PYPROJECT["tool"]["mypy"]
MYPY = Path(sys.executable).with_name("mypy")
# What makes a module a shell rather than a pure core (tools.traffic's module docstring: "no
# sockets"; the brief of issue 17: no sockets, threads or subprocesses).
IMPURE = {"socket", "ssl", "subprocess", "asyncio", "zmq", "sqlite3", "multiprocessing", "concurrent", "http",
          "urllib", "select", "selectors", "netio", "threading"}
# safexml keeps one lxml parser per thread (threading.local): it starts no thread itself.
ALLOWED = {"csta_front/safexml.py": {"threading"}}


def mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """mypy as `make test` runs it (the tree's own cache is shared with it), config given explicitly."""
    return subprocess.run([str(MYPY), "--config-file", str(ROOT / "pyproject.toml"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_pure_cores_type_check():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"no issues found in {len(CONFIG['files'])} source files" in result.stdout


@pytest.mark.parametrize("path", CONFIG["files"])
def test_every_checked_module_is_a_pure_core(path: str):
    tree = ast.parse((ROOT / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported & IMPURE <= ALLOWED.get(path, set())


# Each bad module breaks one rule of the config's strictness; mypy's own error code must name it.
BAD = {
    # check_untyped_defs: a function without annotations is still checked
    "untyped_body": ("def late():\n    return 'calls: ' + 1\n", "[operator]"),
    # no_implicit_optional: a None default does not make the parameter Optional
    "implicit_optional": ("def wait(timeout_s: float = None) -> float:\n    return timeout_s\n", "[assignment]"),
    # warn_unused_ignores: an ignore that ignores nothing must go
    "unused_ignore": ("LIMS: int = 2  # type: ignore\n", "[unused-ignore]"),
    # strict_equality: a comparison that can never be true
    "never_equal": ("def is_busy(code: int) -> bool:\n    return code == 'busy'\n", "[comparison-overlap]"),
    # the plain check: a None where a value must be
    "none_for_a_value": ("def number(raw: str | None) -> str:\n    return raw\n", "[return-value]"),
}


def test_each_type_error_fails_the_check(tmp_path: Path):
    for name, (source, _) in BAD.items():
        (tmp_path / f"{name}.py").write_text(source)
    result = mypy(*sorted(f"{name}.py" for name in BAD), cwd=tmp_path)  # one run: mypy starts in seconds
    assert result.returncode == 1, result.stdout + result.stderr
    for name, (_, code) in BAD.items():
        errors = [line for line in result.stdout.splitlines() if line.startswith(f"{name}.py:") and ": error:" in line]
        assert len(errors) == 1 and errors[0].endswith(code), (name, result.stdout)


def test_the_same_modules_pass_when_right(tmp_path: Path):
    """The bad modules fail for what they break, not for the temp dir or the config."""
    module = tmp_path / "good.py"
    module.write_text("def number(raw: str | None) -> str:\n    return raw or ''\n\n\n"
                      "def late():\n    return 'calls: ' + str(1)\n")
    result = mypy(str(module), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_ships_py_typed():
    """PEP 561: a package with py.typed in the wheel is read by users' type checkers."""
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    top = {p for p in packages if "." not in p}
    assert {p for p in top if (ROOT / p / "py.typed").is_file()} == top
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["*"]
