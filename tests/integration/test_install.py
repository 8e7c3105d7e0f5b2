"""mxone-sim as a user installs it: a wheel built from the checkout, installed into a fresh virtual
environment in a directory away from the checkout, used from there. Nothing of the checkout is on
the path: the default topology, the WSDL, the web page and the pytest plugin come from the wheel."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.version import VERSION
from tests.procs import write_topology

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(*args, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env=env)
    assert out.returncode == 0, f"{' '.join(map(str, args))} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(venv bin, a working directory away from the checkout, environment without the checkout)."""
    root = tmp_path_factory.mktemp("install")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", root / "dist", REPO, cwd=root)
    (wheel,) = (root / "dist").glob("mxone_sim-*.whl")
    run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    bin_dir = root / "venv" / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", f"{wheel}[test]", cwd=root)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MXONE_RUN_DIR")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return bin_dir, elsewhere, env


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    bin_dir, elsewhere, env = installed
    where = run(bin_dir / "python", "-c", "import cli, topology.loader as t; print(cli.__file__);"
                "print(t.default_topology_path().is_file())", cwd=elsewhere, env=env).stdout.split()
    assert str(bin_dir.parent) in where[0] and str(REPO) not in where[0]
    assert where[1] == "True"
    for script in ("mxone", "csta", "csta_authentication", "mxone_certificate"):
        assert run(bin_dir / script, "--version", cwd=elsewhere, env=env).stdout.strip() == \
            f"{script} (mxone-sim) {VERSION}"


def test_up_call_across_lims_and_down_from_anywhere(installed):
    bin_dir, elsewhere, env = installed
    topo = write_topology(elsewhere / "exchange.yaml")  # the built-in topology, on free ports
    mxone = bin_dir / "mxone"
    run(mxone, "up", topo, "--detach", cwd=elsewhere, env=env, timeout=120)
    try:
        assert (elsewhere / "run" / "supervisord.conf").is_file()  # the run directory is where you are
        dialled = run(mxone, "phone", "1000", "dial", "2000", cwd=elsewhere, env=env).stdout
        call_id = re.search(r"call (\d+),", dialled).group(1)
        run(mxone, "phone", "2000", "answer", cwd=elsewhere, env=env)
        status = json.loads(run(mxone, "status", "--json", cwd=elsewhere, env=env).stdout)
        (live,) = [c for c in status["calls"] if c["call_id"] == call_id]
        assert sorted((c["device"], c["state"], c["lim"]) for c in live["connections"]) == \
            [("1000", "connected", 1), ("2000", "connected", 2)]
        hangup = run(mxone, "phone", "1000", "hangup", cwd=elsewhere, env=env).stdout
        assert hangup.strip() == f"1000: hangup: call {call_id}, released"
        run(bin_dir / "csta", "-p", cwd=elsewhere, env=env)
        wrong = subprocess.run([mxone, "kill", "lim-9"], cwd=elsewhere, env=env, capture_output=True, text=True)
        assert wrong.returncode == 1 and wrong.stderr.strip() == (
            "mxone: cannot signal lim-9: no such program (the programs are broker, csta-1, csta-2, lim-1, lim-2, "
            "view)")
    finally:
        run(mxone, "down", cwd=elsewhere, env=env, timeout=120)


def test_the_pytest_plugin_from_the_wheel(installed):
    bin_dir, elsewhere, env = installed
    (elsewhere / "test_users_app.py").write_text(
        "def test_a_call(mxone_exchange):\n"
        "    call = mxone_exchange.phone('1000').dial('2000')\n"
        "    assert call['call_id'] in [c['call_id'] for c in mxone_exchange.calls()]\n")
    out = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_users_app.py",
              cwd=elsewhere, env=env)
    assert "1 passed" in out.stdout
