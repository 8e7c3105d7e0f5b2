"""The CSTA server installed on one LIM: TCP listener, connections, the bus, in one poll loop.

The loop and the connections' I/O are netio's (one zmq.Poller for the bus sockets and every TCP
socket, so a request from a client, the bus request it causes, the LIM's answer and the events that
follow all run on one thread without locks); this module holds the server's policy. The first bytes
of a connection say which protocol it speaks (csta_front/sniff.py); framed ECMA-323 XML is served
here, SIP and HTTP by the handlers in `stream_handlers`.
"""
from __future__ import annotations

import errno
import logging
import socket
import ssl
from pathlib import Path
from typing import Any, Callable

import netio
from broker.directory import Directory
from broker.envelope import RELEASED_TOPIC
from broker.node import BusNode
from broker.protocol import Kind, Refusal, csta_node, lim_node
from broker.timers import TimerQueue
from csta_front.guard import AuthGuard
from csta_front.monitors import Monitors
from csta_front.faults import Faults, parse_fault
from csta_front.recorder import Recorder
from csta_front.routeing import Routeing
from csta_front.session import CstaSession
from csta_front.settings import AuthSettings, CstaStore
from csta_front.sniff import sniff
from topology.model import CstaSettings, Topology

log = logging.getLogger("csta")

MAX_OUTPUT = 4 * 1024 * 1024  # a client that reads nothing is cut off before it costs the server more
READ_SIZE = 16384  # per connection per loop round: a flooding client cannot hold the others up for long
# Connections beyond max_sessions still get the standard's refusal to their first request, up to
# this many at once (plus non-CSTA connections on the port); past that a flood is closed at accept,
# so it cannot exhaust the server's descriptors.
REFUSAL_HEADROOM = 64
# A LIM back from the dead is told BackInService once every other LIM has said it released the
# calls that depended on it (RELEASED_TOPIC), or after this long if one never says so.
RELEASE_WAIT_S = 2.0


