"""TR87 (uaCSTA): CSTA XML carried in SIP dialogs, as Lync/OCS remote call control and pidgin-sipe
(src/core/sip-csta.c) use it. Sans-IO apart from `install`, which hooks it into the FrontEnd.

The flow (ECMA TR/87):
  1. INVITE, Content-Type application/csta+xml (Content-Disposition signal;handling=required),
     body RequestSystemStatus (often with `lcs:line` private data): a dialog and a CstaSession are
     created; the 200 OK carries the session's RequestSystemStatusResponse and a Contact; ACK.
  2. INFO in the dialog with a CSTA request: the 200 OK carries the CSTA response (or the
     CSTAErrorCode document). Responses come when the LIMs have answered over the bus: the INFO's
     server transaction waits (a per-dialog counter is the invoke ID that pairs them).
  3. Events (and the session's own requests: documents with invoke ID 9999, or 9000-9998 such as
     SystemStatus) go to the client as INFO requests in the dialog, one at a time in order,
     retransmitted over UDP until answered (the body of the client's 200 is not read). An event
     waits for the responses to the requests in progress when it came: a response (MakeCallResponse
     with the call ID) reaches the client before the events about what it started.
  4. re-INVITE refreshes the dialog (its body: RequestSystemStatus is answered, anything else gets an
     empty 200); OPTIONS is answered anywhere; BYE ends the dialog and the session (its monitors
     stop); CANCEL of an INVITE still in progress gives 200 and 487.
  5. Refusals, after which the server carries on: 415 (with Accept) for a body that is not
     application/csta+xml, 481 for INFO/BYE/re-INVITE outside a known dialog, 405 (with Allow) for a
     SIP method not served here and 501 for a method SIP does not define, 420 for a Require option
     other than `timer`, 422 for a Session-Expires below 90 s, 503 when the server has its maximum of
     sessions, 400/416/505/513 for malformed messages (csta_front/sip.py).

Choices where TR/87 and the public record are silent, written down here:
  * An INFO without a body is a keep-alive: 200, empty. An INVITE without a body opens the dialog
    with an empty 200.
  * Session timer (RFC 4028): the client refreshes (refresher=uac) with re-INVITE; a client that
    sends `Supported: timer` without a Session-Expires gets SESSION_EXPIRES (1800 s) in the 200.
  * The session ends (BYE sent where the dialog allows it) when an event INFO gets 481 or 408, when
    no final response comes within 64*T1 (the client is gone), when a UDP client never ACKs the 200,
    when the session interval passes without a refresh (BYE min(32 s, interval/3) early), when
    the TCP connection closes (the dialog has no other way to the client), and when more than
    MAX_QUEUED_EVENTS events wait for a client that does not answer.
  * Over UDP, requests to the client go to its Contact address when that is an IP address, else to
    the address the INVITE came from; over TCP/TLS they go on the client's connection. Responses go
    back where the request came from.
  * Device naming: the dialog's CstaSession names devices with a TelNaming (csta_front/teluri.py):
    the line of lcs:line, a monitored device and MakeCall's calling device in the form the client
    wrote them, every other device as a tel: URI with the dialog's phone-context (`dialstring`
    unless the line had another), international numbers as +E.164. XML sessions keep plain numbers.
  * RFC 3261's "lower CSeq -> 500" rule is not applied: pidgin-sipe restarts its CSeq numbering after
    every (re-)INVITE.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections import deque
from typing import Any, Callable

from lxml import etree

from csta_front import teluri
from csta_front.codec import CodecError, parse_request
from csta_front.framing import EVENT_INVOKE_ID
from csta_front.session import SERVER_INVOKE_IDS, CstaSession
from csta_front.sip import Dialog, Flow, Request, Response, ServerTransaction, SipEndpoint, hostport, new_tag

log = logging.getLogger("csta")

CSTA_TYPE = "application/csta+xml"
DISPOSITION = "signal;handling=required"
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO")
ALLOW = ", ".join(ALLOWED)
# Methods SIP defines (RFC 3261 and extensions): 405 when not served; anything else is 501.
KNOWN_METHODS = frozenset(ALLOWED + ("REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "UPDATE", "MESSAGE",
                                     "REFER", "PUBLISH"))
SUPPORTED_OPTIONS = frozenset({"timer"})
MIN_SE = 90                 # RFC 4028's smallest session interval
SESSION_EXPIRES = 1800      # the interval given to a client that supports session timers but names none
REQUEST_TIMEOUT = 20.0      # a CSTA request the session has not answered by then gets 500
MAX_PENDING = 64            # CSTA requests in progress in one dialog
MAX_QUEUED_EVENTS = 2000    # events waiting for a client that does not answer: beyond, the dialog ends
INVOKE_IDS = SERVER_INVOKE_IDS - 1  # the client's requests get invoke IDs 1..8999; from 9000 the
                                    # session numbers its own requests (SystemStatus), 9999 is events


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def contact(flow: Flow) -> str:
    return f"<sip:{hostport(flow.local)};transport={flow.transport.lower()}>"


class Tr87Server:
    """Every TR87 dialog of one CSTA server, over any number of TCP connections and one UDP socket."""

    def __init__(self, front: Any, **timers: float):
        self.front = front
        self.endpoint = SipEndpoint(front.timers, self, **timers)
        self.dialogs: dict[tuple, Tr87Dialog] = {}
        self.by_flow: dict[Flow, set[Tr87Dialog]] = {}
        self._udp_send: Callable[[bytes, tuple], None] | None = None
        self._udp_local: tuple | None = None

    # -- transports --------------------------------------------------------------------------------
    def stream_handler(self, front: Any, conn: Any) -> "SipConnection":
        """The FrontEnd's factory for connections whose first bytes are SIP."""
        return SipConnection(self, conn)

    def attach_udp(self, send: Callable[[bytes, tuple], None], local: tuple) -> Callable[[bytes, tuple], None]:
        """Serve SIP over UDP: `send(data, address)` writes a datagram; returns on_datagram."""
        self._udp_send, self._udp_local = send, tuple(local[:2])
        return lambda data, address: self.endpoint.datagram_received(data, self.udp_flow(address))

    def udp_flow(self, address: tuple) -> Flow:
        send, remote = self._udp_send, tuple(address[:2])

        def write(data: bytes) -> None:
            try:
                send(data, remote)
            except OSError as exc:  # a datagram lost: the transaction layer retransmits
                log.debug("UDP to %s: %s", hostport(remote), exc)
        return Flow("UDP", self._udp_local, remote, write)

    def flow_towards(self, dialog: Dialog, arrival: Flow) -> Flow:
        """Where the server's requests in a dialog go (see the module notes)."""
        if arrival.reliable or self._udp_send is None:
            return arrival
        hop = dialog.next_hop()
        if hop.host and _is_ip(hop.host):
            return self.udp_flow((hop.host.strip("[]"), hop.port or 5060))
        return arrival

    def flow_closed(self, flow: Flow) -> None:
        for dialog in list(self.by_flow.pop(flow, ())):
            log.info("TR87 dialog %s: connection %s closed", dialog.sip.call_id, flow)
            dialog.end(send_bye=False)

    def bind(self, dialog: "Tr87Dialog", flow: Flow) -> None:
        if flow.reliable:
            self.by_flow.setdefault(flow, set()).add(dialog)

    def forget(self, dialog: "Tr87Dialog") -> None:
        if self.dialogs.get(dialog.id) is dialog:
            del self.dialogs[dialog.id]
        for flow in (dialog.sip.flow, dialog.out_flow):
            members = self.by_flow.get(flow)
            if members is not None:
                members.discard(dialog)
                if not members:
                    del self.by_flow[flow]

    # -- the transaction user ----------------------------------------------------------------------
    def on_request(self, req: Request, txn: ServerTransaction) -> None:
        method = req.method
        if method not in ALLOWED:
            txn.respond(405 if method in KNOWN_METHODS else 501, headers=[("Allow", ALLOW)])
            return
        to_tag = req.to_tag
        if to_tag:
            dialog = self.dialogs.get((req.call_id, to_tag, req.from_tag or ""))
            if dialog is None:
                txn.respond(481)
            else:
                dialog.on_request(req, txn)
            return
        if method == "INVITE":
            self._invite(req, txn)
        elif method == "OPTIONS":
            self.options(txn)
        else:  # INFO, BYE without a dialog
            txn.respond(481)

    def on_ack(self, req: Request, flow: Flow, txn: ServerTransaction | None) -> None:
        dialog = self.dialogs.get((req.call_id, req.to_tag or "", req.from_tag or ""))
        if dialog is not None:
            dialog.acked = True

    def on_cancel(self, txn: ServerTransaction) -> None:
        dialog = self.dialogs.get((txn.request.call_id, txn.to_tag or "", txn.request.from_tag or ""))
        if dialog is not None and dialog.state == "early":
            log.info("TR87 dialog %s: INVITE cancelled", dialog.sip.call_id)
            dialog.end(send_bye=False)

    def on_ack_timeout(self, txn: ServerTransaction) -> None:
        dialog = self.dialogs.get((txn.request.call_id, txn.to_tag or "", txn.request.from_tag or ""))
        if dialog is None or dialog.acked:
            return
        if txn.flow.reliable:
            log.info("TR87 dialog %s: the 200 OK was never acknowledged (kept: TCP delivered it)",
                     dialog.sip.call_id)
            return
        log.info("TR87 dialog %s: the 200 OK was never acknowledged: ending the dialog", dialog.sip.call_id)
        dialog.end(send_bye=True)

    # -- requests outside dialogs ------------------------------------------------------------------
    def options(self, txn: ServerTransaction) -> None:
        txn.respond(200, headers=[("Allow", ALLOW), ("Accept", CSTA_TYPE), ("Accept-Encoding", "identity"),
                                  ("Supported", ", ".join(sorted(SUPPORTED_OPTIONS))), ("Contact", contact(txn.flow))])

    def _invite(self, req: Request, txn: ServerTransaction) -> None:
        if not acceptable(req, txn):
            return
        interval = session_interval(req, txn)
        if interval is False:
            return
        if len(self.front.sessions) >= self.front.settings.max_sessions:
            log.warning("TR87 INVITE from %s refused: %d sessions is the maximum", txn.flow,
                        self.front.settings.max_sessions)
            txn.respond(503, headers=[("Retry-After", "10")])
            return
        dialog = Tr87Dialog(self, req, txn)
        self.dialogs[dialog.id] = dialog
        self.bind(dialog, txn.flow)
        self.bind(dialog, dialog.out_flow)
        log.debug("TR87 dialog %s from %s (session %d)", dialog.sip.call_id, txn.flow, dialog.session.id)
        dialog.start(req, txn, interval)


