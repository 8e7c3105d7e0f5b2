"""The bus's pure parts: envelope, liveness, timers, directory."""
from __future__ import annotations

import time

import msgpack
import pytest

from broker.directory import Directory
from broker.envelope import (PROTOCOL_VERSION, Envelope, EnvelopeError, decode, device_topic)
from broker.liveness import DEAD, SUSPECT, UP, Liveness
from broker.timers import FakeClock, TimerQueue
from topology.model import BrokerSettings, Extension, HuntGroup, Lim, Topology, TrunkRoute


def test_envelope_round_trip():
    env = Envelope("call.offer", src="lim-1", dst="dev:2000", body={"call_id": "1", "n": [1, 2]},
                   incarnation=3, seq=7, msg_id=9, reply_to=0)
    back = decode(env.frames())
    assert back == env


@pytest.mark.parametrize("frames, problem", [
    ([b"\xc1", msgpack.packb({})], "undecodable header"),
    ([msgpack.packb([PROTOCOL_VERSION + 1, "x", "a", 0, 0, 0, 0, "b"]), msgpack.packb({})], "protocol version"),
    ([msgpack.packb([PROTOCOL_VERSION, "x"]), msgpack.packb({})], "fields"),
    ([msgpack.packb([PROTOCOL_VERSION, 1, "a", 0, 0, 0, 0, "b"]), msgpack.packb({})], "wrong types"),
    ([msgpack.packb({"v": 1}), msgpack.packb({})], "not a list"),
    ([Envelope("x").header_frame(), msgpack.packb([1, 2])], "not a map"),
    ([Envelope("x").header_frame(), b"\xc1"], "undecodable body"),
    ([Envelope("x").header_frame()], "frames"),
])
def test_bad_envelopes_are_rejected(frames, problem):
    with pytest.raises(EnvelopeError, match=problem):
        decode(frames)


def test_wrong_version_is_rejected_before_the_body_is_read():
    header = msgpack.packb([99, "x", "a", 0, 0, 0, 0, "b"])
    with pytest.raises(EnvelopeError, match="protocol version 99"):
        decode([header, b"\xc1 garbage that would not decode"])


def test_device_topics_do_not_prefix_each_other():
    assert not device_topic("1000").startswith(device_topic("100"))


def test_liveness_up_suspect_dead():
    live = Liveness(interval_s=0.1, dead_after_s=0.6)
    verdict, changes = live.register("lim-1", "lim", 1, incarnation=1, now=0.0)
    assert verdict == "ok" and [c.state for c in changes] == [UP]
    assert live.check(0.15) == []
    assert [c.state for c in live.check(0.21)] == [SUSPECT]
    verdict, changes = live.heard("lim-1", 1, now=0.3)
    assert verdict == "ok" and [c.state for c in changes] == [UP]
    assert [c.state for c in live.check(0.91)] == [DEAD]
    assert live.check(2.0) == []  # dead is announced once
    assert live.heard("lim-1", 1, now=2.1)[0] == "rejoin"  # a hung node that wakes up
    assert live.register("lim-1", "lim", 1, incarnation=1, now=2.1) == ("rejoin", [])
    live.register("lim-1", "lim", 1, incarnation=2, now=2.2)
    assert live.heard("lim-1", 1, now=2.3)[0] == "stale"  # still queued from before it rejoined
    assert live.heard("lim-1", 2, now=2.3)[0] == "ok"
    assert live.heard("lim-1", 3, now=2.4)[0] == "unknown"  # a newer incarnation, not registered yet
    assert live.heard("cli-1", 0, now=2.3)[0] == "unknown"


def test_liveness_restart_with_new_incarnation_declares_the_old_one_dead():
    live = Liveness(0.1, 0.6)
    live.register("lim-2", "lim", 2, 1, 0.0)
    verdict, changes = live.register("lim-2", "lim", 2, 2, 0.1)
    assert [(c.incarnation, c.state) for c in changes] == [(1, DEAD), (2, UP)]
    assert live.register("lim-2", "lim", 2, 1, 0.2)[0] == "rejoin"  # an older incarnation
    assert live.heard("lim-2", 1, 0.2)[0] == "stale"


def test_timer_queue_with_fake_clock():
    clock = FakeClock(0.0)
    timers = TimerQueue(clock)
    fired = []
    timers.call_later(1.0, lambda: fired.append(("a", clock())))
    cancelled = timers.call_later(0.5, lambda: fired.append("never"))
    timers.call_later(2.0, lambda: fired.append(("b", clock())))
    cancelled.cancel()
    assert timers.next_delay(10.0) == 1.0
    clock.advance(1.5, timers)
    assert fired == [("a", 1.0)]
    clock.advance(1.0, timers)
    assert fired == [("a", 1.0), ("b", 2.0)]
    assert timers.next_delay(10.0) == 10.0


@pytest.mark.parametrize("due_in, expected_ms", [(0.1, 100), (0.0999, 100), (0.0009, 1), (0.0, 0), (-1.0, 0),
                                                   (0.1001, 101)])
def test_the_poll_timeout_never_wakes_before_the_timer_is_due(due_in, expected_ms):
    """Rounded down, a timer 0.9 ms away meant poll(0) over and over until it was due: an idle
    process spun through its loop about 20 times per heartbeat."""
    clock = FakeClock(100.0)
    timers = TimerQueue(clock)
    timers.call_later(due_in, lambda: None)
    assert timers.poll_timeout_ms(10.0) == expected_ms
    assert TimerQueue(clock).poll_timeout_ms(0.2) == 200  # no timer: the loop's own bound


def test_an_idle_poll_loop_wakes_about_once_per_timer():
    """Real time and a real zmq poll: a 20 ms repeating timer for half a second is about 25 wake-ups
    of the loop, not hundreds (the spin the rounding made)."""
    import zmq

    timers = TimerQueue()
    ticks = []

    def tick():
        ticks.append(1)
        timers.call_later(0.02, tick)

    timers.call_later(0.02, tick)
    poller, polls = zmq.Poller(), 0
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    poller.register(sock, zmq.POLLIN)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        poller.poll(timers.poll_timeout_ms(0.2))
        polls += 1
        timers.run_due()
    sock.close(0)
    assert len(ticks) >= 10
    assert polls <= 2 * len(ticks) + 2, (polls, len(ticks))


def test_directory_routes_internal_numbers_and_trunk_prefixes():
    topo = Topology(name="t", broker=BrokerSettings(), lims=(Lim(1, "a"), Lim(2, "b")),
                    extensions=(Extension("1000", "ip", 1, True), Extension("2000", "ip", 2, True)),
                    hunt_groups=(HuntGroup("6000", 2, "linear", ("1000",)),),
                    trunks=(TrunkRoute("pstn", "0", 1), TrunkRoute("intl", "00", 2)))
    d = Directory(topo)
    assert d.owner("1000") == 1 and d.owner("2000") == 2 and d.owner("6000") == 2
    assert d.owner("0123") == 1 and d.owner("00441") == 2
    assert d.owner("0") is None  # the prefix alone is not a number
    assert d.owner("3000") is None
    assert d.is_external("0123") and not d.is_external("1000")
