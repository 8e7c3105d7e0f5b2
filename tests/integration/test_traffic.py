"""`mxone traffic` against a real exchange (broker, LIMs, CSTA servers under supervisord): a short
call-centre run and a short office run, with the summary checked against what the exchange
itself published (every call's events, seen by an independent bus client on every call topic)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from broker.client import BusClient
from tests.procs import write_topology
from cluster.exchange import running_exchange
from tools.traffic import make_options, plan_calls


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(run_dir=tmp_path_factory.mktemp("mxone"), free_ports=True) as exchange:
        yield exchange


def traffic_with_observer(running, *args: str) -> tuple[dict, dict[str, list[dict]]]:
    """Run `mxone traffic ARGS --json` while a bus client records every call's events by call ID."""
    calls: dict[str, list[dict]] = defaultdict(list)
    with BusClient(running.topology.broker, name="observer") as observer:
        observer.subscribe("c:")  # every call's topic: each event of each call, once
        observer.sync()
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "traffic", *args, "--json",
                                 "--run-dir", str(running.run_dir)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            for topic, env in observer.events(timeout=0.1):
                calls[env.body["call_id"]].append(env.body)
        for topic, env in observer.events(timeout=0.3):  # the last events, if any
            calls[env.body["call_id"]].append(env.body)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return json.loads(out), calls


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def test_callcentre_run_matches_the_exchange(running):
    args = ["--profile", "callcentre", "--calls", "14", "--rate", "2", "--talk-time", "fixed:1",
            "--ring-time", "uniform:0.5-1", "--wrapup", "fixed:0.5", "--abandon-share", "0.3", "--seed", "7"]
    summary, calls = traffic_with_observer(running, *args)
    agents = {"1005", "1006", "1007", "2005", "2006", "2007"}
    ours = {cid: ev for cid, ev in calls.items() if ev[0]["calling"].startswith("07")}  # external callers
    assert summary["attempted"] == 14 == len(ours)
    answered = [cid for cid, ev in ours.items()
                if any(e["event"] == "Established" and e["answering"] in agents for e in ev)]
    assert summary["answered"] == summary["completed"] == len(answered)
    assert all(names(ev)[-1] == "CallCleared" for ev in ours.values())  # every call ended
    assert summary["abandoned"] == len(ours) - len(answered)
    options = make_options("callcentre", calls=14, rate=2, talk="fixed:1", ring="uniform:0.5-1",
                           wrapup="fixed:0.5", abandon_share=0.3, seed=7)
    impatient = sum(1 for p in list(plan_calls(options))[:14] if p.abandon_after_s is not None)
    assert 0 < impatient <= summary["abandoned"]
    assert summary["failed"] == 0 and summary["exchange_calls_left"] == 0
    assert not running.calls()
    # The agents it logged on are logged off again.
    for agent in agents:
        assert running.phone(agent).state()["features"]["agent_state"] == "agentNull"


def test_office_run_matches_the_exchange(running):
    args = ["--profile", "office", "--calls", "20", "--rate", "4", "--talk-time", "fixed:1",
            "--ring-time", "fixed:0.5", "--transfer-share", "0.3", "--cross-lim", "0.5", "--seed", "3"]
    summary, calls = traffic_with_observer(running, *args)
    started = {cid: ev for cid, ev in calls.items()
               if ev[0]["event"] == "ServiceInitiated" and ev[0]["cause"] == "newCall"}
    assert summary["attempted"] == 20 == len(started) == summary["answered"] == summary["completed"]
    transfers = [e for ev in calls.values() for e in ev if e["event"] == "Transferred"]
    options = make_options("office", calls=20, rate=4, talk="fixed:1", ring="fixed:0.5", transfer_share=0.3,
                           cross_lim=0.5, seed=3)
    planned = sum(p.transfer for p in list(plan_calls(options))[:20])
    assert summary["transferred"] == len(transfers) == planned > 0
    lim_of = {e.number: e.lim for e in running.topology.extensions}
    delivered = [e for ev in started.values() for e in ev if e["event"] == "Delivered"]
    assert {lim_of[e["calling"]] != lim_of[e["alerting"]] for e in delivered} == {True, False}
    assert summary["failed"] == 0 and summary["exchange_calls_left"] == 0
    assert not running.calls()


def test_missing_trunk_is_one_line_before_anything_starts(tmp_path):
    topo = write_topology(tmp_path / "no-trunk.yaml", edit=lambda d: d.pop("trunks"))
    proc = subprocess.run([sys.executable, "-m", "cli.main", "traffic", "--topology", str(topo),
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith("mxone: traffic: the call-centre profile needs a trunk")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "run").exists()
