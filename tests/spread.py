"""An exchange spread over hosts (tests/netns.py): one run directory per host, each started with
`mxone up --host NAME` inside the host's namespace, as an operator would on separate machines.

    with Hosts(["a", "b"]) as hosts:                   # see tests/cluster/test_partitions.py
        exchange = SpreadExchange(hosts, spread_topology(path, hosts, "a", {1: "a", 2: "b"}), tmp_path)
        try:
            exchange.up("a", "b")                      # started together; each waits for its own LIMs
            hosts.on("a", client_code)                 # a CSTA or bus client on host a
        finally:
            exchange.down()

`spread_topology` places the built-in topology's broker and LIMs on hosts, at addresses of those
hosts, on free ports; `edit` changes the data before it is written (a backup broker, more LIMs).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from tests.netns import Hosts
from topology.loader import default_topology_path
from topology.ports import move_to_free_ports


def spread_topology(path: Path, hosts: Hosts, broker_host: str, lim_hosts: dict[int, str], *,
                    extra_lims: list[dict] | None = None, edit: Callable[[dict], None] | None = None) -> Path:
    """The built-in topology (plus `extra_lims`) with the broker on `broker_host` and LIM N on
    `lim_hosts[N]`, each at an address of its host (broker .1, LIM N .10+N), on free ports."""
    data = yaml.safe_load(default_topology_path().read_text())
    data["lims"].extend(extra_lims or [])
    data = move_to_free_ports(data)
    data["broker"].update(address=hosts.address(broker_host, 1), host=broker_host)
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
        return self.hosts.run(host, [sys.executable, "-m", "topology.cli", *args,
                                     "--run-dir", str(self.run_dir(host))], timeout=timeout)

    def up(self, *names: str, timeout: float = 120) -> None:
        """`mxone up --host NAME --detach` on each host at once; each returns when its LIMs are up."""
        procs = {}
        for name in names:
            self.started.append(name)
            procs[name] = self.hosts.popen(name, [sys.executable, "-m", "topology.cli", "up", str(self.topology_file),
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
