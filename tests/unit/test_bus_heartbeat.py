"""Heartbeats whose cost does not grow with the number of members: the broker publishes one beat
per interval on `hb|` for everyone, each node answers it (unless it spoke to the broker lately),
and a node's watchdog on the broker's silence wakes about once per dead_after, not every interval.
Pure: a node and a broker with fake sockets and a fake clock."""
from __future__ import annotations

from pathlib import Path

import msgpack

from broker.envelope import HEARTBEAT_TOPIC, SYSTEM_TOPIC, decode_header
from broker.node import BusNode
from broker.process import Broker
from broker.protocol import Kind
from broker.timers import FakeClock, TimerQueue
from topology.loader import load_topology
from topology.model import BrokerSettings

TOPOLOGY = Path(__file__).resolve().parents[2] / "topology" / "default.yaml"


class FakeSocket:
    """Records what is sent: whole messages, from frames sent one by one or all at once."""

    def __init__(self):
        self.messages: list[list[bytes]] = []
        self._partial: list[bytes] = []

    def send(self, frame: bytes, flags: int = 0) -> None:
        self._partial.append(frame)
        if not flags:
            self.messages.append(self._partial)
            self._partial = []

    def send_multipart(self, frames: list[bytes]) -> None:
        self.messages.append(list(frames))

    def kinds(self) -> list[str]:
        return [decode_header(m[0]).kind for m in self.messages]


class FakeFanout:
    def __init__(self):
        self.published: list[list[bytes]] = []

    def publish(self, frames: list[bytes]) -> None:
        self.published.append(frames)


def registered_node(clock: FakeClock) -> tuple[BusNode, TimerQueue, list[bool]]:
    timers = TimerQueue(clock)
    node = BusNode("lim-1", BrokerSettings(), timers, incarnation=1, role="lim", lim=1)
    node.dealer = FakeSocket()
    reconnects: list[bool] = []
    node._reconnect = lambda switch: reconnects.append(switch) or setattr(node, "registered", False)
    node.registered = True
    node.membership_version = 5
    node.timers.call_later(node.interval, lambda: node._heartbeat())  # as start() does
    return node, timers, reconnects


def beat_frames(mv: int, incarnation: int, seq: int = 1) -> list[bytes]:
    from broker.envelope import Envelope
    env = Envelope(kind=Kind.HEARTBEAT, src="broker", body={"mv": mv}, incarnation=incarnation, seq=seq)
    return [HEARTBEAT_TOPIC.encode(), *env.frames()]


def test_the_broker_beats_once_for_all_members_on_its_own_topic():
    broker = Broker(load_topology(TOPOLOGY), timers=TimerQueue(FakeClock()))
    broker.fanout, broker.router = FakeFanout(), FakeSocket()
    for n in range(1, 101):
        broker.liveness.register(f"lim-{n}", "lim", n, incarnation=1, now=broker.timers.now())
    broker._tick()
    beats = [f for f in broker.fanout.published if f[0] == HEARTBEAT_TOPIC.encode()]
    assert len(beats) == 1 and broker.router.messages == []  # not one ROUTER message per member
    header = decode_header(beats[0][1])
    assert header.kind == Kind.HEARTBEAT and header.incarnation == broker.incarnation
    assert msgpack.unpackb(beats[0][2]) == {"mv": broker.membership_version}
    # Listeners of `sys|` (mxone events, the live view) hear membership only, never a beat.
    assert all(decode_header(f[1]).kind == Kind.MEMBER for f in broker.fanout.published if f[0] == SYSTEM_TOPIC.encode())


def test_a_node_answers_the_beat_unless_it_spoke_to_the_broker_lately():
    clock = FakeClock()
    node, timers, _ = registered_node(clock)
    node._on_sub(beat_frames(mv=5, incarnation=7))
    assert node.dealer.kinds() == [Kind.HEARTBEAT]
    clock.advance(0.1, timers)
    node.send("dev:2000", Kind.PHONE, {"action": "offhook"})  # any message counts as a beat
    clock.advance(0.01, timers)
    node._on_sub(beat_frames(mv=5, incarnation=7, seq=2))
    assert node.dealer.kinds() == [Kind.HEARTBEAT, Kind.PHONE]
    clock.advance(0.1, timers)
    node._on_sub(beat_frames(mv=5, incarnation=7, seq=3))
    assert node.dealer.kinds() == [Kind.HEARTBEAT, Kind.PHONE, Kind.HEARTBEAT]


def test_a_new_membership_version_is_asked_for_instead_of_a_beat():
    node, _, _ = registered_node(FakeClock())
    node._on_sub(beat_frames(mv=6, incarnation=7))
    assert node.dealer.kinds() == [Kind.MEMBERS]


def test_a_beat_from_a_restarted_broker_makes_the_node_register_again():
    clock = FakeClock()
    node, timers, reconnects = registered_node(clock)
    node._on_sub(beat_frames(mv=5, incarnation=7))
    clock.advance(0.1, timers)
    node._on_sub(beat_frames(mv=0, incarnation=8))  # the new broker knows nothing of us
    assert reconnects == [False]


def test_the_watchdog_wakes_rarely_while_beats_come_and_catches_silence_in_time():
    clock = FakeClock()
    node, timers, reconnects = registered_node(clock)
    runs = []
    watchdog = node._heartbeat
    node._heartbeat = lambda: runs.append(clock()) or watchdog()
    for seq in range(1, 31):  # 3 s of beats every 100 ms
        clock.advance(0.1, timers)
        node._on_sub(beat_frames(mv=5, incarnation=7, seq=seq))
    assert reconnects == [] and len(runs) <= 6  # was 30: one per interval
    silent_from = clock()
    while not reconnects and clock() - silent_from < 2:
        clock.advance(0.01, timers)
    assert reconnects == [False]
    assert clock() - silent_from <= node.dead_after + node.interval + 0.02