class Connection(netio.Connection):
    """A client's TCP or TLS connection: framed ECMA-323 XML into a CstaSession, or, when its first
    bytes say so, another protocol's handler (front.stream_handlers).

    The SystemStatus greeting (system_status_on_connect) goes only to a client known to speak CSTA
    XML, never to HTTP or SIP on the same port: to one whose first bytes are a CSTA frame, before
    its first answer (what a greeting server does: every XML client hears SystemStatus first), and
    to one silent for greeting_silence_s after connecting (or after the TLS handshake), as
    OpenScape-style clients are: they say nothing until greeted, while HTTP and SIP clients always
    speak first."""

    def __init__(self, front: "FrontEnd", sock: socket.socket, peer: str, tls: bool = False):
        super().__init__(front, sock, peer, log=log, max_output=MAX_OUTPUT, read_size=READ_SIZE, tls=tls)
        self.front = front
        self.first = b""
        self.session: CstaSession | None = None
        self.partial_since: float | None = None  # when the unfinished frame (or first bytes) began
        self.handler: Any = None  # the protocol handler when the connection is not framed XML
        self.greeting_timer: Any = None
        if not tls:
            self._await_greeting()

    # -- the greeting ----------------------------------------------------------------------------
    def handshake_done(self) -> None:
        self._await_greeting()  # the silence counts from the end of the handshake

    def _await_greeting(self) -> None:
        settings = self.front.settings
        if settings.system_status_on_connect:
            self.greeting_timer = self.front.timers.call_later(settings.greeting_silence_s, self._silent)

    def _silent(self) -> None:
        self.greeting_timer = None
        if self.closed or self.first or self.session is not None or self.handler is not None:
            return  # it spoke: its first bytes decide
        self._open_session()

    def _open_session(self) -> None:
        """The connection speaks CSTA XML: a session (a refusing one past max_sessions), greeted
        first when the server greets."""
        if self.greeting_timer is not None:
            self.greeting_timer.cancel()
            self.greeting_timer = None
        if len(self.front.sessions) >= self.front.settings.max_sessions:
            log.warning("%s: %d sessions is the maximum: refusing its first request",
                        self.peer, self.front.settings.max_sessions)
            # Not in front.sessions: it counts against no one, and closes once the refusal has left.
            self.session = CstaSession(self.front, self.write, self.close_when_sent, self.peer, refused=True)
            self.partial_since = self.front.timers.now()  # silent for frame_timeout_s: closed
            return
        self.session = CstaSession(self.front, self.write, self.close, self.peer)
        self.front.sessions.add(self.session)
        self.session.connection_made()

    # -- input -----------------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        if self.handler is not None:  # another protocol on this port (SIP, HTTP)
            self.handler.data_received(data)
            return
        if self.session is None:
            self.first += data
            kind = sniff(self.first)
            if kind is None:
                return  # not enough bytes to tell yet
            data, self.first = self.first, b""
            if self.greeting_timer is not None:
                self.greeting_timer.cancel()
                self.greeting_timer = None
            if kind in self.front.stream_handlers:
                self.handler = self.front.stream_handlers[kind](self.front, self)
                self.handler.data_received(data)
                return
            if kind != "csta":
                log.info("%s speaks %s on the CSTA XML port: closing", self.peer, kind)
                self.close()
                return
            self._open_session()
        completed = self.session.data_received(data)
        if self.closed:
            return
        if not self.session.decoder.awaiting_frame:
            self.partial_since = None
        elif completed or self.partial_since is None:
            self.partial_since = self.front.timers.now()  # a new frame began in this chunk

    def stalled(self, now: float, limit: float) -> bool:
        """A frame (or the first bytes) begun and not finished within `limit` seconds: a slow or
        broken client holding the server's memory."""
        started = self.partial_since
        if self.session is None and self.first:
            started = started or now
            self.partial_since = started
        return started is not None and now - started > limit

    def lost(self) -> None:
        if self.greeting_timer is not None:
            self.greeting_timer.cancel()
            self.greeting_timer = None
        if self.session is not None:
            self.session.close()
            self.front.sessions.discard(self.session)
        if self.handler is not None:
            self.handler.connection_lost()


