"""Real client families against a real exchange: LIM 1's CSTA server without the greeting (as a real
MX-ONE), LIM 2's with `system_status_on_connect`, and SOAP (HTTP) and TR87 (SIP) on the same ports.

Each client is written the way its family behaves, on a raw socket, reading ECMA-323 Annex J.2
frames itself (2 zero bytes, a 2-byte length counting the 8-byte header, a 4-digit invoke ID):
- MX-ONE style (a PHP client written against a real MX-ONE): MakeCall at once, the first frame read
  is taken as its answer;
- OpenScape style: says nothing until the server's SystemStatus, answers SystemStatusResponse on
  that invoke ID, then SystemRegister (invoke ID 0000), MonitorStart, and reads events;
- Avaya DMCC style: StartApplicationSession asking for a private protocol version (ed3/priv5);
- an HTTP client (the WSDL, a SOAP POST) and a SIP client (OPTIONS, INVITE) on the greeting port,
  which must get HTTP and SIP answers, never a CSTA frame.
"""
from __future__ import annotations

import http.client
import secrets
import socket
import time

import pytest
from lxml import etree

from tests.procs import running_exchange

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ACSE = "http://www.ecma-international.org/standards/ecma-354/appl_session"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

def greeting_on_lim_2(data: dict) -> None:
    lim2 = next(lim for lim in data["lims"] if lim["number"] == 2)
    lim2["csta"] = {**lim2.get("csta", {}), "system_status_on_connect": True, "greeting_silence_s": 0.3}
    lim1 = next(lim for lim in data["lims"] if lim["number"] == 1)
    assert not lim1["csta"].get("system_status_on_connect")

@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("families"), cstas=(1, 2), edit=greeting_on_lim_2) as running:
        assert running.topology.lim(2).csta.system_status_on_connect
        assert not running.topology.lim(1).csta.system_status_on_connect
        yield running

def server(exchange, lim: int) -> tuple[str, int]:
    settings = exchange.topology.lim(lim)
    return settings.address, settings.csta.port

