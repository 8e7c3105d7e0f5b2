"""Requests in flight at a broker failover: sent again with the same id, served once.

The pure memory of answers (broker/dedupe.py) with a fake clock; a BusNode's sending and serving
sides with a fake DEALER (what it sends is decoded and checked); the broker's refusal for a node it
has not heard of yet just after starting (broker_failover, not lim_down).
"""
from __future__ import annotations

import msgpack
import pytest

from broker.dedupe import IN_PROGRESS, AnswerMemory
from broker.envelope import Envelope, decode
from broker.node import BusNode
from broker.process import Broker
from broker.protocol import Kind, Refusal
from broker.timers import FakeClock, TimerQueue
from topology.model import BrokerEndpoint, BrokerSettings, Extension, Lim, Topology


# -- the memory of answers -------------------------------------------------------------------------
def test_a_copy_of_an_answered_request_gets_the_first_answer_and_is_not_served_again():
    memory = AnswerMemory(ttl=10, limit=100)
    assert memory.begin(("cli-1", 0, 7), now=0.0) is None          # new: serve it
    assert memory.begin(("cli-1", 0, 7), now=0.1) is IN_PROGRESS   # a copy while it is served
    memory.answered(("cli-1", 0, 7), {"ok": True, "call_id": "1"})
    assert memory.begin(("cli-1", 0, 7), now=0.2) == {"ok": True, "call_id": "1"}
    assert memory.duplicates == 2
    # The same message id from another sender, or another incarnation, is another request.
    assert memory.begin(("cli-2", 0, 7), now=0.3) is None
    assert memory.begin(("cli-1", 1, 7), now=0.3) is None


def test_remembered_answers_expire():
    memory = AnswerMemory(ttl=5, limit=100)
    memory.begin("a", now=0.0)
    memory.answered("a", {"ok": True})
    assert memory.begin("a", now=4.9) == {"ok": True}
    memory.begin("b", now=5.0)  # a later arrival expires "a" (first seen 5 s ago)
    assert len(memory) == 1
    assert memory.begin("a", now=5.1) is None  # forgotten: a new request


def test_remembered_answers_are_bounded_in_number_oldest_forgotten_first():
    memory = AnswerMemory(ttl=1000, limit=3)
    for i in range(5):
        memory.begin(i, now=float(i))
        memory.answered(i, {"n": i})
    assert len(memory) == 3
    assert memory.begin(4, now=6.0) == {"n": 4} and memory.begin(2, now=6.0) == {"n": 2}
    assert memory.begin(0, now=6.0) is None  # the oldest went first
    memory.answered("never seen", {"n": -1})  # an answer for a forgotten request is not kept
    assert "never seen" not in memory._entries


def test_hostile_settings_are_refused():
    with pytest.raises(ValueError):
        AnswerMemory(ttl=0)
    with pytest.raises(ValueError):
        AnswerMemory(limit=0)


