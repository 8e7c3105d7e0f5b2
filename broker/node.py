"""A node's connection to the bus: DEALER for requests, PUB for events, SUB for subscriptions.

Poll-driven (no threads): the owning process calls `poll_once()` in its loop. The node sends
heartbeats, treats broker silence as a broker failure and reconnects (the ZeroMQ guide's Paranoid
Pirate), re-registers after a reconnect, and obeys `rejoin` from a broker that declared it dead.
Requests carry a timeout; a request that gets no reply is answered locally with an error.

With a broker pair (Binary Star) a node talks to one broker at a time and moves to the other when
its broker is silent, or says it is passive. Events published while the node's broker was dying
are not lost: every publisher keeps the last few seconds of its events (`ReplayWindow`), each
event says which event this publisher sent before it on the same topic, and a subscriber that
sees a hole, or that has just moved to the other broker, asks the publisher to send again what
it missed (`bus.replay`), delivering everything in order and each event once.
"""
from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Callable

import msgpack
import zmq

from broker.dedupe import IN_PROGRESS, AnswerMemory
from broker.envelope import SYSTEM_TOPIC, Envelope, EnvelopeError, decode, decode_body, decode_header
from broker.protocol import BROKER, Kind, Refusal
from broker.replay import EventTracker, ReplayWindow
from broker.timers import TimerQueue
from topology.model import BrokerEndpoint, BrokerSettings

log = logging.getLogger("bus")

# Multipart messages go out frame by frame with a plain int flag: Socket.send_multipart costs
# 2.5 times as much for our three small frames (it type-checks every part and builds each
# SNDMORE flag through Python's enum machinery): 3.8 us against 1.5 us per message.
_MORE = int(zmq.SNDMORE)
_packb = msgpack.Packer().pack  # `prev` of each event: one reused packer


def _send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    send = sock.send
    for frame in frames[:-1]:
        send(frame, _MORE)
    send(frames[-1])

ReplyHandler = Callable[[dict[str, Any]], None]

# Refusals that say the request was not carried out because of the bus itself, not the receiver:
# sent again (same id) until the sender's deadline.
RETRYABLE = frozenset({Refusal.PASSIVE, Refusal.BROKER_FAILOVER})