class FrontEnd(netio.Loop):
    def __init__(self, topology: Topology, lim: int, bus: BusNode, timers: TimerQueue,
                 settings: CstaSettings, store: CstaStore | None = None):
        super().__init__(bus, timers, log)
        self.topology = topology
        self.directory = Directory(topology)
        self.store = store
        self.recorder: Recorder | None = None  # `mxone record`: every CSTA document, in and out
        self.faults = Faults()                 # `mxone fault`: misbehaviour on purpose, off by default
        self._held_events: list[tuple[str, dict]] = []
        self.guard = AuthGuard()
        self._auth_cache: tuple[float, AuthSettings] | None = None
        self.lim = lim
        self.address = topology.lim(lim).address
        self.settings = settings
        self.monitors = Monitors(bus.subscribe, bus.unsubscribe, settings.max_monitors)
        self.sessions: set[CstaSession] = set()
        self.routeing = Routeing(self)  # route registrations of this server's sessions
        # Other protocols on the same TCP ports, by what sniff() calls them: kind -> factory
        # (front, connection) -> handler with data_received(bytes) and connection_lost().
        self.stream_handlers: dict[str, Callable[["FrontEnd", Connection], Any]] = {}
        self.lim_states: dict[int, str] = {}
        self._lim_incarnations: dict[int, int] = {}
        self.dead_incarnations: dict[str, int] = {}  # LIM node -> the newest incarnation declared dead
        self.stale_dropped = 0  # events of such incarnations, not shown
        self._releasing: dict[int, set[int]] = {}  # dead LIM -> LIMs yet to release its calls
        self._held_back: dict[int, Any] = {}       # LIM -> the timer of its held BackInService
        bus.on_event = self.on_event
        bus.on_member = self.on_member
        bus.on_members = lambda members: [self.on_member(m) for m in members]

    # -- listening ---------------------------------------------------------------------------------
    def listen(self, tls: ssl.SSLContext | None = None) -> None:
        """Listen on the server's port, and on its TLS port when a TLS context is given."""
        self._listen(self.settings.port, None)
        if self.settings.tls_port is not None and tls is not None:
            self._listen(self.settings.tls_port, tls)

    def _listen(self, port: int, tls: ssl.SSLContext | None) -> None:
        self.listen_tcp(self.address, port, 1024, lambda sock, addr: self._accepted(sock, addr, tls))
        log.info("CSTA XML%s server of LIM %d on %s:%d", " over TLS" if tls else "", self.lim, self.address, port)

    def accept_failed(self, exc: OSError) -> None:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            log.warning("out of file descriptors: not accepting for now")

    def _accepted(self, sock: socket.socket, addr: Any, tls: ssl.SSLContext | None) -> None:
        if len(self.connections) >= self.settings.max_sessions + REFUSAL_HEADROOM:
            log.warning("closed %s at once: %d connections is the most this server holds", addr,
                        self.settings.max_sessions + REFUSAL_HEADROOM)
            sock.close()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.add(Connection(self, sock, f"{addr[0]}:{addr[1]}", tls=tls is not None))

    # -- authentication ----------------------------------------------------------------------------
    def auth_settings(self) -> AuthSettings:
        """The store's authentication settings, re-read at most once a second: a change made by
        `csta_authentication` applies to the next session without a restart."""
        now = self.timers.now()
        if self._auth_cache is None or now - self._auth_cache[0] >= 1.0:
            self._auth_cache = (now, self.store.auth() if self.store else AuthSettings())
        return self._auth_cache[1]

    def authentication_required(self) -> bool:
        return self.settings.authentication_mandatory or self.auth_settings().mandatory

    # -- the bus -----------------------------------------------------------------------------------
    def on_event(self, topic: str, env) -> None:
        if env.incarnation <= self.dead_incarnations.get(env.src, -1):
            # From a LIM the broker has declared dead: published while it was cut off or hung and
            # delivered late; the exchange has released its calls since. Never shown to a client.
            self.stale_dropped += 1
            return
        slow, burst = self.faults.active.get("events"), self.faults.active.get("burst")
        key = (env.src, env.incarnation, env.seq)  # one publish on several topics: one identity
        if burst is not None:  # `mxone fault ... burst`: held until the next burst
            self._held_events.append((topic, env.body, key))
            if len(self._held_events) == 1:
                self.timers.call_later(burst.ms / 1000.0, self._release_events)
            return
        if slow is not None:  # `mxone fault ... events`: each one late
            self.timers.call_later(slow.ms / 1000.0, lambda: self._deliver(topic, env.body, key))
            return
        self._deliver(topic, env.body, key)

    def _deliver(self, topic: str, body: dict, key: Any = None) -> None:
        if topic == RELEASED_TOPIC:
            self._released(body)
            return
        shared: dict = {}  # what every monitor's document of this event has in common, written once
        for monitor in self.monitors.deliveries(topic, body, key):
            monitor.session.event(monitor, body, shared)
            if monitor.kind == "call" and body.get("event") == "CallCleared" and monitor.target == body.get("call_id"):
                # ECMA-269: a call monitor ends when its call does; the server says so.
                monitor.session.monitor_ended(monitor)
                self.monitors.stop(monitor.xref)

    def _release_events(self) -> None:
        held, self._held_events = self._held_events, []
        for topic, body, key in held:
            self._deliver(topic, body, key)

    def on_member(self, change: dict) -> None:
        """A LIM failing takes its devices out of service: every monitor of them is told, and told
        again when the LIM is back (the LIMs cannot say it themselves)."""
        if change.get("role") != "lim" or change.get("lim") is None:
            return
        lim, state = change["lim"], change["state"]
        incarnation = change.get("incarnation") if isinstance(change.get("incarnation"), int) else 0
        if state == "dead" and isinstance(change.get("incarnation"), int):
            node = change.get("node", lim_node(lim))
            self.dead_incarnations[node] = max(incarnation, self.dead_incarnations.get(node, -1))
        known = self._lim_incarnations.get(lim, 0)
        if incarnation < known:
            return  # news of an incarnation already replaced (a snapshot overtook an announcement)
        previous = self.lim_states.get(lim)
        if state != "dead" and previous not in (None, "dead") and known and known != incarnation:
            # Back as a new incarnation without our hearing the old one die (this server was cut
            # off from the broker meanwhile): its calls are gone all the same; say so.
            self.on_member({**change, "state": "dead", "incarnation": known})
            self._releasing.pop(lim, None)  # the LIMs' word on its release went by while we were cut off
            previous = "dead"
        self._lim_incarnations[lim] = incarnation
        self.lim_states[lim] = state
        if previous is None or (state == "dead") == (previous == "dead"):
            return
        for session in list(self.sessions):
            session.status_changed(self.system_status())
        if state == "dead":
            self.monitors.forget_calls_of_lim(f"{lim:03d}")  # its calls are gone: no CallCleared will come
            self._lim_dead(lim)
        else:
            self._lim_back(lim)

    # -- out of service and back -------------------------------------------------------------------
    def _lim_dead(self, lim: int) -> None:
        """OutOfService for the dead LIM's devices now; the other LIMs release its calls next."""
        for waiting in self._releasing.values():
            waiting.discard(lim)  # a dead LIM releases nothing more
        for other in list(self._held_back):
            self._back_if_released(other)
        self._releasing[lim] = {n for n, s in self.lim_states.items() if s != "dead" and n != lim}
        held = self._held_back.pop(lim, None)
        if held is not None:  # died again before its BackInService went out: still out of service
            held.cancel()
            return
        self._tell_monitors(lim, "OutOfService")

    def _lim_back(self, lim: int) -> None:
        """BackInService, but only after the events of the release of its calls: a monitor must
        not see its device back and then hear of the calls the LIM's death ended."""
        if self._releasing.get(lim):
            self._held_back[lim] = self.timers.call_later(RELEASE_WAIT_S, lambda: self._back(lim))
        else:
            self._back(lim)

    def _released(self, body: dict) -> None:
        waiting = self._releasing.get(body.get("lim"))
        if waiting is not None:
            waiting.discard(body.get("by"))
            self._back_if_released(body.get("lim"))

    def _back_if_released(self, lim: int) -> None:
        if lim in self._held_back and not self._releasing.get(lim):
            self._held_back.pop(lim).cancel()
            self._back(lim)

    def _back(self, lim: int) -> None:
        self._held_back.pop(lim, None)
        self._releasing.pop(lim, None)
        if self.lim_states.get(lim) != "dead":
            self._tell_monitors(lim, "BackInService")

    def _tell_monitors(self, lim: int, event: str) -> None:
        told = 0
        for monitor in list(self.monitors.by_xref.values()):
            if monitor.kind == "device" and self.directory.owner(monitor.target) == lim:
                monitor.session.event(monitor, {"event": event, "device": monitor.target, "call_id": None})
                told += 1
        log.info("LIM %d (incarnation %d): %s to %d monitors", lim, self._lim_incarnations.get(lim, 0), event, told)

    # -- the loop ----------------------------------------------------------------------------------
    def _reap_stalled(self) -> None:
        now = self.timers.now()
        for conn in [c for c in self.connections.values() if c.stalled(now, self.settings.frame_timeout_s)]:
            log.info("%s: a frame unfinished for %.0f s: closing", conn.peer, self.settings.frame_timeout_s)
            conn.close()
        if self.running:
            self.timers.call_later(1.0, self._reap_stalled)

    def run(self) -> None:
        self.running = True
        self.bus.subscribe(RELEASED_TOPIC)
        self.timers.call_later(1.0, self._reap_stalled)
        self.serve(0.2)

    def stopping(self) -> None:
        """The server stops (SIGTERM): every open monitor is ended, and each client told with
        MonitorStop, before the connections close."""
        ended = len(self.monitors.by_xref)
        for monitor in list(self.monitors.by_xref.values()):
            monitor.session.monitor_ended(monitor)
            self.monitors.stop(monitor.xref)
        if ended:
            log.info("stopping: %d monitors ended", ended)

    def system_status(self) -> str:
        """ECMA-269 system status: normal, or partiallyDisabled while a LIM is out of service."""
        return "partiallyDisabled" if any(s == "dead" for s in self.lim_states.values()) else "normal"

    def on_request(self, env) -> None:
        """Bus requests to this front end: its status (for `mxone status` and `csta -p`), and
        recording on or off (`mxone record`)."""
        if env.kind == Kind.CSTA_STATUS:
            self.bus.reply(env, {"ok": True, **self.status()})
        elif env.kind == Kind.CSTA_RECORD:
            self.bus.reply(env, self._record(env.body))
        elif env.kind == Kind.CSTA_FAULT:
            self.bus.reply(env, self._fault(env.body))
        elif env.kind == Kind.ROUTE_DIALOGUE:  # a route point's LIM, for one of our route registrations
            self.bus.reply(env, self.routeing.on_dialogue(env))
        else:
            self.bus.reply(env, {"ok": False, "error": Refusal.UNKNOWN_REQUEST,
                                 "message": f"{csta_node(self.lim)} does not serve {env.kind!r}"})

    def _fault(self, body: dict) -> dict[str, Any]:
        action = body.get("action")
        if action == "set":
            try:
                self.faults.set(parse_fault(body))
            except ValueError as exc:
                return {"ok": False, "error": Refusal.BAD_REQUEST, "message": str(exc)}
            log.warning("fault on: %s", self.faults.describe())
        elif action == "clear":
            self.faults.clear(body.get("kind"))
            if not self.faults.active.get("burst"):
                self._release_events()
        elif action == "reset":
            connections = list(self.connections.values())
            for conn in connections:
                conn.close()
            log.warning("fault: %d connections reset", len(connections))
            return {"ok": True, "reset": len(connections), "faults": self.faults.describe()}
        elif action != "list":
            return {"ok": False, "error": Refusal.BAD_REQUEST, "message": "fault action: set, clear, reset or list"}
        return {"ok": True, "faults": self.faults.describe()}

    def _record(self, body: dict) -> dict[str, Any]:
        if self.recorder is not None:
            self.recorder.close()
            previous, self.recorder = self.recorder, None
        else:
            previous = None
        if not body.get("on"):
            return {"ok": True, "recording": False,
                    "path": str(previous.path) if previous else None, "documents": previous.count if previous else 0}
        path = body.get("path")
        sessions = body.get("sessions")
        if not isinstance(path, str) or not path or not (sessions is None or isinstance(sessions, list)):
            return {"ok": False, "error": Refusal.BAD_REQUEST, "message": "record needs a path and a list of sessions or none"}
        try:
            self.recorder = Recorder(Path(path), set(sessions) if sessions else None)
        except OSError as exc:
            return {"ok": False, "error": Refusal.BAD_REQUEST, "message": f"cannot write {path}: {exc.strerror}"}
        return {"ok": True, "recording": True, "path": path}

    def status(self) -> dict[str, Any]:
        return {"lim": self.lim, "address": self.address, "port": self.settings.port,
                "server_type": self.settings.server_type, "sessions": len(self.sessions),
                "session_ids": sorted(s.id for s in self.sessions),
                "recording": str(self.recorder.path) if self.recorder else None,
                "faults": self.faults.describe(),
                "monitored_devices": self.monitors.devices(),
                "bus": {"events_recovered": self.bus.tracker.recovered, "holes": self.bus.tracker.holes,
                        "duplicates_dropped": self.bus.tracker.duplicates,
                        "stale_dropped": self.stale_dropped}}
