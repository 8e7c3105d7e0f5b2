"""An exchange's programs as plain child processes, without supervisord: nothing restarts a
process that dies, so a test kills one (kill -9) and starts it again itself, when it chooses.

The programs and their command lines are those of supervisord's config (cluster.control.programs);
each one's output goes to LOG_DIR/NAME.log, as under supervisord.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cluster.control import Program, programs
from topology.hosts import BROKER_PROGRAM, csta_program, lim_program
from topology.loader import load_topology


class Children:
    """The exchange of `topology_file` as child processes of this one, started one by one."""

    def __init__(self, topology_file: Path, data_dir: Path, log_dir: Path):
        self.topology_file = Path(topology_file)
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.programs: dict[str, Program] = {
            p.name: p for p in programs(load_topology(self.topology_file), self.topology_file, self.data_dir)}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        """Start `python -m ARGS` as NAME; with no ARGS, the exchange's program of that name."""
        if not args:
            args = self.programs[name].args
        log = open(self.log_dir / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()  # the child has its own copy
        self.procs[name] = proc
        return proc

    def start_broker(self) -> None:
        self.start(BROKER_PROGRAM)

    def start_lim(self, n: int) -> None:
        self.start(lim_program(n))

    def start_csta(self, n: int) -> None:
        self.start(csta_program(n))

    def tracebacks(self) -> list[str]:
        """The children whose log shows a traceback."""
        return [name for name in self.procs
                if "Traceback" in (self.log_dir / f"{name}.log").read_text(errors="replace")]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
