"""The bench driver's wait for CSTA events (tools/bench_driver.Sightings)."""
from __future__ import annotations

import asyncio

from tools.bench_driver import Sightings


def test_a_call_waits_for_the_nth_event_seen_before_or_after():
    async def scenario():
        seen = Sightings()
        seen.saw("c1", "2000", "Delivered")  # before anyone waits
        assert await seen.wait("c1", "2000", "Delivered", timeout=0.01)
        second = asyncio.create_task(seen.wait("c1", "2000", "ConnectionCleared", 2, timeout=1.0))
        seen.saw("c1", "2000", "ConnectionCleared")
        await asyncio.sleep(0)
        assert not second.done()  # the first one is not enough
        seen.saw("c1", "1000", "ConnectionCleared")  # another device's does not count
        seen.saw("c2", "2000", "ConnectionCleared")  # nor another call's
        await asyncio.sleep(0)
        assert not second.done()
        seen.saw("c1", "2000", "ConnectionCleared")
        assert await second
        assert not await seen.wait("c1", "2000", "Established", timeout=0.01)  # late: False, no error
        seen.forget("c1")
        assert not await seen.wait("c1", "2000", "Delivered", timeout=0.01)
    asyncio.run(scenario())
