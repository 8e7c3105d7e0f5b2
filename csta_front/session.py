"""One client's CSTA session on a connection: frames in, requests served, responses and events out.

Sans-IO: the server feeds it bytes (`data_received`) and gives it a `send` and a `close`; it never
touches a socket. It answers in the namespace the client uses, serves ECMA-354 application
sessions, and (per server option) greets the client with SystemStatus as OpenScape-style client
libraries expect.
"""
from __future__ import annotations

import itertools
import logging
import re
import uuid
from typing import Any, Callable

from csta_front import wiretap
from csta_front.codec import ACSE_NS, CSTA_NS_PREFIX, DEFAULT_NS, EDITIONS, CodecError, \
    csta_namespace, error_response, find, maker, parse_request, text, to_bytes
from csta_front.events import event_xml
from csta_front.framing import EVENT_INVOKE_ID, FrameDecoder, FramingError, encode_frame
from csta_front.service_table import SERVICES
from csta_front.services import ServiceCall
from csta_front.settings import check_password

log = logging.getLogger("csta")

# Documents a client sends that are answers to the server, not requests: nothing to reply.
CLIENT_ANSWERS = {"SystemStatusResponse", "MonitorStopResponse"}
SERVER_INVOKE_IDS = 9000  # the server's own requests count from here, away from clients' first IDs
MAX_SESSION_DURATION_S = 86_400
# ECMA-354 protocolVersion: an ECMA-323 namespace, or a vendor's private variant of an edition
# (".../csta/ed3/priv5", as Avaya DMCC clients ask), which speaks that edition's documents.
_PROTOCOL_VERSION = re.compile(re.escape(CSTA_NS_PREFIX) + r"(ed[0-9]+)(?:/priv[0-9]+)?")


def protocol_edition(version: str) -> str | None:
    """The namespace a requested protocol version is spoken in (its edition's, for a private
    variant too), or None when the edition is not one this server speaks."""
    match = _PROTOCOL_VERSION.fullmatch(version)
    if match is None or match.group(1) not in EDITIONS:
        return None
    return CSTA_NS_PREFIX + match.group(1)


