"""The CSTA Web Service: SOAP 1.1 over HTTP/1.1 on the CSTA XML port, as the seed's Figure 2 has it.

A connection whose first bytes are an HTTP request (csta_front/sniff.py) is handed to `HttpHandler`,
which drives an h11 connection (sans-IO: h11 parses and frames HTTP, the server's poll loop does the
I/O). Nothing here blocks the poll loop: PAM runs on worker threads, event notifications are POSTed
by a worker thread, and both report back through a socket the poll loop watches (`Waker`).

HTTP
    POST /csta          a SOAP 1.1 envelope (Content-Type text/xml or application/xml, else 415)
    GET|HEAD /csta?wsdl the WSDL (csta_front/wsdl/csta.wsdl), its service address built from the
                        request's Host header; no authentication needed: it holds no secret
    anything else       404 for another path, 405 (with Allow) for another method on /csta
    HTTP/1.1 keep-alive and pipelining (one request served at a time, in order). Headers at most
    16 kB (431), a body at most 64 kB (413, then the connection is closed: its body is not read),
    malformed HTTP gets h11's status (400 mostly) and the connection is closed. A request begun and
    not finished within the server's frame timeout, or a connection idle for IDLE_TIMEOUT_S, is closed.

Authentication (seed 6.1: Web Service clients log in with a Linux account)
    HTTP Basic on every POST, checked through PAM (python-pam) with the service PAM_SERVICE,
    "login": on Debian it is common-auth + common-account (pam_unix), so a plain `useradd` account
    whose password was set with `chpasswd` or `passwd` works; it also honours /etc/nologin and
    delays a wrong password by 3 s (pam_faildelay), which costs a worker thread, not the server.
    The account module runs too (expired or locked accounts are refused); pam_setcred does not,
    as it would change the server process's own groups and capabilities (pam_group, pam_cap).
    The server must run as root for pam_unix to read /etc/shadow (it does under supervisord).
    No, malformed or wrong credentials: 401 with `WWW-Authenticate: Basic realm="MX-ONE CSTA"`.
    PAM calls run on a pool of AUTH_WORKERS threads: the poll loop never waits for PAM, and a client
    cannot hold more than AUTH_PER_PEER of the workers at once (its further attempts get 503 with
    Retry-After), so one client's slow or failing logins delay others' by little. AUTH_MAX_PENDING
    checks may wait at once (then 503). A success is cached on the connection for AUTH_CACHE_S
    (same Authorization header: no PAM call). Failures count in the server's AuthGuard under the
    client's address (shared with ECMA-354 logins) and the Linux user name: from its 5th failure
    within 5 minutes a key is locked out for a minute (429 with Retry-After, no PAM call).

SOAP
    The Body holds one element. An ECMA-323 request (any edition namespace, any prefix) is fed to a
    CstaSession and its answer comes back in the response Body; a CSTAErrorCode comes back as a
    SOAP Fault: faultcode soap:Server for the categories that are the exchange's trouble
    (systemResourceAvailability, subscribedResourceAvailability, performanceManagement,
    unspecified, privateData, and operation/generic), soap:Client for the others (the request was
    wrong for the exchange's state or data); faultstring "CSTA error: <category> <value>"; detail
    holds the CSTAErrorCode element. A body that is not a SOAP 1.1 envelope (not XML, another
    root, no Body, not exactly one element in it) is a soap:Client Fault with HTTP 500, the SOAP 1.1
    convention for every Fault; a SOAP 1.2 envelope is a VersionMismatch Fault; a header entry
    with mustUnderstand="1" other than SubscriptionID is a MustUnderstand Fault. SOAPAction is not
    needed: the Body element says what is asked. An answer the exchange does not give within
    REQUEST_TIMEOUT_S is a soap:Server Fault.

    Which CstaSession serves a request:
      * with a `SubscriptionID` header entry (urn:mxone-sim:csta:ws) naming one of the caller's
        subscriptions: that subscription's session, so its monitors, cross-reference IDs and
        events belong to the subscription and live as long as it does, across HTTP connections;
      * otherwise: one session per HTTP connection (created on its first authenticated request,
        closed with the connection, a new one if another user logs in on the connection). Its
        monitors last as long as the connection, and their events have nowhere to go: they are
        counted and dropped. Use Subscribe to receive events. A MonitorStop must reach the session
        that started the monitor (same connection, or same SubscriptionID).
    The sessions are authenticated by the Linux login, so the server's ECMA-354 "authentication
    mandatory" setting does not ask them for StartApplicationSession (they may still send it).

Events, in the style of ECMA-348 / WS-Eventing (elements in urn:mxone-sim:csta:ws, see the WSDL)
    Subscribe(NotifyTo?, Device+, Expires?) starts a device monitor on every Device in the
    subscription's own session (all or none: a failing MonitorStart undoes the others and comes back
    as the Fault of its CSTAErrorCode) and answers SubscriptionID, the granted Expires and each
    device's monitorCrossRefID. Expires is an xs:duration (PT10M) or seconds; default
    DEFAULT_EXPIRES_S, at most MAX_EXPIRES_S; the subscription ends then unless renewed with
    Renew(SubscriptionID, Expires?). Unsubscribe(SubscriptionID) ends it at once; ending stops its
    monitors. Subscriptions belong to the Linux user who made them (another user gets the fault
    unknownSubscription); at most MAX_SUBSCRIPTIONS per server and MAX_USER_SUBSCRIPTIONS per user.
    Push: with NotifyTo (an http:// URL) every event is POSTed there as a SOAP 1.1 envelope whose
    Body is the ECMA-323 event and whose Header holds SubscriptionID, with SOAPAction
    "urn:mxone-sim:csta:ws#<EventName>" (the CstaEventSink port type of the WSDL); any 2xx answer is
    success. POSTs are made by one worker thread with http.client (keep-alive per endpoint, timeout
    NOTIFY_TIMEOUT_S) fed by a bounded queue (NOTIFY_QUEUE): a worker thread rather than
    non-blocking sockets in the poll loop, because the loop has no hook for client sockets, name
    resolution blocks anyway, and one thread keeps each subscription's events in order. An event that
    cannot be pushed (queue full: a log line and a count; endpoint refused, failed or answered
    non-2xx: a log line, a count and PUSH_BACKOFF_S during which the subscription's events are not
    pushed) is kept in the subscription's queue for GetEvents instead, so nothing is lost silently.
    Pull: GetEvents(SubscriptionID, MaxEvents?, Wait?) returns up to MaxEvents (default 100, at most
    1000) queued events, oldest first, waiting up to Wait (at most MAX_WAIT_S) for the first one when
    none is queued (long poll; a newer GetEvents on the subscription answers an older waiting one
    at once). Without NotifyTo every event is queued. The queue holds MAX_QUEUED events per
    subscription; when full the oldest is dropped and counted: DroppedEvents in the next answer.
    SwitchingFunctionDevices segments (GetSwitchingFunctionDevices sent with a SubscriptionID
    header) travel like events.

Not supported: SOAP 1.2, MTOM/attachments, WS-Addressing and WS-Eventing's own wire format (the
messages are WS-Eventing-like, in this server's namespace), https NotifyTo addresses, Expires as a
dateTime, SubscriptionEnd notices; Digest or other HTTP authentication schemes.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import itertools
import logging
import queue
import re
import socket
import ssl
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Any, Callable
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

import h11
from lxml import etree
from lxml.builder import ElementMaker

from csta_front.codec import DEFAULT_NS, children, device_number, maker, text, to_bytes
from csta_front.safexml import XmlError, local_name, parse_xml
from csta_front.session import CLIENT_ANSWERS, CstaSession
from netio.http import HttpDriver

__all__ = ["install", "SoapService", "HttpHandler", "SoapFault", "Envelope", "parse_envelope", "envelope",
           "fault_envelope", "csta_error_fault", "parse_basic", "parse_duration", "pam_check", "load_wsdl",
           "SOAP_NS", "WS_NS", "PATH", "REALM", "PAM_SERVICE"]

log = logging.getLogger("csta")

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WS_NS = "urn:mxone-sim:csta:ws"  # Subscribe, Renew, Unsubscribe, GetEvents and the SubscriptionID header
SUBSCRIPTION_HEADER = f"{{{WS_NS}}}SubscriptionID"

PATH = "/csta"
REALM = "MX-ONE CSTA"
PAM_SERVICE = "login"
MAX_BODY = 65536               # 413 above this
MAX_HEADERS = 16384            # h11's limit for the request line and headers (431 above it)
MAX_PIPELINED = 2 * MAX_BODY   # bytes a client may send ahead while its request is being served
IDLE_TIMEOUT_S = 120.0         # a keep-alive connection with nothing to do is closed after this
REQUEST_TIMEOUT_S = 15.0       # the exchange's answer to one request
CLOSE_FLUSH_S = 5.0            # how long a closing connection may take to send its last response

AUTH_CACHE_S = 60.0
AUTH_WORKERS = 4
AUTH_PER_PEER = 2
AUTH_MAX_PENDING = 64

DEFAULT_EXPIRES_S = 600
MAX_EXPIRES_S = 3600
MAX_SUBSCRIPTIONS = 256
MAX_USER_SUBSCRIPTIONS = 32
MAX_DEVICES = 64               # per Subscribe
MAX_QUEUED = 1000              # events kept per subscription for GetEvents
MAX_EVENTS = 1000              # per GetEvents answer
DEFAULT_MAX_EVENTS = 100
MAX_WAIT_S = 10.0              # GetEvents long poll
NOTIFY_QUEUE = 1000            # events waiting for the notification thread, all subscriptions
NOTIFY_TIMEOUT_S = 3.0
PUSH_BACKOFF_S = 10.0

ALLOWED = b"GET, HEAD, POST"
CLIENT_INVOKE_IDS = 9000       # SOAP requests use invoke IDs 1-8999 in their sessions
XML_TYPES = (b"text/xml", b"application/xml")


# =================================================================================================
# SOAP envelopes (pure)
# =================================================================================================
class SoapFault(Exception):
    """A SOAP 1.1 Fault. `code` is the local part of the faultcode: Client, Server, VersionMismatch
    or MustUnderstand; `detail` an element to put in <detail>, or None."""

    def __init__(self, code: str, string: str, detail: etree._Element | None = None):
        super().__init__(string)
        self.code = code
        self.string = string
        self.detail = detail


@dataclass
class Envelope:
    headers: list[etree._Element]   # the Header's entries
    body: etree._Element            # the one element in the Body


def parse_envelope(data: bytes, understood: frozenset[str] = frozenset({SUBSCRIPTION_HEADER})) -> Envelope:
    """A SOAP 1.1 envelope, or SoapFault (Client, VersionMismatch, MustUnderstand)."""
    try:
        root = parse_xml(data, max_bytes=MAX_BODY)
    except XmlError as exc:
        raise SoapFault("Client", f"not a SOAP envelope: {exc.message}") from None
    qname = etree.QName(root)
    if qname.localname == "Envelope" and qname.namespace == SOAP12_NS:
        raise SoapFault("VersionMismatch", "a SOAP 1.2 envelope: this service speaks SOAP 1.1")
    if qname.localname != "Envelope" or qname.namespace != SOAP_NS:
        raise SoapFault("Client", f"not a SOAP 1.1 envelope: the document is <{qname.localname}>"
                                  f"{' in ' + qname.namespace if qname.namespace else ''}")
    header = body = None
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{SOAP_NS}}}Header" and header is None and body is None:
            header = child
        elif child.tag == f"{{{SOAP_NS}}}Body" and body is None:
            body = child
        elif body is None:
            raise SoapFault("Client", f"unexpected <{local_name(child)}> in the envelope")
        # SOAP 1.1 allows further elements after the Body: ignored.
    if body is None:
        raise SoapFault("Client", "the envelope has no Body")
    entries = [h for h in (header if header is not None else []) if isinstance(h.tag, str)]
    for entry in entries:
        if entry.get(f"{{{SOAP_NS}}}mustUnderstand", "0").strip() in ("1", "true") and entry.tag not in understood:
            raise SoapFault("MustUnderstand", f"header {entry.tag} is not understood")
    items = [c for c in body if isinstance(c.tag, str)]
    if len(items) != 1:
        raise SoapFault("Client", f"the Body must hold exactly one request element, it holds {len(items)}")
    return Envelope(entries, items[0])


_DECLARATION = re.compile(rb"\A\s*<\?xml[^>]*\?>\s*")
_ENVELOPE_START = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                   b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">')


def envelope(body_xml: bytes, header_xml: bytes = b"") -> bytes:
    """A SOAP 1.1 envelope around one document (its XML declaration dropped) and header entries."""
    header = b"<soap:Header>" + _DECLARATION.sub(b"", header_xml) + b"</soap:Header>" if header_xml else b""
    return (_ENVELOPE_START + header + b"<soap:Body>" + _DECLARATION.sub(b"", body_xml)
            + b"</soap:Body></soap:Envelope>")


_S = ElementMaker(namespace=SOAP_NS, nsmap={"soap": SOAP_NS})
_PLAIN = ElementMaker()


def fault_envelope(fault: SoapFault) -> bytes:
    parts = [_PLAIN.faultcode(f"soap:{fault.code}"), _PLAIN.faultstring(fault.string)]
    if fault.detail is not None:
        parts.append(_PLAIN.detail(fault.detail))
    return etree.tostring(_S.Envelope(_S.Body(_S.Fault(*parts))), xml_declaration=True, encoding="UTF-8")


# CSTAErrorCode categories that are the exchange's trouble rather than the request's.
SERVER_CATEGORIES = frozenset({"systemResourceAvailability", "subscribedResourceAvailability",
                               "performanceManagement", "unspecified", "privateData"})


def csta_error_fault(error: etree._Element, what: str = "") -> SoapFault:
    category_el = next((c for c in error if isinstance(c.tag, str)), None)
    category = local_name(category_el) if category_el is not None else "unspecified"
    value = (category_el.text or "").strip() if category_el is not None else ""
    server = category in SERVER_CATEGORIES or (category == "operation" and value == "generic")
    string = f"CSTA error: {category} {value}".rstrip()
    return SoapFault("Server" if server else "Client", f"{what}: {string}" if what else string, error)


def _ws_fault(reason: str, string: str, code: str = "Client") -> SoapFault:
    W = _ws()
    return SoapFault(code, string, W.SubscriptionFault(W.Reason(reason)))


def _ws() -> ElementMaker:
    return ElementMaker(namespace=WS_NS, nsmap={"mx": WS_NS})


_DURATION = re.compile(r"\AP(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?\Z")


def parse_duration(raw: str | None) -> float | None:
    """Seconds of an xs:duration without years or months (P1DT2H, PT10M, PT1.5S), or of a plain
    number of seconds; None when it is neither (or negative)."""
    if raw is None:
        return None
    raw = raw.strip()
    if re.fullmatch(r"\d+(?:\.\d*)?", raw):
        return float(raw)
    match = _DURATION.match(raw)
    if not match or raw in ("P", "PT") or raw.endswith("T"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    return f"PT{int(seconds)}S"


# =================================================================================================
# HTTP Basic and PAM
# =================================================================================================
_USER_NAME = re.compile(r"\A[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?\Z")


def parse_basic(value: bytes | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` value, or None when it is missing or
    malformed (or the name could not be a Linux account's)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not _USER_NAME.match(user) or len(password) > 512 or "\x00" in password:
        return None
    return user, password


def pam_check(user: str, password: str, service: str = PAM_SERVICE) -> bool:
    """The Linux account's password, through PAM (auth and account stacks, no pam_setcred). Blocks:
    pam_unix hashes the password, and a failure is delayed (pam_faildelay). Call off the loop."""
    import pam  # python-pam; imported here so a server without SOAP clients never loads libpam
    authenticator = pam.PamAuthenticator()
    return bool(authenticator.authenticate(user, password, service=service, resetcreds=False))


class Waker:
    """Hands work from other threads to the poll loop: a queue of callables, and a datagram on a
    socket pair registered with the front end's poller so the loop wakes up and runs them."""

    def __init__(self, front: Any):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._recv, self._send = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._send.setblocking(False)
        front.add_datagram_socket(self._recv, lambda _data, _address: self.drain())

    def call_soon(self, fn: Callable[[], None]) -> None:
        """From any thread."""
        self._queue.put(fn)
        try:
            self._send.send(b"!")
        except OSError:
            pass  # the socket's buffer is full of wake-ups already: the loop will drain the queue

    def close(self) -> None:
        for sock in (self._recv, self._send):
            sock.close()

    def drain(self) -> None:
        """On the loop."""
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:  # one completion's fault must not stop the others
                log.exception("soap: a completion failed")


