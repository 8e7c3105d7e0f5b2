"""Failure scenarios on a supervisord cluster, as a CTI client sees them: a LIM killed, a LIM hung,
a CSTA server killed. Each test prints the figures docs/failover.md reports."""
from __future__ import annotations

import asyncio
import time

import pytest

from csta_front.client import CstaClient, event_name, field
from lim.phone import Exchange
from cluster.control import Cluster
from tests.procs import EventLog, lim_states, wait_for


pytestmark = pytest.mark.cluster


async def connect(cluster: Cluster, lim: int) -> CstaClient:
    topology = cluster.topology()
    port = cluster.csta_servers(topology)[lim].port
    return await CstaClient.connect(topology.lim(lim).address, port)


async def events_until(client: CstaClient, wanted: list[str], timeout: float = 10.0) -> list:
    """Collect events until the names in `wanted` have been seen in that order (others may come
    in between: a connection carries the events of all its monitors)."""
    seen, position = [], 0
    deadline = time.monotonic() + timeout
    while position < len(wanted):
        try:
            event = await client.next_event(timeout=max(0.01, deadline - time.monotonic()))
        except (asyncio.TimeoutError, TimeoutError):
            raise AssertionError(f"no {wanted[position]} within {timeout} s; "
                                 f"seen: {[event_name(e) for e in seen]}") from None
        seen.append(event)
        if event_name(event) == f"{wanted[position]}Event":
            position += 1
    return seen


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def test_lim_killed(cluster):
    """Scenario 1: LIM 2 killed with SIGKILL while in a call, monitored through both CSTA servers."""
    async def scenario():
        one, two = await connect(cluster, 1), await connect(cluster, 2)
        async with one, two:
            await one.set_do_not_disturb("2005", True)  # persistent state that must survive
            caller = await one.monitor_start("1000")
            watch_one, watch_two = await one.monitor_start("2000"), await two.monitor_start("2000")
            await two.request(two.E.SystemRegister())  # two wants to hear of system status changes
            call_id = await one.make_call("1000", "2000")
            await one.answer_call(call_id, "2000")
            await events_until(two, ["Delivered", "Established"])
            await events_until(one, ["ServiceInitiated", "Originated", "Delivered", "Delivered", "Established",
                                     "Established"])
            with Exchange.from_run_dir(cluster.run_dir) as ex:
                log = EventLog(ex.client, [])
                killed = time.monotonic()
                cluster.rpc().supervisor.signalProcess("lim-2", "KILL")
                dead = wait_for(lambda: log.pump() or next((time.monotonic() for m in log.members
                                                            if m["lim"] == 2 and m["state"] == "dead"), None),
                                5, "LIM 2 declared dead")
                detect = dead - killed
                print(f"\nLIM killed: declared dead after {detect * 1000:.0f} ms")
                assert detect < 1.0
                on_one = await events_until(one, ["OutOfService", "ConnectionCleared", "ConnectionCleared"])
                released = time.monotonic() - killed
                cleared = [e for e in on_one if event_name(e) == "ConnectionClearedEvent"]
                assert {field(e, "cause") for e in cleared} == {"networkNotObtainable"}
                assert field(cleared[0], "monitorCrossRefID") in (caller, watch_one)
                on_two = await events_until(two, ["OutOfService"])
                assert field(on_two[-1], "monitorCrossRefID") == watch_two
                invoke_id, status = await asyncio.wait_for(two.server_requests.get(), 5)
                assert field(status, "systemStatus") == "partiallyDisabled" and invoke_id >= 9000
                await two.answer_server(invoke_id, two.E.SystemStatusResponse())
                print(f"LIM killed: surviving party released and monitors told after {released * 1000:.0f} ms")
                back = await events_until(two, ["BackInService"], timeout=30)
                # A LIM restarted faster than the heartbeats noticed is dead and back at once:
                # then `one` had BackInService before the releases it was waiting for.
                if "BackInServiceEvent" not in [event_name(e) for e in on_one]:
                    await events_until(one, ["BackInService"], timeout=30)
                recovered = time.monotonic() - killed
                print(f"LIM killed: back in service (supervisord restart + re-register) after {recovered:.2f} s")
                wait_for(lambda: lim_states(ex.client)[2][0] == "up", 10, "LIM 2 up")
                _, status = await asyncio.wait_for(two.server_requests.get(), 5)
                assert field(status, "systemStatus") == "normal"
                assert await one.request_system_status() == "normal"
            assert await one.get_do_not_disturb("2005") is True
            # The open monitors deliver again without the client doing anything.
            call_id = await one.make_call("1001", "2000")
            await events_until(two, ["Delivered"])
            await events_until(one, ["Delivered"])
            await one.clear_call(call_id, "1001")
            assert back
    run(scenario())


