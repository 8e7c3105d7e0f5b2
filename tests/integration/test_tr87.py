"""TR87 (uaCSTA: CSTA in SIP) with real processes: a broker, two LIMs, a TR87_uaCSTA server on LIM 1
and an XML server on LIM 2. Clients: SIPp (the scenarios in tests/sipp, over TCP and UDP, and a
short load run) and a small Lync-style SIP client written here that follows pidgin-sipe's
sequence (src/core/sip-csta.c): INVITE RequestSystemStatus with lcs:line, ACK, INFO GetCSTAFeatures
and MonitorStart pipelined, MakeCall, events as INFO, MonitorStop, BYE.

SIPp is required (Debian/Ubuntu: `apt-get install sip-tester`): these tests fail without it.
"""
from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import time
from collections import deque
from pathlib import Path

import pytest
from lxml import etree

from tests.procs import free_ports, running_exchange

SIPP_DIR = Path(__file__).resolve().parent.parent / "sipp"
ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
LCS = "http://schemas.microsoft.com/Lcs/2005/04/RCCExtension"
CSTA = "application/csta+xml"


def tr87_on_lim_1(data: dict) -> None:
    data["ddi"] = ["+468757"]  # the exchange's DDI numbers: +468757NNNN is extension NNNN
    data["lims"][0]["csta"].update(server_type="TR87_uaCSTA", port=_udp_and_tcp_free_port(),
                                   tls_port=free_ports(1)[0])


def _udp_and_tcp_free_port() -> int:
    for port in free_ports(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.1.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
    raise RuntimeError("no port free for both TCP and UDP")


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    from csta_front.certificates import create_self_signed, install

    def certificate(directory):  # for the TLS port (the CSTA servers' run directory)
        install(directory, *create_self_signed("mxone-sim", ["127.0.1.1", "127.0.1.2"], 1))
    with running_exchange(tmp_path_factory.mktemp("tr87"), cstas=(1, 2), edit=tr87_on_lim_1,
                          before_start=certificate) as running:
        yield running.exchange, running.topology, running.directory


@pytest.fixture(autouse=True)
def idle_phones(exchange):
    """Every test leaves the phones it may use on hook, even when it fails (no cascade of busy devices)."""
    yield
    ex = exchange[0]
    for number in [*(f"10{n:02d}" for n in range(10)), *(f"20{n:02d}" for n in range(10))]:
        try:
            ex.phone(number).hangup()
        except Exception:  # idle already, or the exchange is going down
            pass


def server_of(topology, lim: int) -> tuple[str, int]:
    return topology.lim(lim).address, topology.lim(lim).csta.port


# =================================================================================================
# A small SIP client, independent of csta_front/sip.py
# =================================================================================================
class Msg:
    def __init__(self, raw: bytes):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8").split("\r\n")
        self.start = lines[0]
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))
        self.is_response = self.start.startswith("SIP/2.0 ")
        self.status = int(self.start.split()[1]) if self.is_response else None
        self.method = None if self.is_response else self.start.split()[0]

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name.lower()]

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = self.header("cseq").split()
        return int(number), method

    def tag(self, name: str) -> str | None:
        match = re.search(r";\s*tag=([^;>\s]+)", self.header(name) or "")
        return match.group(1) if match else None

    def xml(self):
        return etree.fromstring(self.body)

    def __repr__(self) -> str:
        return f"<{self.start}>"


def local(el) -> str:
    return etree.QName(el).localname


def xfind(el, *path: str) -> str | None:
    for name in path:
        el = next((c for c in el if isinstance(c.tag, str) and local(c) == name), None)
        if el is None:
            return None
    return (el.text or "").strip()


