"""`mxone traffic --route-point 7000` against a real exchange (under supervisord): the call-centre
profile's external callers dial the route point (on LIM 2) instead of the ACD group. Without a
routeing application every call goes on to the route point's default, ACD group 5000; with
docs/examples/callcentre.py registered on LIM 1's CSTA server, the application routes them (public
callers to the agents on LIM 2 while one is idle). Either way no call is lost: each one the tool
placed waited at 7000, was answered or abandoned, and ended, as an independent bus client of
every call topic sees it."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.exchange import running_exchange
from tests.integration.test_docs_example import Lines
from tests.integration.test_traffic import names, traffic_with_observer

ROOT = Path(__file__).resolve().parents[2]
AGENTS = {"1005", "1006", "1007", "2005", "2006", "2007"}
ARGS = ["--profile", "callcentre", "--route-point", "7000", "--calls", "10", "--rate", "2", "--talk-time", "fixed:1",
        "--ring-time", "uniform:0.5-1", "--wrapup", "fixed:0.5", "--abandon-share", "0.2", "--seed", "11"]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(run_dir=tmp_path_factory.mktemp("mxone"), free_ports=True) as exchange:
        yield exchange


def check_no_call_lost(summary: dict, calls: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Every call of ours (an external caller's) went through 7000, ended, and is counted."""
    ours = {cid: ev for cid, ev in calls.items() if ev[0]["calling"].startswith("07")}
    assert summary["route_point"] == "7000"
    assert summary["attempted"] == 10 == len(ours)
    for events in ours.values():
        assert any(e["event"] == "Queued" and e.get("queued") == "7000" for e in events), names(events)
        assert names(events)[-1] == "CallCleared"
    answered = [cid for cid, ev in ours.items()
                if any(e["event"] == "Established" and e["answering"] in AGENTS for e in ev)]
    assert summary["answered"] == summary["completed"] == len(answered) > 0
    assert summary["abandoned"] == len(ours) - len(answered)
    assert summary["failed"] == 0 and summary["exchange_calls_left"] == 0
    return ours


def routed_to(events: list[dict]) -> list[str]:
    return [e["diverted_to"] for e in events if e["event"] == "Diverted" and e["device"] == "7000"]


def test_without_an_application_the_calls_go_to_the_default_group(running):
    summary, calls = traffic_with_observer(running, *ARGS)
    ours = check_no_call_lost(summary, calls)
    # Every call that reached an agent went through the default: 7000 -> 5000.
    assert {tuple(routed_to(ev)) for ev in ours.values() if routed_to(ev)} == {("5000",)}
    assert not running.calls()


def test_with_the_example_application_routeing_the_calls(running):
    lim = running.topology.lim(1)
    app = subprocess.Popen([sys.executable, str(ROOT / "docs" / "examples" / "callcentre.py"),
                            "--host", lim.address, "--port", str(lim.csta.port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        out = Lines(app)
        first = out.next(timeout=30)
        assert first is not None and first.startswith("Routing 7000"), (first, app.stderr.read())
        summary, calls = traffic_with_observer(running, *ARGS)
        ours = check_no_call_lost(summary, calls)
        destinations = [d for ev in ours.values() for d in routed_to(ev)]
        # Public callers go to LIM 2's agents while one is idle, else to the group.
        assert set(destinations) <= {"2005", "2006", "2007", "5000"}
        assert set(destinations) & {"2005", "2006", "2007"}
        app.send_signal(signal.SIGINT)
        assert app.wait(timeout=15) == 0
        lines = out.rest(timeout=10)
        pops = [line for line in lines if line.startswith("SCREEN POP")]
        assert len(pops) >= summary["answered"]
        assert all("dialled 7000" in pop for pop in pops)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert not running.calls()
