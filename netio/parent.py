"""A process started by supervisord ends with it: if supervisord itself is killed (SIGKILL, an OOM
kill), its programs would otherwise run on as orphans, holding the exchange's ports and talking to
clients with nobody to restart or stop them. On Linux the kernel sends us SIGTERM when the parent
dies (prctl PR_SET_PDEATHSIG), and the process stops the way `mxone down` stops it. Elsewhere, or
when that fails, `mxone status`, `up` and `down` find the orphans (cluster/control.py)."""
from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
SUPERVISED_ENV = "SUPERVISOR_ENABLED"  # supervisord sets it in every program's environment


def die_with_supervisor() -> str | None:
    """Ask for SIGTERM when supervisord dies. Returns why the process must stop at once (its
    supervisord is already gone), else None. A plain child process (tests, tools) is left alone:
    its parent stops it, and the signal would follow the parent's thread, not its process."""
    if os.environ.get(SUPERVISED_ENV) != "1":
        return None
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return None  # refused: the run directory's orphan check is the fallback
    except (OSError, AttributeError):
        return None  # no prctl (not Linux)
    # supervisord may have died between its fork and the prctl: then we were reparented already.
    if not _is_supervisord(parent):
        return f"supervisord is gone (the parent, pid {parent}, is not supervisord)"
    return None


def _is_supervisord(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"supervisord" in f.read()
    except OSError:
        return pid != 1  # no /proc to ask: only a parent of pid 1 says we were reparented
