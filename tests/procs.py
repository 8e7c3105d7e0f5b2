"""Helpers for tests that run real processes: free ports, topology files, waiting by polling."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from broker.client import BusClient, BusError
from broker.protocol import BROKER, Kind
from cluster.children import Children
from cluster.exchange import start_exchange
from topology.loader import default_topology_path
from topology.ports import free_ports, move_to_free_ports  # noqa: F401  (tests import free_ports from here)


def write_topology(path: Path, *, dead_after_ms: int = 600, no_answer_s: float | None = None,
                   edit: Callable[[dict], None] | None = None) -> Path:
    """The built-in topology with the broker on free ports (tests never collide with `make run`)."""
    data = move_to_free_ports(yaml.safe_load(default_topology_path().read_text()))
    data["broker"]["dead_after_ms"] = dead_after_ms
    if no_answer_s is not None:
        data.setdefault("timers", {})["no_answer_s"] = no_answer_s
    if edit:
        edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except BusError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_members(client: BusClient, wanted: set[tuple[str, int]], timeout: float = 20.0) -> None:
    """Wait until the broker has every (role, lim) in `wanted` up, e.g. {("lim", 1), ("front", 1)}."""
    def ready():
        members = client.request(BROKER, Kind.STATUS, timeout=1.0)["members"]
        return {(m["role"], m["lim"]) for m in members if m["state"] == "up"} >= wanted
    wait_for(ready, timeout, f"{sorted(wanted)} to register")


def lim_states(client: BusClient) -> dict[int, tuple[str, int]]:
    members = client.request(BROKER, Kind.STATUS, timeout=1.0)["members"]
    return {m["lim"]: (m["state"], m["incarnation"]) for m in members if m["role"] == "lim"}


class EventLog:
    """Collects bus events for some devices through a BusClient."""

    def __init__(self, client: BusClient, devices: list[str]):
        self.client = client
        self.by_device: dict[str, list[dict]] = {d: [] for d in devices}
        self.members: list[dict] = []  # membership changes from the broker
        for d in devices:
            client.subscribe(f"d:{d}|")
        client.subscribe("sys|")
        client.sync()

    def pump(self, seconds: float = 0.05) -> None:
        for topic, env in self.client.events(timeout=seconds):
            if topic == "sys|":
                self.members.append(env.body)
                continue
            device = topic[2:-1]
            if device in self.by_device:
                self.by_device[device].append(env.body)

    def names(self, device: str) -> list[str]:
        return [e["event"] for e in self.by_device[device]]

    def wait(self, device: str, names: list[str], timeout: float = 10.0) -> list[dict]:
        """Wait until `device` has seen exactly `names` (more would also fail the test)."""
        deadline = time.monotonic() + timeout
        while len(self.by_device[device]) < len(names) and time.monotonic() < deadline:
            self.pump(0.05)
        self.pump(0.05)  # anything extra shows up too
        assert self.names(device) == names, f"{device}: {self.names(device)} != {names}"
        return self.by_device[device]

    def clear(self) -> None:
        for events in self.by_device.values():
            events.clear()


class RunningExchange:
    """What `running_exchange` yields: the topology, its processes and a bus client of it."""

    def __init__(self, topology_file: Path, topology: Any, procs: Children, exchange: Any, directory: Path):
        self.topology_file = topology_file
        self.topology = topology
        self.procs = procs
        self.exchange = exchange
        self.directory = directory


@contextlib.contextmanager
def running_exchange(directory: Path, lims: tuple[int, ...] = (1, 2), cstas: tuple[int, ...] = (1,),
                     edit: Callable[[dict], None] | None = None,
                     before_start: Callable[[Path], None] | None = None, timeout: float = 20.0):
    """The one way to start an exchange (cluster.exchange), its programs as plain child processes on
    free ports: the broker, `lims` and the CSTA servers of `cstas`, every one registered before the
    test runs; stopped after, and no process may leave a traceback. `before_start(directory)` runs
    once the topology is written (a certificate to install, say)."""
    topology_file = write_topology(directory / "topology.yaml", edit=edit)
    if before_start is not None:
        before_start(directory)
    running = start_exchange(topology_file, directory, timeout=timeout, supervised=False, lims=list(lims),
                             cstas=list(cstas))
    try:
        yield RunningExchange(topology_file, running.topology, running.children, running.exchange, directory)
    finally:
        running.stop()
        crashed = running.children.tracebacks()
        assert not crashed, f"{', '.join(crashed)} crashed"


def mxone(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """The `mxone` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=timeout)


def alive(pid: int) -> bool:
    """Whether a process runs; a zombie (exited, waiting for its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def require_root_and(*tools: str) -> None:
    """Tests that make accounts, mount file systems or change user need root and these tools; the
    suite never skips them (.ci/run installs the tools and runs as root): without them, a failure
    that says what is missing."""
    import shutil
    import pytest
    if os.geteuid() != 0:
        pytest.fail("this test needs root (it creates accounts, mounts or changes user); run the suite as root")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"this test needs {', '.join(missing)}: install it (.ci/run does)")