class Authenticator:
    """Linux-account checks on worker threads; `done(result)` runs on the loop with "ok", "denied",
    "locked" (too many failures: the AuthGuard) or "busy" (too many checks waiting)."""

    def __init__(self, front: Any, waker: Waker, check: Callable[[str, str], bool] = pam_check,
                 submit: Callable[[Callable[[], None]], Any] | None = None):
        self.front = front
        self.waker = waker
        self.check = check
        self._submit = submit
        self._executor: ThreadPoolExecutor | None = None
        self.pending = 0
        self.per_peer: dict[str, int] = {}
        self.checks = 0
        self.failures = 0

    def submit(self, fn: Callable[[], None]) -> None:
        if self._submit is not None:
            self._submit(fn)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(AUTH_WORKERS, thread_name_prefix="soap-pam")
        self._executor.submit(fn)

    def authenticate(self, user: str, password: str, peer_ip: str, done: Callable[[str], None]) -> None:
        keys = [f"peer:{peer_ip}", f"linux-user:{user}"]
        guard = self.front.guard
        if guard.locked(keys, self.front.timers.now()):
            done("locked")
            return
        if self.pending >= AUTH_MAX_PENDING or self.per_peer.get(peer_ip, 0) >= AUTH_PER_PEER:
            done("busy")
            return
        self.pending += 1
        self.per_peer[peer_ip] = self.per_peer.get(peer_ip, 0) + 1
        self.checks += 1

        def finish(ok: bool) -> None:
            self.pending -= 1
            left = self.per_peer.get(peer_ip, 1) - 1
            if left > 0:
                self.per_peer[peer_ip] = left
            else:
                self.per_peer.pop(peer_ip, None)
            if ok:
                guard.succeeded(keys)
                done("ok")
            else:
                self.failures += 1
                guard.failed(keys, self.front.timers.now())
                log.info("soap: %s: Linux login of %r refused", peer_ip, user)
                done("denied")

        def work() -> None:
            try:
                ok = self.check(user, password)
            except Exception as exc:  # PAM missing or broken: a refusal, said in the log
                log.error("soap: PAM check of %r failed: %r", user, exc)
                ok = False
            self.waker.call_soon(lambda: finish(ok))

        self.submit(work)


