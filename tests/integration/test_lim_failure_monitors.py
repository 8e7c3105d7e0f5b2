"""What CSTA monitors see when a LIM in a call is killed (kill -9) and restarted at once, as
supervisord does: whichever LIM controlled the call, each monitor of a surviving LIM's server sees
the dead LIM's party cleared (networkNotObtainable), then the survivor, and the dead LIM's devices
BackInService only after those clears (docs/failover.md). Real processes: broker, two LIMs, LIM 1's
CSTA server."""
from __future__ import annotations

import asyncio
import time

import pytest

from csta_front.client import CstaClient, device_field, event_name, field
from tests.procs import running_exchange, wait_for, wait_members

EXTERNAL = "0709999999"  # the trunk is LIM 1's (the built-in topology)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("limfail"), lims=(1, 2), cstas=(1,)) as running:
        yield running


class Monitors:
    """The events of one connection, by monitor cross-reference, as (name, dropped, cause)."""

    def __init__(self, client: CstaClient):
        self.client = client
        self.by_xref: dict[str, list[tuple]] = {}

    async def collect(self, wanted: dict[str, int], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while any(len(self.by_xref.get(x, [])) < n for x, n in wanted.items()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                event = await self.client.next_event(timeout=left)
            except asyncio.TimeoutError:
                return
            name = event_name(event).removesuffix("Event")
            self.by_xref.setdefault(field(event, "monitorCrossRefID"), []).append(
                (name, device_field(event, "releasingDevice"), field(event, "cause")))
        try:  # anything more would show up now, and fail the comparison
            event = await self.client.next_event(timeout=0.5)
            self.by_xref.setdefault(field(event, "monitorCrossRefID"), []).append((event_name(event), None, None))
        except asyncio.TimeoutError:
            pass

    async def drain(self, quiet: float = 0.5) -> None:
        while True:
            try:
                await self.client.next_event(timeout=quiet)
            except asyncio.TimeoutError:
                return

    def take(self, xref: str) -> list[tuple]:
        return self.by_xref.pop(xref, [])


def kill_and_restart_lim_2(running) -> None:
    procs = running.procs
    procs.procs["lim-2"].kill()
    procs.procs["lim-2"].wait()
    procs.start_lim(2)  # at once, as supervisord does


LOST = "networkNotObtainable"


@pytest.mark.parametrize("caller, called, far", [
    ("2000", "1000", "1000"),      # LIM 2 (dying) controls the call
    ("2000", EXTERNAL, EXTERNAL),  # LIM 2 controls, the public party is on LIM 1's trunk
    ("1000", "2000", "1000"),      # LIM 1 (surviving) controls the call
], ids=["dead-controller", "dead-controller-trunk", "surviving-controller"])
def test_every_surviving_monitor_sees_the_dead_party_cleared_then_its_own_then_back(running, caller, called, far):
    topology, ex = running.topology, running.exchange

    async def scenario():
        lim1 = topology.lim(1)
        async with await CstaClient.connect(lim1.address, lim1.csta.port) as csta:
            monitors = Monitors(csta)
            x2000 = await csta.monitor_start("2000")
            x1000 = await csta.monitor_start("1000")
            ex.phone(caller).dial(called)
            ex.phone(called).answer()
            await monitors.drain()  # the call's setup, not checked here
            monitors.by_xref.clear()
            kill_and_restart_lim_2(running)
            cleared = [("ConnectionCleared", "2000", LOST), ("ConnectionCleared", far, LOST)]
            await monitors.collect({x2000: 4, x1000: 2 if far == "1000" else 0})
            assert monitors.take(x2000) == [("OutOfService", None, None), *cleared, ("BackInService", None, None)]
            assert monitors.take(x1000) == (cleared if far == "1000" else [])
            assert not monitors.by_xref
            await csta.monitor_stop(x2000)
            await csta.monitor_stop(x1000)

    asyncio.run(asyncio.wait_for(scenario(), 60))
    # Both phones are free for the next call.
    wait_members(ex.client, {("lim", 2)})
    wait_for(lambda: not ex.calls(), 5, "no call left in the exchange")
