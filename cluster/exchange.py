"""The one way to start and stop an exchange, used by `mxone up`, the tools (bench, chaos, scale,
traffic, scenarios), the pytest plugin and the tests.

- `launch` is what `mxone up` does: validate the topology into a run directory, start supervisord
  and wait until every LIM is registered and every CSTA server listens (and the live view, when
  it runs here); if that fails, supervisord is stopped again and ClusterError says where the logs are.
- `start_exchange` launches in the background (supervisord in its own session: Ctrl-C reaches only
  the caller) and returns a `RunningExchange`: where to reach it, its phones, and `stop()`.
  With `supervised=False` the programs are plain child processes instead (cluster/children.py):
  nothing restarts what dies, so a test kills and restarts them itself.
- `running_exchange` is the same as a context manager (the pytest plugin's fixtures, the tools) with a run directory of its own (a temporary
  one unless given), removed after a clean run and kept, with its logs, otherwise.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import yaml

from broker.client import BusClient, BusError
from broker.protocol import BROKER, Kind
from cluster.children import Children
from cluster.control import Cluster, ClusterError, broker_programs, wait_for
from lim.phone import Exchange, Phone
from liveview.client import is_listening
from topology.hosts import csta_program, lim_program, lims_on, programs_on
from topology.loader import default_topology_path
from topology.model import Topology
from topology.ports import move_to_free_ports

# How a caller starts supervisord on a prepared cluster and waits for it to be up (the default is
# `launch`'s own; `mxone scale startup` times the `mxone up` command instead).
Launcher = Callable[[Cluster, Path, float | None], None]


def default_timeout(topology: Topology) -> float:
    return 20 + 0.5 * len(topology.lims)


def launch(cluster: Cluster, topology_file: Path, *, detach: bool, timeout: float | None = None,
           host: str | None = None,
           log: Callable[[str], None] | None = None) -> tuple[Topology, subprocess.Popen, float]:
    """Prepare `cluster` from `topology_file`, start supervisord and wait until the exchange is up.
    Returns the topology, supervisord's process (in the foreground case the caller waits for it) and
    the seconds from starting supervisord to the exchange up."""
    topology = cluster.prepare(topology_file, host=host)
    if log is not None:
        extensions = len(topology.extensions_on(topology.lims[0].number)) if topology.lims else 0
        log(f"starting {len(topology.lims)} LIMs x {extensions} extensions in {cluster.run_dir}")
    started = time.monotonic()
    proc = cluster.start_supervisord(detach=detach)
    try:
        wait_until_up(cluster, topology, timeout or default_timeout(topology), proc, cluster.host())
    except (ClusterError, KeyboardInterrupt) as exc:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ClusterError(f"{exc}; see the logs in {cluster.run_dir / 'logs'}") from None
    return topology, proc, time.monotonic() - started


def wait_until_up(cluster: Cluster, topology: Topology, timeout: float, proc: subprocess.Popen | None = None,
                  host: str | None = None, lims: list[int] | None = None, cstas: list[int] | None = None,
                  view: bool = True) -> None:
    """Up means every LIM registered and every CSTA server listening (it registers only then); with
    a host, every LIM of this host (a host with only a broker: the broker answering). `lims` and
    `cstas` narrow it to those started; `view=False`: the live view is not waited for."""
    lims = lims_on(topology, host) if lims is None else list(lims)
    runs_view = view and topology.live_view is not None and "view" in programs_on(topology, host)
    wanted = {("lim", n) for n in lims}
    wanted |= {("front", n) for n in (cluster.csta_servers(topology) if cstas is None else cstas) if n in lims}
    with BusClient(topology.broker) as client:
        def ready() -> bool:
            if proc is not None and proc.poll() is not None and proc.returncode != 0:
                raise ClusterError(f"supervisord exited with status {proc.returncode}")
            try:
                members = client.request(BROKER, Kind.STATUS, timeout=0.5)["members"]
            except BusError:
                return False
            return wanted <= {(m["role"], m["lim"]) for m in members if m["state"] == "up"} and (
                not runs_view or view_listening(topology))
        wait_for(ready, timeout, f"{len(lims)} LIMs and their CSTA servers to register"
                                 f"{' and the live view to listen' if runs_view else ''}", interval=0.1)


def view_listening(topology: Topology) -> bool:
    return topology.live_view is None or is_listening(topology.live_view)


def topology_on_free_ports(source: Path, target: Path) -> Path:
    """Copy a topology file with the broker's and the CSTA servers' ports moved to free ones."""
    data = move_to_free_ports(yaml.safe_load(Path(source).read_text()))
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


class RunningExchange:
    """An exchange started in the background: where to reach it, its phones, and how to stop it."""

    def __init__(self, cluster: Cluster, startup_s: float | None = None, children: Children | None = None):
        self.cluster = cluster
        self.children = children          # the processes, when not under supervisord
        self.run_dir = cluster.run_dir
        self.topology = cluster.topology()
        self.startup_s = startup_s        # seconds from starting its processes to every LIM registered
        self.shutdown_s: float | None = None
        self._exchange: Exchange | None = None

    @property
    def exchange(self) -> Exchange:
        """A bus client of the exchange (made on first use, closed by `stop`)."""
        if self._exchange is None:
            self._exchange = Exchange(self.topology)
        return self._exchange

    def csta_endpoint(self, lim: int) -> tuple[str, int]:
        """(address, port) of the CSTA server installed on LIM `lim`."""
        server = self.cluster.csta_servers(self.topology).get(lim)
        if server is None:
            raise LookupError(f"no CSTA server is initiated on LIM {lim}")
        return self.topology.lim(lim).address, server.port

    def phone(self, number: str) -> Phone:
        return self.exchange.phone(str(number))

    def calls(self) -> list[dict]:
        return self.exchange.calls()

    def close_client(self) -> None:
        if self._exchange is not None:
            self._exchange.close()
            self._exchange = None

    def stop(self, timeout: float = 30.0) -> None:
        """`mxone down`: every process stopped, then supervisord (or every child process). An
        exchange whose supervisord is gone already (a test killed it) only loses its bus client."""
        self.close_client()
        started = time.monotonic()
        if self.children is not None:
            self.children.stop_all()
        elif self.cluster.supervisord_pid() is not None:
            self.cluster.shutdown(timeout=timeout)
        else:
            return
        self.shutdown_s = round(time.monotonic() - started, 3)


def start_exchange(topology_file: Path | None, run_dir: Path, *, timeout: float | None = None,
                   launcher: Launcher | None = None, log: Callable[[str], None] | None = None,
                   supervised: bool = True, lims: list[int] | None = None,
                   cstas: list[int] | None = None) -> RunningExchange:
    """`mxone up --detach` for `topology_file` (the built-in topology when None) in `run_dir`.
    `supervised=False`: the broker, the LIMs `lims` (default all) and the CSTA servers `cstas`
    (default those initiated) as plain child processes, without supervisord or the live view."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(run_dir)
    source = Path(topology_file) if topology_file is not None else default_topology_path()
    if not supervised:
        return _start_children(cluster, source, timeout, lims, cstas)
    if launcher is not None:
        started = time.monotonic()
        launcher(cluster, source, timeout)
        return RunningExchange(cluster, time.monotonic() - started)
    _, _, up_s = launch(cluster, source, detach=True, timeout=timeout, log=log)
    return RunningExchange(cluster, up_s)


