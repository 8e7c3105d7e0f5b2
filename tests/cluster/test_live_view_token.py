"""The live view bound beyond loopback (0.0.0.0) under supervisord: `mxone up` makes a token,
`mxone status` prints it, and every /api/ request without it is refused (401) while one with it
(query, header) is served and works a phone; reached through a non-loopback address of this
machine where it has one. A view started beyond loopback with no token refuses to start."""
from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys

import pytest

from cluster.control import Cluster
from tests.procs import mxone, wait_for, write_topology

pytestmark = pytest.mark.cluster


def local_address() -> str:
    """A non-loopback address of this machine (the one a route out would use), else loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("198.51.100.1", 9))  # UDP: picks the source address, sends nothing
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def request(address, method, path, body=None, headers=None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def exchange(tmp_path):
    topology = write_topology(tmp_path / "exchange.yaml", edit=lambda d: d["live_view"].update(address="0.0.0.0"))
    run_dir = tmp_path / "run"
    up = mxone("up", str(topology), "--detach", "--run-dir", str(run_dir))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield run_dir, up.stdout
    finally:
        cluster = Cluster(run_dir)
        if cluster.supervisord_pid() is not None:
            cluster.shutdown()


def test_beyond_loopback_the_api_wants_the_token_that_status_prints(exchange):
    run_dir, printed_by_up = exchange
    status = json.loads(mxone("status", "--json", "--run-dir", str(run_dir)).stdout)["live_view"]
    token = status["token"]
    assert token and (run_dir / "live_view.token").read_text().strip() == token
    port = int(re.search(r":(\d+)/", status["url"]).group(1))
    assert status["url"] == f"http://0.0.0.0:{port}/?token={token}"
    assert f"Live view: {status['url']}" in printed_by_up
    assert f"Live view: {status['url']}" in mxone("status", "--run-dir", str(run_dir)).stdout
    address = (local_address(), port)

    for path in ("/api/state", "/api/events", f"/api/state?token={token[:-1]}"):
        code, headers, body = request(address, "GET", path)
        assert code == 401, path
        assert headers["www-authenticate"].startswith("Bearer")
        assert json.loads(body)["error"] in ("token_required", "bad_token")
    code, _, _ = request(address, "GET", "/api/state", headers={"X-MXONE-Token": "x" * len(token)})
    assert code == 401
    action = json.dumps({"device": "1000", "action": "offhook"}).encode()
    code, _, _ = request(address, "POST", "/api/phone", action, {"Content-Type": "application/json"})
    assert code == 401

    # The page's own files hold nothing of the exchange; the page sends the token it was given.
    code, _, page = request(address, "GET", "/")
    assert code == 200 and b"<html" in page.lower()

    def lims_up():
        code, _, body = request(address, "GET", f"/api/state?token={token}")
        return code == 200 and [lim["state"] for lim in json.loads(body)["lims"]] == ["up", "up"]
    wait_for(lims_up, 30, "the live view to see both LIMs")
    code, _, body = request(address, "POST", "/api/phone", action,
                            {"Content-Type": "application/json", "X-MXONE-Token": token})
    assert code == 200 and json.loads(body)["ok"], body

    def offhook_shown() -> bool:  # the view hears of it as an event, after the action's answer
        code, _, body = request(address, "GET", "/api/state", headers={"Authorization": f"Bearer {token}"})
        assert code == 200
        return any(d["number"] == "1000" and d["state"] == "initiated" for d in json.loads(body)["devices"])
    wait_for(offhook_shown, 10, "the view to show 1000 off hook")


def test_a_view_beyond_loopback_without_a_token_does_not_start(tmp_path):
    topology = write_topology(tmp_path / "exchange.yaml", edit=lambda d: d["live_view"].update(address="0.0.0.0"))
    result = subprocess.run([sys.executable, "-m", "liveview", "--topology", str(topology),
                             "--token-file", str(tmp_path / "missing.token")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "listens on 0.0.0.0, beyond loopback, and works phones: it needs a token" in result.stderr
