"""A synchronous bus client for tools, tests and users' scripts (the CLI uses it).

It does not register: it sends requests through the broker and waits for the reply, and it can
subscribe to event topics. One client per thread.
"""
from __future__ import annotations

import os
import time
import uuid
from typing import Any, Iterator

import zmq

from broker.envelope import SYSTEM_TOPIC, Envelope
from broker.node import BusNode
from broker.protocol import BROKER, Kind, Refusal
from broker.timers import TimerQueue
from topology.model import BrokerSettings


class BusError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class BusClient:
    def __init__(self, settings: BrokerSettings, name: str = "cli", pinned: int | None = None):
        """`pinned`: talk to that broker of a pair (0 primary, 1 backup), active or not."""
        self.ctx = zmq.Context()
        self.ctx.setsockopt(zmq.LINGER, 0)  # closing (or collecting) a client never waits for a peer
        self.timers = TimerQueue()
        self.node = BusNode(f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}", settings, self.timers,
                            incarnation=0, ctx=self.ctx)
        self._events: list[tuple[str, Envelope]] = []
        self.node.on_event = lambda topic, env: self._events.append((topic, env))
        # Membership changes (topic sys|, after `subscribe(SYSTEM_TOPIC)`) arrive as events too.
        self.node.on_member = lambda change: self._events.append((SYSTEM_TOPIC, Envelope(Kind.MEMBER, BROKER, body=change)))
        self._checked = time.monotonic()  # the pair watch of `events()`
        self._served_at = time.time()
        self._members: list[dict] = []
        self._recover_since: float | None = None
        if pinned is not None:
            self.node._ep = pinned
            self.node.pinned = True
        self.node.start()
        if len(settings.endpoints()) > 1 and pinned is None:
            self._find_active_broker()

    def _find_active_broker(self) -> None:
        """With a broker pair, talk to the active one (the first that says so; else the primary)."""
        for _ in range(len(self.node.endpoints)):
            reply = self._ask(BROKER, Kind.STATUS, {}, timeout=0.5)
            if reply.get("ok") and reply.get("state") == "active":
                return
            if reply.get("ok"):  # a passive broker (a silent one made the node move already)
                self.node.move_to_other_broker()

    def _ask(self, dst: str, kind: str, body: dict, timeout: float) -> dict[str, Any]:
        result: list[dict] = []
        self.node.request(dst, kind, body, result.append, timeout=timeout)
        while not result:
            self.node.poll_once(0.05)
        return result[0]

    def request(self, dst: str, kind: str, body: dict | None = None, timeout: float = 3.0) -> dict[str, Any]:
        """Send a request and wait for its reply; raise BusError for an error reply. A request to
        a node that met a failing broker is sent again by the node itself, the same request
        (the receiver serves it once), through the other broker of a pair once it moves there.
        A request to the broker itself (nothing to serve twice) the passive broker refuses, or
        that met a silent broker, is sent again here through the other one (a few times: during
        a failover both may say "not me")."""
        pair = len(self.node.endpoints) > 1 and not self.node.pinned and dst == BROKER
        for _ in range(4 if pair else 1):
            reply = self._ask(dst, kind, body or {}, timeout)
            if not pair or not self._elsewhere(dst, reply):
                break
        if not reply.get("ok"):
            raise BusError(reply.get("error", "error"), reply.get("message", "request failed"))
        return reply

    def _elsewhere(self, dst: str, reply: dict[str, Any]) -> bool:
        """Whether `reply` says the exchange is served by the other broker of the pair (the
        node is then pointed at it; after a refusal or a silent broker it moved by itself)."""
        if reply.get("state") == "passive":
            self.node.move_to_other_broker()
            return True
        if reply.get("error") == Refusal.PASSIVE:
            return True
        if reply.get("error") == Refusal.TIMEOUT and dst != BROKER:
            # Is it our broker that is gone, or only the destination that is slow?
            check = self._ask(BROKER, Kind.STATUS, {}, timeout=0.5)  # silent: the node moves
            if check.get("state") == "passive":
                self.node.move_to_other_broker()
            return check.get("state") != "active"
        return reply.get("error") == Refusal.TIMEOUT

    def subscribe(self, topic: str) -> None:
        self.node.subscribe(topic)

    def sync(self, timeout: float = 5.0) -> None:
        """Wait until this client's subscriptions are in force at the broker: publish a probe on a
        topic of our own until it comes back. Subscriptions travel in order on one connection,
        so once the probe's is active, so are all the earlier ones."""
        probe = f"sync:{self.node.node_id}|"
        self.node.subscribe(probe)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.node.publish([probe], Kind.PROBE, {})
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                self.node.poll_once(0.01)
                if any(topic == probe for topic, _ in self._events):
                    self._events = [e for e in self._events if e[0] != probe]
                    self.node.unsubscribe(probe)
                    return
        raise BusError(Refusal.TIMEOUT, "subscriptions did not reach the broker (is the exchange running?)")

    def events(self, timeout: float | None = None, idle: bool = False) -> Iterator[tuple[str | None, Envelope | None]]:
        """Yield (topic, event) as they arrive; stop after `timeout` seconds of waiting in all.
        With `idle`, also yield (None, None) every half second without events, so a caller
        can do something meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        quiet_since = time.monotonic()
        while True:
            while self._events:
                quiet_since = time.monotonic()
                yield self._events.pop(0)
            if deadline is not None and time.monotonic() >= deadline:
                return
            if idle and time.monotonic() - quiet_since >= 0.5:
                quiet_since = time.monotonic()
                yield None, None
            self._watch_the_pair()
            wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            self.node.poll_once(wait)

    def _watch_the_pair(self) -> None:
        """A subscriber registers nothing, so it hears no heartbeats: with a broker pair, ask our
        broker every second whether it still serves. If not, move to the other one, and once
        that one serves, ask every LIM for what it published meanwhile, as a registered node
        does (holding their new events back until then, to keep the order)."""
        now = time.monotonic()
        if len(self.node.endpoints) < 2 or self.node.pinned or now - self._checked < 1.0:
            return
        self._checked = now
        reply = self.broker_status(timeout=0.3)  # a silent broker: the node moves by itself
        if reply.get("state") == "active":
            members = reply.get("members", [])
            if self._recover_since is not None:
                self.node.recover_events(self._recover_since, members)
                self._recover_since = None
            self._served_at, self._members = time.time(), members
            return
        if self._recover_since is None:
            self._recover_since = self._served_at
            for member in self._members:
                if member.get("role") == "lim" and member.get("state") != "dead":
                    self.node.tracker.hold(member["node"], self.timers.now())
        if reply.get("state") == "passive":
            self.node.move_to_other_broker()
        self._checked = now - 0.8  # ask the other one soon

    def broker_status(self, timeout: float = 0.5) -> dict[str, Any]:
        """This client's broker's `status` reply as it is (an error reply if it is silent)."""
        return self._ask(BROKER, Kind.STATUS, {}, timeout)

    def broker_states(self) -> list[dict[str, Any]]:
        """Each broker's own word on itself: mode (primary/backup) and state (active/passive...)."""
        states = []
        for index, endpoint in enumerate(self.node.endpoints):
            with BusClient(self.node.settings, "status", pinned=index) as pinned:
                reply = pinned.broker_status()
            states.append({"mode": "backup" if index else "primary", "address": endpoint.address,
                           "router_port": endpoint.router_port,
                           "state": reply.get("state", "active") if reply.get("ok") else "not answering"})
        return states

    def close(self) -> None:
        self.node.close()
        self.ctx.term()

    def __enter__(self) -> "BusClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
