"""`mxone soak`: a short real run judged ok with its samples, and a real leaking process, sampled
through /proc the way the soak samples the exchange's programs, judged as a leak."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tools.measure import proc_stats
from tools.soak_verdict import from_csv, judge, verdict

LEAKER = """
import os, sys, time
held = []
print("ready", flush=True)
while True:
    if sys.argv[1] == "leak":
        held.append(bytearray(os.urandom(1)) * (1024 * 1024))  # a touched megabyte, kept
        held.append(open(os.devnull))                            # a file descriptor, never closed
    time.sleep(0.1)
"""


def sample_child(mode: str, seconds: float = 4.0, every: float = 0.25) -> list[dict]:
    proc = subprocess.Popen([sys.executable, "-c", LEAKER, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        samples, start = [], time.monotonic()
        while time.monotonic() - start < seconds:
            stats = proc_stats(proc.pid)
            samples.append({"t": time.monotonic() - start, **{f"proc:leaker:{k}": v for k, v in stats.items()}})
            time.sleep(every)
        return samples
    finally:
        proc.kill()
        proc.wait()


def test_a_real_process_that_leaks_memory_and_fds_fails_the_verdict():
    trends = {t.name: t for t in judge(sample_child("leak"), warmup_s=0.5)}
    assert trends["proc:leaker:rss_mb"].growing
    assert trends["proc:leaker:fds"].growing
    assert not trends["proc:leaker:threads"].growing
    result = verdict(list(trends.values()))
    assert not result["ok"] and any("proc:leaker:fds" in r for r in result["reasons"])


def test_a_real_process_that_holds_steady_passes():
    trends = judge(sample_child("steady"), warmup_s=0.5)
    assert trends and not any(t.growing for t in trends)
    assert verdict(trends)["ok"]


def test_proc_stats_of_this_process():
    stats = proc_stats(os.getpid())
    assert stats["rss_mb"] > 5 and stats["fds"] >= 3 and stats["threads"] >= 1


def test_a_two_minute_soak_is_judged_ok_and_samples_every_program(tmp_path):
    csv_file = tmp_path / "samples.csv"
    mxone = Path(sys.executable).with_name("mxone")
    done = subprocess.run([str(mxone), "soak", "--duration", "120", "--interval", "5", "--warmup", "30",
                           "--seed", "7", "--json", "--csv", str(csv_file)],
                          capture_output=True, text=True, timeout=400)
    report = json.loads(done.stdout)
    assert done.returncode == 0, (report["verdict"], done.stderr[-2000:])
    assert report["verdict"] == {"ok": True, "reasons": []}
    samples = from_csv(csv_file.read_text())
    assert 20 <= len(samples) == report["samples"] <= 26
    assert samples[0]["t"] < 1 and abs(samples[-1]["t"] - 120) < 5
    last = samples[-1]
    for program in ("broker", "lim-1", "lim-2", "csta-1", "csta-2", "supervisord"):
        assert last[f"proc:{program}:rss_mb"] > 5, program
        assert last[f"proc:{program}:fds"] >= 3 and last[f"proc:{program}:threads"] >= 1, program
    assert last["file:data/lim-1.db:bytes"] > 0 and last["log:all:bytes"] > 0
    assert last["latency:snapshot_device:ms"] > 0
    assert last["count:events:n"] > samples[5]["count:events:n"] > 0  # events flowed throughout
    assert report["events"]["monitored_call_sides_checked"] > 50 and report["events"]["events_lost"] == 0
    assert report["traffic"]["office"]["answered"] > 50 and report["traffic"]["callcentre"]["answered"] > 10
    csta = report["csta"]
    assert csta["churn_sessions"] >= 30 and csta["monitors_stopped"] > 0 and csta["left_without_stopping"] > 0
    assert csta["feature_changes"] >= 20 and csta["settings_lost"] == 0
    assert {"lim", "csta", "broker"} <= set(report["slopes_per_hour_by_kind"])
    assert not report["restarts"] and not report["logs_over_rotation_size"]
