"""supervisord killed with SIGKILL: its programs die with it (netio/parent.py), a stopped one too;
and where they cannot (no prctl), the orphans are named by `mxone status` and stopped by `mxone up`
and `mxone down`, each saying so."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from cluster.children import Children
from cluster.control import Cluster
from tests.procs import alive, mxone, wait_for, write_topology

pytestmark = pytest.mark.cluster


def up(run_dir, topology) -> str:
    result = mxone("up", str(topology), "--detach", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def program_pids(run_dir) -> dict[str, int]:
    result = mxone("status", "--json", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    return {p["name"]: p["pid"] for p in json.loads(result.stdout)["processes"] if p["pid"]}


def kill_supervisord(run_dir) -> None:
    pid = Cluster(run_dir).supervisord_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 10, "supervisord to die")


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    yield run
    cluster = Cluster(run)  # whatever the test left: no process may outlive it
    if cluster.supervisord_pid() is not None:
        cluster.shutdown()
    cluster.stop_orphans()


def _state(pid: int) -> str:
    """The process's state, parent and signal masks, for a failure message."""
    try:
        status = open(f"/proc/{pid}/status").read().splitlines()
    except OSError:
        return "gone"
    return "; ".join(l for l in status if l.split(":")[0] in ("State", "PPid", "SigPnd", "ShdPnd", "SigBlk", "SigIgn"))


def test_every_program_dies_with_a_killed_supervisord(run_dir, tmp_path):
    """The running programs end by themselves (SIGTERM from the kernel when their parent dies). A
    hung one (SIGSTOP) cannot act on that signal: the kernel may wake it (an orphaned process group
    with a stopped member gets SIGHUP and SIGCONT) or may not (seen here: stopped, SIGTERM pending),
    so it is the orphan `mxone status` names and `mxone down` stops."""
    up(run_dir, write_topology(tmp_path / "exchange.yaml"))
    pids = program_pids(run_dir)
    assert {"broker", "lim-1", "lim-2", "csta-1", "csta-2", "view"} <= set(pids)
    os.kill(pids["lim-2"], signal.SIGSTOP)  # a hung program
    kill_supervisord(run_dir)
    running = {name: pid for name, pid in pids.items() if name != "lim-2"}
    # Each stops as SIGTERM makes it (a CSTA server tells its clients first): seconds on a loaded machine.
    deadline = time.monotonic() + 60
    while (left := {name: pid for name, pid in running.items() if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    states = {name: _state(pid) for name, pid in left.items()}
    for pid in left.values():
        os.kill(pid, signal.SIGKILL)  # never leave them running for the next test
    assert not left, f"still running 60 s after supervisord was killed: {states}"
    down = mxone("down", "--run-dir", str(run_dir))
    if alive(pids["lim-2"]):  # not woken: the orphan, found and stopped
        assert down.returncode == 0, down.stderr
        assert down.stdout == (f"supervisord was gone; stopped 1 orphan process: lim-2 (pid {pids['lim-2']}).\n"), \
            down.stdout
        assert not alive(pids["lim-2"])
    else:  # woken by the kernel, it ended with the others
        assert down.returncode == 1 and f"no exchange running in {run_dir}" in down.stderr


def test_orphans_are_named_by_status_and_stopped_by_up_and_down(run_dir, tmp_path):
    """Orphans as a killed supervisord leaves them where its programs cannot die with it (no prctl:
    not Linux): the run directory's programs, running with no supervisord."""
    topology = write_topology(tmp_path / "exchange.yaml")
    Cluster(run_dir).prepare(topology)  # the run directory `mxone up` makes
    run = run_dir.resolve()

    def orphans() -> tuple[Children, dict[str, int]]:
        children = Children(run / "topology.yaml", run / "data", run / "logs")
        for name in ("broker", "lim-1"):
            children.start(name)
        return children, {name: proc.pid for name, proc in children.procs.items()}

    children, pids = orphans()
    try:
        named = f"broker (pid {pids['broker']}), lim-1 (pid {pids['lim-1']})"
        status = mxone("status", "--run-dir", str(run_dir))
        assert status.returncode == 1
        assert (f"supervisord of {run_dir} is not running, but 2 processes of it run on as orphans: {named}. "
                "`mxone down` stops them") in status.stdout, status.stdout
        as_json = json.loads(mxone("status", "--json", "--run-dir", str(run_dir)).stdout)
        assert as_json["orphans"] == [{"name": "broker", "pid": pids["broker"]}, {"name": "lim-1", "pid": pids["lim-1"]}]

        # `mxone up` stops them before it starts (the broker's ports are wanted again).
        printed = up(run_dir, topology)
        assert f"Stopped 2 orphan processes of an earlier exchange whose supervisord was gone: {named}." in printed
        assert not any(alive(pid) for pid in pids.values())
        assert Cluster(run_dir).orphans() == []  # the new exchange's programs are supervisord's
        down = mxone("down", "--run-dir", str(run_dir))
        assert down.returncode == 0 and down.stdout == f"Exchange in {run_dir} stopped.\n"
    finally:
        children.stop_all()

    # `mxone down` stops them too.
    children, pids = orphans()
    try:
        down = mxone("down", "--run-dir", str(run_dir))
        assert down.returncode == 0, down.stderr
        assert (f"supervisord was gone; stopped 2 orphan processes: broker (pid {pids['broker']}), "
                f"lim-1 (pid {pids['lim-1']}).") in down.stdout
        assert not any(alive(pid) for pid in pids.values())
    finally:
        children.stop_all()