# -- a J.2 client, written from the standard -----------------------------------------------------------
class FramedClient:
    def __init__(self, address: tuple[str, int]):
        self.sock = socket.create_connection(address, timeout=5)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, invoke_id: int, xml: str) -> None:
        body = xml.encode()
        self.sock.sendall(b"\x00\x00" + (len(body) + 8).to_bytes(2, "big") + b"%04d" % invoke_id + body)

    def frame(self, timeout: float = 5.0) -> tuple[int, etree._Element]:
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 8:
                assert self.buffer[:2] == b"\x00\x00", f"not a CSTA frame: {self.buffer[:60]!r}"
                length = int.from_bytes(self.buffer[2:4], "big")
                if len(self.buffer) >= length:
                    head, self.buffer = self.buffer[:length], self.buffer[length:]
                    return int(head[4:8]), etree.fromstring(head[8:])
            left = deadline - time.monotonic()
            assert left > 0, "no frame in time"
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.buffer += data

    def silent(self, seconds: float) -> bool:
        """Nothing arrives for `seconds`."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(1)
        except TimeoutError:
            return True
        self.buffer += data
        return False

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (TimeoutError, ConnectionResetError):
            return False

def name(el: etree._Element) -> str:
    return etree.QName(el).localname

def child(el: etree._Element, *path: str) -> str | None:
    for step in path:
        el = next((c for c in el if name(c) == step), None)
        if el is None:
            return None
    return el.text

# -- the families ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("lim", [1, 2])
def test_mxone_style_send_first(exchange, lim):
    """MakeCall at once. On LIM 1 (no greeting, as a real MX-ONE) the first frame is its answer; on the
    greeting LIM the SystemStatus comes first, then the answer, as on a greeting server."""
    client = FramedClient(server(exchange, lim))
    try:
        client.send(1, f'<MakeCall xmlns="{ED4}"><callingDevice>1000</callingDevice>'
                       f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>')
        invoke_id, first = client.frame()
        if lim == 2:
            assert (invoke_id, name(first), child(first, "systemStatus")) == (9000, "SystemStatus", "normal")
            invoke_id, first = client.frame()
        assert (invoke_id, name(first)) == (1, "MakeCallResponse"), etree.tostring(first)
        call_id = child(first, "callingDevice", "callID")
        assert call_id and len(call_id) == 24
        client.send(2, f'<ClearCall xmlns="{ED4}"><callToBeCleared><callID>{call_id}</callID>'
                       f'<deviceID>1000</deviceID></callToBeCleared></ClearCall>')
        assert name(client.frame()[1]) == "ClearCallResponse"
    finally:
        client.close()

def test_mxone_style_gets_no_greeting_on_lim_1(exchange):
    client = FramedClient(server(exchange, 1))
    try:
        assert client.silent(1.0)
    finally:
        client.close()

def test_openscape_style_waits_for_the_greeting(exchange):
    client = FramedClient(server(exchange, 2))
    try:
        invoke_id, greeting = client.frame(timeout=3.0)  # says nothing until greeted
        assert name(greeting) == "SystemStatus" and child(greeting, "systemStatus") == "normal"
        assert child(greeting, "sysStatRegisterID") is None  # the greeting belongs to no registration
        client.send(invoke_id, f'<SystemStatusResponse xmlns="{ED4}"/>')
        client.send(0, f'<SystemRegister xmlns="{ED4}"><requestTypes><systemStatus>true</systemStatus>'
                       f'</requestTypes></SystemRegister>')
        invoke_id, registered = client.frame()
        assert (invoke_id, name(registered)) == (0, "SystemRegisterResponse")
        assert child(registered, "sysStatRegisterID")
        client.send(1, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>2000</deviceObject>'
                       f'</monitorObject></MonitorStart>')
        invoke_id, started = client.frame()
        assert (invoke_id, name(started)) == (1, "MonitorStartResponse")
        xref = child(started, "monitorCrossRefID")
        phones = exchange.exchange
        call_id = phones.phone("1000").dial("2000")["call_id"]
        try:
            invoke_id, event = client.frame()
            assert (invoke_id, name(event)) == (9999, "DeliveredEvent")
            assert child(event, "monitorCrossRefID") == xref
            assert child(event, "connection", "callID") == call_id
        finally:
            phones.phone("1000").hangup()
        # The client reports its own status (ECMA-269 SystemStatus to the switch): acknowledged.
        client.send(2, f'<SystemStatus xmlns="{ED4}"><systemStatus>normal</systemStatus></SystemStatus>')
        while True:
            invoke_id, answer = client.frame()
            if invoke_id != 9999:
                break
        assert (invoke_id, name(answer)) == (2, "SystemStatusResponse")
    finally:
        client.close()

def test_dmcc_style_private_protocol_version(exchange):
    version = f"{ED3}/priv5"
    client = FramedClient(server(exchange, 1))
    try:
        client.send(1, f'<StartApplicationSession xmlns="{ACSE}"><applicationInfo><applicationID>dmcc-app'
                       f'</applicationID></applicationInfo><requestedProtocolVersions><protocolVersion>{version}'
                       f'</protocolVersion></requestedProtocolVersions><requestedSessionDuration>180'
                       f'</requestedSessionDuration></StartApplicationSession>')
        invoke_id, answer = client.frame()
        assert (invoke_id, name(answer)) == (1, "StartApplicationSessionPosResponse"), etree.tostring(answer)
        assert child(answer, "actualProtocolVersion") == version
        assert child(answer, "actualSessionDuration") == "180"
        client.send(2, f'<RequestSystemStatus xmlns="{ED3}"/>')
        invoke_id, status = client.frame()
        assert status.tag == f"{{{ED3}}}RequestSystemStatusResponse" and child(status, "systemStatus") == "normal"
    finally:
        client.close()

def test_application_session_timer_ends_with_application_session_terminated(exchange):
    client = FramedClient(server(exchange, 1))
    try:
        client.send(1, f'<StartApplicationSession xmlns="{ACSE}"><applicationInfo><applicationID>short'
                       f'</applicationID></applicationInfo><requestedSessionDuration>1</requestedSessionDuration>'
                       f'</StartApplicationSession>')
        session_id = child(client.frame()[1], "sessionID")
        invoke_id, ended = client.frame(timeout=5.0)
        assert ended.tag == f"{{{ACSE}}}ApplicationSessionTerminated"
        assert child(ended, "sessionID") == session_id
        assert child(ended, "sessionTermReason", "definedTermReason") == "sessionTimerExpired"
        assert client.closed_by_server()
    finally:
        client.close()

# -- HTTP and SIP on the greeting port -----------------------------------------------------------------
def test_http_gets_the_wsdl_on_the_greeting_port(exchange):
    host, port = server(exchange, 2)
    for _ in range(3):
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", "/csta?wsdl")
            response = conn.getresponse()  # a CSTA frame here would be BadStatusLine
            assert response.status == 200
            assert etree.QName(etree.fromstring(response.read())).localname == "definitions"
        finally:
            conn.close()

def test_a_soap_request_gets_an_http_answer_on_the_greeting_port(exchange):
    host, port = server(exchange, 2)
    body = (f'<s:Envelope xmlns:s="{SOAP}"><s:Body><RequestSystemStatus xmlns="{ED4}"/></s:Body>'
            f'</s:Envelope>').encode()
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("POST", "/csta", body, {"Content-Type": "text/xml; charset=utf-8",
                                             "SOAPAction": '"urn:mxone-sim:csta:ws#RequestSystemStatus"'})
        response = conn.getresponse()
        assert response.status == 401  # no Linux login given: HTTP's own refusal
        assert response.getheader("WWW-Authenticate", "").startswith("Basic")
        response.read()
    finally:
        conn.close()

def sip_request(method: str, host: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"{method} sip:csta@{host} SIP/2.0",
             f"Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK{secrets.token_hex(5)}",
             "From: <sip:lync@test>;tag=f1", f"To: <sip:csta@{host}>", f"Call-ID: {secrets.token_hex(8)}",
             f"CSeq: 1 {method}", "Max-Forwards: 70", "Contact: <sip:lync@127.0.0.1:5099;transport=tcp>",
             *headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

def sip_status_line(sock: socket.socket) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while b"\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        assert chunk, "closed"
        data += chunk
    return data

@pytest.mark.parametrize("method", ["OPTIONS", "INVITE"])
def test_sip_on_the_greeting_port(exchange, method):
    host, port = server(exchange, 2)
    body, headers = b"", ()
    if method == "INVITE":  # TR87: RequestSystemStatus in the INVITE, as Lync sends it
        body = f'<?xml version="1.0"?><RequestSystemStatus xmlns="{ED3}"/>'.encode()
        headers = ("Content-Type: application/csta+xml", "Content-Disposition: signal;handling=required")
    with socket.create_connection((host, port), timeout=5) as sock:

        sock.sendall(sip_request(method, host, body, headers))
        answer = sip_status_line(sock)
        assert answer.startswith(b"SIP/2.0 200 "), answer[:80]
        if method == "INVITE":
            assert b"RequestSystemStatusResponse" in answer or b"RequestSystemStatusResponse" in sock.recv(65536)