class _Pending:
    """A request awaiting its reply: what it takes to send it again, the same request."""
    __slots__ = ("handler", "timer", "dst", "kind", "body", "resend", "last_refusal")

    def __init__(self, handler: ReplyHandler | None, dst: str, kind: str, body: dict, resend: bool):
        self.handler = handler
        self.dst, self.kind, self.body = dst, kind, body
        self.resend = resend  # safe to send again: the receiver remembers its id (broker/dedupe.py)
        self.timer: Any = None
        self.last_refusal: dict[str, Any] | None = None  # a RETRYABLE one: given at the deadline


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
        self._pending: dict[int, _Pending] = {}
        self.answers = AnswerMemory()  # requests served: a copy sent again gets the same answer
        # A request in flight is sent again this often until answered (it may have been lost with
        # a broker), and at once when the node moves to another broker.
        self.resend_after = max(0.3, self.dead_after)
        self.resent = 0
        self._topics: set[str] = set()
        self.endpoints = settings.endpoints()
        self._ep = 0                 # index of the broker we talk to now
        self.window = ReplayWindow()
        self.tracker = EventTracker()
        self.wall_clock: Callable[[], float] = time.time  # replay by time spans processes: wall time
        self._failed_over = False    # moved to another broker since we were last registered
        self._lims: set[str] = set()  # LIM members, as last heard
        self._moved_at = -1e9         # a client's last move to the other broker
        self._checked_broker_at = -1e9  # a client's last check of its broker (a request unanswered)
        self._left_silent_at = -1e9     # a client's last move away from a silent broker
        self.pinned = False           # a client that talks to one broker of a pair, whatever its state
        self._polled: dict[int, tuple] = {}  # an owner's poller -> our sockets registered on it
        self._lost_at = 0.0          # wall time we last heard the broker we left
        self.registered = False
        self.publishing = False  # our PUB socket's events are known to reach the broker
        self.last_heard = timers.now()
        self.attempt_started = timers.now()  # since when we try to register with this broker
        self.membership_version = -1
        # Callbacks the owner sets.
        self.on_request: Callable[[Envelope], None] = lambda env: None
        self.on_event: Callable[[str, Envelope], None] = lambda topic, env: None
        self.on_members: Callable[[list[dict]], None] = lambda members: None
        self.on_member: Callable[[dict], None] = lambda change: None
        self.on_peer: Callable[[str, int], None] = lambda node, incarnation: None  # every message of a node
        self.on_rejoin: Callable[[], int] = lambda: self.incarnation + 1
        self.on_registered: Callable[[], None] = lambda: None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def endpoint(self) -> BrokerEndpoint:
        return self.endpoints[self._ep]

    def start(self) -> None:
        ep = self.endpoint
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

    def _probe(self, delay: float = 0.02) -> None:
        # 20 ms, then twice as long each time up to one heartbeat interval: a broker that is not
        # up yet (or a machine busy starting a hundred processes) is not asked 50 times a second
        # by every node that waits for it.
        if not self.publishing:
            self.publish([self._probe_topic], Kind.PROBE, {})
            self.timers.call_later(delay, lambda: self._probe(min(2 * delay, max(0.02, self.interval))))

    def close(self) -> None:
        for sock in (self.dealer, self.pub, self.sub):
            sock.close(0)

    def _connect_dealer(self) -> None:
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.IDENTITY, self.node_id.encode())
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.SNDHWM, 100_000)
        self.dealer.connect(self.endpoint.url("router"))
        self.poller = zmq.Poller()
        self.poller.register(self.dealer, zmq.POLLIN)
        self.poller.register(self.sub, zmq.POLLIN)
        self.last_heard = self.timers.now()

    def _register(self) -> None:
        self.registered = False
        if not self.publishing:
            return  # _on_sub registers when the probe comes back
        incarnation = self.incarnation
        self.request(BROKER, Kind.REGISTER, {"role": self.role, "lim": self.lim},
                     lambda reply: self._on_register_reply(reply, incarnation), timeout=max(1.0, self.dead_after))

    def _on_register_reply(self, reply: dict, incarnation: int) -> None:
        if incarnation != self.incarnation:
            # The answer to a registration of an incarnation we have left already (a `rejoin`
            # overtook it): rejoining again would skip an incarnation and declare this one dead.
            return
        if reply.get("error") == Refusal.REJOIN:
            self._rejoin()
            return
        if reply.get("error") == Refusal.PASSIVE:
            if reply.get("peer_alive"):
                log.info("broker %s is passive and its peer alive: trying the peer", self.endpoint.address)
                self._reconnect(switch=True)
            else:  # it may take over once sure its peer is gone: ask again
                self.timers.call_later(self.interval, self._register)
            return
        if reply.get("error") == Refusal.TIMEOUT and len(self.endpoints) > 1:
            self._reconnect(switch=True)
            return
        if not reply.get("ok"):
            log.warning("register failed: %s; retrying", reply.get("message"))
            self.timers.call_later(self.interval, self._register)
            return
        self.registered = True
        self.membership_version = reply.get("mv", -1)
        self._note_members(reply.get("members", []))
        self.on_members(reply.get("members", []))
        self.on_registered()
        if self._failed_over:
            self._failed_over = False
            self._recover_events(reply.get("members", []))

    def _rejoin(self) -> None:
        log.warning("the broker declared this node dead: rejoining with fresh state")
        self.window.clear()  # what the old incarnation published is not to be replayed
        self.incarnation = self.on_rejoin()
        self._register()

    def _heartbeat(self) -> None:
        now = self.timers.now()
        pair = len(self.endpoints) > 1
        if self.registered and now - self.last_heard > self.dead_after:
            log.warning("broker silent for %.2fs: %s", now - self.last_heard,
                        "moving to the other broker" if pair else "reconnecting")
            self._reconnect(switch=pair)
        elif self.registered:
            self._send(BROKER, Kind.HEARTBEAT, {}, msg_id=0)
        elif not pair:
            # Registration has its own retry; beats from an unregistered incarnation mean nothing.
            self.last_heard = now
        elif now - self.last_heard > self.dead_after or now - self.attempt_started > 3 * self.dead_after:
            # Not registered, and this broker says nothing (or only "wait") for too long: the
            # other one may be active.
            self._reconnect(switch=True)
        self.timers.call_later(self.interval, self._heartbeat)

    def _client_failover(self, silent: bool = True) -> None:
        """A client (no heartbeats to tell it) whose request to the broker timed out (`silent`),
        or was refused by a passive broker, tries the other broker of the pair from now on. Not
        back to one it left for silence just now: the passive one it moved to still believes its
        peer alive for a while, and will take over."""
        now = self.timers.now()
        if (self.role is None and not self.pinned and len(self.endpoints) > 1
                and now - self._moved_at > self.interval
                and (silent or now - self._left_silent_at > 3 * self.dead_after)):
            self._moved_at = now
            if silent:
                self._left_silent_at = now
            self._reconnect(switch=True)

    def move_to_other_broker(self) -> None:
        """For a client (which hears no heartbeats): use the other broker of the pair from now on."""
        if len(self.endpoints) > 1:
            self._reconnect(switch=True)

    def _reconnect(self, switch: bool) -> None:
        """Start over with a broker: the other one of a pair, or the same one reconnected."""
        if self.registered:
            self._failed_over = True
            self._lost_at = self.wall_clock() - (self.timers.now() - self.last_heard)
            for node in self._lims:  # what they publish from now on waits for what they missed
                self.tracker.hold(node, self.timers.now())
        self.registered = False
        old = self.endpoint
        if switch:
            self._ep = (self._ep + 1) % len(self.endpoints)
        # New connections for PUB and SUB too, even to the same broker: after a long partition the
        # old TCP connections may be dead without either side knowing.
        for sock, which in ((self.pub, "pub"), (self.sub, "sub")):
            try:
                sock.disconnect(old.url(which))
            except zmq.ZMQError:
                pass
            sock.connect(self.endpoint.url(which))  # SUB re-sends its subscriptions itself
        self.dealer.close(0)
        self._connect_dealer()
        self.attempt_started = self.timers.now()
        for msg_id, pending in list(self._pending.items()):
            if pending.resend:  # what the old broker had not delivered goes through this one
                self._resend(msg_id)
        if self.role is not None:
            # Our PUB and SUB reconnect by themselves, maybe later than the DEALER: register
            # only once our events are seen to flow again, as at start.
            self.publishing = False
            self.sub.setsockopt(zmq.SUBSCRIBE, self._probe_topic.encode())
            self._probe()

    # -- sending -------------------------------------------------------------------------------
    def _send(self, dst: str, kind: str, body: dict, msg_id: int, reply_to: int = 0) -> None:
        env = Envelope(kind=kind, src=self.node_id, dst=dst, body=body, incarnation=self.incarnation,
                       seq=next(self._seq), msg_id=msg_id, reply_to=reply_to)
        _send_frames(self.dealer, env.frames())

    def request(self, dst: str, kind: str, body: dict, on_reply: ReplyHandler | None = None,
                timeout: float = 2.0) -> int:
        """Send a request; `on_reply` gets its reply, or a `timeout` refusal after `timeout` s.
        A request to another node (not the broker) is sent again with the same id until then
        when it may have been lost with a broker (no reply within `resend_after`, the node moved
        to another broker, or a refusal in RETRYABLE): the receiver serves it once."""
        msg_id = next(self._ids)
        pending = _Pending(on_reply, dst, kind, body, resend=dst != BROKER)
        pending.timer = self.timers.call_later(timeout, lambda: self._expire(msg_id, dst, kind))
        self._pending[msg_id] = pending
        self._send(dst, kind, body, msg_id)
        if pending.resend and timeout > self.resend_after:
            self.timers.call_later(self.resend_after, lambda: self._resend_unanswered(msg_id))
        return msg_id

    def _resend(self, msg_id: int) -> None:
        pending = self._pending.get(msg_id)
        if pending is not None:
            self.resent += 1
            self._send(pending.dst, pending.kind, pending.body, msg_id)

    def _resend_unanswered(self, msg_id: int) -> None:
        if msg_id in self._pending:
            self._resend(msg_id)
            self._check_client_broker()
            self.timers.call_later(self.resend_after, lambda: self._resend_unanswered(msg_id))

    def _check_client_broker(self) -> None:
        """A client of a pair hears no heartbeats: a request unanswered may mean its broker is
        gone. Ask the broker (its silence, or "passive", moves the node, which resends)."""
        now = self.timers.now()
        if (self.role is not None or self.pinned or len(self.endpoints) < 2
                or now - self._checked_broker_at < self.resend_after):
            return
        self._checked_broker_at = now

        def answered(reply: dict) -> None:
            if reply.get("state") == "passive":
                self._client_failover(silent=False)
        self.request(BROKER, Kind.STATUS, {}, answered, timeout=min(0.5, self.resend_after))

    def send(self, dst: str, kind: str, body: dict) -> None:
        """One-way message: no reply expected."""
        self._send(dst, kind, body, msg_id=0)

    def reply(self, request: Envelope, body: dict) -> None:
        if request.msg_id:
            self.answers.answered((request.src, request.incarnation, request.msg_id), body)
            self._send(request.src, Kind.REPLY, body, msg_id=next(self._ids), reply_to=request.msg_id)

    def publish(self, topics: list[str], kind: str, body: dict) -> None:
        env = Envelope(kind=kind, src=self.node_id, body=body, incarnation=self.incarnation,
                       seq=next(self._seq))
        header, payload = env.frames()  # encoded once, sent once per topic
        now = self.wall_clock()
        send = self.pub.send
        for topic in topics:
            prev = self.window.add(now, topic, env.seq, header, payload)
            send(topic.encode(), _MORE)
            send(header, _MORE)
            send(payload, _MORE)
            send(_packb(prev))

    def subscribe(self, topic: str) -> None:
        if topic not in self._topics:
            # What we last saw of this topic, before an unsubscribe, says nothing now: a hole
            # from then on is what we did not want, not what we lost.
            self.tracker.forget_topic(topic)
            self._topics.add(topic)
            self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def unsubscribe(self, topic: str) -> None:
        if topic in self._topics:
            self._topics.discard(topic)
            self.sub.setsockopt(zmq.UNSUBSCRIBE, topic.encode())

    def _expire(self, msg_id: int, dst: str, kind: str) -> None:
        if dst == BROKER:  # only the broker's silence says the broker is gone (a LIM may be slow)
            self._client_failover()
        entry = self._pending.pop(msg_id, None)
        if entry and entry.handler:
            entry.handler(entry.last_refusal or {"ok": False, "error": Refusal.TIMEOUT,
                                                 "message": f"no reply from {dst} to {kind}"})

    # -- receiving -----------------------------------------------------------------------------
    def poll_once(self, max_wait: float) -> None:
        timeout_ms = self.timers.poll_timeout_ms(max_wait)
        for sock, _ in self.poller.poll(timeout_ms):
            self.drain(sock)
        self.timers.run_due()

    def sockets(self) -> tuple[zmq.Socket, zmq.Socket]:
        """The sockets to watch, for an owner that polls other things too (a CSTA front end).
        The DEALER is replaced on reconnect: ask again after each poll."""
        return self.dealer, self.sub

    def keep_polled(self, poller: zmq.Poller) -> None:
        """Keep our sockets registered on an owner's poller (call before each poll): a reconnect
        replaces the DEALER."""
        current = self.sockets()
        previous = self._polled.get(id(poller), ())
        if current != previous:
            for sock in previous:
                try:
                    poller.unregister(sock)
                except (KeyError, ValueError):
                    pass
            for sock in current:
                poller.register(sock, zmq.POLLIN)
            self._polled[id(poller)] = current

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
        if env.src == BROKER:
            self.last_heard = self.timers.now()
            if env.kind == Kind.HEARTBEAT:
                mv = env.body.get("mv", -1)
                if self.registered and mv != self.membership_version:
                    self.request(BROKER, Kind.MEMBERS, {}, self._on_members_reply)
                return
            if env.kind == Kind.REJOIN:
                if env.body.get("incarnation") == self.incarnation:
                    self._rejoin()
                return  # otherwise about an incarnation we have already left behind
            if env.kind == Kind.PASSIVE:
                # Our broker stepped down (or we reached the passive one): go where the exchange is.
                if self.registered or env.body.get("peer_alive"):
                    self._reconnect(switch=len(self.endpoints) > 1 and bool(env.body.get("peer_alive")))
                return
        if env.src != BROKER:
            self.on_peer(env.src, env.incarnation)
        if env.kind == Kind.BUS_REPLAY and not env.reply_to:
            self._serve_replay(env)
            return
        if env.reply_to:
            entry = self._pending.get(env.reply_to)
            if entry is None:
                return  # a late reply to a request that already timed out (or a copy's reply)
            error = env.body.get("error")
            if error == Refusal.PASSIVE:
                self._client_failover(silent=False)
            if entry.resend and error in RETRYABLE:
                # Not carried out: the bus is failing over. Again shortly (or at once, through the
                # other broker, if we just moved); the deadline still holds.
                self.timers.call_later(self.interval, lambda: self._resend(env.reply_to))
                entry.last_refusal = env.body
                return
            del self._pending[env.reply_to]
            entry.timer.cancel()
            if entry.handler:
                entry.handler(env.body)
            return
        if env.msg_id:
            first = self.answers.begin((env.src, env.incarnation, env.msg_id), self.timers.now())
            if first is IN_PROGRESS:
                return  # a copy of a request being served: its one reply answers this copy too
            if first is not None:
                self._send(env.src, Kind.REPLY, first, msg_id=next(self._ids), reply_to=env.msg_id)
                return
        self.on_request(env)

    def _on_members_reply(self, reply: dict) -> None:
        if reply.get("ok"):
            self.membership_version = reply.get("mv", -1)
            self._note_members(reply.get("members", []))
            self.on_members(reply.get("members", []))

    def _note_members(self, members: list) -> None:
        self._lims = {m.get("node") for m in members if isinstance(m, dict) and m.get("role") == "lim"
                      and m.get("state") != "dead" and m.get("node") != self.node_id}

    def _on_sub(self, frames: list[bytes]) -> None:
        if len(frames) not in (3, 4):
            log.warning("dropped an event of %d frames", len(frames))
            return
        try:
            env = decode_header(frames[1])
            env.body = decode_body(frames[2])
            prev = msgpack.unpackb(frames[3]) if len(frames) == 4 else 0
        except (EnvelopeError, ValueError, msgpack.ExtraData) as exc:
            log.warning("dropped a bad event: %s", exc)
            return
        topic = frames[0].decode(errors="replace")
        if topic == self._probe_topic:
            if not self.publishing and self.role is not None:
                self.publishing = True
                self.sub.setsockopt(zmq.UNSUBSCRIBE, topic.encode())
                self._register()
            return
        if topic == SYSTEM_TOPIC and env.kind == Kind.MEMBER:
            self.membership_version = env.body.get("mv", self.membership_version)
            node = env.body.get("node")
            if env.body.get("role") == "lim" and node != self.node_id:
                (self._lims.discard if env.body.get("state") == "dead" else self._lims.add)(node)
            self.on_member(env.body)
            return
        if len(frames) == 3 or not isinstance(prev, int):
            self.on_event(topic, env)
            return
        for ready_topic, ready in self.tracker.received(topic, env, prev, self.timers.now()):
            self.on_event(ready_topic, ready)
        for src, since in self.tracker.take_gaps():
            self._ask_replay(src, since, since_time=None)

    # -- event recovery --------------------------------------------------------------------------
    def recover_events(self, since_wall: float, members: list[dict]) -> None:
        """For a client that found its broker gone and another serving (it hears no heartbeats to
        tell it): ask every LIM in `members` for what it published since `since_wall`."""
        self._lost_at = since_wall
        self._recover_events(members)

    def _recover_events(self, members: list[dict]) -> None:
        """We moved to another broker (or ours restarted): ask every LIM for what it published
        meanwhile; stop holding back the events of those we do not ask."""
        subscribed = [t for t in self._topics if not t.startswith(("sync:", "probe:"))]
        asked = set()
        for member in members if subscribed else []:
            node = member.get("node")
            if member.get("role") == "lim" and member.get("state") != "dead" and node != self.node_id:
                since = self.tracker.since(node, member.get("incarnation", -1), subscribed)
                self._ask_replay(node, since, since_time=self._lost_at - 2 * self.interval)
                asked.add(node)
        for src in self.tracker.held_sources() - asked:
            for topic, env in self.tracker.replayed(src, [], self.timers.now()):
                self.on_event(topic, env)

    def _ask_replay(self, src: str, since: dict[str, int], since_time: float | None) -> None:
        self.tracker.hold(src, self.timers.now())
        body = {"topics": sorted(since) if since_time is None else sorted(self._topics),
                "since": since, "since_time": since_time}
        self.request(src, Kind.BUS_REPLAY, body, lambda reply: self._on_replay(src, reply), timeout=2.0)

    def _on_replay(self, src: str, reply: dict) -> None:
        replayed = []
        if reply.get("ok"):
            for item in reply.get("events", []):
                try:
                    topic, header, payload, prev = item
                    env = decode_header(header)
                    env.body = decode_body(payload)
                except (ValueError, TypeError, EnvelopeError):
                    continue
                replayed.append((topic, env, prev))
        else:
            log.warning("%s could not replay its events: %s", src, reply.get("message"))
        before = self.tracker.recovered
        for topic, env in self.tracker.replayed(src, replayed, self.timers.now()):
            self.on_event(topic, env)
        log.info("%s replayed %d events; %d of them had not reached us", src, len(replayed),
                 self.tracker.recovered - before)

    def _serve_replay(self, request: Envelope) -> None:
        topics = request.body.get("topics")
        since = request.body.get("since")
        since_time = request.body.get("since_time")
        if not (isinstance(topics, list) and isinstance(since, dict)
                and (since_time is None or isinstance(since_time, (int, float)))):
            self.reply(request, {"ok": False, "error": Refusal.BAD_REQUEST,
                                 "message": "bus.replay needs topics, since and since_time"})
            return
        events = self.window.replay([t for t in topics if isinstance(t, str)], since, since_time)
        self.reply(request, {"ok": True, "events": events})