# -- a node's two sides, over a fake DEALER --------------------------------------------------------
class FakeDealer:
    """Collects the messages a node sends (a message's frames end with flags 0)."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self._frames: list[bytes] = []

    def close(self, linger: int = 0) -> None:
        pass

    def send(self, frame: bytes, flags: int = 0) -> None:
        self._frames.append(frame)
        if not flags:
            self.messages.append(decode(self._frames))
            self._frames = []


def make_node(node_id: str = "cli-1", role: str | None = None) -> tuple[BusNode, FakeClock, FakeDealer]:
    clock = FakeClock()
    node = BusNode(node_id, BrokerSettings(), TimerQueue(clock), incarnation=4, role=role)
    node.dealer = FakeDealer()
    return node, clock, node.dealer


def deliver(node: BusNode, env: Envelope) -> None:
    node._on_dealer(env.frames())


def test_a_resent_request_is_served_once_and_its_copy_gets_the_same_answer():
    lim, _, dealer = make_node("lim-2", role="lim")
    served = []

    def serve(env: Envelope) -> None:
        served.append(env)
        if len(served) == 1:
            lim.reply(env, {"ok": True, "call_id": "002000001000000000000001"})
    lim.on_request = serve
    dial = Envelope(Kind.PHONE, src="cli-9", dst="dev:2000", body={"action": "dial", "digits": "1000"},
                    incarnation=0, seq=1, msg_id=17)
    deliver(lim, dial)
    deliver(lim, dial)  # the same request again, through the new broker: its reply was lost
    assert len(served) == 1
    replies = [m for m in dealer.messages if m.kind == Kind.REPLY]
    assert [(r.dst, r.reply_to, r.body) for r in replies] == [
        ("cli-9", 17, {"ok": True, "call_id": "002000001000000000000001"})] * 2


def test_a_copy_of_a_request_still_in_progress_is_dropped_its_one_answer_serves_both():
    lim, _, dealer = make_node("lim-2", role="lim")
    served = []
    lim.on_request = served.append  # answered later (an offer to another LIM first)
    answer = Envelope(Kind.PHONE, src="cli-9", body={"action": "answer"}, incarnation=0, msg_id=3)
    deliver(lim, answer)
    deliver(lim, answer)
    assert len(served) == 1 and dealer.messages == []
    lim.reply(served[0], {"ok": True})
    assert [(m.dst, m.reply_to) for m in dealer.messages] == [("cli-9", 3)]


def test_an_unanswered_request_is_sent_again_with_the_same_id_until_answered():
    client, clock, dealer = make_node()
    replies = []
    msg_id = client.request("dev:2000", Kind.PHONE, {"action": "answer"}, replies.append, timeout=3.0)
    clock.advance(client.resend_after + 0.01, client.timers)
    clock.advance(client.resend_after, client.timers)
    sent = [m for m in dealer.messages if m.dst == "dev:2000"]
    assert len(sent) == 3 and {m.msg_id for m in sent} == {msg_id}
    assert all(m.body == {"action": "answer"} for m in sent)
    deliver(client, Envelope(Kind.REPLY, src="lim-2", dst="cli-1", body={"ok": True}, msg_id=99, reply_to=msg_id))
    deliver(client, Envelope(Kind.REPLY, src="lim-2", dst="cli-1", body={"ok": True}, msg_id=100, reply_to=msg_id))
    clock.advance(5.0, client.timers)
    assert replies == [{"ok": True}]  # once, and no timeout after it
    assert len([m for m in dealer.messages if m.dst == "dev:2000"]) == 3


def test_a_failover_refusal_is_not_final_the_request_goes_again_then_the_refusal_at_the_deadline():
    client, clock, dealer = make_node()
    replies = []
    msg_id = client.request("dev:2000", Kind.PHONE, {"action": "dial", "digits": "1000"}, replies.append,
                            timeout=1.0)
    refusal = {"ok": False, "error": Refusal.BROKER_FAILOVER, "message": "lim-2 has not registered yet"}
    deliver(client, Envelope(Kind.REPLY, src="broker", body=refusal, msg_id=5, reply_to=msg_id))
    assert replies == []
    clock.advance(client.interval + 0.001, client.timers)
    assert len([m for m in dealer.messages if m.dst == "dev:2000"]) == 2
    clock.advance(1.0, client.timers)
    assert replies == [refusal]  # the real cause, not a timeout


def test_a_final_refusal_is_given_at_once():
    client, _, _ = make_node()
    replies = []
    msg_id = client.request("dev:2000", Kind.PHONE, {"action": "answer"}, replies.append)
    busy = {"ok": False, "error": Refusal.NOT_ALERTING, "message": "2000 is not ringing"}
    deliver(client, Envelope(Kind.REPLY, src="lim-2", body=busy, msg_id=5, reply_to=msg_id))
    assert replies == [busy]


class FakeSocket:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def connect(self, url: str) -> None:
        self.urls.append(url)

    def disconnect(self, url: str) -> None:
        if url in self.urls:
            self.urls.remove(url)


def test_moving_to_the_other_broker_sends_what_is_in_flight_through_it():
    clock = FakeClock()
    pair = BrokerSettings(backup=BrokerEndpoint(address="127.0.0.2"))
    client = BusNode("cli-1", pair, TimerQueue(clock), incarnation=0)
    dealers = [FakeDealer()]
    client.dealer = dealers[0]
    client.pub, client.sub = FakeSocket(), FakeSocket()

    def new_dealer() -> None:  # what _connect_dealer does, with a fake socket for the new broker
        dealers.append(FakeDealer())
        client.dealer = dealers[-1]
    client._connect_dealer = new_dealer
    replies = []
    msg_id = client.request("dev:2000", Kind.PHONE, {"action": "answer"}, replies.append, timeout=3.0)
    client.move_to_other_broker()  # its broker is gone (a status request timed out, or "passive")
    assert client.endpoint.address == "127.0.0.2" and "tcp://127.0.0.2:7802" in client.sub.urls
    resent = [m for m in dealers[1].messages if m.dst == "dev:2000"]
    assert [(m.msg_id, m.body) for m in resent] == [(msg_id, {"action": "answer"})]


def test_requests_to_the_broker_itself_are_not_resent():
    client, clock, dealer = make_node()
    client.request("broker", Kind.STATUS, {}, lambda reply: None, timeout=3.0)
    clock.advance(2.0, client.timers)
    assert len([m for m in dealer.messages if m.dst == "broker"]) == 1


# -- the broker: a node it has not heard of yet, just after it started ------------------------------
class FakeRouter:
    def __init__(self) -> None:
        self.replies: list[dict] = []

    def send_multipart(self, frames: list[bytes]) -> None:
        self.replies.append(msgpack.unpackb(frames[2]))


def make_broker() -> tuple[Broker, FakeClock]:
    clock = FakeClock()
    topology = Topology(name="t", broker=BrokerSettings(), lims=(Lim(1, "127.0.0.1"), Lim(2, "127.0.0.1")),
                        extensions=(Extension("1000", "ip", 1, True), Extension("2000", "ip", 2, True)))
    broker = Broker(topology, timers=TimerQueue(clock))
    broker.router = FakeRouter()
    return broker, clock


def ask(broker: Broker, dst: str) -> dict:
    env = Envelope(Kind.PHONE, src="cli-1", dst=dst, msg_id=1)
    broker._resolve(env)
    return broker.router.replies[-1]


def test_a_restarted_broker_says_broker_failover_for_a_lim_not_yet_registered_then_lim_down():
    broker, clock = make_broker()
    assert ask(broker, "dev:2000")["error"] == Refusal.BROKER_FAILOVER
    assert ask(broker, "lim-2")["error"] == Refusal.BROKER_FAILOVER
    clock.advance(broker.settling_s + 0.1)
    assert ask(broker, "dev:2000")["error"] == Refusal.LIM_DOWN  # by now it would have come


def test_a_lim_declared_dead_is_lim_down_even_while_the_broker_settles():
    broker, clock = make_broker()
    broker.liveness.register("lim-2", "lim", 2, 1, clock())
    clock.advance(1.0)
    broker.liveness.check(clock())
    assert not broker.liveness.is_alive("lim-2")
    assert ask(broker, "dev:2000")["error"] == Refusal.LIM_DOWN
