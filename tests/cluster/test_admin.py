"""The administration commands on a running cluster: csta, csta_authentication, mxone_certificate,
with flags and through their prompts (a pseudo-terminal); ECMA-354 authentication; TLS."""
from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import socket
import ssl
import subprocess
import sys
import time

import pytest

from csta_front.client import CstaClient, CstaError
from tests.procs import free_ports

pytestmark = pytest.mark.cluster


def csta(*args: str, run_dir: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from cli.csta_admin import csta_main; "
                           "sys.exit(csta_main(sys.argv[1:]))", *args, "--run-dir", run_dir],
                          capture_output=True, text=True, input=stdin or "", timeout=60)


def auth(*args: str, run_dir: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from cli.csta_admin import auth_main; "
                           "sys.exit(auth_main(sys.argv[1:]))", *args, "--run-dir", run_dir],
                          capture_output=True, text=True, input=stdin or "", timeout=60)


def certificate(*args: str, run_dir: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.certificate", *args, "--run-dir", run_dir],
                          capture_output=True, text=True, timeout=60)


def with_terminal(argv: list[str], answers: list[tuple[str, str]], timeout: float = 60) -> tuple[int, str]:
    """Run a command on a pseudo-terminal, answering each prompt (matched by text) in turn."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, *argv])
    output = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            raise AssertionError(f"the command hung; output so far:\n{output.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            while pending and pending[0][0].encode() in output.split(b"\n")[-1] + chunk:
                prompt, reply = pending.pop(0)
                os.write(fd, reply.encode() + b"\n")
                output += b"\n"
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.fixture(scope="module")
def cluster(mxone_exchange_module):
    return mxone_exchange_module.cluster


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def csta_print(run_dir: str) -> dict[int, dict]:
    out = csta("-p", "--json", run_dir=run_dir)
    assert out.returncode == 0, out.stderr
    return {row["lim"]: row for row in json.loads(out.stdout)}


def test_csta_initiate_print_remove(cluster):
    run_dir = str(cluster.run_dir)
    rows = csta_print(run_dir)
    assert rows[1]["initiated"] and rows[1]["server_type"] == "XML" and rows[1]["running"]
    assert rows[1]["sessions"] == 0 and rows[1]["monitored_devices"] == []

    async def monitor_and_check():
        lim = cluster.topology().lim(1)
        async with await CstaClient.connect(lim.address, rows[1]["port"]) as client:
            await client.monitor_start("2001")
            printed = csta("-p", "--lim", "1", run_dir=run_dir).stdout
            assert "sessions connected: 1; monitored devices: 2001" in printed
            assert csta_print(run_dir)[1]["monitored_devices"] == ["2001"]
    run(monitor_and_check())

    port = free_ports(1)[0]
    out = csta("-i", "--lim", "2", "--port", str(port), "--max-sessions", "3", "--system-status-on-connect", "yes",
               run_dir=run_dir)
    assert out.returncode == 0, out.stderr
    assert f"CSTA server of LIM 2 initiated: XML on 127.0.1.2:{port}" in out.stdout
    row = csta_print(run_dir)[2]
    assert (row["port"], row["max_sessions"], row["system_status_on_connect"], row["running"]) == (port, 3, True, True)

    async def greeted():
        async with await CstaClient.connect("127.0.1.2", port) as client:
            invoke_id, request = await asyncio.wait_for(client.server_requests.get(), 5)
            assert request.tag.endswith("SystemStatus")
            await client.answer_server(invoke_id, client.E.SystemStatusResponse())
            assert await client.request_system_status() == "normal"
    run(greeted())

    out = csta("-e", "--lim", "2", run_dir=run_dir)
    assert out.returncode == 0 and "removed" in out.stdout
    assert csta_print(run_dir)[2] == {"lim": 2, "address": "127.0.1.2", "initiated": False}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.1.2", port), timeout=2).close()
    assert "LIM 2: no CSTA server initiated" in csta("-p", run_dir=run_dir).stdout
    # Removed stays removed when supervisord restarts the process, and comes back with -i.
    assert csta("-e", "--lim", "2", run_dir=run_dir).returncode == 1
    out = csta("-i", "--lim", "2", "--port", str(port), run_dir=run_dir)
    assert out.returncode == 0, out.stderr
    socket.create_connection(("127.0.1.2", port), timeout=5).close()


def test_csta_refuses_bad_input(cluster):
    run_dir = str(cluster.run_dir)
    for args, message in ((("-i", "--lim", "9"), "there is no LIM 9"),
                          (("-i", "--lim", "1", "--port", "70000"), "not a port"),
                          (("-i", "--lim", "1", "--max-sessions", "0"), "at least 1"),
                          (("-i",), "say which LIM"),
                          (("-i", "--lim", "1", "--tls-port", str(free_ports(1)[0])), "needs a valid certificate")):
        out = csta(*args, run_dir=run_dir)
        assert out.returncode != 0 and message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 or "usage" in out.stderr


def test_csta_through_its_prompts(cluster):
    run_dir = str(cluster.run_dir)
    port = free_ports(1)[0]
    code, output = with_terminal(
        ["-c", "import sys; from cli.csta_admin import csta_main; sys.exit(csta_main(sys.argv[1:]))",
         "-i", "--run-dir", run_dir],
        [("LIM", "2"), ("Server type", "XML"), ("Port", "nonsense"), ("Port", str(port)), ("TLS port", ""),
         ("authentication mandatory", "no"), ("Maximum sessions", "50"), ("Maximum monitors", "500"),
         ("SystemStatus", "no")])
    assert code == 0, output
    assert "is not a port" in output  # a wrong answer is asked again
    row = csta_print(run_dir)[2]
    assert (row["port"], row["max_sessions"], row["max_monitors"], row["system_status_on_connect"]) == \
        (port, 50, 500, False)


def test_authentication_settings_and_ecma354(cluster):
    run_dir = str(cluster.run_dir)
    assert "not initiated" in auth("-p", run_dir=run_dir).stdout
    assert auth("-c", "--mandatory", "yes", run_dir=run_dir).returncode == 1
    out = auth("-i", "--mandatory", "yes", "--application-id", "CallCenter", "--user", "alice",
               "--max-duration", "2", run_dir=run_dir, stdin="s3cret-pass\n")
    assert out.returncode == 0, out.stderr
    printed = auth("-p", run_dir=run_dir).stdout
    assert "users: alice" in printed and "s3cret" not in printed and "scrypt" not in printed
    assert "s3cret" not in (cluster.run_dir / "data" / "csta.db").read_bytes().decode(errors="replace")
    assert auth("-i", run_dir=run_dir).returncode == 1  # already initiated
    assert "at least 8" in auth("-c", "--user", "bob", run_dir=run_dir, stdin="short\n").stderr
    lim = cluster.topology().lim(1)
    port = csta_print(run_dir)[1]["port"]

    async def sessions():
        async with await CstaClient.connect(lim.address, port) as client:
            with pytest.raises(CstaError) as err:  # nothing but StartApplicationSession before it succeeds
                await client.request_system_status()
            assert (err.value.category, err.value.value) == ("security", "securityInfoViolated")
            with pytest.raises(CstaError) as err:
                await client.start_application_session("CallCenter", user="alice", password="wrong")
            assert err.value.value == "invalidApplicationInfo"
            with pytest.raises(CstaError) as err:
                await client.start_application_session("Other", user="alice", password="s3cret-pass")
            assert err.value.value == "invalidApplicationInfo"
            started = await client.start_application_session("CallCenter", user="alice", password="s3cret-pass",
                                                              duration=600)
            assert started["duration"] == 2 and started["protocol"].endswith("ed4")  # capped by the settings
            assert await client.request_system_status() == "normal"
            A = __import__("csta_front.codec", fromlist=["maker"]).maker(
                "http://www.ecma-international.org/standards/ecma-354/appl_session")
            reset = await client.request(A.ResetApplicationSessionTimer(A.sessionID(started["session_id"]),
                                                                        A.requestedSessionDuration("2")))
            assert reset.tag.endswith("ResetApplicationSessionTimerPosResponse")
            with pytest.raises(CstaError):
                await client.request(A.StopApplicationSession(A.sessionID("not-mine")))
            await client.monitor_start("1003")
            # The session timer runs out: the server ends the session and closes the connection.
            with pytest.raises(ConnectionError):
                await client.next_event(timeout=10)
        assert csta_print(run_dir)[1]["monitored_devices"] == []
        # The SessionLoginInfo form works too, and StopApplicationSession ends the session.
        async with await CstaClient.connect(lim.address, port) as client:
            A = __import__("csta_front.codec", fromlist=["maker"]).maker(
                "http://www.ecma-international.org/standards/ecma-354/appl_session")
            root = await client.request(A.StartApplicationSession(
                A.applicationInfo(A.applicationID("CallCenter"), A.applicationSpecificInfo(
                    A.SessionLoginInfo(A.userName("alice"), A.password("s3cret-pass")))),
                A.requestedProtocolVersions(A.protocolVersion(
                    "http://www.ecma-international.org/standards/ecma-323/csta/ed5"))))
            session_id = root.findtext("{*}sessionID")
            stopped = await client.request(A.StopApplicationSession(A.sessionID(session_id),
                                                                    A.sessionEndReason(A.appEndReason("done"))))
            assert stopped.tag.endswith("StopApplicationSessionPosResponse")
        # Repeated wrong passwords: slowed down, then refused for a while even when right.
        async with await CstaClient.connect(lim.address, port) as client:
            times = []
            for _ in range(5):
                start = time.monotonic()
                with pytest.raises(CstaError):
                    await client.start_application_session("CallCenter", user="mallory", password="guess-1234")
                times.append(time.monotonic() - start)
            assert times[-1] > times[0] and times[-1] >= 1.0
            with pytest.raises(CstaError) as err:
                await client.start_application_session("CallCenter", user="alice", password="s3cret-pass")
            assert err.value.category == "applicationSession" and "too many failed attempts" in \
                (err.value.element.findtext("{*}errorCode/{*}applError") or "")
    run(sessions())
    assert auth("-c", "--remove-user", "nobody", run_dir=run_dir).returncode == 2
    assert auth("-e", run_dir=run_dir).returncode == 0
    assert "not initiated" in auth("-p", run_dir=run_dir).stdout


def test_authentication_through_its_prompts(cluster):
    run_dir = str(cluster.run_dir)
    code, output = with_terminal(
        ["-c", "import sys; from cli.csta_admin import auth_main; sys.exit(auth_main(sys.argv[1:]))",
         "-i", "--run-dir", run_dir],
        [("mandatory", "no"), ("application IDs", "A1, A2"), ("duration", "120"),
         ("Add a user", "carol"), ("Password for carol:", "carol-pass-1"), ("again", "carol-pass-1"),
         ("Add a user", "")])
    assert code == 0, output
    assert "carol-pass-1" not in output.split("again")[-1]
    data = json.loads(auth("-p", "--json", run_dir=run_dir).stdout)
    assert data == {"initiated": True, "mandatory": False, "application_ids": ["A1", "A2"],
                    "max_session_duration_s": 120, "users": ["carol"]}
    assert auth("-e", run_dir=run_dir).returncode == 0


def test_certificate_and_tls(cluster, tmp_path):
    run_dir = str(cluster.run_dir)
    assert certificate("--print", run_dir=run_dir).returncode == 1
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    out = certificate("--install", str(bad), str(bad), run_dir=run_dir)
    assert out.returncode == 1 and "not a PEM certificate" in out.stderr
    out = certificate("--create", run_dir=run_dir)
    assert out.returncode == 0 and "self-signed" in out.stdout and "127.0.1.1" in out.stdout
    tls_port = free_ports(1)[0]
    out = csta("-i", "--lim", "1", "--tls-port", str(tls_port), run_dir=run_dir)
    assert out.returncode == 0, out.stderr
    cert = cluster.run_dir / "data" / "tls" / "server.crt"

    # The stock client: openssl s_client, trusting the exchange's certificate.
    from csta_front.framing import encode_frame
    request = encode_frame(7, b'<RequestSystemStatus xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>')
    s_client = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.1.1:{tls_port}", "-CAfile", str(cert),
                                 "-verify_return_error", "-quiet"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        s_client.stdin.write(request)
        s_client.stdin.flush()
        answer = b""
        deadline = time.monotonic() + 20
        while b"</RequestSystemStatusResponse>" not in answer and time.monotonic() < deadline:
            if select.select([s_client.stdout], [], [], 0.5)[0]:
                chunk = os.read(s_client.stdout.fileno(), 4096)
                if not chunk:
                    break
                answer += chunk
    finally:
        s_client.kill()
        s_client.wait()
    assert b"<systemStatus>normal" in answer and answer[4:8] == b"0007"  # framed, on our invoke ID

    async def clients():
        trusting = ssl.create_default_context(cafile=str(cert))
        async with await CstaClient.connect("127.0.1.1", tls_port, ssl=trusting) as client:
            assert await client.request_system_status() == "normal"
        untrusting = ssl.create_default_context()  # the system's CAs: the self-signed one is not among them
        with pytest.raises(ssl.SSLCertVerificationError):
            await CstaClient.connect("127.0.1.1", tls_port, ssl=untrusting)
    run(clients())
    # Plain TCP still works beside TLS.
    socket.create_connection(("127.0.1.1", csta_print(run_dir)[1]["port"]), timeout=5).close()
    assert csta("-i", "--lim", "1", "--tls-port", "none", run_dir=run_dir).returncode == 0
    assert csta_print(run_dir)[1]["tls_port"] is None
