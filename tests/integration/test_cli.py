"""`mxone` as a user types it: topology files, refusals with one-line messages, Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys


from tests.procs import alive, wait_for, write_topology
from cluster.control import Cluster


def mxone(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_validate_show_generate(tmp_path):
    out = mxone("topology", "validate", str(write_topology(tmp_path / "t.yaml")))
    assert out.returncode == 0 and "valid: 2 LIMs, 100 extensions, 3 groups, 1 trunk\n" in out.stdout
    shown = mxone("topology", "show")
    assert shown.returncode == 0 and "1000-1009" in shown.stdout
    big = tmp_path / "big.yaml"
    gen = mxone("topology", "generate", "--lims", "8", "--extensions-per-lim", "100", "-o", str(big))
    assert gen.returncode == 0
    assert "valid: 8 LIMs, 800 extensions" in mxone("topology", "validate", str(big)).stdout
    bad = mxone("topology", "generate", "--lims", "0", "--extensions-per-lim", "10")
    assert bad.returncode == 2 and bad.stderr.startswith("mxone: topology generate: ")


def test_broken_topology_names_file_and_line_and_starts_nothing(tmp_path):
    broken = tmp_path / "broken.yaml"
    text = write_topology(tmp_path / "t.yaml").read_text().replace("type: dect", "type: rotary", 1)
    broken.write_text(text)
    line = text.splitlines().index(next(l for l in text.splitlines() if "rotary" in l)) + 1
    run_dir = tmp_path / "run"
    for args in (("topology", "validate", str(broken)), ("up", str(broken), "--detach", "--run-dir", str(run_dir))):
        out = mxone(*args)
        assert out.returncode == 2
        assert out.stderr.startswith(f"mxone: {broken}:{line}: ") and "rotary" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (run_dir / "supervisord.pid").exists() and not (run_dir / "supervisord.conf").exists()


def test_up_refuses_a_taken_broker_port(tmp_path):
    topo = write_topology(tmp_path / "t.yaml")
    port = int(next(l for l in topo.read_text().splitlines() if "router_port" in l).split(":")[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        out = mxone("up", str(topo), "--detach", "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 1 and f"broker port 127.0.0.1:{port} is not free" in out.stderr


def test_up_refuses_a_taken_csta_port(tmp_path):
    topo = write_topology(tmp_path / "t.yaml")
    port = int(next(l for l in topo.read_text().splitlines() if l.strip().startswith("port:")).split(":")[1])
    with socket.socket() as taken:
        taken.bind(("127.0.1.1", port))
        taken.listen()
        out = mxone("up", str(topo), "--detach", "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 1 and f"LIM 1's CSTA port 127.0.1.1:{port} is not free" in out.stderr


def test_commands_without_an_exchange_say_so(tmp_path):
    for args in (("status",), ("phone", "1000", "dial", "2000"), ("down",), ("events",)):
        out = mxone(*args, "--run-dir", str(tmp_path / "nothing"))
        assert out.returncode == 1, args
        assert "no exchange" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_bad_phone_arguments(tmp_path):
    out = mxone("phone", "1000", "dial", "--run-dir", str(tmp_path))
    assert out.returncode == 2 and "dial needs a number" in out.stderr
    out = mxone("phone", "1000", "juggle", "--run-dir", str(tmp_path))
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_up_in_the_foreground_stops_everything_on_ctrl_c(tmp_path):
    topo = write_topology(tmp_path / "t.yaml")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", str(topo), "--run-dir", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = []
        while "Ctrl-C stops the exchange." not in lines:
            line = proc.stdout.readline()
            assert line, f"mxone up ended early: {proc.stderr.read()}"
            lines.append(line.strip())
        assert any("is up" in l for l in lines)
        cluster = Cluster(run_dir)
        children = [p["pid"] for p in cluster.processes()]
        assert len(children) == 6 and all(children)  # broker, 2 LIMs, 2 CSTA servers, the live view
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        assert proc.wait(timeout=30) == 0
        for pid in children:
            wait_for(lambda: not alive(pid), 10, f"process {pid} to exit")
        assert cluster.supervisord_pid() is None
    finally:
        if proc.poll() is None:
            # Ask first: supervisord stops its children on SIGINT; SIGKILL would orphan them.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)



def test_down_then_up_at_once_after_connections_the_servers_closed(tmp_path):
    """The everyday restart loop. Connections the servers closed first (the CSTA server dropping a
    client that sent garbage; the broker going down under a connected `mxone events`) leave their
    ports in TIME_WAIT for a minute; the servers bind with SO_REUSEADDR, so the port check must too."""
    import zmq
    from topology.loader import load_topology

    topo = write_topology(tmp_path / "t.yaml")
    topology = load_topology(topo)
    run_dir = str(tmp_path / "run")
    assert mxone("up", str(topo), "--detach", "--run-dir", run_dir).returncode == 0
    try:
        lim1 = topology.lim(1)
        csta = (lim1.address, lim1.csta.port)
        with socket.create_connection(csta, timeout=10) as client:
            client.sendall(b"\x00\x00\x00\x08garbage!")  # no invoke ID, no XML: a framing error
            assert client.recv(4096) == b""  # the server closed first: its side is in TIME_WAIT
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        watch = sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sub.connect(topology.broker.endpoints()[0].url("sub"))
        sub.subscribe(b"")
        assert watch.poll(10_000), "never connected to the bus"  # connected, as `mxone events` is
        sub.disable_monitor()
        watch.close(linger=0)
        try:
            assert mxone("down", "--run-dir", run_dir).returncode == 0
        finally:
            sub.close(linger=0)
            context.term()
        again = mxone("up", str(topo), "--detach", "--run-dir", run_dir)
        assert again.returncode == 0, again.stderr
    finally:
        mxone("down", "--run-dir", run_dir)


def test_log_level_reaches_every_process(tmp_path):
    """`mxone up --log-level warning`: every program's log keeps its warnings and loses its info lines;
    a bad $MXONE_LOG_LEVEL is a one-line refusal that starts nothing."""
    topo = write_topology(tmp_path / "t.yaml")
    run_dir = tmp_path / "run"
    bad = mxone("up", str(topo), "--detach", "--run-dir", str(run_dir), env={**os.environ, "MXONE_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and bad.stderr == "mxone: up: MXONE_LOG_LEVEL='loud' is not a log level " \
                                                 "(debug, info, warning, error)\n"
    assert not (run_dir / "supervisord.pid").exists()
    assert mxone("up", str(topo), "--detach", "--run-dir", str(run_dir), "--log-level", "warning").returncode == 0
    try:
        assert mxone("phone", "1000", "dial", "2000", "--run-dir", str(run_dir)).returncode == 0
    finally:
        assert mxone("down", "--run-dir", str(run_dir)).returncode == 0
    logs = {p.stem: p.read_text() for p in (run_dir / "logs").glob("*.log") if p.stem != "supervisord"}
    assert set(logs) == {"broker", "lim-1", "lim-2", "csta-1", "csta-2", "view"}
    assert all(" INFO " not in text for text in logs.values()), logs
    # The same exchange at the default level says what it does at info: the control is not vacuous.
    default = tmp_path / "default"
    assert mxone("up", str(topo), "--detach", "--run-dir", str(default)).returncode == 0
    assert mxone("down", "--run-dir", str(default)).returncode == 0
    assert all(" INFO " in p.read_text() for p in (default / "logs").glob("*.log") if p.stem != "supervisord")


def test_logs_of_a_running_and_of_a_stopped_exchange(tmp_path):
    topo = write_topology(tmp_path / "t.yaml")
    run_dir = str(tmp_path / "run")
    assert mxone("logs", "--run-dir", run_dir).stderr.startswith("mxone: no logs in ")
    assert mxone("up", str(topo), "--detach", "--run-dir", run_dir).returncode == 0
    follow = subprocess.Popen([sys.executable, "-m", "cli.main", "logs", "-f", "-n", "1", "supervisord",
                               "--run-dir", run_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline()  # the last line: printed once it has taken the files' sizes
        assert mxone("kill", "lim-2", "--run-dir", run_dir).returncode == 0
        seen = []
        while not any("lim-2" in line and "exited" in line for line in seen):
            line = follow.stdout.readline()
            assert line, "mxone logs -f ended"
            seen.append(line)
    finally:
        follow.terminate()
        follow.wait(timeout=10)
        assert mxone("down", "--run-dir", run_dir).returncode == 0
    every = mxone("logs", "-n", "3", "--run-dir", run_dir)
    assert every.returncode == 0
    programs = {line.split(" | ")[0] for line in every.stdout.splitlines()}
    assert programs == {"broker", "lim-1", "lim-2", "csta-1", "csta-2", "view", "supervisord"}
    one = mxone("logs", "lim-2", "-n", "2", "--run-dir", run_dir)  # killed and restarted: several lines
    assert one.returncode == 0
    assert one.stdout.splitlines() == (tmp_path / "run" / "logs" / "lim-2.log").read_text().splitlines()[-2:]
    wrong = mxone("logs", "lim-9", "--run-dir", run_dir)
    assert wrong.returncode == 1 and wrong.stderr.startswith("mxone: logs: no program 'lim-9' (the logs are of ")


def test_two_generated_exchanges_run_side_by_side(tmp_path):
    """`mxone topology generate`'s address and port options: two exchanges up at once, each answering
    its own calls and showing its own page (the second on the default CSTA port of other addresses)."""
    from topology.ports import free_ports

    def three_free_ports_in_a_row(taken: set[int]) -> int:
        for base in free_ports(20):
            if taken & {base, base + 1, base + 2}:
                continue
            try:
                with socket.socket() as a, socket.socket() as b, socket.socket() as c:
                    for sock, port in ((a, base), (b, base + 1), (c, base + 2)):
                        sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            taken |= {base, base + 1, base + 2}
            return base
        raise AssertionError("no three free ports in a row")

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    taken: set[int] = set()
    bases = [three_free_ports_in_a_row(taken), three_free_ports_in_a_row(taken)]
    views = [p for p in free_ports(8) if p not in taken][:2]
    for path, prefix, base, view in ((first, "127.2", bases[0], views[0]), (second, "127.3", bases[1], views[1])):
        out = mxone("topology", "generate", "--lims", "2", "--extensions-per-lim", "10", "--lim-addresses", prefix,
                    "--broker-port", str(base), "--live-view-port", str(view), "-o", str(path))
        assert out.returncode == 0, out.stderr
    runs = [str(tmp_path / "run-a"), str(tmp_path / "run-b")]
    try:
        for path, run_dir in zip((first, second), runs):
            up = mxone("up", str(path), "--detach", "--run-dir", run_dir)
            assert up.returncode == 0, up.stderr
        for run_dir in runs:
            assert mxone("phone", "1000", "dial", "1010", "--run-dir", run_dir).returncode == 0
            status = json.loads(mxone("status", "--json", "--run-dir", run_dir).stdout)
            assert [sorted(c["device"] for c in call["connections"]) for call in status["calls"]] == [["1000", "1010"]]
    finally:
        for run_dir in runs:
            mxone("down", "--run-dir", run_dir)
