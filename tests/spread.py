"""An exchange spread over hosts (tests/netns.py): one run directory per host, each started with
`mxone up --host NAME` inside the host's namespace, as an operator would on separate machines.

    with Hosts(["a", "b", "c"]) as hosts:              # see tests/cluster/test_partitions.py
        topology = spread_topology(path, hosts, "a", {1: "a", 2: "b"}, backup_host="c")
        with running(hosts, topology, tmp_path) as exchange:   # every host started at once
            hosts.on("a", client_code)                 # a CSTA or bus client on host a
            hosts.cut("a", "b")                        # ... and heal("a", "b")

`spread_topology` places the built-in topology's broker and LIMs on hosts, at addresses of those
hosts, on free ports; `edit` changes the data before it is written (timers, CSTA settings, ...).
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from tests.netns import Hosts
from topology.loader import default_topology_path
from topology.ports import free_ports, move_to_free_ports


def spread_topology(path: Path, hosts: Hosts, broker_host: str, lim_hosts: dict[int, str], *,
                    backup_host: str | None = None, extra_lims: list[dict] | None = None,
                    edit: Callable[[dict], None] | None = None) -> Path:
    """The built-in topology (plus `extra_lims`) with the broker on `broker_host` (address .1), the
    backup broker, if `backup_host`, there (address .2), and LIM N on `lim_hosts[N]` (address
    .10+N), on free ports."""
    data = yaml.safe_load(default_topology_path().read_text())
    data["lims"].extend(extra_lims or [])
    if backup_host is not None:
        data["broker"]["backup"] = {"address": "127.0.0.1"}
    data = move_to_free_ports(data)
    data["broker"].update(address=hosts.address(broker_host, 1), host=broker_host)
    if backup_host is not None:
        backup = data["broker"].setdefault("backup", {})  # (a move_to_free_ports of one broker drops it)
        if "router_port" not in backup:
            backup.update(zip(("router_port", "pub_port", "sub_port"), free_ports(3)))
        backup.update(address=hosts.address(backup_host, 2), host=backup_host)
    for lim in data["lims"]:
        host = lim_hosts[lim["number"]]
        lim.update(address=hosts.address(host, 10 + lim["number"]), host=host)
    if edit:
        edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class SpreadExchange:
    def __init__(self, hosts: Hosts, topology_file: Path, base: Path):
        self.hosts = hosts
        self.topology_file = topology_file
        self.base = base
        self.started: list[str] = []

    def run_dir(self, host: str) -> Path:
        return self.base / f"run-{host}"

    def mxone(self, host: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`mxone ARGS --run-dir <host's run dir>` inside the host's namespace."""
        return self.hosts.run(host, [sys.executable, "-m", "cli.main", *args,
                                     "--run-dir", str(self.run_dir(host))], timeout=timeout)

    def up(self, *names: str, timeout: float = 120) -> None:
        """`mxone up --host NAME --detach` on each host at once; each returns when its LIMs are up."""
        procs = {}
        for name in names:
            self.started.append(name)
            procs[name] = self.hosts.popen(name, [sys.executable, "-m", "cli.main", "up", str(self.topology_file),
                                                  "--host", name, "--detach", "--run-dir", str(self.run_dir(name))],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        failed = []
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                failed.append(f"host {name}: {err.strip() or out.strip()}")
        if failed:
            raise RuntimeError("the exchange did not start: " + "; ".join(failed))

    def down(self) -> None:
        """Stop every host's supervisord we started (what is left is ended by Hosts.close)."""
        for name in reversed(self.started):
            if (self.run_dir(name) / "supervisord.pid").exists():
                self.mxone(name, "down", timeout=60)
        self.started.clear()

    def log(self, host: str, program: str) -> str:
        path = self.run_dir(host) / "logs" / f"{program}.log"
        return path.read_text() if path.exists() else ""

    def tracebacks(self) -> list[str]:
        return [f"{path.parent.parent.name}/{path.name}" for path in self.base.glob("run-*/logs/*.log")
                if "Traceback" in path.read_text(errors="replace")]

    def status(self, host: str) -> dict[str, Any]:
        import json
        result = self.mxone(host, "status", "--json", timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"mxone status on {host}: {result.stderr.strip()}")
        return json.loads(result.stdout)


@contextlib.contextmanager
def running(hosts: Hosts, topology_file: Path, base: Path, *names: str) -> Iterator[SpreadExchange]:
    """The exchange started on `names` (every host by default), stopped after, even on failure; no
    process may leave a traceback in its log."""
    exchange = SpreadExchange(hosts, topology_file, base)
    try:
        exchange.up(*(names or hosts.names))
        yield exchange
    finally:
        exchange.down()
    assert exchange.tracebacks() == [], "a process left a traceback in its log"
