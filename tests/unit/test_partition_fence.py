"""Partitions, without a network: a CSTA server never shows an event of a LIM incarnation the
broker has declared dead, and tells its monitors of a LIM that came back as a new incarnation
while the server was cut off (csta_front/server.py)."""
from __future__ import annotations

from broker.envelope import Envelope
from broker.timers import FakeClock, TimerQueue
from csta_front.monitors import Monitor
from csta_front.server import FrontEnd
from tests.csta_fakes import FakeBus, default_topology
from topology.model import CstaSettings


def make_front() -> tuple[FrontEnd, list]:
    bus = FakeBus()
    front = FrontEnd(default_topology(), 1, bus, TimerQueue(FakeClock()), CstaSettings())
    delivered: list = []
    front._deliver = lambda topic, body, key=None: delivered.append(body["n"])
    return front, delivered


def event(n: int, incarnation: int, src: str = "lim-2") -> Envelope:
    return Envelope("event", src, body={"n": n}, incarnation=incarnation)


def test_events_of_a_dead_incarnation_are_never_shown():
    front, delivered = make_front()
    front.on_member({"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 3, "state": "up"})
    front.on_event("d:2000|", event(1, 3))
    front.on_member({"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 3, "state": "dead"})
    front.on_event("d:2000|", event(2, 3))      # published while cut off, delivered after the heal
    front.on_event("d:1000|", event(3, 1, "lim-1"))  # another LIM: unaffected
    front.on_member({"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 4, "state": "up"})
    front.on_event("d:2000|", event(4, 4))      # the new incarnation
    front.on_event("d:2000|", event(5, 3))      # the old one, later still
    assert delivered == [1, 3, 4]
    assert front.stale_dropped == 2


def test_a_lim_back_as_a_new_incarnation_unheard_is_told_as_out_and_back():
    """The server was cut off while LIM 2 was declared dead and came back: all it hears after is
    LIM 2 up with a new incarnation. Its monitors learn what they missed (and nothing twice)."""
    front, _ = make_front()
    told = []

    session = type("S", (), {"event": staticmethod(lambda monitor, body: told.append(body["event"]))})
    front.monitors.by_xref["1"] = Monitor("1", session, "device", "2000", "dev:2000")
    front.bus.on_members([{"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 3, "state": "up"}])
    front.bus.on_members([{"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 3, "state": "up"}])
    assert told == []
    front.bus.on_members([{"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 4, "state": "up"}])
    assert told == ["OutOfService", "BackInService"]
    front.on_event("d:2000|", event(9, 3))  # the old incarnation is fenced from now on
    front.on_member({"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 3, "state": "dead"})  # late news
    assert told == ["OutOfService", "BackInService"]
    front.on_member({"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 4, "state": "dead"})
    front.on_member({"role": "lim", "lim": 2, "node": "lim-2", "incarnation": 5, "state": "up"})
    assert told == ["OutOfService", "BackInService", "OutOfService", "BackInService"]
