"""docs/examples/callcentre.py end to end, run as a user runs it (a subprocess, against LIM 1's CSTA
server), on a real exchange whose route point 7000 is on LIM 2: calls from the public network and
from both LIMs reach 7000; the routeing follows the table docs/examples/README.md gives (public
callers to the agents on LIM 2, internal callers to those on LIM 1, the ACD group when they are
all busy); an independent CSTA client of LIM 2's server sees the customer on each agent's
Delivered (correlatorData); the example prints one screen pop per call; and Ctrl-C (SIGINT)
ends it cleanly, its registration cancelled."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from csta_front.client import CstaClient, device_field, event_name, field
from tests.integration.test_docs_example import Lines
from tests.procs import running_exchange, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "callcentre.py"
AGENTS = ("1005", "1006", "1007", "2005", "2006", "2007")


def hex_of(text: str) -> str:
    """Correlator data as the schema types it (xs:hexBinary) for a customer's name in UTF-8."""
    return text.encode("utf-8").hex().upper()


@pytest.fixture
def running(tmp_path):
    with running_exchange(tmp_path, cstas=(1, 2)) as running:
        yield running


def start_example(running) -> tuple[subprocess.Popen, Lines]:
    lim = running.topology.lim(1)
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--host", lim.address, "--port", str(lim.csta.port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out = Lines(proc)
    first = out.next(timeout=30)
    assert first is not None and first.startswith("Routing 7000 on 127.0.1.1:"), (first, proc.stderr.read())
    return proc, out


def ringing(running, number: str) -> str | None:
    """The call ID of the call ringing at `number`, if one is."""
    for call in running.exchange.phone(number).state().get("calls", []):
        if call["state"] == "alerting":
            return call["call_id"]
    return None


def test_the_example_routes_attaches_data_pops_screens_and_stops_on_sigint(running):
    proc, out = start_example(running)
    try:
        lim2 = running.topology.lim(2)
        # (caller, where the README's table sends it, the customer the agent must see)
        cases = [("0701234567", "2006", "Acme AB, gold"),            # public network -> LIM 2's agents:
                                                                     # 2005 (DND) refuses, ReRoute: 2006
                 ("1000", "1005", "Reception (internal)"),           # LIM 1 -> LIM 1's agents
                 ("2000", "1006", "Sales desk (internal)"),          # LIM 2 -> LIM 1's agents (1005 busy)
                 ("1001", "1007", "new customer 1001"),              # not in the table
                 ("2001", "2007", "new customer 2001")]              # LIM 1's agents all busy: ACD 5000

        async def scenario():
            async with await CstaClient.connect(lim2.address, lim2.csta.port) as watcher:
                xrefs = {await watcher.monitor_start(agent): agent for agent in AGENTS}
                # The fallback ACD group needs an agent ready: 2007 (ACD group 5000, on LIM 2).
                await watcher.set_agent_state("2007", "loggedOn", agent_id="71", group="5000")
                await watcher.set_agent_state("2007", "ready")
                # 2005 refuses calls; the example cannot know: the exchange asks again (ReRoute).
                await watcher.set_do_not_disturb("2005", True)
                delivered: dict[str, object] = {}
                for caller, agent, customer in cases:
                    running.exchange.phone(caller).dial("7000")
                    call_id = wait_for(lambda: ringing(running, agent), timeout=15, what=f"{agent} rings for {caller}")
                    while agent not in delivered:
                        event = await watcher.next_event(timeout=10)
                        if event_name(event) == "DeliveredEvent" and field(event, "localConnectionInfo") == "alerting":
                            delivered[xrefs[field(event, "monitorCrossRefID")]] = event
                    event = delivered[agent]
                    assert field(event, "connection", "callID") == call_id
                    assert device_field(event, "callingDevice") == caller
                    assert field(event, "correlatorData", "string") == hex_of(customer)
                for caller, _, _ in cases:
                    running.exchange.phone(caller).hangup()
                await watcher.set_agent_state("2007", "loggedOff")
                await watcher.set_do_not_disturb("2005", False)
            return delivered
        delivered = asyncio.run(asyncio.wait_for(scenario(), 90))

        pops = {}
        while len(pops) < len(cases):
            line = out.next(timeout=10)
            assert line is not None, out.seen
            if line.startswith("SCREEN POP"):
                pops[line.split()[3]] = line
        for caller, agent, customer in cases:
            call_id = field(delivered[agent], "connection", "callID")
            assert pops[agent] == (f"SCREEN POP  agent {agent}  caller {caller}  dialled 7000  "
                                   f"customer {customer}  call {call_id}")
        routed = [line for line in out.seen if line.startswith(("ROUTE ", "REROUTE "))]
        assert [line.split()[0] + " " + line.split("-> ")[-1] for line in routed] == [
            "ROUTE 2005", "REROUTE 2006", "ROUTE 1005", "ROUTE 1006", "ROUTE 1007", "ROUTE 5000"]
        assert "(Acme AB, gold) -> 2005" in routed[0] and "caller 0701234567 -> 2006" in routed[1]
        wait_for(lambda: not running.exchange.calls(), what="every call ended")

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        rest = out.rest(timeout=10)
        assert rest[-1] == "Stopped: registration cancelled, monitors stopped"
        assert proc.stderr.read() == ""
        # Its registration is gone: a call to the route point goes to the default (ACD 5000) at once.
        running.exchange.phone("1002").dial("7000")
        wait_for(lambda: any(conn["device"] == "5000" and conn["state"] == "queued"
                                 for call in running.exchange.calls() for conn in call["connections"]),
                 what="the call queued at the default ACD group")
        running.exchange.phone("1002").hangup()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_example_says_so_when_no_exchange_answers(tmp_path):
    from tests.procs import free_ports
    port = free_ports(1)[0]
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port)],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.startswith("callcentre: ") and proc.stderr.count("\n") == 1, proc.stderr
