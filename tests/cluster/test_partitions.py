"""Hosts and partitions: an exchange spread over three hosts (network namespaces joined by veth
links, tests/netns.py), each host started with `mxone up --host NAME`; the link between the
broker's host and a LIM's host is cut, then healed. Prints the figures docs/failover.md reports
(`pytest tests/cluster/test_partitions.py -s`).

Host a: broker, LIM 1 (and csta-1, whose client watches everything); host b: LIM 2; host c: LIM 3.
"""
from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from datetime import datetime

import pytest

from csta_front.client import CstaClient, CstaError, event_name, field
from lim.phone import Exchange
from tests import netns
from tests.procs import lim_states, wait_for
from tests.spread import running, spread_topology
from topology.loader import load_topology

pytestmark = pytest.mark.cluster

NO_ANSWER_S = 2.0  # a call left ringing is released by its controller this long after it rang
# The partition lasts until LIM 2's no-answer timer has fired, or this many seconds if longer
# (how long a heal takes grows with the length of the partition: docs/failover.md).
PARTITION_S = float(os.environ.get("MXONE_PARTITION_S", "0"))
LIM3 = {"number": 3, "csta": {"port": 8882}, "extensions": [{"numbers": "3000-3009", "type": "ip"}]}


@pytest.fixture
def hosts():
    with netns.hosts_for_test(["a", "b", "c"]) as made:
        yield made


@pytest.fixture
def spread(hosts, tmp_path):
    def timers(data):
        data.setdefault("timers", {})["no_answer_s"] = NO_ANSWER_S
    topology = spread_topology(tmp_path / "spread.yaml", hosts, "a", {1: "a", 2: "b", 3: "c"},
                               extra_lims=[LIM3], edit=timers)
    with running(hosts, topology, tmp_path) as exchange:
        yield exchange