def _start_children(cluster: Cluster, source: Path, timeout: float | None, lims: list[int] | None,
                    cstas: list[int] | None) -> RunningExchange:
    topology = cluster.prepare(source)
    lims = [lim.number for lim in topology.lims] if lims is None else list(lims)
    cstas = list(cluster.csta_servers(topology)) if cstas is None else list(cstas)
    children = Children(cluster.topology_path(), cluster.run_dir / "data", cluster.run_dir / "logs")
    wanted = set(broker_programs(topology)) | {lim_program(n) for n in lims} | {csta_program(n) for n in cstas}
    started = time.monotonic()
    try:
        for name in children.programs:  # in start order: brokers, LIMs, CSTA servers
            if name in wanted:
                children.start(name)
        wait_until_up(cluster, topology, timeout or default_timeout(topology), lims=lims, cstas=cstas, view=False)
    except BaseException:
        children.stop_all()
        raise
    return RunningExchange(cluster, time.monotonic() - started, children)


@contextmanager
def running_exchange(topology: Path | Callable[[Path], Path] | None = None, run_dir: Path | None = None, *,
                     prefix: str = "mxone-", timeout: float | None = None, launcher: Launcher | None = None,
                     shutdown_timeout: float = 30.0, supervised: bool = True, lims: list[int] | None = None,
                     cstas: list[int] | None = None, free_ports: bool = False,
                     log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
                     ) -> Iterator[RunningExchange]:
    """Start an exchange for the length of a `with` block. `topology` is a file (default: the
    built-in one), or a function that writes one into the run directory and returns its path;
    `free_ports`: a copy of it with the broker's and CSTA servers' ports moved to free ones (tests,
    tools beside a running exchange). The run directory is a temporary one unless given: it is
    removed after a clean run, and its logs are kept (and said) otherwise."""
    made_dir = run_dir is None
    run_dir = Path(tempfile.mkdtemp(prefix=prefix)) if made_dir else Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    topology_file = topology(run_dir) if callable(topology) else topology
    if free_ports:
        topology_file = topology_on_free_ports(topology_file or default_topology_path(), run_dir / "exchange.yaml")
    cluster = Cluster(run_dir)
    running: RunningExchange | None = None
    ok = False
    try:
        running = start_exchange(topology_file, run_dir, timeout=timeout, launcher=launcher, log=log,
                                 supervised=supervised, lims=lims, cstas=cstas)
        yield running
        ok = True
    finally:
        try:
            if running is not None:
                running.stop(timeout=shutdown_timeout)
            elif cluster.supervisord_pid() is not None:  # a launcher that failed half way
                cluster.shutdown(timeout=shutdown_timeout)
        except ClusterError as exc:
            log(f"stopping the exchange: {exc}")
        if made_dir and ok:
            shutil.rmtree(run_dir, ignore_errors=True)
        elif not ok:
            log(f"logs kept in {run_dir / 'logs'}")
