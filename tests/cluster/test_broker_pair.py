"""The broker pair (Binary Star) on a supervisord cluster: the active broker fails, the other takes
over, calls in progress survive, and CTI clients on both front ends get every event exactly once,
including the events a LIM published while there was no active broker. Prints the figures
docs/failover.md reports."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest

from broker.client import BusClient
from csta_front.client import CstaClient, event_name, field
from lim.phone import Exchange
from tests.procs import wait_for
from cluster.control import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.mxone_topology("tests/cluster/broker_pair.yaml")]


def broker_states(cluster: Cluster) -> dict[str, str]:
    with BusClient(cluster.topology().broker) as client:
        return {b["mode"]: b["state"] for b in client.broker_states()}


def all_registered(ex: Exchange) -> bool:
    try:
        up = {(m["role"], m["lim"]) for m in ex.members() if m["state"] == "up"}
    except Exception:  # no active broker at this moment: not yet
        return False
    return up >= {("lim", 1), ("lim", 2), ("front", 1), ("front", 2)}


async def connect(cluster: Cluster, lim: int) -> CstaClient:
    topology = cluster.topology()
    return await CstaClient.connect(topology.lim(lim).address, cluster.csta_servers(topology)[lim].port)


async def drain(client: CstaClient, quiet: float = 1.0) -> list:
    """Every event until the connection has been quiet for `quiet` seconds."""
    events = []
    while True:
        try:
            events.append(await client.next_event(timeout=quiet))
        except (asyncio.TimeoutError, TimeoutError):
            return events


def cleared_per_monitor(events: list, call_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        if event_name(event) == "ConnectionClearedEvent" and field(event, "droppedConnection", "callID") == call_id:
            ref = field(event, "monitorCrossRefID")
            counts[ref] = counts.get(ref, 0) + 1
    return counts


async def unanswered_call(cluster: Cluster, clients: list[CstaClient]) -> list[tuple[list, str]]:
    """The same unanswered call with nothing failing: what each client sees of it."""
    with Exchange.from_run_dir(cluster.run_dir) as ex:
        call_id = ex.phone("1003").dial("1004")["call_id"]
    return [(await drain(client, quiet=1.2), call_id) for client in clients]


async def release_during_outage(cluster: Cluster, clients: list[CstaClient], fail) -> tuple[float, float, dict]:
    """Ring 1003 -> 1004 (both on LIM 1), let no one answer, make the active broker fail at once:
    LIM 1 releases the call after 0.8 s (the topology's no-answer timer), while no broker is
    active. Every client must see the release exactly as when nothing fails. Returns how long
    the release took to reach every client, how long until every node was registered again, and
    the CSTA servers' bus counters."""
    baseline = await unanswered_call(cluster, clients)
    expected = [cleared_per_monitor(events, call_id) for events, call_id in baseline]
    assert all(expected)
    with Exchange.from_run_dir(cluster.run_dir) as ex:
        call_id = ex.phone("1003").dial("1004")["call_id"]
    for client in clients:
        await drain(client, quiet=0.3)  # the call's Delivered events, before the failure
    failed = time.monotonic()
    fail()
    seen = [[] for _ in clients]

    async def until_released(i: int) -> None:
        want = sum(expected[i].values())
        while sum(cleared_per_monitor(seen[i], call_id).values()) < want:
            seen[i].append(await clients[i].next_event(timeout=15))
    await asyncio.gather(*(until_released(i) for i in range(len(clients))))
    delivered = time.monotonic() - failed
    for i, client in enumerate(clients):
        seen[i] += await drain(client)
        # Each monitor of 1003 and 1004 told what it is told when nothing fails: nothing lost,
        # nothing twice.
        assert cleared_per_monitor(seen[i], call_id) == expected[i]
    with Exchange.from_run_dir(cluster.run_dir) as ex:
        wait_for(lambda: all_registered(ex), 20, "every node to register with the active broker")
        registered = time.monotonic() - failed
        assert not any(c["call_id"] == call_id for c in ex.calls())
    with BusClient(cluster.topology().broker) as bus:
        counters = {lim: bus.request(f"csta-{lim}", "csta.status")["bus"] for lim in (1, 2)}
    CALL_PAIRS.append((baseline[0][1], call_id))
    return delivered, registered, counters


CALL_PAIRS: list[tuple[str, str]] = []  # (the call with nothing failing, the call released in an outage)


def cleared_per_call(lines: list[str]) -> dict[str, int]:
    """`mxone events --json` output: how many ConnectionCleared it printed per call."""
    counts: dict[str, int] = {}
    for line in lines:
        event = json.loads(line)
        if event.get("event") == "ConnectionCleared":
            counts[event["call_id"]] = counts.get(event["call_id"], 0) + 1
    return counts


def test_broker_pair_fails_over_both_ways_without_losing_an_event(cluster):
    async def scenario():
        wait_for(lambda: broker_states(cluster) == {"primary": "active", "backup": "passive"}, 10,
                 "the primary active and the backup passive")
        rpc = cluster.rpc().supervisor
        CALL_PAIRS.clear()
        # A CLI subscriber as well (`mxone events`): it registers nothing, watches the pair itself
        # and asks the LIMs for what it missed after moving.
        cli = subprocess.Popen([sys.executable, "-m", "cli.main", "events", "--device", "1003", "--device",
                                "1004", "--json", "--run-dir", str(cluster.run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []  # its output as it comes: read by a thread, so the test can wait on it
        reader = threading.Thread(target=lambda: lines.extend(iter(cli.stdout.readline, "")), daemon=True)
        reader.start()
        async with await connect(cluster, 1) as one, await connect(cluster, 2) as two:
            for client in (one, two):
                await client.monitor_start("1003")
                await client.monitor_start("1004")
            # A call in progress across the LIMs must survive both failovers.
            with Exchange.from_run_dir(cluster.run_dir) as ex:
                talking = ex.phone("1001").dial("2001")["call_id"]
                ex.phone("2001").answer()

            # 1. The primary hangs (SIGSTOP): the backup takes over.
            delivered, registered, counters = await release_during_outage(
                cluster, [one, two], lambda: rpc.signalProcess("broker", "STOP"))
            assert broker_states(cluster)["backup"] == "active"
            recovered = sum(c["events_recovered"] for c in counters.values())
            print(f"\nPrimary broker hung: the release published meanwhile reached every client "
                  f"{delivered:.2f} s after the hang (by replay: {recovered} events); all nodes "
                  f"registered with the backup within {registered:.2f} s")
            assert recovered >= 2  # each front end saw the release only by replay

            # 2. It wakes up (SIGCONT): it knows it was frozen and stays passive.
            rpc.signalProcess("broker", "CONT")
            wait_for(lambda: broker_states(cluster) == {"primary": "passive", "backup": "active"}, 10,
                     "the woken primary to stand by")

            # 3. The active backup is killed (SIGKILL): the primary takes the exchange back.
            delivered, registered, counters = await release_during_outage(
                cluster, [one, two], lambda: rpc.signalProcess("broker-backup", "KILL"))
            wait_for(lambda: broker_states(cluster) == {"primary": "active", "backup": "passive"}, 10,
                     "the primary active again, the restarted backup passive")
            print(f"Active backup broker killed: the release reached every client {delivered:.2f} s "
                  f"after the kill; all nodes registered with the primary within {registered:.2f} s")

            with Exchange.from_run_dir(cluster.run_dir) as ex:
                assert [c["call_id"] for c in ex.calls()] == [talking]
                ex.phone("1001").hangup()
                wait_for(lambda: not ex.calls(), 5, "the surviving call to be released")

            def every_release_printed() -> bool:  # as when nothing fails: the CLI may replay late
                printed = cleared_per_call(list(lines))
                return all(printed.get(outage) == printed.get(quiet) and printed.get(quiet)
                           for quiet, outage in CALL_PAIRS)
            try:
                wait_for(every_release_printed, 15, "the CLI subscriber to print every release")
            finally:
                cli.terminate()
                err = cli.communicate(timeout=10)[1]
                reader.join(5)
            printed = cleared_per_call(list(lines))
            for quiet, outage in CALL_PAIRS:
                assert printed.get(outage) == printed.get(quiet) and printed.get(quiet), (printed, err[-2000:])
    asyncio.run(asyncio.wait_for(scenario(), 120))