class Recorder:
    """Every event of one CSTA connection, with the monitored device and the time it arrived."""

    def __init__(self, client: CstaClient):
        self.client = client
        self.devices: dict[str, str] = {}  # monitor cross-reference -> device
        self.seen: list[tuple[float, str, str, str | None]] = []  # (time, device, event, cause)
        self.task = asyncio.create_task(self._drain())

    async def monitor(self, device: str) -> None:
        self.devices[await self.client.monitor_start(device)] = device

    async def _drain(self) -> None:
        while (event := await self.client.events.get()) is not None:
            device = self.devices.get(field(event, "monitorCrossRefID"), "?")
            self.seen.append((time.monotonic(), device, event_name(event).removesuffix("Event"), field(event, "cause")))

    def of(self, device: str, since: float = 0.0) -> list[tuple[str, str | None]]:
        return [(name, cause) for t, d, name, cause in self.seen if d == device and t >= since]

    async def wait(self, device: str, name: str, since: float, timeout: float = 10.0) -> float:
        """When `device` saw event `name` (at or after `since`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, d, n, _ in self.seen:
                if d == device and n == name and t >= since:
                    return t
            await asyncio.sleep(0.01)
        raise AssertionError(f"{device} did not see {name} within {timeout} s: {self.of(device, since)}")


def log_time(log: str, pattern: str) -> float | None:
    """The wall-clock time of the last log line matching `pattern` (the processes log local time)."""
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*" + pattern, log, re.M)
    return datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S,%f").timestamp() if stamps else None


def test_partition_between_broker_and_lim(spread, hosts):
    """Cut host b (LIM 2) off from host a (broker, LIM 1), then heal the link.

    Side a: the broker declares LIM 2 dead within dead_after_ms; LIM 1 releases its side of every
    call with LIM 2 (networkNotObtainable) and csta-1's monitors of LIM 2's devices get OutOfService.
    Host c (LIM 3) goes on as before: its call with LIM 1 survives. Side b: LIM 2 finds the broker
    silent and keeps its calls, waiting for the broker's verdict (a no-answer timer fires
    meanwhile: its event must never reach a client); csta-2's clients hear nothing. Heal: the
    broker tells LIM 2 to rejoin; it drops its calls and registers as a new incarnation;
    BackInService on both sides; a new cross-LIM call works."""
    topology = load_topology(spread.topology_file)
    dead_after = topology.broker.dead_after_ms / 1000.0
    status = spread.status("b")  # `mxone status` in host b's run directory: b's processes, every LIM
    assert status["host"] == "b"
    assert sorted(p["name"] for p in status["processes"]) == ["csta-2", "lim-2"]
    assert {lim["number"]: lim["state"] for lim in status["lims"]} == {1: "up", 2: "up", 3: "up"}
    figures: dict[str, float] = {}
    stop_b = threading.Event()
    b_seen: dict[str, object] = {}

    def client_on_b():
        """A CTI client of LIM 2's CSTA server, on host b: what does the cut-off side see?"""
        async def watch():
            lim = topology.lim(2)
            async with await CstaClient.connect(lim.address, lim.csta.port) as client:
                recorder = Recorder(client)
                await recorder.monitor("2002")
                await recorder.monitor("1003")
                b_seen["events"] = recorder.seen  # read by the test's thread as it grows
                b_seen["ready"] = True
                while not stop_b.is_set():
                    await asyncio.sleep(0.05)
                    if b_seen.get("cut") and "request" not in b_seen:
                        started = time.monotonic()
                        try:
                            b_seen["request"] = ("answered", await client.snapshot_device("2003"))
                        except (CstaError, asyncio.TimeoutError) as exc:
                            b_seen["request"] = (type(exc).__name__, str(exc))
                        b_seen["request_s"] = time.monotonic() - started
        asyncio.run(watch())

    def observe():
        try:
            hosts.on("b", client_on_b)
        except BaseException as exc:  # shown by the waits below, not lost in this thread
            b_seen["error"] = exc

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()

    async def scenario():
        lim1 = topology.lim(1)
        exchange = Exchange(topology)  # a bus client on host a
        try:
            bus = exchange.client
            async with await CstaClient.connect(lim1.address, lim1.csta.port) as client:
                a = Recorder(client)
                for device in ("2000", "1001", "1004", "3000", "2002"):
                    await a.monitor(device)
                x = await client.make_call("1000", "2000")      # LIM 1 controls, a party on LIM 2
                await client.answer_call(x, "2000")
                y = await client.make_call("2001", "1001")      # LIM 2 controls, a party on LIM 1
                await client.answer_call(y, "1001")
                z = await client.make_call("1002", "3000")      # between hosts a and c: must survive
                await client.answer_call(z, "3000")
                local = await client.make_call("2002", "2003")  # inside LIM 2
                await client.answer_call(local, "2003")
                await a.wait("3000", "Established", 0)
                await a.wait("2002", "Established", 0)
                await asyncio.to_thread(wait_for, lambda: b_seen.get("ready") or b_seen.get("error"), 20,
                                        "the client on host b")
                assert "error" not in b_seen, f"the client on host b failed: {b_seen['error']!r}"
                await client.make_call("2004", "1004")          # LIM 2 controls; left ringing
                rang = await a.wait("1004", "Delivered", 0)
                incarnation = lim_states(bus)[2][1]

                cut, cut_wall = time.monotonic(), time.time()
                hosts.cut("a", "b")
                b_seen["cut"] = cut
                await asyncio.to_thread(wait_for, lambda: lim_states(bus)[2][0] == "dead", 5, "LIM 2 declared dead")
                figures["cut -> LIM 2 declared dead"] = time.monotonic() - cut
                figures["cut -> OutOfService of 2000 on csta-1"] = await a.wait("2000", "OutOfService", cut) - cut
                for device in ("2000", "1001", "1004"):  # LIM 1 released its side of each call with LIM 2
                    await a.wait(device, "ConnectionCleared", cut)
                    assert ("ConnectionCleared", "networkNotObtainable") in a.of(device, cut)
                figures["cut -> calls with LIM 2 released on LIM 1"] = max(
                    t for t, d, n, _ in a.seen if n == "ConnectionCleared" and t >= cut) - cut
                assert lim_states(bus)[3][0] == "up"
                # Hold the partition until LIM 2's no-answer timer on the ringing call has fired.
                await asyncio.sleep(max(0.0, rang + NO_ANSWER_S + 1.0 - time.monotonic(), cut + PARTITION_S - time.monotonic()))
                lim2_log = await asyncio.to_thread(
                    wait_for, lambda: (log := spread.log("b", "lim-2")) and "broker silent" in log and log,
                    10, "LIM 2 to notice the silent broker")
                figures["cut -> LIM 2 finds the broker silent"] = log_time(lim2_log, "broker silent") - cut_wall
                calls = await asyncio.to_thread(exchange.calls)
                assert [c["call_id"] for c in calls] == [z]  # LIM 1 and LIM 3 hold nothing of LIM 2's any more

                heal = time.monotonic()
                hosts.heal("a", "b")
                b_seen["healed"] = heal
                await asyncio.to_thread(wait_for, lambda: lim_states(bus)[2] == ("up", incarnation + 1), 60,
                                        "LIM 2 to rejoin as a new incarnation")
                figures["heal -> LIM 2 up again (new incarnation)"] = time.monotonic() - heal
                figures["heal -> BackInService of 2000 on csta-1"] = await a.wait("2000", "BackInService", heal, 60) - heal
                assert a.of("1004", heal) == []  # the no-answer release LIM 2 did while cut off never shows
                assert ("ConnectionCleared", "callNotAnswered") not in a.of("1004", cut)
                assert [c["call_id"] for c in await asyncio.to_thread(exchange.calls)] == [z]  # no call of LIM 2's old incarnation is left
                for device in ("2000", "2002"):
                    assert a.of(device, cut)[-1] == ("BackInService", None)

                new = await client.make_call("1005", "2000")   # a new cross-LIM call works
                figures["heal -> new cross-LIM call delivered"] = await a.wait("2000", "Delivered", heal, 10) - heal
                await client.clear_call(new, "1005")
                await client.clear_call(z, "1002")
                await a.wait("3000", "ConnectionCleared", heal)
        finally:
            exchange.close()  # also on a failure: a client left open can hang pytest when collected

    def back_on_b():
        return any(d == "2002" and n == "BackInService" and t >= b_seen["healed"] for t, d, n, _ in b_seen["events"])

    try:
        hosts.on("a", lambda: asyncio.run(asyncio.wait_for(scenario(), 150)))
        wait_for(back_on_b, 60, "the client on host b to see 2002 back in service")
    finally:
        stop_b.set()
        observer.join(30)

    lim2_log = spread.log("b", "lim-2")
    assert "the broker declared this node dead: rejoining" in lim2_log
    # What the guard had to do: events LIM 2's old incarnation published while cut off (the
    # no-answer release), delivered late by the healed network, and not shown.
    csta1 = next(c for c in spread.status("a")["csta"] if c["lim"] == 1)
    print(f"\nPartition: csta-1 dropped {csta1['bus']['stale_dropped']} stale events of LIM 2's old incarnation")
    # Host b's client: its CSTA server lost the bus too, so it hears nothing during the cut (every
    # event goes through the broker), and a request fails; after the heal it is told the devices
    # were out of service (its server replays the membership changes), and back.
    cut, healed = b_seen["cut"], b_seen["healed"]
    during = [(d, n) for t, d, n, _ in b_seen["events"] if cut <= t < healed]
    after = [(t, d, n) for t, d, n, _ in b_seen["events"] if t >= healed]
    assert during == []
    assert [n for _, d, n in after if d == "2002"] == ["OutOfService", "BackInService"]
    assert b_seen["request"][0] == "CstaError"
    figures["heal -> BackInService of 2002 on csta-2 (host b)"] = max(t for t, d, n in after if n == "BackInService") - healed
    print(f"Partition: the client on host b: nothing during the cut; a request then: {b_seen['request'][1]} "
          f"after {b_seen['request_s'] * 1000:.0f} ms; after the heal: {[(d, n) for _, d, n in after]}")
    print(f"Partition: held for {healed - cut:.1f} s")
    for what, seconds in figures.items():
        print(f"Partition: {what}: {seconds * 1000:.0f} ms")
    assert figures["cut -> LIM 2 declared dead"] < dead_after + 0.5

