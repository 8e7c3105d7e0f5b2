"""The broker process: routes requests between nodes, fans events out, watches liveness.

Sockets (all bound by the broker, connected by every node):
  ROUTER  router_port  requests, replies and heartbeats; a node's DEALER identity is its node id
  XSUB    pub_port     nodes' PUB sockets publish events here   } forwarded by ZeroMQ's proxy in a
  XPUB    sub_port     nodes' SUB sockets receive events here   } thread of its own (broker/fanout.py)
  PUB     peer_port    (a broker pair only) our Binary Star state, every heartbeat, to the peer
  SUB     -            connected to the peer's PUB
The broker itself publishes membership changes on the `sys|` topic.

With `broker.backup` in the topology two brokers run, a primary and a backup; `broker.binary_star`
decides which one is active. The passive one routes nothing: it answers every node with a
`passive` reply (or message) so the node goes back to the other, until a node's `register` finds
the peer gone and enough LIMs here (then it takes over, seeded with the peer's last member list
so that a LIM that died with the peer is still declared dead).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import msgpack
import zmq

from broker.binary_star import ACTIVE, BinaryStar
from broker.directory import Directory
from broker.envelope import SYSTEM_TOPIC, Envelope, EnvelopeError, decode_body, decode_header
from broker.fanout import EventFanout
from broker.liveness import DEAD, Change, Liveness, Member
from broker.protocol import BROKER, Kind, Refusal, is_lim_node, is_server_node, lim_node, number_of_device_address
from broker.timers import TimerQueue
from topology.loader import TopologyError, load_topology
from topology.model import Topology
from netio.logs import add_log_level_option
from netio.startup import start_process

log = logging.getLogger("broker")
BROKER_ID = BROKER  # our node id (the name is kept for its importers)


class Broker:
    def __init__(self, topology: Topology, ctx: zmq.Context | None = None, timers: TimerQueue | None = None,
                 backup: bool = False):
        self.topology = topology
        settings = topology.broker
        if backup and settings.backup is None:
            raise ValueError("the topology has no backup broker")
        self.endpoint = settings.backup if backup else settings.primary
        self.peer_endpoint = (settings.primary if backup else settings.backup)
        self.mode = "backup" if backup else "primary"
        self.interval = settings.heartbeat_interval_ms / 1000.0
        self.dead_after = settings.dead_after_ms / 1000.0
        self.liveness = Liveness(self.interval, self.dead_after)
        self.directory = Directory(topology)
        self.timers = timers or TimerQueue()
        self.ctx = ctx or zmq.Context.instance()
        self.membership_version = 0
        self._seq = 0
        self._running = False
        # A pair: the peer is gone once silent for two dead-node periods (longer than a node takes
        # to give up on it, so nodes are already knocking when we may take over).
        self.star = (BinaryStar(not backup, 2 * self.dead_after, len(topology.lims), self.timers.now())
                     if self.peer_endpoint is not None else None)
        self._lims_heard: dict[str, float] = {}  # while passive: LIM node -> last time it reached us
        self._peer_members: list[dict] = []      # the active peer's last member list
        self._peer_mv = 0
        self._deaf_until = 0.0  # after a freeze, ignore the peer's queued (stale) states until then
        # Since when this broker serves (started, or took over): for a while after, a node it does
        # not know, or cannot reach, is on its way here, not down (Refusal.BROKER_FAILOVER).
        self.serving_since = self.timers.now()
        self.settling_s = max(2.0, 3 * self.dead_after)

    @property
    def active(self) -> bool:
        return self.star is None or self.star.active

    @property
    def state(self) -> str:
        return ACTIVE if self.star is None else self.star.state

    # -- sockets -------------------------------------------------------------------------------
    def bind(self) -> None:
        ep = self.endpoint
        self.ctx.setsockopt(zmq.IPV6, 1)  # the topology may give an IPv6 address
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown destination raises, so we can answer
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a restarted node takes its identity back
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(ep.url("router"))
        # Events: XSUB -> XPUB in ZeroMQ's own proxy, in a thread of its own (broker/fanout.py).
        # A passive broker forwards too: a node checks its events flow before it registers, and
        # its `register` is what may make this broker active.
        self.fanout = EventFanout(self.ctx, ep.url("pub"), ep.url("sub"))
        self.poller = zmq.Poller()
        self._sockets = [self.router]
        if self.star is not None:
            # Only the peer's latest state matters: queue no backlog of old ones either side.
            self.peer_pub = self.ctx.socket(zmq.PUB)
            self.peer_pub.setsockopt(zmq.LINGER, 0)
            self.peer_pub.setsockopt(zmq.SNDHWM, 1)
            self.peer_pub.bind(ep.url("peer"))
            self.peer_sub = self.ctx.socket(zmq.SUB)
            self.peer_sub.setsockopt(zmq.LINGER, 0)
            self.peer_sub.setsockopt(zmq.CONFLATE, 1)
            self.peer_sub.setsockopt(zmq.SUBSCRIBE, b"")
            self.peer_sub.connect(self.peer_endpoint.url("peer"))
            self._sockets += [self.peer_pub, self.peer_sub]
            self.poller.register(self.peer_sub, zmq.POLLIN)
        self.poller.register(self.router, zmq.POLLIN)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close(0)
        self.fanout.close()

    # -- main loop -----------------------------------------------------------------------------
    def run(self) -> None:
        self.bind()
        self._running = True
        self.timers.call_later(self.interval, self._tick)
        log.info("broker (%s) up on %s ports %d/%d/%d", self.mode, self.endpoint.address,
                 self.endpoint.router_port, self.endpoint.pub_port, self.endpoint.sub_port)
        while self._running:
            self.poll_once(self.interval)
        self.close()

    def stop(self) -> None:
        self._running = False

    def poll_once(self, max_wait: float) -> None:
        timeout_ms = self.timers.poll_timeout_ms(max_wait)
        before = self.timers.now()
        ready = self.poller.poll(timeout_ms)
        if self.star is not None and self.timers.now() - before > timeout_ms / 1000 + self.dead_after:
            self._woke_up(self.timers.now() - before)
        for sock, _ in ready:
            if sock is self.router:
                self._drain(self.router, self._on_router)
            else:
                self._drain(self.peer_sub, self._on_peer)
        self.timers.run_due()

    @staticmethod
    def _drain(sock: zmq.Socket, handle) -> None:
        # Several messages per wake-up: poll() per message costs more than the work itself.
        for _ in range(1000):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            handle(frames)

    def _tick(self) -> None:
        now = self.timers.now()
        if self.star is not None:
            self.star.check(now, self._visible_lims(now))
            self._after_transitions()
            self._tell_peer()
        if self.active:
            self._announce(self.liveness.check(now))
            body = msgpack.packb({"mv": self.membership_version})
            for member in list(self.liveness.members.values()):
                if member.state != DEAD:
                    self._send_raw(member.node_id, self._header(Kind.HEARTBEAT, member.node_id), body)
        if self._running:
            self.timers.call_later(self.interval, self._tick)

    # -- the broker pair -------------------------------------------------------------------------
    def _visible_lims(self, now: float) -> int:
        if self.active:
            return sum(1 for m in self.liveness.members.values() if m.role == "lim" and m.state != DEAD)
        return sum(1 for seen in self._lims_heard.values() if now - seen < self.dead_after)

    def _tell_peer(self) -> None:
        state = {"state": self.star.state, "mv": self.membership_version}
        if self.active:
            state["members"] = self.members_snapshot()
        self.peer_pub.send(msgpack.packb(state))

    def _on_peer(self, frames: list[bytes]) -> None:
        try:
            state = msgpack.unpackb(frames[0]) if len(frames) == 1 else None
        except Exception:  # msgpack raises several unrelated types on garbage
            state = None
        if not isinstance(state, dict) or not isinstance(state.get("state"), str):
            log.warning("dropped a bad message from the peer broker")
            return
        if self.timers.now() < self._deaf_until:
            return  # just woken from a freeze: what is queued from the peer is stale
        if isinstance(state.get("members"), list):
            self._peer_members = state["members"]
            self._peer_mv = state.get("mv", 0) if isinstance(state.get("mv"), int) else 0
        self.star.peer_heard(state["state"], self.timers.now())
        self._after_transitions()

    def _after_transitions(self) -> None:
        for old, new, why in self.star.transitions:
            log.warning("broker (%s): %s -> %s: %s", self.mode, old, new, why)
            if new == ACTIVE:
                self._take_over()
            elif old == ACTIVE:
                # Nodes still here hear no more heartbeats, and get `passive` if they speak.
                self.liveness = Liveness(self.interval, self.dead_after)
        self.star.transitions.clear()

    def _woke_up(self, frozen_s: float) -> None:
        """We were frozen (SIGSTOP, a stalled host) longer than a node may be silent: the peer
        has most likely taken over and our view is stale. Start over as at boot, serving nobody
        until the peer is heard (or found gone by a node's request)."""
        log.warning("broker (%s) was frozen for %.1fs: starting over as %s", self.mode, frozen_s, self.mode)
        self.star = BinaryStar(self.mode == "primary", self.star.peer_expiry, self.star.total_lims,
                               self.timers.now())
        self.liveness = Liveness(self.interval, self.dead_after)
        self._lims_heard.clear()
        self._deaf_until = self.timers.now() + 3 * self.interval
        self.serving_since = self.timers.now()

    def _take_over(self) -> None:
        """Become active with the peer's last view of the members: a LIM that does not come over
        within dead_after is declared dead, as it would have been by the peer."""
        now = self.timers.now()
        self.liveness = Liveness(self.interval, self.dead_after)
        for m in self._peer_members:
            try:
                self.liveness.members[m["node"]] = Member(m["node"], m["role"], m["lim"], m["incarnation"],
                                                          m["state"], now)
            except (KeyError, TypeError):
                continue
        self.membership_version = max(self.membership_version, self._peer_mv) + 1
        self._lims_heard.clear()
        self.serving_since = now

    def _passive(self, env: Envelope, now: float) -> None:
        """A message reached the passive broker: maybe the request that makes it active."""
        if is_lim_node(env.src):
            self._lims_heard[env.src] = now
        if env.kind == Kind.REGISTER:
            verdict = self.star.client_request(now, self._visible_lims(now))
            self._after_transitions()
            if verdict.accepted:
                return  # now active: handled as usual by the caller
            self._reply(env, {"ok": False, "error": Refusal.PASSIVE, "message": verdict.reason,
                              "peer_alive": verdict.peer_alive})
        elif env.dst == BROKER_ID and env.kind in (Kind.STATUS, Kind.MEMBERS):
            self._serve(env, b"")
        elif env.msg_id:
            self._reply(env, {"ok": False, "error": Refusal.PASSIVE, "peer_alive": self.star.peer_alive(now),
                              "message": f"this broker ({self.mode}) is passive"})
        else:
            self._send_raw(env.src, self._header(Kind.PASSIVE, env.src),
                           msgpack.packb({"peer_alive": self.star.peer_alive(now)}))

    # -- requests ------------------------------------------------------------------------------
    def _on_router(self, frames: list[bytes]) -> None:
        if len(frames) != 3:
            log.warning("dropped a message of %d frames", len(frames))
            return
        identity, header, body = frames
        try:
            env = decode_header(header)
        except EnvelopeError as exc:
            log.warning("dropped a bad message from %r: %s", identity, exc)
            return
        if env.src.encode() != identity:
            log.warning("dropped a message from %r claiming to be %r", identity, env.src)
            return
        now = self.timers.now()
        if not self.active:
            self._passive(env, now)
            if not self.active:
                return
        if env.kind == Kind.REGISTER:
            self._register(env, body, now)
            return
        verdict, changes = self.liveness.heard(env.src, env.incarnation, now)
        self._announce(changes)
        if verdict == "stale":
            return  # queued by an incarnation that has since rejoined
        if verdict == "rejoin":
            # Declared dead (it hung): it must rejoin with fresh state rather than act on calls
            # the rest of the exchange has already released.
            self._send_raw(env.src, self._header(Kind.REJOIN, env.src),
                           msgpack.packb({"incarnation": env.incarnation}))
            return
        if env.kind == Kind.HEARTBEAT:
            return  # a beat from a member (counted above), or from nobody we know: nothing to route
        if env.dst == BROKER_ID:
            self._serve(env, body)
            return
        target = self._resolve(env)
        if target is None:
            return
        try:
            self.router.send_multipart([target.encode(), header, body])
        except zmq.ZMQError:
            if self._settling():
                self._error(env, Refusal.BROKER_FAILOVER, f"{target} has not reached this broker yet (it has just taken over)")
            else:
                self._error(env, Refusal.UNREACHABLE, f"{env.dst} is not connected")

    def _settling(self) -> bool:
        """Just started or took over: nodes are still coming over from the old broker."""
        return self.timers.now() - self.serving_since < self.settling_s

    def _not_alive(self, env: Envelope, node: str, down: str) -> None:
        """Refuse a request for a node that is not alive here: down, or (a node this broker has
        not heard of yet, while it settles) not yet come over after a broker restart or failover."""
        if node not in self.liveness.members and self._settling():
            self._error(env, Refusal.BROKER_FAILOVER, f"{node} has not registered with this broker yet (it has just started)")
        else:
            self._error(env, Refusal.LIM_DOWN, down)

    def _resolve(self, env: Envelope) -> str | None:
        number = number_of_device_address(env.dst)
        if number is not None:
            lim = self.directory.owner(number)
            if lim is None:
                self._error(env, Refusal.UNKNOWN_NUMBER, f"number {number} is not allocated")
                return None
            node = lim_node(lim)
            if not self.liveness.is_alive(node):
                self._not_alive(env, node, f"LIM {lim}, which holds {number}, is out of service")
                return None
            return node
        if env.reply_to == 0 and is_server_node(env.dst) and not self.liveness.is_alive(env.dst):
            self._not_alive(env, env.dst, f"{env.dst} is out of service")
            return None
        return env.dst

    def _register(self, env: Envelope, body: bytes, now: float) -> None:
        try:
            fields = decode_body(body)
        except EnvelopeError as exc:
            log.warning("dropped a bad register from %s: %s", env.src, exc)
            return
        role = fields.get("role")
        lim = fields.get("lim")
        if role not in ("lim", "front") or not (lim is None or isinstance(lim, int)):
            self._error(env, Refusal.BAD_REQUEST, "register needs role lim|front and an integer lim")
            return
        verdict, changes = self.liveness.register(env.src, role, lim, env.incarnation, now)
        if verdict == "rejoin":
            self._error(env, Refusal.REJOIN, f"incarnation {env.incarnation} was declared dead")
            return
        self._announce(changes)
        self._reply(env, {"ok": True, "members": self.members_snapshot(), "mv": self.membership_version})
        log.info("%s registered (incarnation %d)", env.src, env.incarnation)

    def _serve(self, env: Envelope, body: bytes) -> None:
        if env.kind in (Kind.STATUS, Kind.MEMBERS):
            self._reply(env, {"ok": True, "members": self.members_snapshot() if self.active else [],
                              "mv": self.membership_version, "state": self.state, "mode": self.mode})
        else:
            self._error(env, Refusal.UNKNOWN_REQUEST, f"the broker does not serve {env.kind!r}")

    def members_snapshot(self) -> list[dict]:
        return [{"node": m.node_id, "role": m.role, "lim": m.lim, "incarnation": m.incarnation,
                 "state": m.state} for m in self.liveness.members.values()]

    # -- output --------------------------------------------------------------------------------
    def _announce(self, changes: list[Change]) -> None:
        for change in changes:
            self.membership_version += 1
            log.info("%s incarnation %d is %s", change.node_id, change.incarnation, change.state)
            body = {"node": change.node_id, "role": change.role, "lim": change.lim,
                    "incarnation": change.incarnation, "state": change.state,
                    "mv": self.membership_version}
            env = Envelope(kind=Kind.MEMBER, src=BROKER_ID, body=body, seq=self._next_seq())
            self.fanout.publish([SYSTEM_TOPIC.encode(), *env.frames()])

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _header(self, kind: str, dst: str, reply_to: int = 0) -> bytes:
        return Envelope(kind=kind, src=BROKER_ID, dst=dst, seq=self._next_seq(),
                        reply_to=reply_to).header_frame()

    def _send_raw(self, node: str, header: bytes, body: bytes) -> None:
        try:
            self.router.send_multipart([node.encode(), header, body])
        except zmq.ZMQError:
            pass  # the node has gone; liveness will say so

    def _reply(self, env: Envelope, body: dict) -> None:
        self._send_raw(env.src, self._header(Kind.REPLY, env.src, env.msg_id), msgpack.packb(body))

    def _error(self, env: Envelope, code: Refusal, message: str) -> None:
        if env.msg_id:
            self._reply(env, {"ok": False, "error": code, "message": message})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxone-broker", description="Run the exchange's bus broker.")
    parser.add_argument("--topology", required=True, type=Path, help="topology YAML")
    parser.add_argument("--backup", action="store_true", help="run the backup broker of the pair")
    add_log_level_option(parser)
    args = parser.parse_args(argv)
    # Each line names its logger (broker, binary-star, ...) rather than one node.
    if (status := start_process("mxone-broker", "%(name)s", args.log_level)) is not None:
        return status
    try:
        topology = load_topology(args.topology)
    except TopologyError as exc:
        print(f"mxone-broker: {exc}", file=sys.stderr)
        return 2
    if args.backup and topology.broker.backup is None:
        print(f"mxone-broker: {args.topology} has no broker.backup to run", file=sys.stderr)
        return 2
    broker = Broker(topology, backup=args.backup)
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    signal.signal(signal.SIGINT, lambda *_: broker.stop())
    broker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