# =================================================================================================
# Event notifications (push)
# =================================================================================================
class Notifier:
    """One worker thread POSTing notifications, fed by a bounded queue; failures go back to the
    loop through the waker."""

    def __init__(self, waker: Waker, maxsize: int = NOTIFY_QUEUE, timeout: float = NOTIFY_TIMEOUT_S):
        self.waker = waker
        self.timeout = timeout
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, host: str, port: int, path: str, action: str, body: bytes,
               on_failure: Callable[[str], None]) -> bool:
        """False when the queue is full (the caller keeps the event)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="soap-notify", daemon=True)
            self.thread.start()
        try:
            self.queue.put_nowait((host, port, path, action, body, on_failure))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        if self.thread is not None:
            try:
                self.queue.put_nowait(None)
            except queue.Full:
                pass

    def _run(self) -> None:
        connections: dict[tuple[str, int], http.client.HTTPConnection] = {}
        while True:
            item = self.queue.get()
            if item is None:
                break
            host, port, path, action, body, on_failure = item
            try:
                error = self._post(connections, host, port, path, action, body)
            except Exception as exc:  # never let the thread die
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                self.sent += 1
            else:
                self.failed += 1
                self.waker.call_soon(lambda on_failure=on_failure, error=error: on_failure(error))
        for conn in connections.values():
            conn.close()

    def _post(self, connections: dict, host: str, port: int, path: str, action: str, body: bytes) -> str | None:
        for _ in range(2):
            conn = connections.pop((host, port), None)
            fresh = conn is None
            if fresh:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            try:
                conn.request("POST", path, body=body, headers={
                    "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{WS_NS}#{action}"',
                    "User-Agent": "mxone-sim CSTA"})
                response = conn.getresponse()
                response.read(MAX_BODY)
                complete = response.isclosed()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if fresh:
                    return f"{type(exc).__name__}: {exc}"
                continue  # a kept-alive connection the listener had closed: once more on a new one
            if complete and not response.will_close:
                if len(connections) >= 32:
                    connections.pop(next(iter(connections))).close()
                connections[(host, port)] = conn
            else:
                conn.close()
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        return "the connection failed twice"


# =================================================================================================
# Sessions driven by documents
# =================================================================================================
class SessionPort:
    """A CstaSession fed documents: each request gets a fresh invoke ID (below 9000: the session
    numbers its own requests, such as SystemStatus, from 9000) and its answer goes to its callback;
    every other document (events and SwitchingFunctionDevices on 9999, SystemStatus) goes to
    `on_event`."""

    def __init__(self, front: Any, owner: str, peer: str, on_event: Callable[[bytes], None],
                 on_closed: Callable[[], None]):
        self.front = front
        self.owner = owner
        self.on_event = on_event
        self.on_closed = on_closed
        self.closed = False
        self._waiting: dict[int, Callable[[bytes], None]] = {}
        self._invoke = itertools.cycle(range(1, CLIENT_INVOKE_IDS))
        self.session = CstaSession(front, None, self._session_closed, peer, send_document=self._document)
        # Authenticated by the Linux login: ECMA-354's "authentication mandatory" asks no more of it.
        self.session.app_session = f"linux:{owner}"
        front.sessions.add(self.session)

    def request(self, xml: bytes, answer: Callable[[bytes], None]) -> int:
        invoke_id = next(self._invoke)
        self._waiting[invoke_id] = answer
        self.session.frame_received(invoke_id, xml)
        return invoke_id

    def cancel(self, invoke_id: int) -> None:
        self._waiting.pop(invoke_id, None)

    def _document(self, invoke_id: int, xml: bytes) -> None:
        if invoke_id >= CLIENT_INVOKE_IDS:
            self.on_event(xml)
            return
        answer = self._waiting.pop(invoke_id, None)
        if answer is not None:
            answer(xml)
        else:  # the answer to a request given up on (its HTTP request timed out or went away)
            log.debug("soap: session %d: a late answer on invoke ID %d dropped", self.session.id, invoke_id)

    def close(self) -> None:
        self.session.close()  # calls _session_closed

    def _session_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._waiting.clear()
        self.front.sessions.discard(self.session)
        self.on_closed()


def _root(xml: bytes) -> etree._Element:
    """Our own session's output: trusted, parsed without safexml's limits."""
    return etree.fromstring(xml)


@dataclass
class NotifyTarget:
    url: str
    host: str
    port: int
    path: str


def notify_target(raw: str | None) -> NotifyTarget | None:
    """An http:// NotifyTo URL, or None when it is not one."""
    if not raw:
        return None
    raw = raw.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port or 80
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or not parts.hostname or parts.username or parts.password:
        return None
    if any(c in raw for c in "\r\n\t "):
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return NotifyTarget(raw, parts.hostname, port, path)


