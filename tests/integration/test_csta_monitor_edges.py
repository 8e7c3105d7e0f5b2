"""Monitor edges on a real exchange (broker, LIMs 1 and 2, the CSTA server of LIM 1, a client over
TCP): ChangeMonitorFilter, a call-type monitor following a call across LIMs after its device left
it, and MonitorStop from the server for every open monitor when the server stops (SIGTERM)."""
from __future__ import annotations

import asyncio
import time

import pytest

from csta_front.client import CstaClient, event_name, field
from csta_front.codec import local_name
from tests.procs import running_exchange, wait_for
from topology.hosts import csta_program


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("svc")) as running:
        yield running


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def connect(running) -> CstaClient:
    lim = running.topology.lim(1)
    return await CstaClient.connect(lim.address, lim.csta.port)


async def events_until(csta: CstaClient, last: str, timeout: float = 10.0) -> list[str]:
    """Event names up to and including the first `last`."""
    names: list[str] = []
    deadline = time.monotonic() + timeout
    while not names or names[-1] != last:
        event = await csta.next_event(timeout=max(0.01, deadline - time.monotonic()))
        assert event is not None, f"connection closed after {names}"
        names.append(event_name(event).removesuffix("Event"))
    return names


async def monitor(csta: CstaClient, device: str, monitor_type: str | None = None) -> str:
    E = csta.E
    parts = [E.monitorObject(E.deviceObject(device))]
    if monitor_type:
        parts.append(E.monitorType(monitor_type))
    return field(await csta.request(E.MonitorStart(*parts)), "monitorCrossRefID")


def test_change_monitor_filter_filters_from_then_on(running):
    async def scenario():
        async with await connect(running) as csta:
            xref = await monitor(csta, "2000")
            E = csta.E
            answer = await csta.request(E.ChangeMonitorFilter(
                E.monitorCrossRefID(xref),
                E.requestedFilterList(E.callcontrol(E.delivered("true"), E.originated("true"),
                                                    E.serviceInitiated("true")))))
            assert local_name(answer) == "ChangeMonitorFilterResponse"
            assert field(answer, "actualFilterList", "callcontrol", "delivered") == "true"
            assert field(answer, "actualFilterList", "callcontrol", "established") == "false"
            phone = running.exchange.phone
            phone("1000").dial("2000")
            wait_for(lambda: phone("2000").answer(), what="2000 answers")
            phone("1000").hangup()
            # Delivered (2000 ringing) filtered out; the rest as before.
            assert await events_until(csta, "ConnectionCleared") == ["Established", "ConnectionCleared"]
    run(scenario())


def test_a_call_type_monitor_follows_a_call_across_lims_after_its_device_leaves(running):
    phone = running.exchange.phone

    async def scenario():
        async with await connect(running) as csta:
            xref = await monitor(csta, "1001", monitor_type="call")
            # 1001 (LIM 1) calls 2001 (LIM 2), consults 2002 (LIM 2) and transfers: 1001 leaves,
            # the call goes on between 2001 and 2002, both on LIM 2, until 2002 hangs up.
            phone("1001").dial("2001")
            wait_for(lambda: phone("2001").answer(), what="2001 answers")
            phone("1001").consult("2002")
            wait_for(lambda: phone("2002").answer(), what="2002 answers")
            phone("1001").transfer()
            before = await events_until(csta, "Transfered")  # the schema's spelling
            assert before[:3] == ["ServiceInitiated", "Originated", "Delivered"], before
            phone("2002").hangup()
            after = await events_until(csta, "CallCleared")
            assert after == ["ConnectionCleared", "ConnectionCleared", "CallCleared"], after
            # Every event once, all on this monitor.
            assert xref
    run(scenario())


def test_server_stop_sends_monitor_stop_for_every_open_monitor(running):
    async def scenario():
        csta = await connect(running)
        xrefs = {await monitor(csta, "1002"), await monitor(csta, "2003", monitor_type="call")}
        running.procs.procs[csta_program(1)].terminate()
        stopped = set()
        deadline = time.monotonic() + 10
        while stopped != xrefs and time.monotonic() < deadline:
            invoke_id, root = await asyncio.wait_for(csta.server_requests.get(), deadline - time.monotonic())
            if local_name(root) == "MonitorStop":
                stopped.add(field(root, "monitorCrossRefID"))
        assert stopped == xrefs
        with pytest.raises(ConnectionError):  # then the connection closes
            await csta.next_event(timeout=10)
        await csta.close()
    try:
        run(scenario())
    finally:
        proc = running.procs.procs[csta_program(1)]
        assert proc.wait(timeout=10) == 0
        running.procs.start_csta(1)  # the module's other tests may follow
