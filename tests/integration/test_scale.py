"""`mxone scale`: a generated exchange of some size starts with every LIM registered; one front end
holds 10,000 monitors, refuses the next with the right CSTA error and still delivers events; the
curve runs on 1 and 2 LIMs. Behaviour only: the timings are for docs/benchmarks.md."""
from __future__ import annotations

import json
import subprocess
import sys

from broker.client import BusClient
from lim.phone import Exchange
from cluster.control import Cluster
from tools.scale import exchange


def scale(*args: str, timeout: float = 240) -> dict:
    proc = subprocess.run([sys.executable, "-m", "cli.main", "scale", *args, "--json"],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # one JSON object, nothing else on standard output


def test_a_generated_exchange_of_8_lims_x_200_extensions_starts_with_every_lim_registered(tmp_path):
    run_dir = tmp_path / "run"
    with exchange(8, 200, run_dir=run_dir) as (cluster, topology, startup):
        assert (startup["lims"], startup["extensions"], startup["csta_servers"]) == (8, 1600, 8)
        with BusClient(topology.broker) as client:
            members = client.request("broker", "status")["members"]
            up = {(m["role"], m["lim"]) for m in members if m["state"] == "up"}
            assert {("lim", n) for n in range(1, 9)} <= up
            assert {("front", n) for n in range(1, 9)} <= up
            for n in range(1, 9):  # each LIM holds its own 200 devices
                assert client.request(f"lim-{n}", "lim.status")["devices"] == 200
        with Exchange(topology) as ex:  # the last extension is found on the last LIM
            last = topology.extensions_on(8)[-1].number
            assert ex.phone(last).state()["lim"] == 8
        assert set(startup["startup_cpu_s"]) >= {"broker", "lim", "csta", "supervisord"}
    assert Cluster(run_dir).supervisord_pid() is None  # stopped afterwards
    for log in (run_dir / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name} crashed"


def test_one_front_end_holds_10000_monitors_refuses_the_next_and_still_delivers_events(tmp_path):
    r = scale("monitors", "--devices", "10000", "--sessions", "10", "--sample-calls", "6",
              "--run-dir", str(tmp_path / "run"))
    assert (r["devices"], r["max_monitors"]) == (10000, 10000)
    assert (r["monitors_started"], r["monitor_start_errors"]) == (10000, {})
    assert r["server_monitored_devices"] == 10000  # as the server itself reports it
    assert r["server_sessions"] == 10
    assert r["one_more_monitor_start"] == "systemResourceAvailibility/overallMonitorLimitExceeded"
    assert r["sample_calls"] == 6 and len(r["sample_lims"]) >= 2  # callers and callees on several LIMs
    assert r["sample_call_errors"] == {}
    assert r["sample_events_received"] == r["sample_events_expected"] == 6 * 10
    assert (r["sample_events_lost"], r["sample_events_duplicated"], r["sample_events_at_other_monitors"]) == (0, 0, 0)
    for log in (tmp_path / "run" / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name} crashed"


def test_the_curve_runs_the_same_load_on_1_and_2_lims():
    r = scale("curve", "--sizes", "1,2", "--total-extensions", "40", "--calls", "30", "--rate", "50",
              "--idle-s", "0.5")
    assert (r["calls"], r["total_extensions"]) == (30, 40)
    assert [p["lims"] for p in r["points"]] == [1, 2]
    assert [p["extensions_per_lim"] for p in r["points"]] == [40, 20]
    for p in r["points"]:
        assert p["calls_completed"] == 30
        assert (p["lost_events"], p["duplicated_events"]) == (0, 0)
        assert set(p["cpu_ms_per_call"]) == {"broker", "lim", "csta", "driver"}
        assert p["cpu_ms_per_call_total"] >= p["cpu_ms_per_call_net_total"] >= 0
        assert p["startup_s"] > 0 and p["calls_per_second"] > 0


def test_bad_options_are_one_line_errors():
    for args, problem in ((["curve", "--sizes", "1,x"], "--sizes"), (["curve", "--sizes", "0"], "--sizes"),
                          (["curve", "--sizes", "64", "--total-extensions", "100"], "--total-extensions"),
                          (["monitors", "--devices", "0"], "--devices"), (["startup", "--lims", "0"], "--lims"),
                          (["startup", "--heartbeat-ms", "1"], "--heartbeat-ms")):
        proc = subprocess.run([sys.executable, "-m", "cli.main", "scale", *args],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("mxone: scale") and problem in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
