"""One version string: every console script prints it, and the installed package's metadata is it."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from cli.version import VERSION

SCRIPTS = ("mxone", "csta", "csta_authentication", "mxone_certificate")


def test_the_package_metadata_carries_the_version():
    assert version("mxone-sim") == VERSION


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_prints_it(script):
    out = subprocess.run([str(Path(sys.executable).parent / script), "--version"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == f"{script} (mxone-sim) {VERSION}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_writes_its_bash_completion(script):
    """Written from the parser: the completion offers the commands and options the script has."""
    out = subprocess.run([str(Path(sys.executable).parent / script), "--print-completion", "bash"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "complete " in out.stdout and "--version" in out.stdout
    if script == "mxone":
        assert all(command in out.stdout for command in ("up", "down", "status", "phone", "logs", "scenario"))
