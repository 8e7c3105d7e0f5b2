"""The cluster on this machine: a run directory, a supervisord config rendered from the topology,
and control of the running supervisord through its XML-RPC interface.

Run directory layout:
    topology.yaml      a copy of the topology given to `up` (yours to read; editing it changes
                       nothing until the next `up`)
    topology.running.yaml  what every process loads: frozen at `up`, so a program supervisord
                       restarts keeps the topology the others run; `mxone status` says when
                       topology.yaml no longer matches it
    supervisord.conf   rendered from it
    supervisor.sock    supervisord's XML-RPC endpoint (a unix socket: no port to collide; in the
                       temporary folder instead when the run directory's path is too long for one)
    supervisord.pid
    logs/              one log per process, plus supervisord's own
    data/              each LIM's persistent store
    host               with `mxone up --host NAME`: NAME (this run directory runs that host's share)
    live_view.token    when the live view listens beyond loopback: the token its /api/ asks for (0600)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from csta_front.settings import CstaStore
from liveview.client import TOKEN_FILE, needs_token, read_token, write_token
from topology.hosts import (
    BACKUP_BROKER_PROGRAM,
    BROKER_PROGRAM,
    VIEW_PROGRAM,
    addresses_on,
    check_host,
    csta_program,
    lim_program,
    programs_on,
)
from topology.loader import load_topology
from topology.model import Topology

DEFAULT_RUN_DIR = "run"
TOPOLOGY_FILE = "topology.yaml"
RUNNING_TOPOLOGY = "topology.running.yaml"  # frozen at `up`: what the processes load

# Every log supervisord writes (each program's, with stderr folded into stdout, and its own) is
# rotated at this size with this many old files kept: a week of soak fills no disk (issue 18).
LOG_MAXBYTES = 20 * 1024 * 1024
LOG_BACKUPS = 2


class ClusterError(Exception):
    """A one-line problem with the cluster, for the CLI to print."""


def default_run_dir() -> Path:
    return Path(os.environ.get("MXONE_RUN_DIR", DEFAULT_RUN_DIR))


def broker_programs(topology: Topology) -> list[str]:
    return [BROKER_PROGRAM] + ([BACKUP_BROKER_PROGRAM] if topology.broker.backup is not None else [])


def program_names(topology: Topology) -> list[str]:
    return [p.name for p in programs(topology, Path("topology.yaml"), Path("data"))]


def socket_path(run_dir: Path) -> Path:
    """Where supervisord's unix socket lives. A unix socket path is limited to about 100 bytes,
    which a deep run directory (a test's temporary folder) exceeds: then a short, stable name in
    the temporary folder, derived from the run directory."""
    path = Path(run_dir).resolve() / "supervisor.sock"
    if len(str(path).encode()) < 100:
        return path
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mxone-{digest}.sock"


@dataclass(frozen=True)
class Program:
    """One process of the exchange: its name, what follows `python -m`, its start order."""
    name: str
    args: tuple[str, ...]
    priority: int          # supervisord starts lower numbers first
    may_exit: bool = False  # exit 0 is no failure (a CSTA server that is not initiated)


def programs(topology: Topology, topology_file: Path, data_dir: Path) -> list[Program]:
    """Every program of the exchange, in start order: the one list supervisord's config and the
    plain child processes of cluster/children.py are both made from."""
    topo = str(topology_file)
    found = [Program(BROKER_PROGRAM, ("broker", "--topology", topo), 10)]
    if topology.broker.backup is not None:
        found.append(Program(BACKUP_BROKER_PROGRAM, ("broker", "--topology", topo, "--backup"), 10))
    for lim in topology.lims:
        found.append(Program(lim_program(lim.number), ("lim", "--topology", topo, "--lim", str(lim.number),
                                                       "--data-dir", str(data_dir)), 20))
    for lim in topology.lims:  # every LIM can have a CSTA server: `csta -i` starts it
        found.append(Program(csta_program(lim.number), ("csta_front", "--topology", topo, "--lim", str(lim.number),
                                                        "--data-dir", str(data_dir)), 30, may_exit=True))
    if topology.live_view:  # the web page of liveview/
        found.append(Program(VIEW_PROGRAM, ("liveview", "--topology", topo,
                                            "--token-file", str(Path(topology_file).parent / TOKEN_FILE)), 40))
    return found


def render_supervisord_conf(topology: Topology, run_dir: Path, python: str = sys.executable,
                            host: str | None = None) -> str:
    """The supervisord config for every program, or with `host` only for those placed on it."""
    placed = set(programs_on(topology, host))
    run = run_dir.resolve()
    sock = socket_path(run_dir)
    topo = run / RUNNING_TOPOLOGY

    def program(name: str, args: str, priority: int, may_exit: bool = False) -> str:
        if name not in placed:
            return ""  # runs on another host
        # A CSTA server that is not initiated exits 0 at once: that is no failure to restart.
        restart = "autorestart=unexpected\nexitcodes=0\nstartsecs=0\n" if may_exit else "autorestart=true\nstartsecs=1\n"
        return (f"[program:{name}]\n"
                f"command={python} -m {args}\n"
                f"directory={run}\n"
                f"autostart=true\n{restart}startretries=10\n"
                "stopsignal=TERM\nstopwaitsecs=5\n"
                f"priority={priority}\n"
                "redirect_stderr=true\n"
                f"stdout_logfile={run}/logs/{name}.log\n"
                f"stdout_logfile_maxbytes={LOG_MAXBYTES}\nstdout_logfile_backups={LOG_BACKUPS}\n"
                "environment=PYTHONUNBUFFERED=\"1\"\n")

    sections = [
        f"[unix_http_server]\nfile={sock}\nchmod=0700\n",
        (f"[supervisord]\nlogfile={run}/logs/supervisord.log\npidfile={run}/supervisord.pid\n"
         f"logfile_maxbytes={LOG_MAXBYTES}\nlogfile_backups={LOG_BACKUPS}\n"
         f"childlogdir={run}/logs\ndirectory={run}\nnodaemon=true\nloglevel=info\n"),
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        f"[supervisorctl]\nserverurl=unix://{sock}\n",
    ]
    sections += [program(p.name, " ".join(p.args), p.priority, p.may_exit) for p in programs(topology, topo, run / "data")]
    return "\n".join(sections)


def check_ports_free(topology: Topology, csta: dict[int, Any] | None = None, host: str | None = None) -> None:
    """Fail before starting anything if a port the broker or a CSTA server needs is taken."""
    wanted = []
    pair = topology.broker.backup is not None
    for ep in topology.broker.endpoints():
        ports = (ep.router_port, ep.pub_port, ep.sub_port) + ((ep.peer,) if pair else ())
        wanted += [("broker port", ep.address, port) for port in ports]
    for number, server in (csta or {}).items():
        address = topology.lim(number).address
        wanted += [(f"LIM {number}'s CSTA port", address, port) for port in (server.port, server.tls_port) if port]
    if topology.live_view:
        wanted.append(("live view port", topology.live_view.address, topology.live_view.port))
    if host is not None:  # only the programs on this host: other hosts' addresses are not ours
        wanted = [w for w in wanted if w[1] in addresses_on(topology, host)]
    for what, address, port in wanted:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
            # Judged as the servers bind it: netio's listeners and libzmq's both set SO_REUSEADDR,
            # so a port whose old connections sit in TIME_WAIT is free to them, and a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                raise ClusterError(f"{what} {address}:{port} is not free ({exc.strerror})") from None


class Cluster:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.sock = socket_path(self.run_dir)
        self.conf = self.run_dir / "supervisord.conf"
        self.pidfile = self.run_dir / "supervisord.pid"

    # -- files -----------------------------------------------------------------------------------
    def topology_path(self) -> Path:
        """The topology the processes run: the copy frozen at `up` (topology.yaml in a run
        directory made before it existed)."""
        running = self.run_dir / RUNNING_TOPOLOGY
        return running if running.exists() else self.run_dir / TOPOLOGY_FILE

    def topology(self) -> Topology:
        path = self.topology_path()
        if not path.exists():
            raise ClusterError(f"no exchange in {self.run_dir} (no topology.yaml); start one with `mxone up`")
        return load_topology(path)

    def topology_changed(self) -> str | None:
        """Why topology.yaml no longer matches what the processes run (edited, replaced or removed
        since `mxone up`), or None when it matches."""
        running, edited = self.run_dir / RUNNING_TOPOLOGY, self.run_dir / TOPOLOGY_FILE
        try:
            frozen = hashlib.sha256(running.read_bytes()).hexdigest()
        except OSError:
            return None  # a run directory from before the frozen copy: nothing to compare
        try:
            now = hashlib.sha256(edited.read_bytes()).hexdigest()
        except OSError as exc:
            return (f"{edited} cannot be read ({exc.strerror}); the processes run {running.name}, "
                    "frozen at `mxone up`")
        if now == frozen:
            return None
        return (f"{edited} differs from the topology the processes run ({running.name}, frozen at "
                f"`mxone up`: sha256 {frozen[:12]}, the file now {now[:12]}); it takes effect at the next "
                "`mxone down` and `mxone up`")

    def prepare(self, topology_file: Path, host: str | None = None) -> Topology:
        """Validate, copy the topology in and render supervisord.conf (with `host`: that host's
        share only; topology.hosts.HostError for a host the topology does not name)."""
        topology = load_topology(topology_file)  # validate before touching the run directory
        host = check_host(topology, host) if host is not None else None
        if self.is_running():
            changed = self.topology_changed()
            raise ClusterError(f"an exchange is already running in {self.run_dir}; stop it with `mxone down`"
                               + (f" (note: {changed})" if changed else ""))
        check_ports_free(topology, self.csta_servers(topology), host)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "data").mkdir(parents=True, exist_ok=True)
        target = self.run_dir / TOPOLOGY_FILE
        if Path(topology_file).resolve() != target.resolve():
            shutil.copyfile(topology_file, target)
        running = self.run_dir / RUNNING_TOPOLOGY
        shutil.copyfile(target, running)  # the processes load this copy, never the editable one
        loaded = load_topology(running)
        self.csta_store(loaded).close()  # the topology's CSTA settings, where none are stored yet
        self.conf.write_text(render_supervisord_conf(loaded, self.run_dir, host=host))
        token_file = self.run_dir / TOKEN_FILE
        if loaded.live_view is not None and needs_token(loaded.live_view.address):
            write_token(token_file)  # a new one at every `up`: an old one leaked stops working
        else:
            token_file.unlink(missing_ok=True)
        if host is not None:
            (self.run_dir / "host").write_text(host + "\n")
        else:
            (self.run_dir / "host").unlink(missing_ok=True)
        return loaded

    def live_view_token(self) -> str | None:
        """The token the live view asks for (None: it listens on loopback and asks for none)."""
        return read_token(self.run_dir / TOKEN_FILE)

    def host(self) -> str | None:
        """The host whose share this run directory runs (`mxone up --host`), None for all of it."""
        try:
            return (self.run_dir / "host").read_text().strip() or None
        except OSError:
            return None

    def csta_store(self, topology: Topology | None = None):
        return CstaStore.for_run_dir(self.run_dir, topology or self.topology())

    def csta_servers(self, topology: Topology) -> dict[int, Any]:
        """The CSTA server settings in force, per LIM (only initiated ones)."""
        store = self.csta_store(topology)
        try:
            return {lim.number: s for lim in topology.lims if (s := store.server(lim.number)) is not None}
        finally:
            store.close()

    # -- supervisord -------------------------------------------------------------------------------
    def supervisord_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None  # a killed supervisord may linger as a zombie

    def is_running(self) -> bool:
        if self.supervisord_pid() is None or not self.sock.exists():
            return False
        try:
            self.rpc().supervisor.getState()
            return True
        except (OSError, xmlrpc.client.Error):
            return False

    def start_supervisord(self, detach: bool) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf.resolve())]
        # Its own log is logs/supervisord.log; on the terminal only mxone speaks.
        return subprocess.Popen(cmd, start_new_session=detach, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.sock.resolve()}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def processes(self) -> list[dict[str, Any]]:
        try:
            return self.rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error) as exc:
            raise ClusterError(f"no exchange running in {self.run_dir} ({exc})") from None

    def signal(self, name: str, sig: str) -> None:
        try:
            self.rpc().supervisor.signalProcess(name, sig)
        except xmlrpc.client.Fault as fault:
            if fault.faultString.startswith("BAD_NAME"):
                names = ", ".join(p["name"] for p in self.processes())
                raise ClusterError(f"cannot signal {name}: no such program (the programs are {names})") from None
            raise ClusterError(f"cannot signal {name}: {fault.faultString}") from None
        except OSError as exc:
            raise ClusterError(f"no exchange running in {self.run_dir} ({exc})") from None

    def shutdown(self, timeout: float = 30.0) -> None:
        pid = self.supervisord_pid()
        if pid is None:
            raise ClusterError(f"no exchange running in {self.run_dir}")
        try:
            try:
                self._stop_in_waves(timeout)
            except ClusterError:
                pass  # what is still running, supervisord's shutdown stops
            self.rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, 15)  # XML-RPC is gone but the process is not: ask it the plain way
        wait_for(lambda: self.supervisord_pid() is None, timeout, f"supervisord (pid {pid}) to stop")


    def _stop_in_waves(self, timeout: float) -> None:
        """Stop every program at once, the broker after the rest, and wait. supervisord's own shutdown
        takes one program per turn of its loop (up to a second each when idle) and waits for it: over
        two minutes for the 129 programs of 64 LIMs. With nothing left running, it exits at once."""
        rpc = self.rpc()
        for wave in (lambda name: name != "broker", lambda name: name == "broker"):
            running = [p["name"] for p in rpc.supervisor.getAllProcessInfo()
                       if wave(p["name"]) and p["statename"] in ("STARTING", "RUNNING", "BACKOFF")]
            calls = xmlrpc.client.MultiCall(rpc)
            for name in running:
                calls.supervisor.stopProcess(name, False)  # signal only: do not wait for this one
            calls()  # one round trip; results (NOT_RUNNING for a program that stopped meanwhile) unread
            wanted = set(running)
            wait_for(lambda: not any(p["name"] in wanted and p["statename"] in ("STARTING", "RUNNING", "STOPPING")
                                     for p in rpc.supervisor.getAllProcessInfo()),
                     timeout, f"{len(wanted)} programs to stop")


    # -- orphans -----------------------------------------------------------------------------------
    def orphans(self) -> list[tuple[str, int]]:
        """(program, pid) of each process of this run directory that no live supervisord runs: what
        a killed supervisord leaves behind where netio/parent.py could not make its programs die
        with it (not Linux, or a process stopped with SIGSTOP when its SIGTERM came)."""
        try:
            topology = self.topology()
        except ClusterError:
            return []
        run = self.run_dir.resolve()
        wanted = {p.args: p.name for name in (RUNNING_TOPOLOGY, TOPOLOGY_FILE)  # plain children may use either
                  for p in programs(topology, run / name, run / "data")}
        supervisord = self.supervisord_pid()
        found = []
        for pid, ppid, argv in _processes():
            if ppid == supervisord and supervisord is not None:
                continue  # a program of the live supervisord
            if "-m" in argv and (name := wanted.get(tuple(argv[argv.index("-m") + 1:]))) is not None:
                found.append((name, pid))
        return sorted(found)

    def stop_orphans(self, timeout: float = 10.0) -> list[tuple[str, int]]:
        """Stop every orphan (SIGTERM, with SIGCONT for a stopped one; SIGKILL for what is left
        after `timeout`) and return what there was."""
        found = self.orphans()
        for _, pid in found:
            for sig in (signal.SIGTERM, signal.SIGCONT):
                _signal(pid, sig)
        pids = {pid for _, pid in found}
        try:
            wait_for(lambda: not any(_alive(pid) for pid in pids), timeout, "orphans to stop")
        except ClusterError:
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            wait_for(lambda: not any(_alive(pid) for pid in pids), timeout, "orphans to die of SIGKILL")
        return found


def describe_orphans(found: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name} (pid {pid})" for name, pid in found)


def _processes():
    """(pid, parent pid, argv) of every live process of ours that /proc shows (none without /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if fields[0] != b"Z":
            yield int(entry), int(fields[1]), argv


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie (dead, not yet reaped by whoever adopted it) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[0] != b"Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass  # gone meanwhile


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; raise ClusterError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
