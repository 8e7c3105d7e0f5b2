"""`mxone chaos` end to end: a throwaway supervisord exchange under office traffic, a LIM, a CSTA
server and the broker each SIGKILLed once, and the report's invariants."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_chaos_report_invariants(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "topology.cli", "chaos", "--duration", "15", "--kills", "3",
                           "--seed", "5", "--json", "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=240)
    report = json.loads(proc.stdout)
    # Exit status 1 exactly when a must-be-zero figure is not zero.
    nonzero = {k: v for k, v in {"events_lost": report["events_lost"], "calls_stalled": report["calls_stalled"],
                                 "settings_lost": report["settings_lost"]}.items() if v}
    assert report["must_be_zero_not_zero"].keys() >= nonzero.keys()
    assert proc.returncode == (1 if report["must_be_zero_not_zero"] else 0), proc.stderr
    # One kill of each kind, each recovered: the killed process back as a new incarnation.
    assert sorted(k["kind"] for k in report["kills"]) == ["broker", "csta", "lim"]
    assert {k["program"] for k in report["kills"]} & {"broker"} == {"broker"}
    for kill in report["kills"]:
        assert kill["error"] is None and 0 < kill["recovered_s"] < 30, kill
    # Persistent settings survive every kill.
    assert report["settings_checked"] > 0 and report["settings_lost"] == 0, report["settings_lost_detail"]
    # Every call is accounted for, and calls went through.
    assert report["calls_attempted"] == (report["calls_completed"] + report["calls_released_by_failure"]
                                         + report["calls_failed_otherwise"] + report["calls_unanswered"])
    assert report["calls_completed"] > 0 and report["monitored_call_sides_checked"] > 0
    # Killing a LIM or a CSTA server loses no event of a surviving device: any loss (or a call that
    # waited for an event in vain) overlapped the broker's outage (no event replay yet).
    assert report["events_lost_outside_broker_outages"] == 0, report["events_lost_detail"]
    assert report["calls_stalled_outside_broker_outages"] == 0, report["calls_stalled_detail"]
    assert report["events_duplicated"] == 0
    # The exchange was stopped; its logs have no traceback.
    from topology.cluster import Cluster
    assert Cluster(run_dir).supervisord_pid() is None
    for log in (run_dir / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name} crashed"
