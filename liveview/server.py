"""The live view's server: the bus and the web page's connections in one poll loop.

The bus side is an unregistered node, like `mxone events`: it subscribes to every device's and
every call's events and to the broker's membership changes, and once a second asks the broker for
its members, each LIM for `lim.status`, each ACD group for its agents and each CSTA server for
`csta.status` (liveview/model.py folds all of it). Every PATCH_INTERVAL_S the changes go out to
each open event stream as one `patch` event. A click on the page becomes the `phone` request
lim/phone.py sends, and its answer becomes the HTTP response.
"""
from __future__ import annotations

import collections
import json
import logging
import socket
from typing import Any

from broker.directory import Directory
from broker.envelope import SYSTEM_TOPIC
from broker.node import BusNode
from broker.protocol import BROKER, Kind, csta_node, device_address, lim_node
from broker.timers import TimerQueue
from liveview.client import url_of
from liveview.api import (
    ROUTES,
    ApiError,
    check_host,
    check_origin,
    check_route,
    check_token,
    load_static,
    parse_phone_action,
    status_of_refusal,
)
from liveview.http import HttpConnection, Request
from liveview.model import ViewModel
from netio.connection import Connection
from netio.loop import Loop
from topology.model import LiveView, Topology

log = logging.getLogger("liveview")

RESYNC_S = 1.0            # how often the exchange is asked for its state
PATCH_INTERVAL_S = 0.1    # changes go out at most this often: a burst of events is one patch
KEEPALIVE_S = 15.0        # a comment on every event stream, so a dead client is found
REQUEST_TIMEOUT_S = 10.0  # a request begun must be complete within this
IDLE_TIMEOUT_S = 60.0     # a keep-alive connection with nothing to do is closed
MAX_CONNECTIONS = 128
MAX_OUTPUT = 8 * 1024 * 1024  # a client that reads nothing is cut off (a browser reconnects)
READ_SIZE = 16384
# Each event comes once per topic it was published on: the copies of one publish arrive together,
# or within a replay's hold-back after a broker failover (broker/replay.py: 10 s at most, the
# window replayed is 5 s). An event is remembered that long, to fold it once; SEEN_EVENTS caps a burst.
SEEN_S = 30.0
SEEN_EVENTS = 20_000
# A cleared call's tombstone (liveview/model.py) stops a late report of it: a LIM's answer to a
# question asked before it cleared (answered within RESYNC_S, or never), an event held back by a
# replay. Kept this long; the model's MAX_TOMBSTONES caps a burst.
TOMBSTONE_S = 60.0


class SocketConnection(Connection):
    """A TCP connection of the page: bytes in and out of its HttpConnection."""

    def __init__(self, server: "LiveViewServer", sock: socket.socket, peer: str):
        super().__init__(server, sock, peer, log=log, max_output=MAX_OUTPUT, read_size=READ_SIZE,
                         overflow_level=logging.INFO)
        self.server = server
        self.last_activity = server.timers.now()
        self.started_at: float | None = None  # when the unfinished request began
        self.http = HttpConnection(self.write, self.close_when_sent, server.on_request, peer)

    def received(self, data: bytes) -> None:
        self.last_activity = self.server.timers.now()
        self.http.data_received(data)
        if self.http.request_started and self.started_at is None:
            self.started_at = self.last_activity
        elif not self.http.request_started:
            self.started_at = None

    def lost(self) -> None:
        self.http.closed = True
        self.server.streams.discard(self.http)


