"""What the measuring tools share (bench, scale, chaos): the events each side of a plain call
expects at its CSTA monitor, a CSTA event's call ID, percentiles, and the CPU and memory of the
cluster's processes read from /proc."""
from __future__ import annotations

import os

# The sequences of tests/integration/test_csta_server.py: a caller who dials, is answered and hangs up.
CALLER_EVENTS = ("ServiceInitiated", "Originated", "Delivered", "Established", "ConnectionCleared",
                 "ConnectionCleared")
CALLEE_EVENTS = ("Delivered", "Established", "ConnectionCleared", "ConnectionCleared")


def kind_of(name: str) -> str:
    return "broker" if name == "broker" else name.split("-")[0]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def process_sample(cluster) -> dict[str, dict[int, float]]:
    """utime+stime per process, by kind; "driver" is this process (its threads and CSTA clients),
    which competes for the same cores."""
    cpu: dict[str, dict[int, float]] = {"driver": {os.getpid(): cpu_seconds(os.getpid())}}
    for p in cluster.processes():
        if p["pid"]:
            try:
                cpu.setdefault(kind_of(p["name"]), {})[p["pid"]] = cpu_seconds(p["pid"])
            except OSError:
                pass
    return cpu


def cpu_used(after: dict[str, dict[int, float]], before: dict[str, dict[int, float]], kind: str) -> float:
    """CPU seconds a kind's processes used between two samples (a process new since `before`
    counts from zero: it was restarted meanwhile, which the bench does not do)."""
    return sum(v - before.get(kind, {}).get(pid, v) for pid, v in after.get(kind, {}).items())


def call_id_of(event) -> str | None:
    found = next(event.iter("{*}callID"), None)  # the first in document order, whatever the namespace
    return (found.text or "").strip() if found is not None else None


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def proc_stats(pid: int) -> dict[str, float]:
    """A process's resident memory (MB), open file descriptors and threads, from /proc (OSError
    when it is gone)."""
    rss = threads = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = float(line.split()[1])
    return {"rss_mb": round(rss, 3), "fds": float(len(os.listdir(f"/proc/{pid}/fd"))), "threads": threads}