class Subscription:
    """Monitors of some devices in a session of its own, and where their events go."""

    def __init__(self, service: "SoapService", owner: str, peer: str, target: NotifyTarget | None,
                 expires_s: float):
        self.service = service
        self.front = service.front
        self.id = uuid.uuid4().hex
        self.owner = owner
        self.target = target
        self.active = False
        self.ended = False
        self.monitors: dict[str, str] = {}  # device -> monitorCrossRefID
        self.events: deque[bytes] = deque()
        self.dropped = 0         # since the last GetEvents
        self.dropped_total = 0
        self.pushed = 0
        self.push_failures = 0
        self.backoff_until = 0.0
        self.getter: _Getter | None = None
        self.expires_s = expires_s
        self.timer = self.front.timers.call_later(expires_s, self._expired)
        self.port = SessionPort(self.front, owner, f"subscription {self.id[:8]} of {owner} ({peer})",
                                self.deliver, lambda: self.end("its session closed"))

    # -- lifetime ----------------------------------------------------------------------------------
    def renew(self, expires_s: float) -> None:
        self.timer.cancel()
        self.expires_s = expires_s
        self.timer = self.front.timers.call_later(expires_s, self._expired)

    def _expired(self) -> None:
        log.info("soap: subscription %s of %s expired", self.id, self.owner)
        self.end("expired")

    def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.timer.cancel()
        self.service.subscriptions.pop(self.id, None)
        if self.getter is not None:
            getter, self.getter = self.getter, None
            getter.answer(self)
        if not self.port.closed:
            self.port.close()  # stops the monitors
        log.info("soap: subscription %s of %s ended: %s (%d pushed, %d push failures, %d dropped)",
                 self.id, self.owner, reason, self.pushed, self.push_failures, self.dropped_total)

    # -- events ------------------------------------------------------------------------------------
    def deliver(self, xml: bytes) -> None:
        if self.ended:
            return
        target = self.target
        if target is not None and self.front.timers.now() >= self.backoff_until:
            body = envelope(xml, to_bytes(_ws().SubscriptionID(self.id)))
            action = _document_name(xml)
            if self.service.notifier.submit(target.host, target.port, target.path, action, body,
                                            lambda error, xml=xml: self._push_failed(xml, error)):
                self.pushed += 1
                return
            dropped = self.service.notifier.dropped
            if dropped == 1 or dropped % 100 == 0:
                log.warning("soap: the notification queue is full (%d events not pushed so far): "
                            "subscription %s keeps its events for GetEvents", dropped, self.id)
        self._queue(xml)

    def _push_failed(self, xml: bytes, error: str) -> None:
        if self.ended:
            return
        self.push_failures += 1
        if self.front.timers.now() >= self.backoff_until:
            log.warning("soap: subscription %s: POST to %s failed (%s): events kept for GetEvents for %.0f s",
                        self.id, self.target.url if self.target else "?", error, PUSH_BACKOFF_S)
        self.backoff_until = self.front.timers.now() + PUSH_BACKOFF_S
        self._queue(xml)

    def _queue(self, xml: bytes) -> None:
        if len(self.events) >= MAX_QUEUED:
            self.events.popleft()
            self.dropped += 1
            self.dropped_total += 1
            if self.dropped_total == 1 or self.dropped_total % 100 == 0:
                log.warning("soap: subscription %s: %d events dropped (nobody fetches them)", self.id,
                            self.dropped_total)
        self.events.append(xml)
        if self.getter is not None:
            getter, self.getter = self.getter, None
            getter.answer(self)

    def take(self, max_events: int) -> tuple[list[bytes], int]:
        taken = [self.events.popleft() for _ in range(min(max_events, len(self.events)))]
        dropped, self.dropped = self.dropped, 0
        return taken, dropped

    def get_events(self, reply: "Reply", max_events: int, wait_s: float) -> None:
        if self.getter is not None:  # the newer request wins; the older one is answered now
            getter, self.getter = self.getter, None
            getter.answer(self)
        if self.events or wait_s <= 0:
            _Getter(reply, max_events, None).answer(self)
            return
        getter = _Getter(reply, max_events, None)
        getter.timer = self.front.timers.call_later(wait_s, lambda: self._wait_over(getter))
        self.getter = getter

    def _wait_over(self, getter: "_Getter") -> None:
        if self.getter is getter:
            self.getter = None
            getter.answer(self)


