"""A node waiting for its events to reach the broker probes with a growing interval (broker/node.py
`_probe`): at the start of a large exchange a hundred nodes wait for a busy broker, and each asked
50 times a second."""
from __future__ import annotations

from broker.node import BusNode
from broker.timers import FakeClock, TimerQueue
from topology.model import BrokerSettings


def probes_in(seconds: float, settings: BrokerSettings) -> list[float]:
    clock = FakeClock(0.0)
    timers = TimerQueue(clock)
    node = BusNode("lim-1", settings, timers, incarnation=1, role="lim", lim=1)
    sent: list[float] = []
    node.publish = lambda topics, kind, body: sent.append(clock())  # type: ignore[method-assign]
    node._probe()
    clock.advance(seconds, timers)
    return sent


def test_probes_start_at_20_ms_and_slow_down_to_one_heartbeat_interval():
    sent = probes_in(1.0, BrokerSettings())  # heartbeat 100 ms
    gaps = [round(b - a, 3) for a, b in zip(sent, sent[1:])]
    assert gaps[:4] == [0.02, 0.04, 0.08, 0.1]
    assert set(gaps[3:]) == {0.1}
    assert len(sent) <= 13  # 50 at a fixed 20 ms


def test_probing_stops_once_the_events_flow():
    clock = FakeClock(0.0)
    timers = TimerQueue(clock)
    node = BusNode("lim-1", BrokerSettings(), timers, incarnation=1, role="lim", lim=1)
    sent: list[float] = []
    node.publish = lambda topics, kind, body: sent.append(clock())  # type: ignore[method-assign]
    node._probe()
    clock.advance(0.05, timers)
    node.publishing = True  # our probe came back (BusNode._on_sub)
    clock.advance(2.0, timers)
    assert sent == [0.0, 0.02]