def test_lim_hung(cluster):
    """Scenario 2: LIM 2 stopped (SIGSTOP): found by heartbeats alone; after SIGCONT it rejoins clean."""
    async def scenario():
        async with await connect(cluster, 1) as one:
            watch = await one.monitor_start("2001")
            call_id = await one.make_call("1001", "2001")
            await one.answer_call(call_id, "2001")
            await events_until(one, ["Delivered", "Established"])
            with Exchange.from_run_dir(cluster.run_dir) as ex:
                before = lim_states(ex.client)[2][1]
                stopped = time.monotonic()
                cluster.rpc().supervisor.signalProcess("lim-2", "STOP")
                try:
                    wait_for(lambda: lim_states(ex.client)[2][0] == "dead", 3, "LIM 2 found dead by heartbeats")
                    print(f"\nLIM hung: declared dead after {(time.monotonic() - stopped) * 1000:.0f} ms")
                    events = await events_until(one, ["OutOfService", "ConnectionCleared", "ConnectionCleared"])
                    assert field(events[0], "monitorCrossRefID") == watch
                    assert cluster.rpc().supervisor.getProcessInfo("lim-2")["statename"] == "RUNNING"  # supervisord saw nothing
                finally:
                    cluster.rpc().supervisor.signalProcess("lim-2", "CONT")
                wait_for(lambda: lim_states(ex.client)[2] == ("up", before + 1), 10, "LIM 2 to rejoin as a new incarnation")
                await events_until(one, ["BackInService"])
                assert ex.phone("2001").state()["calls"] == []  # no stale call survived the hang
                assert ex.calls() == []
            call_id = await one.make_call("1001", "2001")
            await events_until(one, ["Delivered"])
            await one.clear_call(call_id, "1001")
    run(scenario())


def test_csta_server_killed(cluster):
    """Scenario 3: a CSTA server killed: its clients lose the connection, calls are untouched, and a
    client reconnects (to another LIM's server, or to the restarted one) and monitors again."""
    async def scenario():
        client = await connect(cluster, 1)
        await client.monitor_start("1002")
        call_id = await client.make_call("1002", "2002")
        await client.answer_call(call_id, "2002")
        await events_until(client, ["ServiceInitiated", "Originated", "Delivered", "Established"])
        killed = time.monotonic()
        cluster.rpc().supervisor.signalProcess("csta-1", "KILL")
        with pytest.raises(ConnectionError):
            await client.next_event(timeout=5)
        await client.close()
        print(f"\nCSTA server killed: client saw the connection close after {(time.monotonic() - killed) * 1000:.0f} ms")
        with Exchange.from_run_dir(cluster.run_dir) as ex:
            assert [c["call_id"] for c in ex.calls()] == [call_id]  # the call is untouched
        async with await connect(cluster, 2) as other:  # another LIM's server at once
            await other.monitor_start("1002")
            assert await other.snapshot_device("1002") == [(call_id, "connected")]

        async def reconnect():
            while True:
                try:
                    return await connect(cluster, 1)
                except OSError:
                    await asyncio.sleep(0.1)
        again = await asyncio.wait_for(reconnect(), 30)
        print(f"CSTA server killed: restarted server accepting again after {time.monotonic() - killed:.2f} s")
        async with again:
            await again.monitor_start("1002")
            await again.clear_connection(call_id, "2002")
            await events_until(again, ["ConnectionCleared", "ConnectionCleared"])
    run(scenario())


def test_broker_killed_and_restarted(cluster):
    """The single broker killed: supervisord restarts it, every node reconnects and registers again;
    calls in progress live in the LIMs and survive; the open monitors deliver again (events published
    while the broker was down are replayed: tests/cluster/test_broker_pair.py checks that)."""
    async def scenario():
        async with await connect(cluster, 1) as one:
            watch = await one.monitor_start("2003")
            call_id = await one.make_call("1003", "2003")
            await one.answer_call(call_id, "2003")
            await events_until(one, ["Delivered", "Established"])
            killed = time.monotonic()
            cluster.rpc().supervisor.signalProcess("broker", "KILL")
            with Exchange.from_run_dir(cluster.run_dir) as ex:
                wait_for(lambda: {(m["role"], m["lim"]) for m in ex.members() if m["state"] == "up"}
                         >= {("lim", 1), ("lim", 2), ("front", 1), ("front", 2)}, 20, "every node to register again")
                print(f"\nBroker killed: every node registered with the new broker after {time.monotonic() - killed:.2f} s")
                assert [c["call_id"] for c in ex.calls()] == [call_id]  # the call survived
            await one.clear_connection(call_id, "1003")
            cleared = await events_until(one, ["ConnectionCleared", "ConnectionCleared"])
            assert field(cleared[-1], "monitorCrossRefID") == watch
    run(scenario())