def _document_name(xml: bytes) -> str:
    match = re.search(rb"<(?:[\w.-]+:)?([\w.-]+)", _DECLARATION.sub(b"", xml))
    return match.group(1).decode() if match else "Event"


class _Getter:
    """A GetEvents waiting for events."""

    def __init__(self, reply: "Reply", max_events: int, timer: Any):
        self.reply = reply
        self.max_events = max_events
        self.timer = timer

    def answer(self, sub: Subscription) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.reply.alive:
            return  # the client went away: the events stay queued
        events, dropped = sub.take(self.max_events)
        W = _ws()
        items = [W.Event(_root(xml)) for xml in events]
        self.reply.ok(to_bytes(W.GetEventsResponse(*items, W.DroppedEvents(str(dropped)),
                                                   W.QueuedEvents(str(len(sub.events))))))


# =================================================================================================
# The service: one per CSTA server
# =================================================================================================
def load_wsdl() -> bytes:
    return (resources.files("csta_front") / "wsdl" / "csta.wsdl").read_bytes()


class Wsdl:
    """The shipped WSDL with its service address replaced per request."""
    PLACEHOLDER = b'location="http://localhost:8882/csta"'

    def __init__(self, data: bytes):
        if data.count(self.PLACEHOLDER) != 1:
            raise ValueError("the WSDL must name its service address exactly once as " + self.PLACEHOLDER.decode())
        self.before, _, self.after = data.partition(self.PLACEHOLDER)

    def render(self, address: str) -> bytes:
        return self.before + b"location=" + quoteattr(address).encode("utf-8") + self.after