def acceptable(req: Request, txn: ServerTransaction) -> bool:
    """Option tags and the body's type and encoding; answers the refusal itself."""
    unsupported = [tag for tag in req.values("Require") if tag.lower() not in SUPPORTED_OPTIONS]
    if unsupported:
        txn.respond(420, headers=[("Unsupported", ", ".join(unsupported))])
        return False
    if not req.body:
        return True
    if req.content_type != CSTA_TYPE:
        txn.respond(415, headers=[("Accept", CSTA_TYPE)])
        return False
    encoding = (req.header("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        txn.respond(415, headers=[("Accept-Encoding", "identity")])
        return False
    return True


def session_interval(req: Request, txn: ServerTransaction) -> int | None | bool:
    """RFC 4028: the Session-Expires a client asks for; SESSION_EXPIRES (at least its Min-SE) when it
    supports the extension without naming one (pidgin-sipe schedules its refresh re-INVITE from
    the 200's Session-Expires); None: no session timer. False once a 422 has been sent."""
    value = req.header("Session-Expires")
    if not value:
        if "timer" not in (v.lower() for v in req.values("Supported")):
            return None
        floor = (req.header("Min-SE") or "").split(";", 1)[0].strip()
        return max(SESSION_EXPIRES, int(floor) if floor.isdigit() else 0)
    delta = value.split(";", 1)[0].strip()
    if not delta.isdigit():
        return None
    if int(delta) < MIN_SE:
        txn.respond(422, headers=[("Min-SE", str(MIN_SE))])
        return False
    return int(delta)


class Tr87Dialog:
    """One TR87 dialog: the SIP dialog, its CstaSession, the requests in progress, the events to send."""

    def __init__(self, server: Tr87Server, invite: Request, txn: ServerTransaction):
        self.server = server
        self.front = server.front
        self.sip = Dialog(invite, new_tag(), txn.flow)
        txn.to_tag = self.sip.local_tag
        self.out_flow = server.flow_towards(self.sip, txn.flow)
        self.state = "early"  # early (INVITE unanswered), confirmed, terminated
        self.acked = False
        self.invite_txn: ServerTransaction | None = None
        self.pending: dict[int, ServerTransaction] = {}
        # Documents for the client, each with the requests in progress when it came: it waits for
        # their responses (a MakeCallResponse reaches the client before the events of its call).
        self.events: deque[tuple[bytes, tuple[ServerTransaction, ...]]] = deque()
        self.event_txn = None
        self.events_sent = 0
        self._invoke = 0
        self._session_timer = None
        self._interval: int | None = None
        self.session = CstaSession(self.front, None, self._session_closed, hostport(txn.flow.remote),
                                   send_document=self._document)
        directory = self.front.directory
        self.session.naming = teluri.TelNaming(lambda raw: teluri.device_number(raw, directory.internal, directory.ddi))
        self.front.sessions.add(self.session)

    @property
    def id(self) -> tuple[str, str, str]:
        return self.sip.id

    # -- requests from the client ----------------------------------------------------------------
    def start(self, invite: Request, txn: ServerTransaction, interval: int | None) -> None:
        self.invite_txn = txn
        self._arm_session_timer(invite, interval)
        self.session.naming.learn_line(_line_uri(invite.body))
        if invite.body:
            self._feed(txn, invite.body)
        else:
            self._answer_invite(txn, b"")
        if self.invite_txn is txn and txn.final is None and self.state == "early":
            txn.respond(100)

    def on_request(self, req: Request, txn: ServerTransaction) -> None:
        if self.state == "terminated":
            txn.respond(481)
        elif req.method == "INFO":
            self._info(req, txn)
        elif req.method == "INVITE":
            self._reinvite(req, txn)
        elif req.method == "BYE":
            txn.respond(200)
            log.debug("TR87 dialog %s: BYE", self.sip.call_id)
            self.end(send_bye=False)
        else:  # OPTIONS
            self.server.options(txn)

    def _info(self, req: Request, txn: ServerTransaction) -> None:
        if not req.body:
            txn.respond(200)  # a keep-alive
            return
        if not acceptable(req, txn):
            return
        if len(self.pending) >= MAX_PENDING:
            txn.respond(503, headers=[("Retry-After", "1")])
            return
        self._feed(txn, req.body)

    def _reinvite(self, req: Request, txn: ServerTransaction) -> None:
        if self.invite_txn is not None:
            txn.respond(500, headers=[("Retry-After", "1")])  # RFC 3261 14.2: an INVITE is in progress
            return
        if not acceptable(req, txn):
            return
        interval = session_interval(req, txn)
        if interval is False:
            return
        self.sip.refresh_target(req)
        if txn.flow is not self.sip.flow and txn.flow.reliable:
            self.server.forget(self)  # the client came back on another connection
            self.sip.flow = txn.flow
            self.server.dialogs[self.id] = self
        self.out_flow = self.server.flow_towards(self.sip, txn.flow)
        self.server.bind(self, self.sip.flow)
        self.server.bind(self, self.out_flow)
        self._arm_session_timer(req, interval)
        self.invite_txn = txn
        if req.body and _root_name(req.body) == "RequestSystemStatus":
            self._feed(txn, req.body)
        else:
            self._answer_invite(txn, b"")

    def _feed(self, txn: ServerTransaction, body: bytes) -> None:
        invoke_id = self._next_invoke_id()
        self.pending[invoke_id] = txn
        self.session.frame_received(invoke_id, body)
        if self.pending.get(invoke_id) is txn:
            self.front.timers.call_later(REQUEST_TIMEOUT, lambda: self._unanswered(invoke_id, txn))

    def _next_invoke_id(self) -> int:
        for _ in range(INVOKE_IDS):
            self._invoke = self._invoke % INVOKE_IDS + 1
            if self._invoke not in self.pending:
                return self._invoke
        raise RuntimeError("no free invoke ID")  # cannot happen: MAX_PENDING is far below INVOKE_IDS

    def _unanswered(self, invoke_id: int, txn: ServerTransaction) -> None:
        if self.pending.get(invoke_id) is not txn:
            return
        del self.pending[invoke_id]
        log.warning("TR87 dialog %s: no CSTA response to invoke ID %d in %.0f s", self.sip.call_id, invoke_id,
                    REQUEST_TIMEOUT)
        if txn is self.invite_txn:
            self.invite_txn = None
        txn.respond(500, "No CSTA Response")
        if self.state == "early":
            self.end(send_bye=False)
        else:
            self._send_events()

    # -- documents from the session ------------------------------------------------------------------
    def _document(self, invoke_id: int, xml: bytes) -> None:
        txn = self.pending.pop(invoke_id, None)
        if txn is not None:
            if txn.invite:
                self._answer_invite(txn, xml)
            else:
                txn.respond(200, headers=[("Content-Type", CSTA_TYPE), ("Content-Disposition", DISPOSITION)],
                            body=xml)
            self._send_events()
            return
        if invoke_id != EVENT_INVOKE_ID and invoke_id < SERVER_INVOKE_IDS:
            log.info("TR87 dialog %s: a response for invoke ID %d nobody waits for: dropped", self.sip.call_id,
                     invoke_id)
            return
        if self.state == "terminated":
            return
        if len(self.events) >= MAX_QUEUED_EVENTS:
            log.warning("TR87 dialog %s: %d events wait for the client: ending the dialog", self.sip.call_id,
                        len(self.events))
            self.end(send_bye=True)
            return
        self.events.append((xml, tuple(self.pending.values())))
        self._send_events()

    def _answer_invite(self, txn: ServerTransaction, xml: bytes) -> None:
        headers = [("Contact", contact(txn.flow)), ("Allow", ALLOW), ("Accept", CSTA_TYPE),
                   ("Supported", ", ".join(sorted(SUPPORTED_OPTIONS)))]
        if self._interval:
            headers.append(("Session-Expires", f"{self._interval};refresher=uac"))
            if "timer" in (v.lower() for v in txn.request.values("Supported")):
                headers.append(("Require", "timer"))
        if xml:
            headers += [("Content-Type", CSTA_TYPE), ("Content-Disposition", DISPOSITION)]
        if self.invite_txn is txn:
            self.invite_txn = None
        if self.state == "terminated":
            return
        txn.respond(200, headers=headers, body=xml)
        self.state = "confirmed"

    def _send_events(self) -> None:
        """The next event as an INFO, when none is in flight and the requests it waits for are answered."""
        if self.state != "confirmed" or self.event_txn is not None or not self.events:
            return
        xml, before = self.events[0]
        if any(txn.final is None for txn in before):
            return
        self.events.popleft()
        flow = self.out_flow
        req = self.sip.request("INFO", flow, body=xml, headers=[
            ("Contact", contact(flow)), ("Content-Type", CSTA_TYPE), ("Content-Disposition", DISPOSITION)])
        self.events_sent += 1
        self.event_txn = self.server.endpoint.send_request(req, flow, self._event_answered)

    def _event_answered(self, resp: Response | None) -> None:
        self.event_txn = None
        if self.state == "terminated":
            return
        if resp is None or resp.status in (408, 481):
            log.info("TR87 dialog %s: event INFO %s: ending the dialog", self.sip.call_id,
                     "unanswered" if resp is None else resp.status)
            self.end(send_bye=resp is not None)
            return
        if resp.status >= 300:
            log.info("TR87 dialog %s: the client answered an event with %d", self.sip.call_id, resp.status)
        self._send_events()

    # -- the session timer (RFC 4028) ------------------------------------------------------------------
    def _arm_session_timer(self, req: Request, interval: int | None) -> None:
        if self._session_timer is not None:
            self._session_timer.cancel()
            self._session_timer = None
        self._interval = interval
        if interval:
            # RFC 4028 10: the side that does not refresh ends the session a little before it expires.
            self._session_timer = self.front.timers.call_later(interval - min(32, interval / 3),
                                                               self._session_expired)

    def _session_expired(self) -> None:
        log.info("TR87 dialog %s: not refreshed within its %d s session interval: ending it", self.sip.call_id,
                 self._interval)
        self.end(send_bye=True)

    # -- the end ----------------------------------------------------------------------------------
    def end(self, send_bye: bool) -> None:
        if self.state == "terminated":
            return
        confirmed = self.state == "confirmed"
        self.state = "terminated"
        self.server.forget(self)
        if self._session_timer is not None:
            self._session_timer.cancel()
        for txn in self.pending.values():
            txn.respond(487)  # RFC 3261 15.1.2: requests still in progress
        self.pending.clear()
        self.events.clear()
        if send_bye and confirmed and not (self.out_flow.reliable and self.out_flow.closed):
            bye = self.sip.request("BYE", self.out_flow)
            self.server.endpoint.send_request(bye, self.out_flow, None)
        self.session.close()
        self.front.sessions.discard(self.session)

    def _session_closed(self) -> None:
        """The session ended on its own (StopApplicationSession, its timer) or through end()."""
        self.front.sessions.discard(self.session)
        if self.state != "terminated":
            self.end(send_bye=True)


def _line_uri(body: bytes) -> str | None:
    """The lcs:line private data of a RequestSystemStatus (Lync's line URI), if any."""
    if not body:
        return None
    try:
        root = parse_request(body).root
    except CodecError:
        return None
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname == "line" and el.text:
            return el.text.strip()
    return None


def _root_name(body: bytes) -> str | None:
    try:
        return parse_request(body).name
    except CodecError:
        return None


class SipConnection:
    """SIP over one TCP/TLS connection of the FrontEnd (the handler `stream_handlers['sip']` makes)."""

    def __init__(self, server: Tr87Server, conn: Any):
        self.server = server
        self.conn = conn
        sock = conn.sock
        try:
            local, remote = sock.getsockname()[:2], sock.getpeername()[:2]
        except OSError:
            host, _, port = conn.peer.rpartition(":")
            local, remote = (server.front.address, server.front.settings.port), (host, int(port or 0))
        transport = "TLS" if isinstance(sock, ssl.SSLSocket) else "TCP"
        self.flow = Flow(transport, tuple(local), tuple(remote), conn.write, conn.close)
        self.stream = server.endpoint.stream(self.flow)
        self._partial_since: float | None = None

    def data_received(self, data: bytes) -> None:
        self.stream.data_received(data)
        if self.flow.closed:
            return
        timers = self.server.front.timers
        if not self.stream.partial:
            self._partial_since = None
        elif self._partial_since is None:
            self._partial_since = timers.now()
            timers.call_later(self._limit(), self._check_stalled)

    def _limit(self) -> float:
        return float(getattr(self.server.front.settings, "frame_timeout_s", 10.0))

    def _check_stalled(self) -> None:
        if self.flow.closed or self._partial_since is None:
            return
        waited = self.server.front.timers.now() - self._partial_since
        if waited >= self._limit() - 1e-6:
            log.info("%s: a SIP message unfinished for %.0f s: closing", self.flow, waited)
            self.flow.close()
        else:
            self.server.front.timers.call_later(self._limit() - waited, self._check_stalled)

    def connection_lost(self) -> None:
        self.flow.closed = True
        self.server.flow_closed(self.flow)


def install(front: Any) -> Tr87Server:
    """SIP on the FrontEnd: over TCP on its port whatever the server type (the first bytes tell SIP
    from framed XML), and over UDP on the same port when the server type is TR87_uaCSTA."""
    server = Tr87Server(front)
    front.stream_handlers["sip"] = server.stream_handler
    front.tr87 = server
    if front.settings.server_type == "TR87_uaCSTA":
        family = socket.AF_INET6 if ":" in front.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((front.address, front.settings.port))
        except OSError as exc:
            sock.close()
            log.error("TR87 over UDP not served on %s:%d: %s", front.address, front.settings.port, exc)
            return server
        on_datagram = server.attach_udp(sock.sendto, sock.getsockname())
        front.add_datagram_socket(sock, on_datagram)
        log.info("TR87 (SIP over UDP and TCP) server of LIM %d on %s:%d", front.lim, front.address,
                 front.settings.port)
    return server


__all__ = ["Tr87Server", "Tr87Dialog", "SipConnection", "install", "CSTA_TYPE", "ALLOW"]
