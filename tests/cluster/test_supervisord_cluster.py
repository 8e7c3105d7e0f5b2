"""The default topology under supervisord: a cross-LIM call, LIM 2 killed with SIGKILL through
supervisord's XML-RPC interface, the broker declaring it dead, supervisord restarting it, and a new
call through it."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lim.phone import Exchange
from tests.procs import EventLog, mxone, wait_for

pytestmark = pytest.mark.cluster


def status(run_dir) -> dict:
    result = mxone("status", "--json", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_kill_a_lim_and_it_comes_back(cluster):
    run_dir = cluster.run_dir
    first = status(run_dir)
    assert [(l["number"], l["state"]) for l in first["lims"]] == [(1, "up"), (2, "up")]
    assert all(isinstance(l["pid"], int) and l["pid"] > 0 for l in first["lims"])
    assert first["calls"] == []
    assert [(c["lim"], c["sessions"], c["monitored_devices"]) for c in first["csta"]] == [(1, 0, []), (2, 0, [])]

    with Exchange.from_run_dir(run_dir) as ex:
        log = EventLog(ex.client, ["1000", "2000"])
        ex.phone("2005").logoff()  # persistent state that must survive the kill
        call_id = ex.phone("1000").dial("2000")["call_id"]
        ex.phone("2000").answer()
        log.wait("1000", ["ServiceInitiated", "Originated", "Delivered", "Established"])

        during = status(run_dir)
        assert during["calls"] == [{"call_id": call_id, "controller": 1, "connections": [
            {"device": "1000", "state": "connected", "lim": 1},
            {"device": "2000", "state": "connected", "lim": 2}]}]

        old_pid = during["lims"][1]["pid"]
        old_incarnation = during["lims"][1]["incarnation"]
        killed_at = time.monotonic()
        cluster.rpc().supervisor.signalProcess("lim-2", "KILL")

        # The broker declares LIM 2 dead from heartbeats (or, if supervisord is quicker, from the
        # new incarnation registering); the surviving party's call is released either way.
        events = log.wait("1000", ["ServiceInitiated", "Originated", "Delivered", "Established",
                                   "ConnectionCleared", "ConnectionCleared"], timeout=5)
        released_after = time.monotonic() - killed_at
        assert events[4]["dropped"] == "2000" and events[4]["cause"] == "networkNotObtainable"
        assert events[5]["dropped"] == "1000"
        assert released_after < 3.0
        wait_for(lambda: log.pump() or any(m["lim"] == 2 and m["state"] == "dead" and
                                           m["incarnation"] == old_incarnation for m in log.members),
                 5, "the broker to announce LIM 2 dead")

        def restarted():
            now = status(run_dir)
            lim2 = now["lims"][1]
            running = {p["name"]: p["state"] for p in now["processes"]}["lim-2"] == "RUNNING"
            return running and lim2["state"] == "up" and lim2["incarnation"] > old_incarnation \
                and lim2["pid"] != old_pid
        wait_for(restarted, 20, "supervisord to restart LIM 2 and LIM 2 to re-register")
        assert status(run_dir)["calls"] == []
        assert ex.phone("2005").state()["logged_on"] is False
        assert ex.phone("2004").state()["logged_on"] is True

        log.clear()
        call_id = ex.phone("2000").dial("1001")["call_id"]
        ex.phone("1001").answer()
        ex.phone("1001").hangup()
        log.wait("2000", ["ServiceInitiated", "Originated", "Delivered", "Established",
                          "ConnectionCleared", "ConnectionCleared"])
        assert {e["call_id"] for e in log.by_device["2000"]} == {call_id}


def test_cli_phone_events_and_status(cluster):
    run_dir = str(cluster.run_dir)
    watcher = subprocess.Popen([sys.executable, "-m", "cli.main", "events", "--device", "2000",
                                "--count", "2", "--timeout", "20", "--run-dir", run_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watcher.stderr.readline().startswith("Watching")  # subscribed: nothing will be missed
    screen = subprocess.Popen([sys.executable, "-m", "cli.main", "watch", "--lim", "1", "--device", "2000",
                               "--count", "2", "--timeout", "20", "--run-dir", run_dir],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert screen.stderr.readline().startswith("Monitoring 2000 on LIM 1's CSTA server")
    out = mxone("phone", "1000", "dial", "2000", "--run-dir", run_dir)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1000: dial 2000: call ")
    answer = mxone("phone", "2000", "answer", "--run-dir", run_dir)
    assert answer.returncode == 0 and "connected" in answer.stdout
    pops = screen.communicate(timeout=20)[0].splitlines()
    assert "Delivered" in pops[0] and "from 1000" in pops[0] and "ringing 2000" in pops[0]
    assert "Established" in pops[1] and "answered by 2000" in pops[1]
    lines = watcher.communicate(timeout=20)[0].splitlines()
    assert "Delivered" in lines[0] and "calling 1000" in lines[0]
    assert "Established" in lines[1] and "answering 2000" in lines[1]
    human = mxone("status", "--run-dir", run_dir)
    assert "Calls in progress: 1" in human.stdout and "1000 connected (LIM 1)" in human.stdout
    assert "CSTA XML server of LIM 1 on 127.0.1.1:" in human.stdout

    refused = mxone("phone", "2000", "answer", "--run-dir", run_dir)
    assert refused.returncode == 1 and refused.stderr.strip() == "mxone: 2000 is not ringing (not_alerting)"
    unknown = mxone("phone", "1001", "dial", "4999", "--run-dir", run_dir)
    assert unknown.returncode == 1 and "4999 is not allocated" in unknown.stderr
    again = mxone("up", "--run-dir", run_dir, "--detach")
    assert again.returncode == 1 and "already running" in again.stderr


def test_features_and_agents_survive_kill_9(cluster):
    run_dir = str(cluster.run_dir)
    for args in (("feature", "2001", "dnd", "on"), ("feature", "2002", "forward", "all", "1003"),
                 ("feature", "2003", "forward", "noanswer", "1004", "--after", "5"),
                 ("feature", "2004", "mwi", "on"), ("agent", "2005", "login", "77", "5000"),
                 ("agent", "2005", "notready")):
        out = mxone(*args, "--run-dir", run_dir)
        assert out.returncode == 0, (args, out.stderr)
    before = status(run_dir)["lims"][1]

    cluster.rpc().supervisor.signalProcess("lim-2", "KILL")

    def restarted():
        now = status(run_dir)
        lim2 = now["lims"][1]
        running = {p["name"]: p["state"] for p in now["processes"]}["lim-2"] == "RUNNING"
        return running and lim2["state"] == "up" and lim2["incarnation"] > before["incarnation"]
    wait_for(restarted, 20, "LIM 2 to come back")

    shown = {n: mxone("feature", n, "show", "--run-dir", run_dir).stdout.strip() for n in
             ("2001", "2002", "2003", "2004", "2005")}
    assert shown["2001"].startswith("2001: dnd on; forwarding off")
    assert "forwarding all -> 1003" in shown["2002"]
    assert "forwarding noanswer -> 1004 after 5 s" in shown["2003"]
    assert "message waiting on" in shown["2004"]
    assert "agent 77 in 5000 (agentNotReady)" in shown["2005"]
    with Exchange.from_run_dir(run_dir) as ex:
        # The group on LIM 1 hears about the agent again from the restarted LIM.
        wait_for(lambda: any(a["device"] == "2005" and a["state"] == "agentNotReady"
                             for a in ex.phone("5000").state()["agents"]), 5, "the agent to be known to 5000")
        log = EventLog(ex.client, ["1003", "2002"])
        ex.phone("1000").dial("2002")
        delivered = log.wait("1003", ["Delivered"])[0]
        assert delivered["last_redirection"] == "2002"
        ex.phone("1000").hangup()
    refused = mxone("agent", "2008", "login", "1", "5000", "--run-dir", run_dir)
    assert refused.returncode == 1 and "not an agent position" in refused.stderr
    bad = mxone("feature", "2001", "forward", "sideways", "1000", "--run-dir", run_dir)
    assert bad.returncode == 2 and "forward takes" in bad.stderr


def test_recording_a_csta_server(cluster):
    import asyncio

    from csta_front.client import CstaClient
    run_dir = str(cluster.run_dir)
    topology = cluster.topology()
    port = cluster.csta_servers(topology)[1].port

    async def traffic():
        async with await CstaClient.connect("127.0.1.1", port) as csta:
            await csta.monitor_start("2000")
            call_id = await csta.make_call("1000", "2000")
            await csta.next_event()
            await csta.clear_call(call_id, "1000")
    out = mxone("record", "--lim", "1", "--run-dir", run_dir)
    assert out.returncode == 0 and "Recording every session of LIM 1's CSTA server" in out.stdout, out.stderr
    asyncio.run(asyncio.wait_for(traffic(), 30))
    stop = mxone("record", "--lim", "1", "--stop", "--run-dir", run_dir)
    assert stop.returncode == 0 and "documents in" in stop.stdout
    lines = (cluster.run_dir / "logs" / "csta-1.record.log").read_text().splitlines()
    assert any("<- 0001  <?xml" in l and "MonitorStart" in l for l in lines)
    assert any("-> 0001" in l and "MonitorStartResponse" in l for l in lines)
    assert any("-> 9999" in l and "DeliveredEvent" in l for l in lines)
    assert all(l[:4].isdigit() and " session " in l for l in lines)
    refused = mxone("record", "--lim", "7", "--run-dir", run_dir)
    assert refused.returncode == 1 and "no CSTA server is initiated on LIM 7" in refused.stderr


def test_faults_for_the_clients_sake(cluster):
    import asyncio
    import time as clock

    from csta_front.client import CstaClient, CstaError
    run_dir = str(cluster.run_dir)
    port = cluster.csta_servers(cluster.topology())[1].port

    def fault(*args):
        out = mxone("fault", "--lim", "1", *args, "--run-dir", run_dir)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "Faults on LIM 1's CSTA server: none" in fault("list")
    assert "answered systemResourceAvailibility/resourceBusy for MakeCall" in fault("error", "--service", "MakeCall")
    assert "responses delayed 400 ms" in fault("delay", "--ms", "400")
    assert "FAULTS ON" in mxone("status", "--run-dir", run_dir).stdout

    async def misbehaving():
        async with await CstaClient.connect("127.0.1.1", port) as csta:
            started = clock.monotonic()
            assert await csta.request_system_status() == "normal"
            assert clock.monotonic() - started >= 0.4
            try:
                await csta.make_call("1000", "2000")
                raise AssertionError("MakeCall should have failed")
            except CstaError as exc:
                assert (exc.category, exc.value) == ("systemResourceAvailibility", "resourceBusy")
    asyncio.run(asyncio.wait_for(misbehaving(), 30))
    fault("off")

    async def reset():
        async with await CstaClient.connect("127.0.1.1", port) as csta:
            assert await csta.request_system_status() == "normal"  # behaves again, quickly
            assert "1 connections reset" in fault("reset")
            try:
                await csta.next_event(timeout=5)
                raise AssertionError("the connection should have been reset")
            except ConnectionError:
                pass
    asyncio.run(asyncio.wait_for(reset(), 30))
    bad = mxone("fault", "--lim", "1", "delay", "--run-dir", run_dir)
    assert bad.returncode == 2 and "needs --ms" in bad.stderr
    assert "FAULTS ON" not in mxone("status", "--run-dir", run_dir).stdout
