"""The CSTA Web Service's side of one HTTP connection: requests in, SOAP answers out.

A connection whose first bytes are HTTP (csta_front/sniff.py) gets an `HttpHandler`: netio's h11
driver with this service's policy (limits, timeouts, routes, HTTP Basic), which hands each SOAP
request to a CstaSession (the connection's own, or a subscription's) and answers with its result.
"""
from __future__ import annotations

import logging
import re
import ssl
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

import h11
from lxml import etree

from csta_front.safexml import local_name
from csta_front.session import CLIENT_ANSWERS
from csta_front.services_routeing import ONE_WAY_SERVICES
from csta_front.soap_session import SessionPort
from csta_front.soap_envelope import (MAX_BODY, SUBSCRIPTION_HEADER, WS_NS, SoapFault, csta_error_fault, envelope,
                                      fault_envelope, own_document, parse_envelope)
from csta_front.soap_login import AUTH_CACHE_S, parse_basic
from csta_front.soap_subscriptions import subscription_request
from netio.http import HttpDriver

if TYPE_CHECKING:
    from csta_front.soap import SoapService

log = logging.getLogger("csta")

PATH = "/csta"
REALM = "MX-ONE CSTA"
MAX_HEADERS = 16384            # h11's limit for the request line and headers (431 above it)
MAX_PIPELINED = 2 * MAX_BODY   # bytes a client may send ahead while its request is being served
IDLE_TIMEOUT_S = 120.0         # a keep-alive connection with nothing to do is closed after this
REQUEST_TIMEOUT_S = 15.0       # the exchange's answer to one request
CLOSE_FLUSH_S = 5.0            # how long a closing connection may take to send its last response
ALLOWED = b"GET, HEAD, POST"
XML_TYPES = (b"text/xml", b"application/xml")


class Reply:
    """The answer to the request a handler is serving; harmless once that request is over."""

    def __init__(self, handler: "HttpHandler", token: int):
        self.handler = handler
        self.token = token

    @property
    def alive(self) -> bool:
        h = self.handler
        return not h.closed and h.busy and h.token == self.token

    def ok(self, body_xml: bytes) -> None:
        if self.alive:
            self.handler._soap_response(200, envelope(body_xml))

    def fault(self, fault: SoapFault) -> None:
        if self.alive:
            self.handler._soap_response(500, fault_envelope(fault))

    def csta(self, xml: bytes) -> None:
        """A CstaSession's answer: a response, or a CSTAErrorCode that becomes a Fault."""
        if not self.alive:
            return
        root = own_document(xml)
        if local_name(root) == "CSTAErrorCode":
            self.fault(csta_error_fault(root))
        else:
            self.ok(xml)


_HOST = re.compile(rb"\A(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::\d{1,5})?\Z")