class LiveViewServer(Loop):
    def __init__(self, topology: Topology, bus: BusNode, timers: TimerQueue, settings: LiveView,
                 token: str | None = None):
        super().__init__(bus, timers, log)
        self.topology = topology
        self.directory = Directory(topology)
        self.settings = settings
        self.token = token  # None: loopback only, no token asked
        self.model = ViewModel(topology)
        self.static = load_static()
        self.streams: set[HttpConnection] = set()
        self._seen: set[tuple] = set()
        self._seen_order: collections.deque = collections.deque()  # (when, key), oldest first
        self._marks: collections.deque = collections.deque()  # (when, model.events) at each round of questions
        self._asking = 0  # replies still awaited in this round of questions
        bus.on_event = self.on_event
        bus.on_member = self.model.on_member

    # -- listening -----------------------------------------------------------------------------------
    def listen(self) -> None:
        self.listen_tcp(self.settings.address, self.settings.port, 128, self._accepted)
        log.info("live view of %r on %s", self.topology.name, self.url)

    @property
    def url(self) -> str:
        return url_of(self.settings)

    def accept_failed(self, exc: OSError) -> None:
        log.warning("accept failed: %s", exc)

    def _accepted(self, sock: socket.socket, addr) -> None:
        if len(self.connections) >= MAX_CONNECTIONS:
            log.warning("refused %s: %d connections is the maximum", addr, MAX_CONNECTIONS)
            sock.close()
            return
        self.add(SocketConnection(self, sock, f"{addr[0]}:{addr[1]}"))

    # -- requests from the page ----------------------------------------------------------------------
    def on_request(self, http: HttpConnection, request: Request) -> None:
        try:
            check_host(request.header("host"), self.settings.address)
            check_route(request.method, request.path)
            check_token(self.token, request.path, request.headers, request.query)
            if request.method == "POST":
                check_origin(request.header("origin"), request.header("host"))
        except ApiError as exc:
            if exc.status == 401:
                log.info("%s: %s %s refused: %s", http.peer, request.method, request.path, exc.code)
            headers = [("allow", ", ".join(_allowed(request.path)))] if exc.status == 405 else []
            if exc.status == 401:
                headers.append(("www-authenticate", 'Bearer realm="mxone live view"'))
            http.respond_json(exc.status, exc.body(), headers=headers)
            return
        if request.path == "/api/events":
            http.start_stream()
            http.send_retry(1000)  # a dropped stream comes back within a second
            http.send_event("snapshot", json.dumps(self.model.snapshot(), separators=(",", ":")))
            self.streams.add(http)
        elif request.path == "/api/state":
            http.respond_json(200, self.model.snapshot())
        elif request.path == "/api/phone":
            self._phone(http, request)
        else:
            body, kind = self.static[request.path]
            http.respond(200, body, kind)

    def _phone(self, http: HttpConnection, request: Request) -> None:
        try:
            action = parse_phone_action(self.topology, self.directory, request.header("content-type"), request.body)
        except ApiError as exc:
            log.info("%s: refused an action: %s", http.peer, exc.message)
            http.respond_json(exc.status, exc.body())
            return

        def answered(reply: dict[str, Any]) -> None:
            what = f"{action.device} {action.action}{' ' + action.digits if action.digits else ''}"
            if reply.get("ok"):
                log.info("%s: %s: done", http.peer, what)
                http.respond_json(200, reply)
                return
            code = str(reply.get("error") or "error")
            log.info("%s: %s: refused: %s (%s)", http.peer, what, reply.get("message"), code)
            http.respond_json(status_of_refusal(code), {"ok": False, "error": code,
                                                         "message": str(reply.get("message") or "refused")})

        self.bus.request(device_address(action.device), Kind.PHONE, action.bus_body(), answered, timeout=3.0)

    # -- the bus -------------------------------------------------------------------------------------
    def start(self) -> None:
        for topic in ("d:", "c:", SYSTEM_TOPIC):  # every device, every call (CallCleared), membership
            self.bus.subscribe(topic)
        self.timers.call_later(0, self._ask)
        self.timers.call_later(PATCH_INTERVAL_S, self._flush)
        self.timers.call_later(KEEPALIVE_S, self._keepalive)
        self.timers.call_later(1.0, self._reap)

    def on_event(self, topic: str, env) -> None:
        key = (env.src, env.incarnation, env.seq)  # one publish, several topics: the same header
        if key in self._seen:
            return
        now = self.timers.now()
        self._seen.add(key)
        self._seen_order.append((now, key))
        order = self._seen_order
        while len(order) > SEEN_EVENTS or order[0][0] < now - SEEN_S:
            self._seen.discard(order.popleft()[1])
        if env.kind == Kind.EVENT:
            self.model.apply_event(env.body)

    def _ask(self) -> None:
        """One round of questions; the next round starts RESYNC_S after this one is answered."""
        self._asking = 1
        self._forget_tombstones()
        self.bus.request(BROKER, Kind.STATUS, {}, self._on_members, timeout=RESYNC_S)

    def _forget_tombstones(self) -> None:
        """Forget the calls cleared more than TOMBSTONE_S ago: no late report of them is coming."""
        now = self.timers.now()
        self._marks.append((now, self.model.events))
        while len(self._marks) > 1 and self._marks[1][0] <= now - TOMBSTONE_S:
            self._marks.popleft()
        when, events = self._marks[0]
        if when <= now - TOMBSTONE_S:
            self.model.forget_tombstones(events)

    def _answered(self) -> None:
        self._asking -= 1
        if self._asking == 0 and self.running:
            self.timers.call_later(RESYNC_S, self._ask)

    def _on_members(self, reply: dict[str, Any]) -> None:
        self.model.set_broker_reachable(bool(reply.get("ok")))
        if reply.get("ok"):
            members = reply.get("members") or []
            self.model.set_members(members)
            up = {(m.get("role"), m.get("lim")) for m in members if m.get("state") != "dead"}
            marker = self.model.events
            for lim in self.topology.lims:
                if ("lim", lim.number) in up:
                    self._question(lim_node(lim.number), Kind.LIM_STATUS,
                                   lambda r, n=lim.number: self.model.apply_lim_status(n, r, marker))
                if ("front", lim.number) in up:
                    self._question(csta_node(lim.number), Kind.CSTA_STATUS, lambda r, n=lim.number: self.model.apply_front(n, r),
                                   failed=lambda r, n=lim.number: self.model.apply_front(n, {"error": r.get("message")}))
                else:
                    self.model.apply_front(lim.number, None)
            for group in self.topology.acd_groups:
                if ("lim", group.lim) in up:
                    self._question(device_address(group.number), Kind.DEVICE_GET,
                                   lambda r, g=group.number: self.model.apply_group(g, r, marker))
        self._answered()

    def _question(self, dst: str, kind: str, apply, failed=None) -> None:
        def on_reply(reply: dict[str, Any]) -> None:
            if reply.get("ok"):
                apply(reply)
            elif failed is not None:
                failed(reply)
            self._answered()
        self._asking += 1
        self.bus.request(dst, kind, {}, on_reply, timeout=RESYNC_S)

    # -- output to the page --------------------------------------------------------------------------
    def _flush(self) -> None:
        patch = self.model.take_patch()
        if patch is not None and self.streams:
            data = json.dumps(patch, separators=(",", ":"))
            for stream in list(self.streams):
                stream.send_event("patch", data)
        if self.running:
            self.timers.call_later(PATCH_INTERVAL_S, self._flush)

    def _keepalive(self) -> None:
        for stream in list(self.streams):
            stream.send_comment("keep-alive")
        if self.running:
            self.timers.call_later(KEEPALIVE_S, self._keepalive)

    def _reap(self) -> None:
        """Close connections that send a request too slowly, or sit idle too long."""
        now = self.timers.now()
        for conn in list(self.connections.values()):
            if conn.http.streaming or conn.http.busy:
                continue
            if conn.started_at is not None and now - conn.started_at > REQUEST_TIMEOUT_S:
                log.info("%s: a request unfinished for %.0f s: closing", conn.peer, REQUEST_TIMEOUT_S)
                conn.http.respond_text(408, "the request took too long", close=True)
                conn.close_when_sent()
            elif conn.started_at is None and now - conn.last_activity > IDLE_TIMEOUT_S:
                conn.close()
        if self.running:
            self.timers.call_later(1.0, self._reap)

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> None:
        self.running = True
        self.start()
        self.serve(0.2)


def _allowed(path: str) -> tuple[str, ...]:
    return ROUTES.get(path, ())