class SipClient:
    """One SIP user agent on TCP or UDP. In-dialog requests are sent the way pidgin-sipe sends them:
    CSeq restarting at 1 after the INVITE's response, and a Via without a branch parameter."""

    def __init__(self, server: tuple[str, int], transport: str = "tcp", *, sipe_style: bool = True,
                 tls=None):
        self.server = server
        self.transport = transport.upper()
        if self.transport == "TCP":
            self.sock = socket.create_connection(server, timeout=5)
            if tls is not None:  # SIP over TLS: a stream like TCP once the handshake is done
                self.sock = tls.wrap_socket(self.sock, server_hostname=server[0])
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.connect(server)
        self.local = self.sock.getsockname()
        self.buffer = b""
        self.call_id = secrets.token_hex(8) + "@lync.test"
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.remote_tag: str | None = None
        self.target = f"sip:csta@{server[0]}:{server[1]}"
        self.sipe_style = sipe_style
        self.requests: deque[Msg] = deque()  # requests of the server, answered 200 as they came
        self.responses: list[Msg] = []
        self.auto_answer = True

    def close(self) -> None:
        self.sock.close()

    # -- wire --------------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        if self.transport == "TCP":
            self.sock.sendall(data)
        else:
            self.sock.send(data)

    def read(self, timeout: float) -> Msg | None:
        deadline = time.monotonic() + timeout
        while True:
            if self.transport == "TCP":
                end = self.buffer.find(b"\r\n\r\n")
                if end >= 0:
                    length = int(re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", self.buffer[:end]).group(1))
                    if len(self.buffer) >= end + 4 + length:
                        raw, self.buffer = self.buffer[:end + 4 + length], self.buffer[end + 4 + length:]
                        return Msg(raw)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            if self.transport == "UDP":
                return Msg(data)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buffer += data

    def pump(self, timeout: float) -> Msg | None:
        """Read one message; a request of the server is answered (200) and queued."""
        msg = self.read(timeout)
        if msg is not None and not msg.is_response:
            self.requests.append(msg)
            if self.auto_answer:
                self.answer(msg, 200)
        return msg

    def answer(self, request: Msg, status: int, reason: str = "OK") -> None:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in request.all("via")]
        for name in ("From", "To", "Call-ID", "CSeq"):
            lines.append(f"{name}: {request.header(name)}")
        lines.append("Content-Length: 0")
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())

    # -- requests ----------------------------------------------------------------------------------
    def build(self, method: str, body: bytes = b"", *, cseq: int | None = None, headers: list[str] = (),
              to_tag: str | None = None, call_id: str | None = None, branch: bool = True,
              content_type: str | None = CSTA) -> tuple[bytes, int]:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        cseq_method = method
        via = f"SIP/2.0/{self.transport} {self.local[0]}:{self.local[1]}"
        if branch:
            via += f";branch=z9hG4bK{secrets.token_hex(6)}"
        to = f"<sip:csta@{self.server[0]}>"
        if to_tag:
            to += f";tag={to_tag}"
        lines = [f"{method} {self.target} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
                 f'From: "Lync user" <sip:lync@test>;tag={self.tag};epid=1a2b3c', f"To: {to}",
                 f"Call-ID: {call_id or self.call_id}", f"CSeq: {cseq} {cseq_method}",
                 f"Contact: <sip:lync@{self.local[0]}:{self.local[1]};transport={self.transport.lower()}>",
                 "User-Agent: UCCAPI/test (sipe-style)", *headers]
        if body:
            lines += ["Content-Disposition: signal;handling=required"]
            if content_type:
                lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, cseq

    def send(self, method: str, body: bytes = b"", **kw) -> int:
        raw, cseq = self.build(method, body, to_tag=kw.pop("to_tag", self.remote_tag), **kw)
        self.send_raw(raw)
        return cseq

    def final(self, cseq: int, method: str, timeout: float = 10.0) -> Msg:
        deadline = time.monotonic() + timeout
        while True:
            for resp in self.responses:
                if resp.cseq == (cseq, method) and resp.status >= 200:
                    self.responses.remove(resp)
                    return resp
            left = deadline - time.monotonic()
            assert left > 0, f"no final response to {method} {cseq}"
            msg = self.pump(left)
            if msg is not None and msg.is_response:
                self.responses.append(msg)

    def request(self, method: str, body: bytes = b"", **kw) -> Msg:
        cseq = self.send(method, body, **kw)
        return self.final(cseq, method)

    # -- the TR87 dialog ------------------------------------------------------------------------------
    def invite(self, body: bytes, headers: list[str] = ("Supported: timer",)) -> Msg:
        """INVITE (a re-INVITE once the dialog exists), and the ACK of its 200."""
        # pidgin-sipe gives no Via branch to requests of a dialog it has a Call-ID for, INVITE included.
        cseq = self.send("INVITE", body, headers=list(headers), branch=not self.sipe_style)
        resp = self.final(cseq, "INVITE")
        if resp.status == 200:
            self.remote_tag = resp.tag("to")
            contact = resp.header("contact") or resp.header("m")
            self.target = contact.strip("<>").split(">")[0]
            if self.sipe_style:
                self.cseq = 0  # pidgin-sipe: dialog->cseq = 0 before the ACK, so the ACK says 1
            self.send("ACK", b"", cseq=self.cseq + 1 if self.sipe_style else cseq, branch=not self.sipe_style)
            if self.sipe_style:
                self.cseq += 1
        return resp

    def info(self, body: bytes) -> Msg:
        return self.request("INFO", body, branch=not self.sipe_style)

    def send_info(self, body: bytes) -> int:
        return self.send("INFO", body, branch=not self.sipe_style)

    def event(self, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while not self.requests:
            left = deadline - time.monotonic()
            assert left > 0, "no event INFO from the server"
            msg = self.pump(left)
            if msg is not None and msg.is_response:
                self.responses.append(msg)
        req = self.requests.popleft()
        assert req.method == "INFO", req
        return req

    def events(self, names: list[str], timeout: float = 10.0) -> list:
        got = []
        for _ in names:
            req = self.event(timeout)
            got.append(req.xml())
        assert [local(e) for e in got] == [f"{n}Event" for n in names]
        return got

    def quiet(self, seconds: float = 0.3) -> None:
        """Nothing more from the server for a while."""
        msg = self.pump(seconds)
        assert msg is None and not self.requests, f"unexpected {msg or self.requests[0]}"


def csta(name: str, inner: str = "", ns: str = ED3) -> bytes:
    return f'<?xml version="1.0"?><{name} xmlns="{ns}">{inner}</{name}>'.encode()


def request_system_status(line: str) -> bytes:
    return csta("RequestSystemStatus", f'<extensions><privateData><private><lcs:line xmlns:lcs="{LCS}">{line}'
                                       "</lcs:line></private></privateData></extensions>")


def tel(number: str) -> str:
    return f"tel:{number};phone-context=dialstring"


# =================================================================================================
# The Lync / pidgin-sipe sequence
# =================================================================================================
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_lync_remote_call_control(exchange, transport):
    ex, topology, _ = exchange
    caller, callee = ("2001", "1001") if transport == "tcp" else ("2002", "1002")
    client = SipClient(server_of(topology, 1), transport)
    try:
        ok = client.invite(request_system_status(tel(caller) + ";partition=BE_BRS_INT"))
        assert ok.status == 200
        assert ok.header("content-type") == CSTA
        assert local(ok.xml()) == "RequestSystemStatusResponse"
        assert etree.QName(ok.xml()).namespace == ED3  # answered in the client's edition
        assert xfind(ok.xml(), "systemStatus") == "normal"
        assert ok.tag("to") and ok.header("contact")
        assert ok.header("session-expires") == "1800;refresher=uac"  # sipe refreshes 60 s before
        # pidgin-sipe sends GetCSTAFeatures and MonitorStart back to back, without a Via branch.
        line = f'<extensions><privateData><private><lcs:line xmlns:lcs="{LCS}">{tel(caller)}</lcs:line>' \
               '</private></privateData></extensions>'
        features = client.send_info(csta("GetCSTAFeatures", line))
        monitor = client.send_info(csta("MonitorStart", f"<monitorObject><deviceObject>{tel(caller)}"
                                                        "</deviceObject></monitorObject>"))
        resp = client.final(features, "INFO")
        assert resp.status == 200 and local(resp.xml()) == "GetCSTAFeaturesResponse"
        assert "makeCall" in resp.body.decode()
        resp = client.final(monitor, "INFO")
        assert resp.status == 200 and local(resp.xml()) == "MonitorStartResponse", resp.body
        xref = xfind(resp.xml(), "monitorCrossRefID")
        assert xref
        made = client.info(csta("MakeCall", f"<callingDevice>{tel(caller)}</callingDevice>"
                                            f"<calledDirectoryNumber>tel:{callee}</calledDirectoryNumber>"
                                            "<autoOriginate>doNotPrompt</autoOriginate>"))
        assert made.status == 200 and local(made.xml()) == "MakeCallResponse", made.body
        call_id = xfind(made.xml(), "callingDevice", "callID")
        # pidgin-sipe keeps the call ID only if this deviceID equals its line URI, as a string.
        assert xfind(made.xml(), "callingDevice", "deviceID") == tel(caller)
        started, originated, delivered = client.events(["ServiceInitiated", "Originated", "Delivered"])
        for event in (started, originated, delivered):
            assert xfind(event, "monitorCrossRefID") == xref
        assert xfind(originated, "originatedConnection", "callID") == call_id
        assert xfind(delivered, "connection", "callID") == call_id
        assert xfind(delivered, "alertingDevice", "deviceIdentifier") == tel(callee)  # RFC 3966 local number
        ex.phone(callee).answer()
        (established,) = client.events(["Established"])
        assert xfind(established, "establishedConnection", "callID") == call_id
        assert xfind(established, "answeringDevice", "deviceIdentifier") == tel(callee)
        assert not client.requests  # every event was taken above
        # The refresh re-INVITE, as pidgin-sipe sends it: no branch, and its CSeq numbering starts
        # again at 1 with the ACK, so the next INFO has a lower CSeq than the re-INVITE.
        refreshed = client.invite(request_system_status(tel(caller)))
        assert refreshed.status == 200 and xfind(refreshed.xml(), "systemStatus") == "normal"
        assert refreshed.tag("to") == ok.tag("to")
        stopped = client.info(csta("MonitorStop", f"<monitorCrossRefID>{xref}</monitorCrossRefID>"))
        assert stopped.status == 200 and local(stopped.xml()) == "MonitorStopResponse"
        ex.phone(callee).hangup()
        client.quiet(0.5)  # the monitor is gone: no ConnectionCleared
        bye = client.request("BYE", branch=not client.sipe_style)
        assert bye.status == 200
    finally:
        client.close()


def test_event_info_requests_are_in_the_dialog(exchange):
    """The server's INFO: Request-URI = the client's Contact, From = the server's side with its tag,
    To = the client with its tag, the dialog's Call-ID, CSeq rising by one; over UDP an unanswered
    INFO is retransmitted, and answered retransmissions stop."""
    ex, topology, _ = exchange
    client = SipClient(server_of(topology, 1), "udp")
    try:
        assert client.invite(request_system_status(tel("2003"))).status == 200
        xref = xfind(client.info(csta("MonitorStart", f"<monitorObject><deviceObject>{tel('2003')}"
                                                      "</deviceObject></monitorObject>")).xml(), "monitorCrossRefID")
        client.auto_answer = False
        ex.phone("2003").dial("1003")
        first = client.event()
        retransmitted = client.event(3)  # T1 = 0.5 s later
        assert retransmitted.header("via") == first.header("via") and retransmitted.body == first.body
        assert first.start == f"INFO sip:lync@{client.local[0]}:{client.local[1]};transport=udp SIP/2.0"
        assert first.tag("from") == client.remote_tag and first.tag("to") == client.tag
        assert first.header("call-id") == client.call_id
        assert first.header("content-type") == CSTA
        assert "branch=z9hG4bK" in first.header("via")
        client.answer(first, 200)
        client.auto_answer = True
        deadline = time.monotonic() + 1.5  # long enough for retransmissions, were there any
        while time.monotonic() < deadline:
            client.pump(0.1)
        later = list(client.requests)
        client.requests.clear()
        # One INFO at a time, CSeq rising by one; the answered one is not sent again.
        assert [r.cseq for r in later] == [(first.cseq[0] + 1, "INFO"), (first.cseq[0] + 2, "INFO")]
        assert [local(r.xml()) for r in later] == ["OriginatedEvent", "DeliveredEvent"]
        assert local(first.xml()) == "ServiceInitiatedEvent" and xfind(first.xml(), "monitorCrossRefID") == xref
        ex.phone("2003").hangup()
        client.info(csta("MonitorStop", f"<monitorCrossRefID>{xref}</monitorCrossRefID>"))
        while client.pump(0.3):
            pass
        assert client.request("BYE").status == 200
    finally:
        client.close()


# =================================================================================================
# Refusals: the server answers and carries on
# =================================================================================================
def raw_request(method: str, *, uri="sip:csta@127.0.1.1", call_id="x1", cseq="1", headers=(), body=b"",
                drop=(), content_length=None) -> bytes:
    fields = {"Via": f"SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK{secrets.token_hex(5)}",
              "From": "<sip:a@test>;tag=a1", "To": "<sip:csta@127.0.1.1>", "Call-ID": call_id,
              "CSeq": f"{cseq} {method}", "Max-Forwards": "70"}
    lines = [f"{method} {uri} SIP/2.0"] + [f"{k}: {v}" for k, v in fields.items() if k not in drop]
    lines += list(headers)
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange_one(server, data: bytes, transport: str = "tcp", timeout: float = 5.0, opening: bool = False) -> Msg:
    """Send `data`, return the answer. With `opening`, a good OPTIONS goes first on the connection:
    the first bytes of a TCP connection decide its protocol (an `OPTIONS http:` would be HTTP)."""
    client = SipClient(server, transport)
    try:
        if opening:
            client.send_raw(raw_request("OPTIONS").replace(b"/TCP", b"/" + transport.upper().encode()))
            assert client.read(timeout).status == 200
        client.send_raw(data)
        msg = client.read(timeout)
        assert msg is not None, "no answer"
        return msg
    finally:
        client.close()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_refusals(exchange, transport):
    _, topology, _ = exchange
    server = server_of(topology, 1)
    rss = request_system_status(tel("1005"))
    cases = [
        (raw_request("INVITE", drop=("Call-ID",), body=rss, headers=[f"Content-Type: {CSTA}"]), 400),
        (raw_request("INVITE", cseq="abc", body=rss, headers=[f"Content-Type: {CSTA}"]), 400),
        (raw_request("INFO", headers=["CSeq: 2 INFO"]), 400),  # two CSeq header fields
        (raw_request("INFO", cseq="2").replace(b"CSeq: 2 INFO", b"CSeq: 2 BYE"), 400),  # CSeq method
        (raw_request("INVITE", body=b"v=0\r\n", headers=["Content-Type: application/sdp"]), 415),
        (raw_request("INFO", body=csta("MonitorStop", "<monitorCrossRefID>1</monitorCrossRefID>"),
                     headers=[f"Content-Type: {CSTA}"]), 481),
        (raw_request("INFO", body=b"x", headers=[f"Content-Type: {CSTA}", "x"]), 400),  # not a header
        (raw_request("BYE"), 481),
        (raw_request("INFO", headers=[]).replace(b"To: <sip:csta@127.0.1.1>", b"To: <sip:csta@127.0.1.1>;tag=zz"), 481),
        (raw_request("SUBSCRIBE", headers=["Event: presence"]), 405),
        (raw_request("OPTIONS", uri="http://example.com/"), 416),
        (raw_request("OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (raw_request("INVITE", body=rss, headers=[f"Content-Type: {CSTA}", "Require: 100rel"]), 420),
        (raw_request("INVITE", body=rss, headers=[f"Content-Type: {CSTA}", "Session-Expires: 30"]), 422),
    ]
    if transport == "udp":
        cases.append((raw_request("OPTIONS", body=b"abc", content_length=10), 400))  # Content-Length mismatch
    for data, status in cases:
        if transport == "udp":
            data = data.replace(b"SIP/2.0/TCP", b"SIP/2.0/UDP")
        answer = exchange_one(server, data, transport, opening=True)
        assert answer.status == status, (data.split(b"\r\n")[0], answer.start)
        if status == 415:
            assert answer.header("accept") == CSTA
        if status == 405:
            assert "INFO" in answer.header("allow")
    # ... and the server still serves
    ok = exchange_one(server, raw_request("OPTIONS").replace(b"/TCP", b"/" + transport.upper().encode()), transport)
    assert ok.status == 200 and CSTA in ok.header("accept") and "INFO" in ok.header("allow")


def test_malformed_stream_closes_only_that_connection(exchange):
    _, topology, _ = exchange
    server = server_of(topology, 1)
    # A Content-Length that cannot be read loses the message boundaries: 400, then the server closes.
    client = SipClient(server, "tcp")
    try:
        client.send_raw(raw_request("OPTIONS", content_length="ten"))
        assert client.read(5).status == 400
        with pytest.raises(ConnectionError):
            client.read(5)
    finally:
        client.close()
    # Too large: 513 and closed.
    client = SipClient(server, "tcp")
    try:
        client.send_raw(raw_request("INFO", content_length=70000))
        assert client.read(5).status == 513
    finally:
        client.close()
    # A keep-alive ping gets a pong; a bad message in the middle of a stream costs that message only.
    client = SipClient(server, "tcp")
    try:
        client.send_raw(raw_request("OPTIONS"))  # the first bytes must say SIP
        assert client.read(5).status == 200
        client.send_raw(b"\r\n\r\n")
        client.sock.settimeout(5)
        assert client.sock.recv(10) == b"\r\n"
        client.send_raw(raw_request("OPTIONS", drop=("From",)) + raw_request("OPTIONS"))
        assert client.read(5).status == 400
        assert client.read(5).status == 200
    finally:
        client.close()
    # ... and a full dialog still works.
    client = SipClient(server, "tcp")
    try:
        assert client.invite(request_system_status(tel("1006"))).status == 200
        assert client.request("BYE").status == 200
    finally:
        client.close()


def test_sip_on_the_xml_port(exchange):
    """LIM 2 runs an XML server: SIP over TCP is recognised on its port too (no UDP there)."""
    _, topology, _ = exchange
    server = server_of(topology, 2)
    options = exchange_one(server, raw_request("OPTIONS"))
    assert options.status == 200
    client = SipClient(server, "tcp")
    try:
        ok = client.invite(request_system_status(tel("2005")))
        assert ok.status == 200 and xfind(ok.xml(), "systemStatus") == "normal"
        resp = client.info(csta("MonitorStart", f"<monitorObject><deviceObject>{tel('1007')}</deviceObject>"
                                                "</monitorObject>"))
        assert local(resp.xml()) == "MonitorStartResponse"
        assert client.request("BYE").status == 200
    finally:
        client.close()
    # Framed XML still works on the same port.
    from csta_front.framing import FrameDecoder, encode_frame
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(encode_frame(1, csta("RequestSystemStatus")))
        decoder, frames = FrameDecoder(), []
        while not frames:
            frames = decoder.feed(sock.recv(4096))
        assert b"normal" in frames[0].xml


def test_sip_over_tls(exchange):
    """With a certificate installed, the TR87 server's TLS port carries SIP too."""
    import ssl
    _, topology, tmp = exchange
    lim = topology.lim(1)
    trusting = ssl.create_default_context(cafile=str(tmp / "data" / "tls" / "server.crt"))
    client = SipClient((lim.address, lim.csta.tls_port), "tcp", tls=trusting)
    try:
        ok = client.invite(request_system_status(tel("1006")))
        assert ok.status == 200 and xfind(ok.xml(), "systemStatus") == "normal"
        resp = client.info(csta("MonitorStart", f"<monitorObject><deviceObject>{tel('2006')}</deviceObject>"
                                                "</monitorObject>"))
        assert local(resp.xml()) == "MonitorStartResponse"
        assert client.request("BYE").status == 200
    finally:
        client.close()
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that does not trust it refuses
        SipClient((lim.address, lim.csta.tls_port), "tcp", tls=ssl.create_default_context())


def test_bye_stops_the_monitors(exchange):
    """The dialog's session ends with BYE, and with it its monitors: a later call of the device makes
    no INFO, and the LIM sees no subscriber left (checked through a new dialog's MonitorStart)."""
    ex, topology, _ = exchange
    client = SipClient(server_of(topology, 1), "tcp")
    try:
        client.invite(request_system_status(tel("2006")))
        client.info(csta("MonitorStart", f"<monitorObject><deviceObject>{tel('2006')}</deviceObject></monitorObject>"))
        assert client.request("BYE").status == 200
        ex.phone("2006").offhook()
        client.quiet(0.5)
        ex.phone("2006").onhook()
        status = ex.client.request("csta-1", "csta.status", timeout=2.0)
        assert "2006" not in status["monitored_devices"]
    finally:
        client.close()


# =================================================================================================
# SIPp
# =================================================================================================
def sipp() -> str:
    path = shutil.which("sipp")
    assert path, "sipp is not installed (apt-get install sip-tester): the TR87 SIPp tests need it"
    return path


def run_sipp(tmp: Path, topology, scenario: str, transport: str, pairs: list[tuple[str, str]], *extra: str,
             timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    host, port = server_of(topology, 1)
    inject = tmp / f"{scenario}-{transport}-{pairs[0][0]}.csv"
    inject.write_text("SEQUENTIAL\n" + "".join(f"{a};{b}\n" for a, b in pairs))
    name = f"{scenario}-{transport}-{pairs[0][0]}"
    cmd = [sipp(), f"{host}:{port}", "-sf", str(SIPP_DIR / f"{scenario}.xml"), "-inf", str(inject),
           "-t", {"udp": "u1", "tcp": "t1"}[transport], "-i", "127.0.0.1", "-p", "0", "-nostdin",
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err", "-error_file", str(tmp / f"{name}.err"),
           "-trace_stat", "-stf", str(tmp / f"{name}.csv"), *extra]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, cwd=tmp)
    elapsed = time.monotonic() - started
    errors = (tmp / f"{name}.err").read_text() if (tmp / f"{name}.err").exists() else ""
    assert proc.returncode == 0, f"sipp exit {proc.returncode}\n{' '.join(cmd)}\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-2000:]}\n{errors[-4000:]}"
    return proc, elapsed


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_sipp_lync_dialog(exchange, transport):
    """INVITE RequestSystemStatus / 200 / ACK, GetCSTAFeatures, MonitorStart of a device on LIM 2,
    MakeCall to a device on LIM 1, the events as INFO answered 200, AnswerCall, ClearConnection,
    MonitorStop, BYE."""
    _, topology, tmp = exchange
    pair = ("2007", "1008") if transport == "tcp" else ("2008", "1009")
    run_sipp(tmp, topology, "tr87_lync", transport, [pair], "-m", "1")


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_sipp_lync_line_with_ext(exchange, transport):
    """A Lync line URI with ;ext= (extension 2007 on LIM 2) monitored through LIM 1's TR87 server:
    a call from the line to a DDI number of LIM 1 and one to the line, the event bodies checked
    for how they name the line (as the client wrote it) and the other party (tel: with
    phone-context); tests/sipp/tr87_lync_ext.xml says where each expected form comes from."""
    _, topology, tmp = exchange
    run_sipp(tmp, topology, "tr87_lync_ext", transport, [("2007", "1008")], "-m", "1")


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_sipp_refusals(exchange, transport):
    _, topology, tmp = exchange
    run_sipp(tmp, topology, "tr87_refusals", transport, [("0", "0")], "-m", "1")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_load(exchange, transport):
    """100 whole Lync dialogs (each with a call and its 6 events) at 20 per second, at most 10 at a
    time, over one UDP socket or one TCP connection; devices taken in turn from 10 pairs."""
    _, topology, tmp = exchange
    pairs = [(f"20{n:02d}", f"10{n:02d}") for n in range(10)]
    proc, elapsed = run_sipp(tmp, topology, "tr87_lync", transport, pairs, "-r", "20", "-m", "100", "-l", "10",
                             timeout=90)
    print(f"SIPp load: 100 dialogs at 20/s over {transport.upper()} in {elapsed:.1f} s")
    assert elapsed < 30
