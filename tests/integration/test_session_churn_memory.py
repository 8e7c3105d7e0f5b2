"""A real CSTA server's memory under session churn (issue 18's soak: the servers grew ~2.4 kB per
session, each closed session kept for a day by its cancelled ECMA-354 session timer).

Sessions connect, start an application session and a monitor, and leave, as the soak's churn and
CTI regression suites do; the server's RSS, read from /proc, must level off rather than grow with
the number of sessions. Before the fix 3,000 sessions after the warm-up added ~7 MB; after, the
level holds within allocator noise (measured: +8 kB)."""
from __future__ import annotations

import asyncio

from csta_front.client import CstaClient
from tests.procs import running_exchange

WARM_UP = 1000   # sessions before the first reading: the allocator's arenas and caches fill
MEASURED = 3000  # sessions between the readings
ALLOWED_MB = 2.0  # a third of what the leak added over MEASURED sessions


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def churn(address: str, port: int, count: int) -> None:
    for _ in range(count):
        client = await CstaClient.connect(address, port, timeout=10.0)
        try:
            await client.start_application_session("churn memory test")
            await client.monitor_start("1000")
        finally:
            await client.close()


def test_closed_sessions_do_not_accumulate_in_the_server(tmp_path):
    with running_exchange(tmp_path, lims=(1,), cstas=(1,)) as running:
        lim = running.topology.lim(1)
        server = next(proc for name, proc in running.procs.procs.items() if name.startswith("csta"))

        def sessions(count: int) -> None:
            asyncio.run(asyncio.wait_for(churn(lim.address, lim.csta.port, count), 300))
        sessions(WARM_UP)
        before = rss_mb(server.pid)
        sessions(MEASURED)
        after = rss_mb(server.pid)
    grown = after - before
    assert grown < ALLOWED_MB, (f"the CSTA server's RSS grew {grown:.2f} MB over {MEASURED} sessions "
                                f"({grown * 1024 / MEASURED:.2f} kB a session): {before:.1f} -> {after:.1f} MB")
