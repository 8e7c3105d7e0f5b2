"""A CSTA server tells a LIM's monitors BackInService only after the other LIMs have released the
calls its death ended (their ConnectionCleared events come first), whichever comes first: their
word on RELEASED_TOPIC, or RELEASE_WAIT_S (csta_front/server.py)."""
from __future__ import annotations

from broker.envelope import RELEASED_TOPIC
from broker.timers import FakeClock, TimerQueue
from csta_front.monitors import Monitor
from csta_front.server import RELEASE_WAIT_S, FrontEnd
from tests.csta_fakes import FakeBus, default_topology
from topology.model import CstaSettings


def make_front() -> tuple[FrontEnd, list[str], FakeClock]:
    clock = FakeClock()
    front = FrontEnd(default_topology(), 1, FakeBus(), TimerQueue(clock), CstaSettings())
    told: list[str] = []
    session = type("S", (), {"event": staticmethod(lambda monitor, body: told.append(body["event"]))})
    front.monitors.by_xref["1"] = Monitor("1", session, "device", "2000", "dev:2000")
    for lim in (1, 2):
        front.on_member({"role": "lim", "lim": lim, "node": f"lim-{lim}", "incarnation": 3, "state": "up"})
    return front, told, clock


def member(state: str, incarnation: int, lim: int = 2) -> dict:
    return {"role": "lim", "lim": lim, "node": f"lim-{lim}", "incarnation": incarnation, "state": state}


def released(front: FrontEnd, dead: int, by: int) -> None:
    front._deliver(RELEASED_TOPIC, {"event": "LimReleased", "lim": dead, "by": by})


def test_back_in_service_waits_for_the_release_by_the_other_lims():
    front, told, _ = make_front()
    front.on_member(member("dead", 3))
    front.on_member(member("up", 4))      # restarted faster than LIM 1 released its calls
    assert told == ["OutOfService"]
    released(front, 2, 1)
    assert told == ["OutOfService", "BackInService"]


def test_a_release_before_the_return_lets_back_in_service_go_at_once():
    front, told, _ = make_front()
    front.on_member(member("dead", 3))
    released(front, 2, 1)
    front.on_member(member("up", 4))
    assert told == ["OutOfService", "BackInService"]


def test_a_release_never_heard_holds_back_in_service_only_so_long():
    front, told, clock = make_front()
    front.on_member(member("dead", 3))
    front.on_member(member("up", 4))
    clock.advance(RELEASE_WAIT_S - 0.1, front.timers)
    front.timers.run_due()
    assert told == ["OutOfService"]
    clock.advance(0.2, front.timers)
    front.timers.run_due()
    assert told == ["OutOfService", "BackInService"]


def test_a_releasing_lim_that_dies_is_not_waited_for():
    front, told, _ = make_front()
    front.on_member(member("dead", 3))
    front.on_member(member("up", 4))
    front.on_member(member("dead", 3, lim=1))
    assert told == ["OutOfService", "BackInService"]


def test_dying_again_before_back_in_service_is_not_told_twice():
    front, told, clock = make_front()
    front.on_member(member("dead", 3))
    front.on_member(member("up", 4))
    front.on_member(member("dead", 4))
    front.on_member(member("up", 5))
    released(front, 2, 1)
    clock.advance(RELEASE_WAIT_S + 1, front.timers)
    front.timers.run_due()
    assert told == ["OutOfService", "BackInService"]