class CstaSession:
    _ids = itertools.count(1)

    def __init__(self, front: Any, send: Callable[[bytes], None] | None, close: Callable[[], None],
                 peer: str = "?", send_document: Callable[[int, bytes], None] | None = None,
                 refused: bool = False):
        """`send` takes framed bytes (XML over TCP); a transport that carries documents another
        way (TR87 in SIP INFO bodies, SOAP) gives `send_document(invoke_id, xml)` instead and
        feeds requests to `frame_received(invoke_id, xml)`. `refused`: a connection beyond the
        server's max_sessions, whose first request gets the standard's refusal, then the close."""
        self.front = front
        if send_document is not None:
            deliver = send_document
        elif send is not None:
            send_frame = send

            def deliver(invoke_id: int, xml: bytes) -> None:
                send_frame(encode_frame(invoke_id, xml))
        else:
            raise TypeError("a session needs send (framed bytes) or send_document")

        def send_and_record(invoke_id: int, xml: bytes) -> None:
            recorder = getattr(front, "recorder", None)
            if recorder is not None:
                recorder.document(self.id, self.peer, True, invoke_id, xml)
            tap = wiretap.TAP  # MXONE_WIRE_LOG: every document sent, for the tests' schema check
            if tap is not None:
                tap.document(self.id, self.peer, invoke_id, xml)
            deliver(invoke_id, xml)
        self._send_document = send_and_record
        self._close = close
        self.peer = peer
        self.id = next(self._ids)
        self.ns = DEFAULT_NS
        self.decoder = FrameDecoder()
        self.app_session: str | None = None
        self.app_duration = MAX_SESSION_DURATION_S
        self.app_timer = None
        self.closed = False
        self._server_invoke = itertools.count()
        # SystemRegister's sysStatRegisterIDs: each is told of every change of system status.
        self.status_registrations: list[str] = []
        self._register_ids = itertools.count(1)
        self.naming = None  # how devices are named to this client: plain numbers, or a TR87 dialog's TelNaming
        self.refused = refused

    @property
    def registered_for_status(self) -> bool:
        return bool(self.status_registrations)

    # -- input -------------------------------------------------------------------------------------
    def connection_made(self) -> None:
        if self.front.settings.system_status_on_connect:
            self.system_status(self.front.system_status())

    def system_status(self, status: str, register_id: str | None = None) -> None:
        """Send SystemStatus (a request from the server; the client answers SystemStatusResponse):
        the greeting without a register ID, a change of status with the registration's."""
        if self.closed:
            return
        E = maker(self.ns)
        register = [E.sysStatRegisterID(register_id)] if register_id is not None else []
        self._send_document(self._server_invoke_id(), to_bytes(E.SystemStatus(*register, E.systemStatus(status))))

    def status_changed(self, status: str) -> None:
        """The exchange's status changed: one SystemStatus per SystemRegister of this session."""
        for register_id in list(self.status_registrations):
            self.system_status(status, register_id)

    def monitor_ended(self, monitor) -> None:
        """The server ends one of this session's monitors: ECMA-269's Monitor Stop, invoked by the
        switching function (ECMA-323 has no MonitorEnded; MonitorStopCaps'
        switchingFunctionSupportsSending says a server sends MonitorStop). The client answers
        MonitorStopResponse. The caller takes the monitor out of the server's monitors."""
        if self.closed:
            return
        E = maker(self.ns)
        self._send_document(self._server_invoke_id(), to_bytes(E.MonitorStop(E.monitorCrossRefID(monitor.xref))))

    def end_monitors(self) -> None:
        """Every monitor of this session ends, each told to the client (session timer, server stop)."""
        for monitor in self.front.monitors.of_session(self):
            self.monitor_ended(monitor)
            self.front.monitors.stop(monitor.xref)

    def invoke(self, element) -> None:
        """A request of the switching function's own (RouteRequest, ReRoute, RouteUsed, RouteEnd):
        sent on a server invoke ID; ECMA-323 defines no answer to them."""
        if not self.closed:
            self._send_document(self._server_invoke_id(), to_bytes(element))

    def _server_invoke_id(self) -> int:
        return SERVER_INVOKE_IDS + next(self._server_invoke) % (9999 - SERVER_INVOKE_IDS)

    def data_received(self, data: bytes) -> int:
        """Serve every complete frame in `data`; returns how many there were. Frames before a
        framing error are still answered; then the connection closes."""
        error = None
        try:
            frames = self.decoder.feed(data)
        except FramingError as exc:
            error, frames = exc, list(exc.frames)
        for frame in frames:
            if self.closed:
                break
            self.frame_received(frame.invoke_id, frame.xml)
        if error is not None:
            log.warning("session %d (%s): %s: closing", self.id, self.peer, error)
            self.close()
        return len(frames)

    def frame_received(self, invoke_id: int, xml: bytes) -> None:
        recorder = getattr(self.front, "recorder", None)
        if recorder is not None:
            recorder.document(self.id, self.peer, False, invoke_id, xml)
        try:
            request = parse_request(xml)
        except CodecError as exc:
            if self.refused:
                self._refuse(invoke_id, None)
                return
            log.info("session %d: %s", self.id, exc.message)
            self.error(invoke_id, exc.category, exc.value)
            return
        if self.refused:
            self._refuse(invoke_id, request)
            return
        if request.namespace == ACSE_NS:
            self._application_session(invoke_id, request)
            return
        if request.namespace and request.namespace.startswith(CSTA_NS_PREFIX):
            # Answer each session in its own edition (a private variant's namespace: its edition's).
            self.ns = protocol_edition(request.namespace) or csta_namespace(request.namespace)
        if request.name in CLIENT_ANSWERS:
            return
        if self.app_session is None and self.front.authentication_required():
            # Nothing but StartApplicationSession is served before it succeeds.
            self.error(invoke_id, "security", "securityInfoViolated")
            return
        handler = SERVICES.get(request.name)
        if handler is None:
            self.error(invoke_id, "operation", "serviceNotSupported")
            return
        faults = getattr(self.front, "faults", None)
        fault = faults.error_for(request.name) if faults else None
        if fault is not None:  # `mxone fault ... error`
            self.error(invoke_id, fault.category, fault.value)
            return
        call = ServiceCall(self.front, self, request, invoke_id)
        try:
            handler(call)
        except CodecError as exc:
            self.error(invoke_id, exc.category, exc.value)
        except Exception:  # a fault of ours must cost one request, not the server
            log.exception("session %d: %s failed", self.id, request.name)
            self.error(invoke_id, "operation", "generic")

    def _refuse(self, invoke_id: int, request) -> None:
        """The server already serves max_sessions: the first request gets the refusal the standard
        has for it (ECMA-354 maxNumberSessions to StartApplicationSession, else ECMA-269's
        systemResourceAvailibility resourceLimitExceeded), then the connection closes."""
        if request is not None and request.namespace == ACSE_NS and request.name == "StartApplicationSession":
            E = maker(ACSE_NS)
            self._respond_raw(invoke_id, E.StartApplicationSessionNegResponse(
                E.errorCode(E.definedError("maxNumberSessions"))))
        else:
            ns = csta_namespace(request.namespace if request is not None else None)
            self.respond(invoke_id, error_response(ns, "systemResourceAvailibility", "resourceLimitExceeded"))
        self.close()

    # -- ECMA-354 application sessions ------------------------------------------------------------------
    def _application_session(self, invoke_id: int, request) -> None:
        E = maker(ACSE_NS)
        if request.name == "StartApplicationSession":
            wanted = [el.text.strip() for el in request.root.iter() if isinstance(el.tag, str)
                      and el.tag.endswith("protocolVersion") and el.text]
            # The first the client lists that this server speaks, with the edition it is spoken in.
            supported = [(v, edition) for v in wanted if (edition := protocol_edition(v))]
            if wanted and not supported:
                self._respond_raw(invoke_id, E.StartApplicationSessionNegResponse(
                    E.errorCode(E.definedError("requestedProtocolVersionNotSupported"))))
                return
            application = request.text("applicationInfo", "applicationID")
            if not application:
                self._respond_raw(invoke_id, E.StartApplicationSessionNegResponse(
                    E.errorCode(E.definedError("invalidApplicationInfo"))))
                return
            auth = self.front.auth_settings()
            if auth.initiated and not self._authenticate(invoke_id, request, application, auth):
                return
            actual, self.ns = supported[0] if supported else (self.ns, self.ns)
            duration = self._duration(request.text("requestedSessionDuration"), auth)
            self.app_duration = duration
            self.app_session = uuid.uuid4().hex
            self._arm_session_timer(duration)
            self._respond_raw(invoke_id, E.StartApplicationSessionPosResponse(
                E.sessionID(self.app_session), E.actualProtocolVersion(actual),
                E.actualSessionDuration(str(duration))))
        elif request.name in ("StopApplicationSession", "ResetApplicationSessionTimer"):
            if self.app_session is None or request.text("sessionID") != self.app_session:
                self._respond_raw(invoke_id, E(f"{request.name}NegResponse",
                                               E.errorCode(E.definedError("invalidSessionID"))))
                return
            if request.name == "StopApplicationSession":
                self._respond_raw(invoke_id, E.StopApplicationSessionPosResponse())
                self.close()
            else:
                # Without a requested duration the session keeps the one it has (ECMA-354).
                raw = request.text("requestedSessionDuration")
                duration = self._duration(raw, self.front.auth_settings()) if raw else self.app_duration
                self.app_duration = duration
                self._arm_session_timer(duration)
                self._respond_raw(invoke_id, E.ResetApplicationSessionTimerPosResponse(
                    E.actualSessionDuration(str(duration))))
        else:
            self.error(invoke_id, "operation", "serviceNotSupported")

    @staticmethod
    def _duration(raw: str | None, auth) -> int:
        limit = auth.max_session_duration_s if auth.initiated else MAX_SESSION_DURATION_S
        if raw and raw.isdigit():
            return max(1, min(int(raw), limit))
        return limit

    def _authenticate(self, invoke_id: int, request, application: str, auth) -> bool:
        """Check the application ID and the credentials in applicationSpecificInfo (the forms
        public clients use: SessionLoginInfo/userName+password, or user+password). A wrong
        answer is given late, and repeated ones lock the address and the user out for a while."""
        E = maker(ACSE_NS)
        info = find(request.root, "applicationInfo", "applicationSpecificInfo")
        login = find(info, "SessionLoginInfo")
        user = text(login, "userName") if login is not None else text(info, "user") or text(info, "userName")
        password = text(login, "password") if login is not None else text(info, "password")
        keys = [f"peer:{self.peer.rsplit(':', 1)[0]}"] + ([f"user:{user}"] if user else [])
        guard, now = self.front.guard, self.front.timers.now()
        if guard.locked(keys, now):
            self._respond_raw(invoke_id, E.StartApplicationSessionNegResponse(
                E.errorCode(E.applError("too many failed attempts: try again later"))))
            return False
        good = not auth.application_ids or application in auth.application_ids
        if good and auth.users:
            stored = auth.users.get(user or "")
            good = stored is not None and check_password(stored, password or "")
        if good:
            guard.succeeded(keys)
            return True
        delay = guard.failed(keys, now)
        log.info("session %d (%s): authentication failed for application %r user %r", self.id, self.peer,
                 application, user)
        answer = to_bytes(E.StartApplicationSessionNegResponse(E.errorCode(E.definedError("invalidApplicationInfo"))))
        self.front.timers.call_later(delay, lambda: self.respond(invoke_id, answer))
        return False

    def _arm_session_timer(self, seconds: int) -> None:
        if self.app_timer:
            self.app_timer.cancel()
        self.app_timer = self.front.timers.call_later(seconds, self._session_expired)

    def _session_expired(self) -> None:
        """ECMA-354: the server tells the application why its session ends before closing."""
        log.info("session %d: application session timer ran out: closing", self.id)
        self.end_monitors()  # each told to the client, then the session's end
        E = maker(ACSE_NS)
        self.unsolicited(E.ApplicationSessionTerminated(
            E.sessionID(self.app_session or ""), E.sessionTermReason(E.definedTermReason("sessionTimerExpired"))))
        self.close()

    # -- output ----------------------------------------------------------------------------------------
    def respond(self, invoke_id: int, xml: bytes) -> None:
        if not self.closed:
            self._send_document(invoke_id, xml)

    def _respond_raw(self, invoke_id: int, element) -> None:
        self.respond(invoke_id, to_bytes(element))

    def error(self, invoke_id: int, category: str, value: str) -> None:
        self.respond(invoke_id, error_response(self.ns, category, value))

    def unsolicited(self, element) -> None:
        """A message the server sends on its own (like an event) with invoke ID 9999."""
        if not self.closed:
            self._send_document(EVENT_INVOKE_ID, to_bytes(element))

    def event(self, monitor, body: dict, shared: dict | None = None) -> None:
        """Send a bus event to one of this session's monitors. `shared`: see events.event_xml."""
        if self.closed or body.get("event") in monitor.filtered:
            return
        xml = event_xml(self.ns, body, monitor.xref, monitor.target if monitor.kind == "device" else None, shared,
                        self.naming)
        if xml is not None:
            self._send_document(EVENT_INVOKE_ID, xml)

    def register_id(self) -> str:
        return f"{self.id}-{next(self._register_ids)}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.app_timer:
            self.app_timer.cancel()
        self.front.monitors.stop_session(self)
        routeing = getattr(self.front, "routeing", None)
        if routeing is not None:
            routeing.session_closed(self)  # its calls waiting at route points go to the defaults
        self._close()