class SoapService:
    def __init__(self, front: Any, check: Callable[[str, str], bool] = pam_check,
                 submit: Callable[[Callable[[], None]], Any] | None = None):
        self.front = front
        self.waker = Waker(front)
        self.auth = Authenticator(front, self.waker, check, submit)
        self.notifier = Notifier(self.waker)
        self.subscriptions: dict[str, Subscription] = {}
        self.wsdl = Wsdl(load_wsdl())
        self.unrouted_events = 0  # events of monitors started on a connection's own session
        self.requests = 0

    def handler(self, front: Any, conn: Any) -> "HttpHandler":
        return HttpHandler(self, conn)

    def close(self) -> None:
        """End every subscription and the worker threads (tests; a server process just exits)."""
        for sub in list(self.subscriptions.values()):
            sub.end("the service closed")
        self.notifier.close()
        if self.auth._executor is not None:
            self.auth._executor.shutdown(wait=False, cancel_futures=True)
        self.waker.close()

    def find(self, sub_id: str | None, user: str) -> Subscription:
        sub = self.subscriptions.get((sub_id or "").strip())
        if sub is None or sub.owner != user or not sub.active:
            raise _ws_fault("unknownSubscription", f"no subscription {sub_id!r} of yours")
        return sub

    def _expires(self, raw: str | None) -> float:
        if raw is None or not raw.strip():
            return DEFAULT_EXPIRES_S
        seconds = parse_duration(raw)
        if seconds is None or seconds <= 0:
            raise _ws_fault("invalidExpirationTime", f"Expires {raw!r}: give a positive xs:duration such as PT10M")
        return min(max(seconds, 1.0), MAX_EXPIRES_S)

    # -- the subscription operations -----------------------------------------------------------------
    def ws_request(self, reply: "Reply", user: str, peer: str, el: etree._Element) -> None:
        name = local_name(el)
        try:
            if name == "Subscribe":
                self._subscribe(reply, user, peer, el)
            elif name == "Renew":
                sub = self.find(text(el, "SubscriptionID"), user)
                sub.renew(self._expires(text(el, "Expires")))
                W = _ws()
                reply.ok(to_bytes(W.RenewResponse(W.Expires(format_duration(sub.expires_s)))))
            elif name == "Unsubscribe":
                sub = self.find(text(el, "SubscriptionID"), user)
                sub.end("unsubscribed")
                reply.ok(to_bytes(_ws().UnsubscribeResponse()))
            elif name == "GetEvents":
                sub = self.find(text(el, "SubscriptionID"), user)
                raw_max = text(el, "MaxEvents")
                if raw_max is not None and not raw_max.isdigit():
                    raise _ws_fault("invalidMaxEvents", f"MaxEvents {raw_max!r} is not a number")
                max_events = min(max(int(raw_max), 1), MAX_EVENTS) if raw_max else DEFAULT_MAX_EVENTS
                raw_wait = text(el, "Wait")
                wait = parse_duration(raw_wait) if raw_wait else 0.0
                if wait is None:
                    raise _ws_fault("invalidWait", f"Wait {raw_wait!r}: give an xs:duration such as PT5S")
                sub.get_events(reply, max_events, min(wait, MAX_WAIT_S))
            else:
                raise _ws_fault("unknownOperation", f"{name} is not an operation of this service")
        except SoapFault as fault:
            reply.fault(fault)

    def _subscribe(self, reply: "Reply", user: str, peer: str, el: etree._Element) -> None:
        raw_target = text(el, "NotifyTo")
        target = notify_target(raw_target)
        if raw_target and target is None:
            raise _ws_fault("invalidNotifyTo", f"NotifyTo {raw_target!r}: give an http:// URL")
        devices: list[str] = []
        for item in children(el, "Device"):
            number = device_number(item.text)
            if not number:
                raise _ws_fault("invalidDevice", "an empty Device")
            if number not in devices:
                devices.append(number)
        if not devices:
            raise _ws_fault("noDevice", "Subscribe needs at least one Device")
        if len(devices) > MAX_DEVICES:
            raise _ws_fault("tooManyDevices", f"at most {MAX_DEVICES} devices per subscription")
        expires = self._expires(text(el, "Expires"))
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise _ws_fault("tooManySubscriptions", f"this server's {MAX_SUBSCRIPTIONS} subscriptions are in use",
                            code="Server")
        if sum(1 for s in self.subscriptions.values() if s.owner == user) >= MAX_USER_SUBSCRIPTIONS:
            raise _ws_fault("tooManySubscriptions", f"{user} has {MAX_USER_SUBSCRIPTIONS} subscriptions already")
        sub = Subscription(self, user, peer, target, expires)
        self.subscriptions[sub.id] = sub
        answers: dict[str, bytes] = {}
        E = maker(DEFAULT_NS)

        def answered(device: str, xml: bytes) -> None:
            answers[device] = xml
            if len(answers) == len(devices):
                finish()

        def finish() -> None:
            for device in devices:
                root = _root(answers[device])
                if local_name(root) == "CSTAErrorCode":
                    sub.end(f"MonitorStart {device} failed")
                    reply.fault(csta_error_fault(root, f"MonitorStart {device}"))
                    return
                sub.monitors[device] = text(root, "monitorCrossRefID") or ""
            if not reply.alive:
                sub.end("the client left before the answer")
                return
            sub.active = True
            W = _ws()
            log.info("soap: subscription %s of %s (%s): %s, %s", sub.id, user, peer, " ".join(devices),
                     f"notify {target.url}" if target else "pull")
            reply.ok(to_bytes(W.SubscribeResponse(
                W.SubscriptionID(sub.id), W.Expires(format_duration(expires)),
                *[W.Monitor(W.Device(d), W.MonitorCrossRefID(x)) for d, x in sub.monitors.items()])))

        for device in devices:
            if sub.ended:
                break
            sub.port.request(to_bytes(E.MonitorStart(E.monitorObject(E.deviceObject(device)))),
                             lambda xml, device=device: answered(device, xml))
        if sub.ended and len(answers) < len(devices):
            reply.fault(SoapFault("Server", "the subscription's session closed while starting its monitors"))


