"""The exchange started by an unprivileged user (uid 65534, through setpriv): it comes up cleanly
under supervisord, and a SOAP login, even with a real account's right password, is refused with
the reason (PAM needs root), with no PAM call and no failure counted; `mxone down` stops it."""
from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from cluster.control import Cluster
from tests.procs import require_root_and, write_topology
from topology.loader import load_topology

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def root_and_tools():
    require_root_and("setpriv", "useradd", "chpasswd")  # become another user, make an account

NOBODY = 65534


def setpriv(*command: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *command]


def interpreter() -> tuple[str, dict[str, str]]:
    """A Python the unprivileged user may run, with this project's packages: ours, or (when ours
    lives where it may not look, e.g. under /root) the system's of the same version given our
    site-packages and the project on PYTHONPATH (what supervisord's programs inherit)."""
    if subprocess.run(setpriv("test", "-x", os.path.realpath(sys.executable))).returncode == 0:
        return sys.executable, {}
    system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/bin")
    if system is None:
        pytest.fail(f"no Python {sys.version_info.major}.{sys.version_info.minor} the unprivileged user may run "
                    f"(ours, {sys.executable}, is out of its reach and /usr/bin has none)")
    paths = [p for p in sys.path if p.endswith("site-packages")] + [str(Path(__file__).resolve().parents[2])]
    return system, {"PYTHONPATH": os.pathsep.join(paths)}


def as_nobody(*args: str, home: Path) -> subprocess.CompletedProcess:
    python, env = interpreter()
    return subprocess.run(setpriv(python, "-m", "cli.main", *args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env, "HOME": str(home)})


@pytest.fixture
def account():
    name = f"mxnopriv{os.getpid() % 100000}"
    password = "Pw-" + secrets.token_hex(8)
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["useradd", "-M", "-d", "/tmp", "-s", "/bin/true", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        yield name, password
    finally:
        subprocess.run(["userdel", name], check=True)


@pytest.fixture
def home():
    """A folder the unprivileged user owns (pytest's own tmp_path is root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="mxone-nopriv-"))
    os.chown(folder, NOBODY, NOBODY)
    try:
        yield folder
    finally:
        cluster = Cluster(folder / "run")
        if cluster.supervisord_pid() is not None:
            cluster.shutdown()
        cluster.stop_orphans()
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unprivileged_exchange_starts_and_refuses_soap_logins_saying_why(home, account):
    topology_file = write_topology(home / "exchange.yaml")
    os.chown(topology_file, NOBODY, NOBODY)
    run_dir = home / "run"
    up = as_nobody("up", str(topology_file), "--detach", "--run-dir", str(run_dir), home=home)
    assert up.returncode == 0, up.stdout + up.stderr
    assert os.stat(run_dir / "supervisord.pid").st_uid == NOBODY

    lim = load_topology(topology_file).lim(1)
    user, password = account
    envelope = (b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                b'<soap:Body/></soap:Envelope>')
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    for _ in range(6):  # more than the lockout's 5 failures: none is counted
        response = requests.post(f"http://{lim.address}:{lim.csta.port}/csta", data=envelope, timeout=10,
                                 headers={"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Basic {auth}",
                                          "SOAPAction": '""'})
        assert response.status_code == 503
        assert response.text == ("Linux-account logins are off: PAM (pam_unix) needs the CSTA server to run as root "
                                 f"to read /etc/shadow, and this one runs as uid {NOBODY}; start the exchange as "
                                 "root to use them\n")
    log = (run_dir / "logs" / "csta-1.log").read_text()
    assert f"runs as uid {NOBODY}" in log and "Traceback" not in log

    down = as_nobody("down", "--run-dir", str(run_dir), home=home)
    assert down.returncode == 0, down.stdout + down.stderr