class HttpHandler(HttpDriver):
    def __init__(self, service: SoapService, conn: Any):
        super().__init__(MAX_HEADERS, MAX_PIPELINED + MAX_HEADERS)
        self.service = service
        self.front = service.front
        self.conn = conn
        self.peer = getattr(conn, "peer", "?")
        self.peer_ip = self.peer.rsplit(":", 1)[0]
        self.token = 0
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.too_large = False
        self.auth: tuple[bytes, str, float] | None = None   # (Authorization value, user, until)
        self.port: SessionPort | None = None
        self._closing = False
        self._request_timer: Any = None
        self._cancel: Callable[[], None] | None = None
        self.request_started: float | None = None
        self.last_activity = self.front.timers.now()
        self._idle_timer = self.front.timers.call_later(IDLE_TIMEOUT_S, self._check_idle)

    # -- input -------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_activity = self.front.timers.now()
        self.feed(data)

    def connection_lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._idle_timer.cancel()
        if self._request_timer is not None:
            self._request_timer.cancel()
        if self._cancel is not None:
            self._cancel()
        if self.port is not None and not self.port.closed:
            port, self.port = self.port, None
            port.close()

    # The driver's hooks (netio.http.HttpDriver).
    def overrun(self) -> None:
        log.info("soap: %s sends more than it waits for: closing", self.peer)
        self._close()

    def must_close(self) -> None:
        self._close_when_sent()

    def need_data(self, started: bool) -> None:
        if started:
            self._mark_started()

    def bad_request(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint or 400
        log.info("soap: %s: bad HTTP (%s): %d", self.peer, exc, status)
        if self.h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._send(status, f"{HTTPStatus(status).phrase}: {exc}\n".encode(), close=True)
        else:
            self._close()

    def request_head(self, request: h11.Request) -> None:
        self.request = request
        self.body = bytearray()
        self.too_large = False
        self._mark_started()
        length = self._header(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            self.too_large = True
            self._send(413, b"the body is larger than 64 kB\n", close=True)
            return
        if self.h.they_are_waiting_for_100_continue:
            self.conn.write(self.h.send(h11.InformationalResponse(status_code=100, headers=[])))

    def request_data(self, data: bytes) -> None:
        if not self.too_large:
            self.body += data
            if len(self.body) > MAX_BODY:
                self.too_large = True
                self._send(413, b"the body is larger than 64 kB\n", close=True)

    def request_end(self) -> None:
        self.request_started = None
        self._dispatch()

    def peer_closed(self) -> None:
        self._close()

    def _header(self, name: bytes) -> bytes | None:
        for key, value in self.request.headers if self.request is not None else ():
            if key == name:
                return value
        return None

    # -- requests ----------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        request = self.request
        target = request.target.decode("latin-1")
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            path, query = parts.path, parts.query
        else:
            path, _, query = target.partition("?")
        if path != PATH:
            self._send(404, f"no such resource: {path[:200]}\n".encode("utf-8", "replace"))
            return
        method = request.method
        if method in (b"GET", b"HEAD"):
            if query.lower() in ("wsdl", "wsdl="):
                self._send(200, self.service.wsdl.render(self._address()), b"text/xml; charset=utf-8")
            elif query:
                self._send(404, b"GET /csta?wsdl for the WSDL\n")
            else:
                self._send(405, b"POST SOAP requests to /csta; GET /csta?wsdl for the WSDL\n",
                           headers=[(b"allow", b"POST")])
            return
        if method != b"POST":
            self._send(405, b"POST SOAP requests to /csta; GET /csta?wsdl for the WSDL\n",
                       headers=[(b"allow", ALLOWED)])
            return
        media = (self._header(b"content-type") or b"").split(b";", 1)[0].strip().lower()
        if media not in XML_TYPES:
            self._send(415, b"SOAP 1.1 requests are text/xml\n")
            return
        self._authenticated(self._soap)

    def _authenticated(self, then: Callable[[str], None]) -> None:
        value = self._header(b"authorization")
        now = self.front.timers.now()
        if self.auth is not None and self.auth[0] == value and now < self.auth[2]:
            then(self.auth[1])
            return
        credentials = parse_basic(value)
        if credentials is None:
            self._unauthorized()
            return
        user, password = credentials
        self.busy = True
        self.token += 1
        token = self.token

        def done(result: str) -> None:
            if self.closed or self.token != token:
                return
            self.busy = False
            if result == "ok":
                self.auth = (value, user, self.front.timers.now() + AUTH_CACHE_S)
                then(user)
            elif result == "busy":
                self._send(503, b"too many logins at once: try again\n", headers=[(b"retry-after", b"1")])
            elif result == "unavailable":  # no login can succeed on this server: say why
                self._send(503, (self.service.auth.refusal + "\n").encode())
            elif result == "locked":
                self._send(429, b"too many failed logins: try again later\n",
                           headers=[(b"retry-after", str(int(self.front.guard.lockout_s)).encode())])
            else:
                self._unauthorized()
            if not self.busy:
                self.process()  # a pipelined request may be waiting
        self.service.auth.authenticate(user, password, self.peer_ip, done)

    def _unauthorized(self) -> None:
        self.auth = None
        self._send(401, b"log in with a Linux account (HTTP Basic)\n",
                   headers=[(b"www-authenticate", f'Basic realm="{REALM}"'.encode())])

    def _soap(self, user: str) -> None:
        self.service.requests += 1
        reply = self._begin()
        try:
            env = parse_envelope(bytes(self.body))
            sub = None
            for entry in env.headers:
                if entry.tag == SUBSCRIPTION_HEADER:
                    sub = self.service.find(entry.text, user)
        except SoapFault as fault:
            reply.fault(fault)
            return
        element = env.body
        if etree.QName(element).namespace == WS_NS:
            subscription_request(self.service, reply, user, self.peer, element)
            return
        port = sub.port if sub is not None else self._connection_port(user)
        xml = etree.tostring(element, encoding="UTF-8")
        if local_name(element) in CLIENT_ANSWERS | ONE_WAY_SERVICES:
            # An answer to the server (SystemStatusResponse), or a request ECMA-323 answers only
            # on failure (RouteSelect): accepted; an error goes where the session's documents go.
            port.session.frame_received(0, xml)
            self._soap_response(202, b"")
            return
        invoke_id = port.request(xml, reply.csta)
        if reply.alive:
            self._cancel = lambda: port.cancel(invoke_id)

    def _connection_port(self, user: str) -> SessionPort:
        if self.port is not None and (self.port.closed or self.port.owner != user):
            old, self.port = self.port, None
            if not old.closed:
                old.close()
        if self.port is None:
            self.port = SessionPort(self.front, user, f"{self.peer} (SOAP, {user})", self._unrouted, self._port_closed)
        return self.port

    def _unrouted(self, xml: bytes) -> None:
        self.service.unrouted_events += 1
        log.debug("soap: %s: an event with no subscription to go to: dropped", self.peer)

    def _port_closed(self) -> None:
        self.port = None

    def _begin(self) -> Reply:
        self.busy = True
        self.token += 1
        reply = Reply(self, self.token)
        self._request_timer = self.front.timers.call_later(REQUEST_TIMEOUT_S, lambda: self._timed_out(reply))
        return reply

    def _timed_out(self, reply: Reply) -> None:
        if reply.alive:
            log.warning("soap: %s: no answer within %.0f s", self.peer, REQUEST_TIMEOUT_S)
            reply.fault(SoapFault("Server", f"the exchange did not answer within {REQUEST_TIMEOUT_S:.0f} s"))

    # -- output ------------------------------------------------------------------------------------
    def _soap_response(self, status: int, body: bytes) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
        self.busy = False
        self._send(status, body, b"text/xml; charset=utf-8")
        self.process()  # the next pipelined request, if any

    def _send(self, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8",
              headers: list[tuple[bytes, bytes]] = (), close: bool = False) -> None:
        if self.closed:
            return
        all_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                       (b"server", b"mxone-sim CSTA"), (b"cache-control", b"no-store"), *headers]
        if close:
            all_headers.append((b"connection", b"close"))
        try:
            data = self.encode_response(status, all_headers, body,
                                        head_only=self.request is not None and self.request.method == b"HEAD")
        except h11.LocalProtocolError as exc:
            log.info("soap: %s: cannot answer (%s): closing", self.peer, exc)
            self._close()
            return
        self.last_activity = self.front.timers.now()
        self.conn.write(data)
        if self.h.our_state is h11.MUST_CLOSE:
            self._close_when_sent()

    def _close_when_sent(self) -> None:
        """Close once the last response has left; a client that does not read it within
        CLOSE_FLUSH_S is closed all the same."""
        if self.closed or self._closing:
            return
        self._closing = True
        self.conn.close_when_sent()  # calls connection_lost once the response has left
        if not self.closed:
            self.front.timers.call_later(CLOSE_FLUSH_S, self._close)

    def _close(self) -> None:
        if not self.closed:
            self.conn.close()  # calls connection_lost
            self.connection_lost()

    def _schedule(self, delay: float) -> None:
        self._idle_timer.cancel()
        self._idle_timer = self.front.timers.call_later(max(delay, 0.05), self._check_idle)

    def _mark_started(self) -> None:
        """A request has begun arriving: it must be complete within the server's frame timeout."""
        if self.request_started is None:
            self.request_started = self.front.timers.now()
            self._schedule(self.front.settings.frame_timeout_s + 0.01)

    def _check_idle(self) -> None:
        if self.closed:
            return
        now = self.front.timers.now()
        if self.busy:
            self._schedule(IDLE_TIMEOUT_S)  # the request timer guards a request being served
            return
        if self.request_started is not None:
            limit = self.front.settings.frame_timeout_s
            if now - self.request_started >= limit:
                log.info("soap: %s: a request unfinished for %.0f s: closing", self.peer, limit)
                if self.h.our_state is h11.SEND_RESPONSE:
                    self._send(408, b"the request took too long\n", close=True)
                else:
                    self._close()
                return
            self._schedule(self.request_started + limit - now + 0.01)
            return
        if now - self.last_activity >= IDLE_TIMEOUT_S:
            log.debug("soap: %s: idle: closing", self.peer)
            self._close()
            return
        self._schedule(self.last_activity + IDLE_TIMEOUT_S - now + 0.01)

    def _address(self) -> str:
        """The service address for the WSDL: the Host the client used, else the socket's own."""
        scheme = "https" if isinstance(getattr(self.conn, "sock", None), ssl.SSLSocket) else "http"
        host = self._header(b"host")
        if host and _HOST.match(host):
            return f"{scheme}://{host.decode('ascii')}{PATH}"
        try:
            address, port = self.conn.sock.getsockname()[:2]
        except (AttributeError, OSError):
            address, port = self.front.address, self.front.settings.port
        if ":" in address:
            address = f"[{address}]"
        return f"{scheme}://{address}:{port}{PATH}"