# =================================================================================================
# One HTTP connection
# =================================================================================================
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
        root = _root(xml)
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

    def bad_request(self, exc: h11.RemoteProtocolError) -> None:
        self._protocol_error(exc)

    def need_data(self, started: bool) -> None:
        if started:
            self._mark_started()

    def request_head(self, head: h11.Request) -> None:
        self._on_request(head)

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

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint or 400
        log.info("soap: %s: bad HTTP (%s): %d", self.peer, exc, status)
        if self.h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._send(status, f"{HTTPStatus(status).phrase}: {exc}\n".encode(), close=True)
        else:
            self._close()

    def _on_request(self, request: h11.Request) -> None:
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
            self.service.ws_request(reply, user, self.peer, element)
            return
        port = sub.port if sub is not None else self._connection_port(user)
        xml = etree.tostring(element, encoding="UTF-8")
        if local_name(element) in CLIENT_ANSWERS:  # an answer to the server (SystemStatusResponse)
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

    def _close_when_sent(self, deadline: float | None = None) -> None:
        """Close once the last response has left (Connection.close drops unsent bytes)."""
        if self.closed or (self._closing and deadline is None):
            return
        self._closing = True
        now = self.front.timers.now()
        deadline = deadline if deadline is not None else now + CLOSE_FLUSH_S
        flush = getattr(self.conn, "flush", None)
        if flush is not None:
            flush()  # the response was only queued (sent at the end of the loop round): send it now
        if not getattr(self.conn, "out", b"") or now >= deadline:
            self._close()
            return
        self.front.timers.call_later(0.05, lambda: self._close_when_sent(deadline))

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


def install(front: Any, check: Callable[[str, str], bool] = pam_check) -> SoapService:
    """Serve SOAP on the front end's ports: HTTP connections go to this service."""
    service = SoapService(front, check)
    front.stream_handlers["http"] = service.handler
    return service
