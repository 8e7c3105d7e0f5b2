"""One client's CSTA session on a connection: frames in, requests served, responses and events out.

Sans-IO: the server feeds it bytes (`data_received`) and gives it a `send` and a `close`; it never
touches a socket. It answers in the namespace the client uses, serves ECMA-354 application
sessions, and (per server option) greets the client with SystemStatus as OpenScape-style client
libraries expect.
"""
from __future__ import annotations

import itertools
import logging
import uuid
from typing import Any, Callable

from csta_front.codec import ACSE_NS, CSTA_NS_PREFIX, DEFAULT_NS, EDITIONS, CodecError, \
    csta_namespace, error_response, find, maker, parse_request, text, to_bytes
from csta_front.events import event_xml
from csta_front.framing import EVENT_INVOKE_ID, FrameDecoder, FramingError, encode_frame
from csta_front.services import SERVICES, ServiceCall
from csta_front.settings import check_password

log = logging.getLogger("csta")

# Documents a client sends that are answers to the server, not requests: nothing to reply.
CLIENT_ANSWERS = {"SystemStatusResponse"}
SERVER_INVOKE_IDS = 9000  # the server's own requests count from here, away from clients' first IDs
MAX_SESSION_DURATION_S = 86_400


class CstaSession:
    _ids = itertools.count(1)

    def __init__(self, front: Any, send: Callable[[bytes], None] | None, close: Callable[[], None],
                 peer: str = "?", send_document: Callable[[int, bytes], None] | None = None):
        """`send` takes framed bytes (XML over TCP); a transport that carries documents another
        way (TR87 in SIP INFO bodies, SOAP) gives `send_document(invoke_id, xml)` instead and
        feeds requests to `frame_received(invoke_id, xml)`."""
        self.front = front
        deliver = send_document or (lambda invoke_id, xml: send(encode_frame(invoke_id, xml)))

        def send_and_record(invoke_id: int, xml: bytes) -> None:
            recorder = getattr(front, "recorder", None)
            if recorder is not None:
                recorder.document(self.id, self.peer, True, invoke_id, xml)
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
        self.registered_for_status = False  # SystemRegister: told of every change of system status
        self._register_ids = itertools.count(1)
        self.naming = None  # how devices are named to this client: plain numbers, or a TR87 dialog's TelNaming

    # -- input -------------------------------------------------------------------------------------
    def connection_made(self) -> None:
        if self.front.settings.system_status_on_connect:
            self.system_status(self.front.system_status())

    def system_status(self, status: str) -> None:
        """Send SystemStatus (a request from the server; the client answers SystemStatusResponse)."""
        E = maker(self.ns)
        invoke_id = SERVER_INVOKE_IDS + next(self._server_invoke) % (9999 - SERVER_INVOKE_IDS)
        self._send_document(invoke_id, to_bytes(E.SystemStatus(E.systemStatus(status))))

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
            log.info("session %d: %s", self.id, exc.message)
            self.error(invoke_id, exc.category, exc.value)
            return
        if request.namespace == ACSE_NS:
            self._application_session(invoke_id, request)
            return
        if request.namespace and request.namespace.startswith(CSTA_NS_PREFIX):
            self.ns = csta_namespace(request.namespace)  # answer each session in its own edition
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

    # -- ECMA-354 application sessions ------------------------------------------------------------------
    def _application_session(self, invoke_id: int, request) -> None:
        E = maker(ACSE_NS)
        if request.name == "StartApplicationSession":
            wanted = [el.text.strip() for el in request.root.iter() if isinstance(el.tag, str)
                      and el.tag.endswith("protocolVersion") and el.text]
            supported = [v for v in wanted if v.startswith(CSTA_NS_PREFIX) and v[len(CSTA_NS_PREFIX):] in EDITIONS]
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
            self.ns = supported[0] if supported else self.ns
            duration = self._duration(request.text("requestedSessionDuration"), auth)
            self.app_duration = duration
            self.app_session = uuid.uuid4().hex
            self._arm_session_timer(duration)
            self._respond_raw(invoke_id, E.StartApplicationSessionPosResponse(
                E.sessionID(self.app_session), E.actualProtocolVersion(self.ns),
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
        log.info("session %d: application session timer ran out: closing", self.id)
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
        self._close()
