"""`mxone bench --quick --json` end to end: a generated exchange under supervisord, calls across
LIMs, CSTA clients on every LIM. Behaviour only: no timing thresholds (those are for docs/benchmarks.md)."""
from __future__ import annotations

import json
import subprocess
import sys

KEYS = ("lims", "extensions_per_lim", "calls", "calls_completed", "calls_per_second", "events_per_second",
        "event_latency_p50_ms", "event_latency_p99_ms", "event_latency_max_ms", "lost_events",
        "duplicated_events", "cpu_seconds_per_call", "memory_mb", "baseline_bus_round_trip_p50_ms",
        "baseline_bus_round_trip_p99_ms")


def test_quick_bench_reports_every_call_and_every_event(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cli.main", "bench", "--quick", "--json",
                           "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # one JSON object, nothing else on standard output
    for key in KEYS:
        assert key in result, key
    assert (result["lims"], result["extensions_per_lim"], result["calls"]) == (2, 20, 100)
    assert result["calls_completed"] == result["calls"]
    assert result["call_errors"] == []
    assert result["lost_events"] == 0
    assert result["duplicated_events"] == 0
    assert result["unexpected_events"] == 0
    assert result["events_received"] == result["events_expected"] == 100 * 10
    assert result["calls_per_second"] > 0 and result["events_per_second"] > 0
    for key in ("event_latency_p50_ms", "event_latency_p99_ms", "event_latency_max_ms",
                "baseline_bus_round_trip_p50_ms", "baseline_bus_round_trip_p99_ms"):
        assert result[key] > 0, key
    assert result["event_latency_p50_ms"] <= result["event_latency_p99_ms"] <= result["event_latency_max_ms"]
    assert set(result["memory_mb"]) == {"broker", "lim", "csta"}
    # the driver (this bench process) is on the same cores: its CPU is reported too
    assert set(result["cpu_seconds_per_call"]) == set(result["cpu_busy_seconds_per_call"]) == {"broker", "lim", "csta", "driver"}
    assert all(result["cpu_busy_seconds_per_call"][k] <= result["cpu_seconds_per_call"][k] for k in result["memory_mb"])
    assert all(v > 0 for v in result["memory_mb"].values())
    # The exchange was stopped: no supervisord left behind in the run directory.
    from cluster.control import Cluster
    assert Cluster(tmp_path / "run").supervisord_pid() is None
    for log in (tmp_path / "run" / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name} crashed"
