"""A node's connection to the bus: DEALER for requests, PUB for events, SUB for subscriptions.

Poll-driven (no threads): the owning process calls `poll_once()` in its loop. The node sends
heartbeats, treats broker silence as a broker failure and reconnects (the ZeroMQ guide's Paranoid
Pirate), re-registers after a reconnect, and obeys `rejoin` from a broker that declared it dead.
Requests carry a timeout; a request that gets no reply is answered locally with an error.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

import zmq

from broker.envelope import SYSTEM_TOPIC, Envelope, EnvelopeError, decode, decode_body, decode_header
from broker.timers import TimerQueue
from topology.model import BrokerSettings

log = logging.getLogger("bus")

# Multipart messages go out frame by frame with a plain int flag: Socket.send_multipart costs
# 2.5 times as much for our three small frames (it type-checks every part and builds each
# SNDMORE flag through Python's enum machinery): 3.8 us against 1.5 us per message.
_MORE = int(zmq.SNDMORE)


def _send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    send = sock.send
    for frame in frames[:-1]:
        send(frame, _MORE)
    send(frames[-1])

ReplyHandler = Callable[[dict[str, Any]], None]


class BusNode:
    def __init__(self, node_id: str, settings: BrokerSettings, timers: TimerQueue, *,
                 incarnation: int, role: str | None = None, lim: int | None = None,
                 ctx: zmq.Context | None = None):
        self.node_id = node_id
        self.settings = settings
        self.timers = timers
        self.incarnation = incarnation
        self.role = role  # None: a client that never registers (CLI, tests)
        self.lim = lim
        self.ctx = ctx or zmq.Context.instance()
        self.interval = settings.heartbeat_interval_ms / 1000.0
        self.dead_after = settings.dead_after_ms / 1000.0
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._pending: dict[int, tuple[ReplyHandler | None, Any]] = {}
        self._topics: set[str] = set()
        self.registered = False
        self.publishing = False  # our PUB socket's events are known to reach the broker
        self.last_heard = timers.now()
        self.membership_version = -1
        # Callbacks the owner sets.
        self.on_request: Callable[[Envelope], None] = lambda env: None
        self.on_event: Callable[[str, Envelope], None] = lambda topic, env: None
        self.on_members: Callable[[list[dict]], None] = lambda members: None
        self.on_member: Callable[[dict], None] = lambda change: None
        self.on_rejoin: Callable[[], int] = lambda: self.incarnation + 1
        self.on_registered: Callable[[], None] = lambda: None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        ep = self.settings.primary
        self.ctx.setsockopt(zmq.IPV6, 1)  # the topology may give an IPv6 address
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.SNDHWM, 100_000)
        self.pub.connect(ep.url("pub"))
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        self.sub.connect(ep.url("sub"))
        for topic in self._topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._connect_dealer()
        if self.role is not None:
            self.sub.setsockopt(zmq.SUBSCRIBE, SYSTEM_TOPIC.encode())
            # Register only once our own events are known to flow: a PUB socket drops what it
            # sends before its connection to the broker is up, and a peer acting on our
            # registration at once (a call offered to us) would otherwise lose our first events.
            self.sub.setsockopt(zmq.SUBSCRIBE, self._probe_topic.encode())
            self._probe()
            self.timers.call_later(self.interval, self._heartbeat)

    @property
    def _probe_topic(self) -> str:
        return f"probe:{self.node_id}|"

    def _probe(self) -> None:
        if not self.publishing:
            self.publish([self._probe_topic], "probe", {})
            self.timers.call_later(0.02, self._probe)

    def close(self) -> None:
        for sock in (self.dealer, self.pub, self.sub):
            sock.close(0)

    def _connect_dealer(self) -> None:
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.IDENTITY, self.node_id.encode())
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.SNDHWM, 100_000)
        self.dealer.connect(self.settings.primary.url("router"))
        self.poller = zmq.Poller()
        self.poller.register(self.dealer, zmq.POLLIN)
        self.poller.register(self.sub, zmq.POLLIN)
        self.last_heard = self.timers.now()

    def _register(self) -> None:
        self.registered = False
        if not self.publishing:
            return  # _on_sub registers when the probe comes back
        self.request("broker", "register", {"role": self.role, "lim": self.lim},
                     self._on_register_reply, timeout=max(1.0, self.dead_after))

    def _on_register_reply(self, reply: dict) -> None:
        if reply.get("error") == "rejoin":
            self._rejoin()
            return
        if not reply.get("ok"):
            log.warning("register failed: %s; retrying", reply.get("message"))
            self.timers.call_later(self.interval, self._register)
            return
        self.registered = True
        self.membership_version = reply.get("mv", -1)
        self.on_members(reply.get("members", []))
        self.on_registered()

    def _rejoin(self) -> None:
        log.warning("the broker declared this node dead: rejoining with fresh state")
        self.incarnation = self.on_rejoin()
        self._register()

    def _heartbeat(self) -> None:
        now = self.timers.now()
        if not self.registered:
            # Registration has its own retry; beats from an unregistered incarnation mean nothing.
            self.last_heard = now
        elif now - self.last_heard > self.dead_after:
            log.warning("broker silent for %.2fs: reconnecting", now - self.last_heard)
            self.dealer.close(0)
            self._connect_dealer()
            # Our PUB and SUB reconnect by themselves, maybe later than the DEALER: register only
            # once our events are seen to flow again, as at start.
            self.publishing = False
            self.sub.setsockopt(zmq.SUBSCRIBE, self._probe_topic.encode())
            self._probe()
            self._register()
        else:
            self._send("broker", "heartbeat", {}, msg_id=0)
        self.timers.call_later(self.interval, self._heartbeat)

    # -- sending -------------------------------------------------------------------------------
    def _send(self, dst: str, kind: str, body: dict, msg_id: int, reply_to: int = 0) -> None:
        env = Envelope(kind=kind, src=self.node_id, dst=dst, body=body, incarnation=self.incarnation,
                       seq=next(self._seq), msg_id=msg_id, reply_to=reply_to)
        _send_frames(self.dealer, env.frames())

    def request(self, dst: str, kind: str, body: dict, on_reply: ReplyHandler | None = None,
                timeout: float = 2.0) -> int:
        msg_id = next(self._ids)
        timer = self.timers.call_later(timeout, lambda: self._expire(msg_id, dst, kind))
        self._pending[msg_id] = (on_reply, timer)
        self._send(dst, kind, body, msg_id)
        return msg_id

    def send(self, dst: str, kind: str, body: dict) -> None:
        """One-way message: no reply expected."""
        self._send(dst, kind, body, msg_id=0)

    def reply(self, request: Envelope, body: dict) -> None:
        if request.msg_id:
            self._send(request.src, "reply", body, msg_id=next(self._ids), reply_to=request.msg_id)

    def publish(self, topics: list[str], kind: str, body: dict) -> None:
        env = Envelope(kind=kind, src=self.node_id, body=body, incarnation=self.incarnation,
                       seq=next(self._seq))
        header, payload = env.frames()  # encoded once, sent once per topic
        send = self.pub.send
        for topic in topics:
            send(topic.encode(), _MORE)
            send(header, _MORE)
            send(payload)

    def subscribe(self, topic: str) -> None:
        if topic not in self._topics:
            self._topics.add(topic)
            self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def unsubscribe(self, topic: str) -> None:
        if topic in self._topics:
            self._topics.discard(topic)
            self.sub.setsockopt(zmq.UNSUBSCRIBE, topic.encode())

    def _expire(self, msg_id: int, dst: str, kind: str) -> None:
        entry = self._pending.pop(msg_id, None)
        if entry and entry[0]:
            entry[0]({"ok": False, "error": "timeout", "message": f"no reply from {dst} to {kind}"})

    # -- receiving -----------------------------------------------------------------------------
    def poll_once(self, max_wait: float) -> None:
        timeout_ms = int(self.timers.next_delay(max_wait) * 1000)
        for sock, _ in self.poller.poll(timeout_ms):
            self.drain(sock)
        self.timers.run_due()

    def sockets(self) -> tuple[zmq.Socket, zmq.Socket]:
        """The sockets to watch, for an owner that polls other things too (a CSTA front end).
        The DEALER is replaced on reconnect: ask again after each poll."""
        return self.dealer, self.sub

    def drain(self, sock: zmq.Socket) -> None:
        """Handle what is waiting on one of our sockets (a batch, not only one message)."""
        for _ in range(1000):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return  # the socket was closed by a reconnect meanwhile
            if sock is self.dealer:
                self._on_dealer(frames)
            elif sock is self.sub:
                self._on_sub(frames)
            else:
                return

    def _on_dealer(self, frames: list[bytes]) -> None:
        try:
            env = decode(frames)
        except EnvelopeError as exc:
            log.warning("dropped a bad message: %s", exc)
            return
        if env.src == "broker":
            self.last_heard = self.timers.now()
            if env.kind == "heartbeat":
                mv = env.body.get("mv", -1)
                if self.registered and mv != self.membership_version:
                    self.request("broker", "members", {}, self._on_members_reply)
                return
            if env.kind == "rejoin":
                if env.body.get("incarnation") == self.incarnation:
                    self._rejoin()
                return  # otherwise about an incarnation we have already left behind
        if env.reply_to:
            entry = self._pending.pop(env.reply_to, None)
            if entry is None:
                return  # a late reply to a request that already timed out
            handler, timer = entry
            timer.cancel()
            if handler:
                handler(env.body)
            return
        self.on_request(env)

    def _on_members_reply(self, reply: dict) -> None:
        if reply.get("ok"):
            self.membership_version = reply.get("mv", -1)
            self.on_members(reply.get("members", []))

    def _on_sub(self, frames: list[bytes]) -> None:
        if len(frames) != 3:
            log.warning("dropped an event of %d frames", len(frames))
            return
        try:
            env = decode_header(frames[1])
            env.body = decode_body(frames[2])
        except EnvelopeError as exc:
            log.warning("dropped a bad event: %s", exc)
            return
        topic = frames[0].decode(errors="replace")
        if topic == self._probe_topic:
            if not self.publishing and self.role is not None:
                self.publishing = True
                self.sub.setsockopt(zmq.UNSUBSCRIBE, topic.encode())
                self._register()
            return
        if topic == SYSTEM_TOPIC and env.kind == "member":
            self.membership_version = env.body.get("mv", self.membership_version)
            self.on_member(env.body)
            return
        self.on_event(topic, env)
