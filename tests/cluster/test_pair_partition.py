"""A partition between the two brokers of a pair: no split brain. Two hosts (network namespaces,
tests/netns.py), each started with `mxone up --host NAME`:

    host a: the primary broker, LIM 1 (and csta-1)
    host b: the backup broker, LIM 2, LIM 3 (csta-2, csta-3)

The link between them is cut. The primary, cut off from its peer and from two of the three LIMs,
steps down; only then may the backup, asked by LIM 2 and LIM 3, take over. Host b's side goes on
(its calls survive, LIM 1 is out of service there); when the link heals the primary stays passive
and LIM 1 rejoins through the backup. Prints the figures docs/failover.md reports
(`pytest tests/cluster/test_pair_partition.py -s`).
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from broker.client import BusClient
from csta_front.client import CstaClient
from lim.phone import Exchange
from tests import netns
from tests.cluster.test_partitions import Recorder
from tests.netns import Hosts
from tests.procs import lim_states, wait_for
from tests.spread import running, spread_topology
from topology.loader import load_topology

pytestmark = pytest.mark.cluster

LIM3 = {"number": 3, "csta": {"port": 8882}, "extensions": [{"numbers": "3000-3009", "type": "ip"}]}


@pytest.fixture
def hosts():
    with netns.hosts_for_test(["a", "b"]) as made:
        yield made


class StateSampler:
    """One broker's own word on its state every 50 ms, from a host that can reach it."""

    def __init__(self, hosts: Hosts, host: str, broker: int, settings):
        self.samples: list[tuple[float, str]] = []
        self.stop = threading.Event()

        def sample():
            with BusClient(settings, "sampler", pinned=broker) as client:
                while not self.stop.is_set():
                    reply = client.broker_status(timeout=0.2)
                    self.samples.append((time.monotonic(), reply.get("state", "silent")))
                    self.stop.wait(0.05)
        self.thread = threading.Thread(target=lambda: hosts.on(host, sample), daemon=True)
        self.thread.start()

    def first(self, state: str, since: float) -> float | None:
        return next((t for t, s in self.samples if s == state and t >= since), None)

    def last(self, state: str, before: float) -> float | None:
        return max((t for t, s in self.samples if s == state and t < before), default=None)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def test_a_partition_between_the_brokers_leaves_one_active(hosts, tmp_path):
    topology_file = spread_topology(tmp_path / "pair.yaml", hosts, "a", {1: "a", 2: "b", 3: "b"},
                                    backup_host="b", extra_lims=[LIM3])
    topology = load_topology(topology_file)
    with running(hosts, topology_file, tmp_path):
        primary = StateSampler(hosts, "a", 0, topology.broker)
        backup = StateSampler(hosts, "b", 1, topology.broker)
        figures: dict[str, float] = {}
        try:
            hosts.on("b", lambda: asyncio.run(asyncio.wait_for(
                scenario(hosts, topology, primary, backup, figures), 150)))
        finally:
            primary.close()
            backup.close()
    print()
    for what, seconds in figures.items():
        print(f"Pair partition: {what}: {seconds * 1000:.0f} ms")


def rejoined(state: tuple[str, int], before: int) -> bool:
    return state[0] == "up" and state[1] > before


async def scenario(hosts: Hosts, topology, primary: StateSampler, backup: StateSampler,
                   figures: dict[str, float]) -> None:
    """Runs on host b, the side that keeps most LIMs."""
    def states() -> tuple[str | None, str | None]:
        return (primary.samples[-1][1] if primary.samples else None,
                backup.samples[-1][1] if backup.samples else None)

    await asyncio.to_thread(wait_for, lambda: states() == ("active", "passive"), 20,
                            "the primary active and the backup passive")
    exchange = Exchange(topology)  # a bus client on host b: it finds the active broker itself
    try:
        lim2 = topology.lim(2)
        async with await CstaClient.connect(lim2.address, lim2.csta.port) as client:
            seen = Recorder(client)
            for device in ("2000", "2001", "3000", "1001", "2002"):
                await seen.monitor(device)
            inside = await client.make_call("2000", "3000")  # LIM 2 -> LIM 3, both on host b: survives
            await client.answer_call(inside, "3000")
            across = await client.make_call("1001", "2001")  # LIM 1 (host a) -> LIM 2
            await client.answer_call(across, "2001")
            await seen.wait("2001", "Established", 0)
            incarnation = lim_states(exchange.client)[1][1]

            cut = time.monotonic()
            hosts.cut("a", "b")
            await asyncio.to_thread(wait_for, lambda: primary.first("passive", cut), 10, "the primary to step down")
            await asyncio.to_thread(wait_for, lambda: backup.first("active", cut), 10, "the backup to take over")
            stepped_down, took_over = primary.first("passive", cut), backup.first("active", cut)
            figures["cut -> the primary steps down (no quorum)"] = stepped_down - cut
            figures["cut -> the backup is active"] = took_over - cut
            # Never both active: the primary's last 'active' came before the backup's first.
            assert primary.last("active", float("inf")) < took_over
            # Host b's side goes on: LIM 1 is out of service here, its call released, b's call kept.
            figures["cut -> OutOfService of 1001 on csta-2"] = await seen.wait("1001", "OutOfService", cut) - cut
            await seen.wait("2001", "ConnectionCleared", cut)
            assert ("ConnectionCleared", "networkNotObtainable") in seen.of("2001", cut)
            calls = await asyncio.to_thread(exchange.calls)
            assert [c["call_id"] for c in calls] == [inside]
            assert seen.of("3000", cut) == []  # nothing happened to the call inside host b

            heal = time.monotonic()
            hosts.heal("a", "b")
            # Any newer incarnation, not exactly the next: on a loaded machine a rejoined LIM whose
            # beats stall past dead_after_ms is rightly declared dead again and rejoins once more,
            # and waiting for incarnation + 1 then waited for ever.
            await asyncio.to_thread(wait_for, lambda: rejoined(lim_states(exchange.client)[1], incarnation), 30,
                                    "LIM 1 to rejoin (through the backup) as a new incarnation")
            figures["heal -> LIM 1 up again (new incarnation)"] = time.monotonic() - heal
            figures["heal -> BackInService of 1001 on csta-2"] = await seen.wait("1001", "BackInService", heal, 30) - heal
            # The primary heard the active backup: it stays passive, and nobody flapped back.
            await asyncio.to_thread(wait_for, lambda: primary.first("passive", heal + 0.5), 10, "a sample after the heal")
            assert states() == ("passive", "active")
            assert not [s for t, s in backup.samples if t > took_over and s != "active"]
            assert not [s for t, s in primary.samples if t > stepped_down and s == "active"]

            new = await client.make_call("1002", "2002")  # a new call across the healed link
            await seen.wait("2002", "Delivered", heal, 10)
            await client.clear_call(new, "1002")
            await client.clear_call(inside, "2000")
            await seen.wait("3000", "ConnectionCleared", heal)
    finally:
        exchange.close()  # also on a failure: a client left open can hang pytest when collected
