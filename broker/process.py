"""The broker process: routes requests between nodes, fans events out, watches liveness.

Sockets (all bound by the broker, connected by every node):
  ROUTER  router_port  requests, replies and heartbeats; a node's DEALER identity is its node id
  XSUB    pub_port     nodes' PUB sockets publish events here
  XPUB    sub_port     nodes' SUB sockets receive events from here; subscriptions flow back to XSUB
The broker itself publishes membership changes on the `sys|` topic.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import msgpack
import zmq

from broker.directory import Directory
from broker.envelope import SYSTEM_TOPIC, Envelope, EnvelopeError, decode_body, decode_header
from broker.liveness import DEAD, Change, Liveness
from broker.timers import TimerQueue
from topology.model import Topology

log = logging.getLogger("broker")
BROKER_ID = "broker"


class Broker:
    def __init__(self, topology: Topology, ctx: zmq.Context | None = None, timers: TimerQueue | None = None):
        self.topology = topology
        settings = topology.broker
        self.endpoint = settings.primary
        self.interval = settings.heartbeat_interval_ms / 1000.0
        self.liveness = Liveness(self.interval, settings.dead_after_ms / 1000.0)
        self.directory = Directory(topology)
        self.timers = timers or TimerQueue()
        self.ctx = ctx or zmq.Context.instance()
        self.membership_version = 0
        self._seq = 0
        self._running = False

    # -- sockets -------------------------------------------------------------------------------
    def bind(self) -> None:
        ep = self.endpoint
        self.ctx.setsockopt(zmq.IPV6, 1)  # the topology may give an IPv6 address
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown destination raises, so we can answer
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a restarted node takes its identity back
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(ep.url("router"))
        self.xsub = self.ctx.socket(zmq.XSUB)
        self.xsub.setsockopt(zmq.LINGER, 0)
        self.xsub.bind(ep.url("pub"))
        self.xpub = self.ctx.socket(zmq.XPUB)
        self.xpub.setsockopt(zmq.LINGER, 0)
        self.xpub.bind(ep.url("sub"))
        # Every publisher sends everything to the broker and the XPUB filters per subscriber: a
        # subscriber that has seen its subscription reach the broker (BusClient.sync) then misses
        # nothing, whichever node publishes.
        self.xsub.send(b"\x01")
        self.poller = zmq.Poller()
        for sock in (self.router, self.xsub, self.xpub):
            self.poller.register(sock, zmq.POLLIN)

    def close(self) -> None:
        for sock in (self.router, self.xsub, self.xpub):
            sock.close(0)

    # -- main loop -----------------------------------------------------------------------------
    def run(self) -> None:
        self.bind()
        self._running = True
        self.timers.call_later(self.interval, self._tick)
        log.info("broker up on %s ports %d/%d/%d", self.endpoint.address, self.endpoint.router_port,
                 self.endpoint.pub_port, self.endpoint.sub_port)
        while self._running:
            self.poll_once(self.interval)
        self.close()

    def stop(self) -> None:
        self._running = False

    def poll_once(self, max_wait: float) -> None:
        timeout_ms = int(self.timers.next_delay(max_wait) * 1000)
        for sock, _ in self.poller.poll(timeout_ms):
            if sock is self.router:
                self._drain(self.router, self._on_router)
            elif sock is self.xsub:
                self._drain(self.xsub, self.xpub.send_multipart)
            else:
                self._drain(self.xpub, lambda frames: None)  # subscriptions: filtered here, not upstream
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
        self._announce(self.liveness.check(now))
        body = msgpack.packb({"mv": self.membership_version})
        for member in list(self.liveness.members.values()):
            if member.state != DEAD:
                self._send_raw(member.node_id, self._header("heartbeat", member.node_id), body)
        if self._running:
            self.timers.call_later(self.interval, self._tick)

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
        if env.kind == "register":
            self._register(env, body, now)
            return
        verdict, changes = self.liveness.heard(env.src, env.incarnation, now)
        self._announce(changes)
        if verdict == "stale":
            return  # queued by an incarnation that has since rejoined
        if verdict == "rejoin":
            # Declared dead (it hung): it must rejoin with fresh state rather than act on calls
            # the rest of the exchange has already released.
            self._send_raw(env.src, self._header("rejoin", env.src),
                           msgpack.packb({"incarnation": env.incarnation}))
            return
        if env.kind == "heartbeat":
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
            self._error(env, "unreachable", f"{env.dst} is not connected")

    def _resolve(self, env: Envelope) -> str | None:
        if env.dst.startswith("dev:"):
            number = env.dst[4:]
            lim = self.directory.owner(number)
            if lim is None:
                self._error(env, "unknown_number", f"number {number} is not allocated")
                return None
            node = f"lim-{lim}"
            if not self.liveness.is_alive(node):
                self._error(env, "lim_down", f"LIM {lim}, which holds {number}, is out of service")
                return None
            return node
        if env.reply_to == 0 and env.dst.startswith(("lim-", "csta-")) and not self.liveness.is_alive(env.dst):
            self._error(env, "lim_down", f"{env.dst} is out of service")
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
            self._error(env, "bad_request", "register needs role lim|front and an integer lim")
            return
        verdict, changes = self.liveness.register(env.src, role, lim, env.incarnation, now)
        if verdict == "rejoin":
            self._error(env, "rejoin", f"incarnation {env.incarnation} was declared dead")
            return
        self._announce(changes)
        self._reply(env, {"ok": True, "members": self.members_snapshot(), "mv": self.membership_version})
        log.info("%s registered (incarnation %d)", env.src, env.incarnation)

    def _serve(self, env: Envelope, body: bytes) -> None:
        if env.kind in ("status", "members"):
            self._reply(env, {"ok": True, "members": self.members_snapshot(),
                              "mv": self.membership_version})
        else:
            self._error(env, "unknown_request", f"the broker does not serve {env.kind!r}")

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
            env = Envelope(kind="member", src=BROKER_ID, body=body, seq=self._next_seq())
            self.xpub.send_multipart([SYSTEM_TOPIC.encode(), *env.frames()])

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
        self._send_raw(env.src, self._header("reply", env.src, env.msg_id), msgpack.packb(body))

    def _error(self, env: Envelope, code: str, message: str) -> None:
        if env.msg_id:
            self._reply(env, {"ok": False, "error": code, "message": message})


def main(argv: list[str] | None = None) -> int:
    from topology.loader import TopologyError, load_topology

    parser = argparse.ArgumentParser(prog="mxone-broker", description="Run the exchange's bus broker.")
    parser.add_argument("--topology", required=True, type=Path, help="topology YAML")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        topology = load_topology(args.topology)
    except TopologyError as exc:
        print(f"mxone-broker: {exc}", file=sys.stderr)
        return 2
    broker = Broker(topology)
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    signal.signal(signal.SIGINT, lambda *_: broker.stop())
    broker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
