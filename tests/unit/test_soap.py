"""The SOAP web service (csta_front/soap*.py) without sockets or processes: envelopes and faults,
the WSDL (well-formed, loadable by zeep, its schema matching what the server really sends), HTTP
through h11 as a client sees it, authentication decisions with a fake PAM, subscriptions and events
on a FakeFront whose bus answers from a script."""
from __future__ import annotations

import base64
import io
import select
import socket
import threading
import time
from pathlib import Path

import h11
import pytest
import requests
import zeep
from lxml import etree
from zeep.transports import Transport

from csta_front import soap, soap_http, soap_login, soap_notify, soap_subscriptions, soap_wsdl
from csta_front.events import EVENT_NAMES
from csta_front.service_table import SERVICES
from csta_front.soap import SoapService
from csta_front.soap_envelope import (SOAP_NS, WS_NS, SoapFault, csta_error_fault, envelope, fault_envelope,
                                      parse_duration, parse_envelope)
from csta_front.soap_login import parse_basic
from csta_front.soap_notify import notify_target
from csta_front.waker import Waker
from tests.csta_fakes import FakeFront
from tests.unit.test_csta_golden import EVENTS, GOLDEN

ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED5 = "http://www.ecma-international.org/standards/ecma-323/csta/ed5"
WSDL_FILE = Path(soap.__file__).parent / "wsdl" / "csta.wsdl"
C1 = "001000001000000000000001"
DEVICE = {"ok": True, "device": "2000", "type": "ip", "logged_on": True, "lim": 2, "features": {}, "calls": []}


def env(body: str, header: str = "") -> bytes:
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (f'<soap:Envelope xmlns:soap="{SOAP_NS}">{head}<soap:Body>{body}</soap:Body></soap:Envelope>').encode()


# =================================================================================================
# Envelopes, faults and small parsers
# =================================================================================================
def test_parse_envelope_with_prefixes_and_header():
    data = (f'<?xml version="1.0"?><S:Envelope xmlns:S="{SOAP_NS}"><S:Header>'
            f'<mx:SubscriptionID xmlns:mx="{WS_NS}" S:mustUnderstand="1">abc</mx:SubscriptionID></S:Header>'
            f'<S:Body><ns3:MakeCall xmlns:ns3="{ED5}"><ns3:callingDevice>1000</ns3:callingDevice>'
            f'</ns3:MakeCall></S:Body></S:Envelope>').encode()
    parsed = parse_envelope(data)
    assert parsed.body.tag == f"{{{ED5}}}MakeCall"
    assert [h.text for h in parsed.headers] == ["abc"]


@pytest.mark.parametrize("data, code, words", [
    (b"not xml at all", "Client", "not a SOAP envelope"),
    (b"", "Client", "not a SOAP envelope"),
    (f'<MakeCall xmlns="{ED4}"/>'.encode(), "Client", "the document is <MakeCall>"),
    (b'<Envelope><Body/></Envelope>', "Client", "not a SOAP 1.1 envelope"),
    (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>', "VersionMismatch",
     "SOAP 1.2"),
    (f'<s:Envelope xmlns:s="{SOAP_NS}"/>'.encode(), "Client", "no Body"),
    (env(""), "Client", "holds 0"),
    (env(f'<RequestSystemStatus xmlns="{ED4}"/><RequestSystemStatus xmlns="{ED4}"/>'), "Client", "holds 2"),
    (env(f'<RequestSystemStatus xmlns="{ED4}"/>', '<x:T xmlns:x="urn:x" soap:mustUnderstand="1"/>'),
     "MustUnderstand", "not understood"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "Client", "not a SOAP envelope"),
])
def test_bad_envelopes_are_faults(data, code, words):
    with pytest.raises(SoapFault) as err:
        parse_envelope(data)
    assert err.value.code == code and words in err.value.string


def test_a_header_without_must_understand_is_ignored():
    parsed = parse_envelope(env(f'<RequestSystemStatus xmlns="{ED4}"/>', '<x:T xmlns:x="urn:x">1</x:T>'))
    assert etree.QName(parsed.body).localname == "RequestSystemStatus"


def test_envelope_wraps_a_document_without_its_declaration():
    data = envelope(b"<?xml version='1.0' encoding='UTF-8'?>\n<A xmlns=\"urn:a\"/>", b'<h xmlns="urn:h">1</h>')
    root = etree.fromstring(data)
    assert root.tag == f"{{{SOAP_NS}}}Envelope"
    assert [c.tag for c in root] == [f"{{{SOAP_NS}}}Header", f"{{{SOAP_NS}}}Body"]
    assert root[1][0].tag == "{urn:a}A"
    assert parse_envelope(data).body.tag == "{urn:a}A"


@pytest.mark.parametrize("category, value, code", [
    ("operation", "invalidDeviceID", "Client"),
    ("operation", "generic", "Server"),
    ("stateIncompatibility", "noCallToAnswer", "Client"),
    ("security", "securityInfoViolated", "Client"),
    ("systemResourceAvailibility", "resourceBusy", "Server"),
    ("performanceManagement", "performanceLimitExceeded", "Server"),
])
def test_csta_errors_become_faults(category, value, code):
    error = etree.fromstring(f'<CSTAErrorCode xmlns="{ED4}"><{category}>{value}</{category}></CSTAErrorCode>')
    fault = csta_error_fault(error)
    assert fault.code == code
    assert fault.string == f"CSTA error: {category} {value}"
    root = etree.fromstring(fault_envelope(fault))
    body_fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert body_fault.findtext("faultcode") == f"soap:{code}"
    # The faultcode's prefix is declared where it is used.
    assert body_fault.nsmap["soap"] == SOAP_NS
    assert body_fault.findtext("faultstring") == fault.string
    assert body_fault.find(f"detail/{{{ED4}}}CSTAErrorCode/{{{ED4}}}{category}").text == value


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@pytest.mark.parametrize("value, expected", [
    (basic("csta_user", "pa:ss w"), ("csta_user", "pa:ss w")),
    (b"basic " + base64.b64encode(b"a:"), ("a", "")),
    (None, None),
    (b"", None),
    (b"Bearer abc", None),
    (b"Basic", None),
    (b"Basic !!!!", None),
    (b"Basic " + base64.b64encode(b"nocolon"), None),
    (basic("", "x"), None),
    (basic("bad user", "x"), None),
    (basic("-rf", "x"), None),
    (basic("u", "a\x00b"), None),
    (b"Basic " + base64.b64encode(b"\xff\xfe:x"), None),
])
def test_parse_basic(value, expected):
    assert parse_basic(value) == expected


@pytest.mark.parametrize("raw, seconds", [
    ("PT10M", 600), ("PT1.5S", 1.5), ("P1DT1H", 90000), ("PT0S", 0), ("120", 120), (" PT5S ", 5),
    ("P", None), ("PT", None), ("P1Y", None), ("-PT5S", None), ("soon", None), ("P%P", None), (None, None),
])
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


def test_notify_target():
    target = notify_target("http://127.0.0.1:8099/events?x=1")
    assert (target.host, target.port, target.path) == ("127.0.0.1", 8099, "/events?x=1")
    assert notify_target("http://listener").port == 80 and notify_target("http://listener").path == "/"
    for bad in ("https://x/", "ftp://x/", "http://", "http://u:p@x/", "http://x:99999/", "http://x/a b", "x"):
        assert notify_target(bad) is None, bad


# =================================================================================================
# The WSDL
# =================================================================================================
WSDL = "http://schemas.xmlsoap.org/wsdl/"
WS_OPERATIONS = {"Subscribe", "Renew", "Unsubscribe", "GetEvents"}


def wsdl_root():
    return etree.parse(str(WSDL_FILE)).getroot()


def schema(namespace: str) -> etree.XMLSchema:
    el = next(s for s in wsdl_root().iter("{http://www.w3.org/2001/XMLSchema}schema")
              if s.get("targetNamespace") == namespace)
    return etree.XMLSchema(etree.fromstring(etree.tostring(el)))


def test_wsdl_is_well_formed_and_names_its_address_once():
    root = wsdl_root()
    assert root.tag == f"{{{WSDL}}}definitions"
    addresses = root.findall(f".//{{{WSDL}}}port/{{http://schemas.xmlsoap.org/wsdl/soap/}}address")
    assert [a.get("location") for a in addresses] == ["http://localhost:8882/csta"]
    rendered = soap_wsdl.Wsdl(WSDL_FILE.read_bytes()).render('http://10.0.0.1:8882/csta?a="b"&c')
    location = etree.fromstring(rendered).find(f".//{{{WSDL}}}port/{{http://schemas.xmlsoap.org/wsdl/soap/}}address")
    assert location.get("location") == 'http://10.0.0.1:8882/csta?a="b"&c'


def test_wsdl_operations_are_services_of_the_server():
    ops = {op.get("name") for op in wsdl_root().find(f"{{{WSDL}}}binding[@name='CstaBinding']")
           .iterfind(f"{{{WSDL}}}operation")}
    required = {"MonitorStart", "MonitorStop", "MakeCall", "AnswerCall", "ClearConnection", "ClearCall", "HoldCall",
                "RetrieveCall", "RequestSystemStatus", "SnapshotDevice"}
    assert required | WS_OPERATIONS <= ops
    assert ops - WS_OPERATIONS <= set(SERVICES)
    assert ops - WS_OPERATIONS == set(SERVICES)  # today every service is described


def test_zeep_loads_the_wsdl_from_a_file():
    client = zeep.Client(str(WSDL_FILE))
    service = client.service
    for name in ("MonitorStart", "MakeCall", "Subscribe", "GetEvents", "Unsubscribe"):
        assert callable(getattr(service, name))
    message = client.create_message(service, "MakeCall", callingDevice="1000", calledDirectoryNumber="2000",
                                    autoOriginate="doNotPrompt")
    body = message.find(f"{{{SOAP_NS}}}Body")[0]
    assert body.tag == f"{{{ED4}}}MakeCall"
    assert [etree.QName(c).localname for c in body] == ["callingDevice", "calledDirectoryNumber", "autoOriginate"]


def test_zeep_loads_the_wsdl_from_a_string():
    """A client given the WSDL's text (not a URL or a file) gets the same service, and the address
    the server would write into it."""
    text = soap_wsdl.Wsdl(WSDL_FILE.read_bytes()).render("http://10.1.2.3:8882/csta")
    client = zeep.Client(io.BytesIO(text))
    assert list(client.wsdl.services) == ["CstaService"]
    assert client.service._binding_options["address"] == "http://10.1.2.3:8882/csta"


@pytest.mark.parametrize("golden", [g for g in GOLDEN if g.name in SERVICES], ids=lambda g: g.name)
def test_schema_describes_every_request_and_response(golden):
    """The schema in the WSDL accepts what the golden tests pin as the wire format (ed4)."""
    xsd = schema(ED4)
    for document in (golden.request, golden.response.replace("SESSION", "1"), *golden.unsolicited):
        doc = etree.fromstring(document.replace("SESSION", "1").encode())
        assert xsd.validate(doc), (etree.QName(doc).localname, xsd.error_log.last_error)


@pytest.mark.parametrize("body, monitored, expected", EVENTS)
def test_schema_describes_every_event(body, monitored, expected):
    xsd = schema(ED4)
    doc = etree.fromstring(expected.encode())
    assert xsd.validate(doc), xsd.error_log.last_error


def test_schema_has_every_event_and_the_error_code():
    names = {el.get("name") for el in next(iter(
        s for s in wsdl_root().iter("{http://www.w3.org/2001/XMLSchema}schema")
        if s.get("targetNamespace") == ED4))}
    assert set(EVENT_NAMES.values()) <= names
    assert "CSTAErrorCode" in names


# =================================================================================================
# HTTP, SOAP and subscriptions on a FakeFront
# =================================================================================================
class Front(FakeFront):
    """FakeFront plus what the SOAP service uses of FrontEnd."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.address = "127.0.1.1"
        self.sessions: set = set()
        self.stream_handlers: dict = {}
        self.datagram_sockets: list = []

    def add_datagram_socket(self, sock, on_datagram) -> None:
        self.datagram_sockets.append((sock, on_datagram))


class FakePam:
    def __init__(self, users: dict[str, str]):
        self.users = users
        self.calls: list[str] = []

    def __call__(self, user: str, password: str) -> bool:
        self.calls.append(user)
        return self.users.get(user) == password


class FakeConn:
    """What HttpHandler uses of csta_front.server.Connection."""

    def __init__(self, peer: str):
        self.peer = peer
        self.data = bytearray()
        self.closed = False
        self.out = b""
        self.sock = None
        self.handler = None

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.data += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.handler.connection_lost()

    close_when_sent = close  # nothing waits to be sent here


class Response:
    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def xml(self):
        return etree.fromstring(self.body)

    def fault(self) -> tuple[str, str]:
        fault = self.xml().find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
        return fault.findtext("faultcode"), fault.findtext("faultstring")

    def body_element(self):
        return self.xml().find(f"{{{SOAP_NS}}}Body")[0]


class Wire:
    """One client connection to the service: raw bytes in, responses parsed by an h11 client."""

    def __init__(self, service: SoapService, front: Front, peer: str = "10.0.0.7:40000"):
        self.service = service
        self.conn = FakeConn(peer)
        self.conn.handler = self.handler = front.stream_handlers["http"](front, self.conn)
        self.read = 0

    def send(self, data: bytes) -> None:
        self.handler.data_received(data)
        self.service.waker.drain()  # PAM results (the fake runs inline) come back through the waker

    def responses(self, methods=(b"POST",) * 20) -> list[Response]:
        """Every response written since the last call (one per request method given, at most)."""
        out = []
        data = bytes(self.conn.data[self.read:])
        for method in methods:
            if not data:
                break
            client = h11.Connection(h11.CLIENT)
            client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
            client.send(h11.EndOfMessage())
            client.receive_data(data)
            status, headers, body = None, {}, b""
            while True:
                event = client.next_event()
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    status, headers = event.status_code, dict(event.headers)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    raise AssertionError(f"incomplete response: {event}")
            out.append(Response(status, headers, body))
            data = client.trailing_data[0]
        self.read = len(self.conn.data) - len(data)
        return out

    def request(self, method: str, target: str, body: bytes = b"", headers: dict | None = None,
                auth: bytes | None = None) -> Response:
        headers = dict(headers or {})
        lines = [f"{method} {target} HTTP/1.1", "Host: " + headers.pop("Host", "127.0.1.1:8882")]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if auth:
            lines.append("Authorization: " + auth.decode())
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        got = self.responses([method.encode()])
        assert len(got) == 1, f"{len(got)} responses"
        return got[0]

    def soap(self, body: str, header: str = "", auth: bytes | None = None) -> Response:
        return self.request("POST", "/csta", env(body, header), {"Content-Type": "text/xml; charset=utf-8"},
                            auth=auth or basic("csta_user", "secret"))


@pytest.fixture
def front() -> Front:
    return Front()


@pytest.fixture
def pam() -> FakePam:
    return FakePam({"csta_user": "secret", "other_user": "pw2"})


@pytest.fixture
def service(front, pam):
    svc = SoapService(front, pam, submit=lambda fn: fn())
    front.stream_handlers["http"] = svc.handler
    yield svc
    svc.close()


@pytest.fixture
def wire(service, front) -> Wire:
    return Wire(service, front)


def test_install_sets_the_http_handler(front):
    service = soap.install(front)
    try:
        assert front.stream_handlers["http"] == service.handler
        assert len(front.datagram_sockets) == 1  # the waker
    finally:
        service.close()


def test_wsdl_served_with_the_address_from_the_host_header(wire):
    got = wire.request("GET", "/csta?wsdl", headers={"Host": "pbx.example:8882"})
    assert got.status == 200 and got.headers[b"content-type"].startswith(b"text/xml")
    root = etree.fromstring(got.body)
    location = root.find(f".//{{{WSDL}}}port/{{http://schemas.xmlsoap.org/wsdl/soap/}}address").get("location")
    assert location == "http://pbx.example:8882/csta"


def test_wsdl_address_without_a_usable_host(wire):
    wire.send(b"GET /csta?WSDL HTTP/1.0\r\n\r\n")  # HTTP/1.0: no Host header needed
    got = wire.responses([b"GET"])[0]
    root = etree.fromstring(got.body)
    location = root.find(f".//{{{WSDL}}}port/{{http://schemas.xmlsoap.org/wsdl/soap/}}address").get("location")
    assert location == "http://127.0.1.1:8882/csta"  # the front end's own address and port
    assert wire.conn.closed  # HTTP/1.0 without keep-alive


def test_head_wsdl_has_no_body(wire):
    got = wire.request("HEAD", "/csta?wsdl")
    assert got.status == 200 and got.body == b"" and int(got.headers[b"content-length"]) > 10000


@pytest.mark.parametrize("method, target, status, allow", [
    ("GET", "/", 404, None),
    ("GET", "/csta/x", 404, None),
    ("POST", "/other", 404, None),
    ("GET", "/csta", 405, b"POST"),
    ("GET", "/csta?xsd", 404, None),
    ("PUT", "/csta", 405, b"GET, HEAD, POST"),
    ("DELETE", "/csta", 405, b"GET, HEAD, POST"),
])
def test_http_errors_keep_the_connection(wire, pam, method, target, status, allow):
    got = wire.request(method, target)
    assert got.status == status
    assert got.headers.get(b"allow") == allow
    assert not wire.conn.closed
    assert wire.request("GET", "/csta?wsdl").status == 200  # the same connection goes on
    assert pam.calls == []


def test_absolute_form_target(wire):
    assert wire.request("GET", "http://127.0.1.1:8882/csta?wsdl").status == 200


def test_malformed_http_is_400_and_closes(wire):
    wire.send(b"GET /csta?wsdl HTTP/1.1\r\nno colon here\r\n\r\n")
    got = wire.responses([b"GET"])[0]
    assert got.status == 400
    assert wire.conn.closed


def test_missing_host_in_http_1_1_is_400(wire):
    wire.send(b"GET /csta?wsdl HTTP/1.1\r\n\r\n")
    assert wire.responses([b"GET"])[0].status == 400
    assert wire.conn.closed


def test_headers_too_large_is_431(wire):
    wire.send(b"GET /csta?wsdl HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000)
    assert wire.responses([b"GET"])[0].status == 431
    assert wire.conn.closed


def test_body_too_large_by_content_length_is_413_before_reading_it(wire, pam):
    wire.send(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 70000\r\n\r\n<a")
    assert wire.responses()[0].status == 413
    assert wire.conn.closed and pam.calls == []


def test_chunked_body_too_large_is_413(wire):
    chunk = b"a" * 40000
    wire.send(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
              + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2)
    assert wire.responses()[0].status == 413
    assert wire.conn.closed


def test_wrong_content_type_is_415(wire):
    got = wire.request("POST", "/csta", env(f'<RequestSystemStatus xmlns="{ED4}"/>'),
                       {"Content-Type": "application/soap+xml"}, auth=basic("csta_user", "secret"))
    assert got.status == 415


def test_no_credentials_is_401_with_the_realm(wire, pam):
    got = wire.request("POST", "/csta", env(f'<RequestSystemStatus xmlns="{ED4}"/>'), {"Content-Type": "text/xml"})
    assert got.status == 401
    assert got.headers[b"www-authenticate"] == b'Basic realm="MX-ONE CSTA"'
    assert pam.calls == []
    assert not wire.conn.closed


def test_wrong_password_is_401(wire, pam):
    got = wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>', auth=basic("csta_user", "wrong"))
    assert got.status == 401 and got.headers[b"www-authenticate"] == b'Basic realm="MX-ONE CSTA"'
    assert pam.calls == ["csta_user"]
    got = wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>', auth=basic("nobody", "x"))
    assert got.status == 401


def test_a_successful_login_is_cached_on_the_connection(service, front, wire, pam):
    for _ in range(3):
        assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200
    assert pam.calls == ["csta_user"]
    # Another password on the same connection is checked again.
    assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>', auth=basic("csta_user", "wrong")).status == 401
    assert pam.calls == ["csta_user"] * 2
    # The cache expires.
    assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200
    front.advance(soap_login.AUTH_CACHE_S + 1)
    assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200
    assert pam.calls == ["csta_user"] * 4
    # Another connection logs in again.
    assert Wire(service, front).soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200
    assert len(pam.calls) == 5


def test_repeated_failures_lock_the_address_out(service, front, wire, pam):
    for _ in range(5):
        assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>', auth=basic("csta_user", "guess")).status == 401
    got = wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>')  # even the right password now
    assert got.status == 429 and got.headers[b"retry-after"] == b"60"
    assert len(pam.calls) == 5  # no PAM call while locked
    # Another address and user are not locked.
    other = Wire(service, front, peer="10.0.0.8:40000")
    assert other.soap(f'<RequestSystemStatus xmlns="{ED4}"/>', auth=basic("other_user", "pw2")).status == 200
    front.advance(61)
    assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200


def test_pam_runs_off_the_loop_and_one_peer_cannot_take_every_worker(front, pam):
    """PAM checks wait on workers; a client with AUTH_PER_PEER checks in flight gets 503, others not."""
    queued = []
    service = SoapService(front, pam, submit=queued.append)  # workers that never run on their own
    front.stream_handlers["http"] = service.handler
    try:
        wires = [Wire(service, front, peer=f"10.0.0.9:{4000 + i}") for i in range(soap_login.AUTH_PER_PEER + 1)]
        for w in wires:
            w.handler.data_received(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: "
                                    + basic("csta_user", "secret") + b"\r\nContent-Length: "
                                    + str(len(env(f'<RequestSystemStatus xmlns="{ED4}"/>'))).encode() + b"\r\n\r\n"
                                    + env(f'<RequestSystemStatus xmlns="{ED4}"/>'))
        assert [w.responses() for w in wires[:-1]] == [[], []]  # waiting for PAM, the loop is free
        assert [r.status for r in wires[-1].responses()] == [503]
        stranger = Wire(service, front, peer="10.0.0.10:4000")
        stranger.handler.data_received(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: "
                                       + basic("other_user", "pw2") + b"\r\nContent-Length: 0\r\n\r\n")
        assert stranger.responses() == []  # queued, not refused
        for work in queued:
            work()
        service.waker.drain()
        assert [w.responses()[0].status for w in wires[:-1]] == [200, 200]
        assert stranger.responses()[0].status == 500  # an empty body is not a SOAP envelope
    finally:
        service.close()


def test_pam_on_real_threads_wakes_the_loop(front):
    """The default worker pool: a slow PAM check does not block the caller; its result arrives
    through the waker's socket."""
    release = threading.Event()

    def slow_pam(user, password):
        release.wait(5)
        return password == "secret"

    service = SoapService(front, slow_pam)
    front.stream_handlers["http"] = service.handler
    try:
        w = Wire(service, front)
        body = env(f'<RequestSystemStatus xmlns="{ED4}"/>')
        started = time.monotonic()
        w.handler.data_received(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: "
                                + basic("csta_user", "secret") + b"\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert time.monotonic() - started < 0.5 and w.responses() == []
        release.set()
        sock, on_datagram = front.datagram_sockets[0]
        assert select.select([sock], [], [], 5)[0], "the waker was not woken"
        on_datagram(sock.recv(16), None)
        assert w.responses()[0].status == 200
    finally:
        service.close()


def test_request_system_status(wire):
    got = wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>')
    assert got.status == 200 and got.headers[b"content-type"] == b"text/xml; charset=utf-8"
    answer = got.body_element()
    assert answer.tag == f"{{{ED4}}}RequestSystemStatusResponse"
    assert answer.findtext(f"{{{ED4}}}systemStatus") == "normal"


def test_requests_are_answered_in_their_edition(wire):
    got = wire.soap(f'<ns3:RequestSystemStatus xmlns:ns3="{ED5}"/>')
    assert got.body_element().tag == f"{{{ED5}}}RequestSystemStatusResponse"


def test_make_call_asks_the_lim(front, wire):
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "connected"})
    got = wire.soap(f'<MakeCall xmlns="{ED4}"><callingDevice>1000</callingDevice>'
                    f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>')
    assert front.bus.requests == [("dev:1000", "phone", {"action": "dial", "digits": "2000"})]
    assert got.status == 200
    assert got.body_element().findtext(f"{{{ED4}}}callingDevice/{{{ED4}}}callID") == C1


def test_csta_error_is_a_soap_fault(front, wire):
    front.bus.answer("dev:1000", "phone", {"ok": False, "error": "not_alerting"})
    got = wire.soap(f'<AnswerCall xmlns="{ED4}"><callToBeAnswered><callID>{C1}</callID><deviceID>1000</deviceID>'
                    f'</callToBeAnswered></AnswerCall>')
    assert got.status == 500
    assert got.fault() == ("soap:Client", "CSTA error: stateIncompatibility noCallToAnswer")
    detail = got.xml().find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault/detail/{{{ED4}}}CSTAErrorCode")
    assert detail[0].tag == f"{{{ED4}}}stateIncompatibility"


def test_unknown_service_is_a_fault(wire):
    got = wire.soap(f'<FlyToTheMoon xmlns="{ED4}"/>')
    assert got.status == 500 and got.fault() == ("soap:Client", "CSTA error: operation serviceNotSupported")


@pytest.mark.parametrize("body", [b"<not-closed", b"plain text", b'<a xmlns="urn:x"/>'])
def test_a_body_that_is_not_soap_is_a_client_fault_with_500(wire, body):
    got = wire.request("POST", "/csta", body, {"Content-Type": "text/xml"}, auth=basic("csta_user", "secret"))
    assert got.status == 500
    assert got.fault()[0] == "soap:Client"
    assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200  # the connection goes on


def test_soap_1_2_is_a_version_mismatch(wire):
    data = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    got = wire.request("POST", "/csta", data, {"Content-Type": "text/xml"}, auth=basic("csta_user", "secret"))
    assert got.status == 500 and got.fault()[0] == "soap:VersionMismatch"


def test_pipelined_requests_are_answered_in_order(front, wire):
    front.bus.default = {"ok": True, "device": "1000", "call_id": C1, "state": "hold"}
    auth = basic("csta_user", "secret").decode()
    data = b""
    for name, conn in (("HoldCall", "callToBeHeld"), ("RetrieveCall", "callToBeRetrieved")):
        body = env(f'<{name} xmlns="{ED4}"><{conn}><callID>{C1}</callID><deviceID>1000</deviceID></{conn}></{name}>')
        data += (f"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: {auth}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    data += b"GET /csta?wsdl HTTP/1.1\r\nHost: x\r\n\r\n"
    wire.send(data)
    got = wire.responses([b"POST", b"POST", b"GET"])
    assert [r.status for r in got] == [200, 200, 200]
    assert [etree.QName(r.body_element()).localname for r in got[:2]] == ["HoldCallResponse", "RetrieveCallResponse"]


def test_expect_100_continue(wire):
    body = env(f'<RequestSystemStatus xmlns="{ED4}"/>')
    head = (f"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nExpect: 100-continue\r\n"
            f"Authorization: {basic('csta_user', 'secret').decode()}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    wire.send(head)
    assert bytes(wire.conn.data).startswith(b"HTTP/1.1 100 ")
    wire.send(body)
    assert wire.responses()[0].status == 200


def test_an_answer_the_exchange_never_gives_times_out(front, wire):
    pending = []
    front.bus.request = lambda dst, kind, body, on_reply=None, timeout=2.0: pending.append(on_reply)
    body = env(f'<HoldCall xmlns="{ED4}"><callToBeHeld><callID>{C1}</callID><deviceID>1000</deviceID>'
               f'</callToBeHeld></HoldCall>')
    wire.handler.data_received(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: "
                               + basic("csta_user", "secret") + b"\r\nContent-Length: " + str(len(body)).encode()
                               + b"\r\n\r\n" + body)
    wire.service.waker.drain()
    assert wire.responses() == [] and len(pending) == 1
    front.advance(soap_http.REQUEST_TIMEOUT_S + 0.1)
    got = wire.responses()[0]
    assert got.status == 500 and got.fault()[0] == "soap:Server"
    pending[0]({"ok": True, "device": "1000", "call_id": C1, "state": "hold"})  # too late: ignored
    assert wire.responses() == []
    assert wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>').status == 200


def test_a_slow_request_is_closed_after_the_frame_timeout(front, wire):
    wire.send(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<a")
    front.advance(front.settings.frame_timeout_s + 0.5)
    assert wire.responses()[0].status == 408
    assert wire.conn.closed


def test_half_a_request_line_is_closed_after_the_frame_timeout(front, wire):
    wire.send(b"POST /cs")
    front.advance(front.settings.frame_timeout_s - 1)
    assert not wire.conn.closed
    front.advance(1.5)
    assert wire.conn.closed


def test_an_idle_connection_is_closed(front, wire):
    assert wire.request("GET", "/csta?wsdl").status == 200
    front.advance(soap_http.IDLE_TIMEOUT_S - 5)
    assert not wire.conn.closed
    front.advance(6)
    assert wire.conn.closed


def test_the_connection_session_lives_with_the_connection(front, service, wire):
    """MonitorStart without a subscription: the monitor belongs to the connection's session; its
    events are counted and dropped; closing the connection stops it."""
    front.bus.answer("dev:2000", "device.get", DEVICE)
    got = wire.soap(f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>2000</deviceObject>'
                    f'</monitorObject></MonitorStart>')
    xref = got.body_element().findtext(f"{{{ED4}}}monitorCrossRefID")
    assert len(front.sessions) == 1 and xref in front.monitors.by_xref
    front.publish_device("2000", {"event": "OutOfService", "device": "2000", "call_id": None})
    assert service.unrouted_events == 1
    # Another connection cannot stop it.
    other = Wire(service, front)
    got = other.soap(f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>{xref}</monitorCrossRefID></MonitorStop>')
    assert got.fault() == ("soap:Client", "CSTA error: operation invalidCrossRefID")
    wire.conn.close()
    assert xref not in front.monitors.by_xref
    assert len(front.sessions) == 1  # the other connection's


def test_authentication_mandatory_does_not_ask_soap_clients_for_an_application_session():
    from topology.model import CstaSettings
    front = Front(settings=CstaSettings(authentication_mandatory=True))
    service = SoapService(front, FakePam({"csta_user": "secret"}), submit=lambda fn: fn())
    front.stream_handlers["http"] = service.handler
    try:
        got = Wire(service, front).soap(f'<RequestSystemStatus xmlns="{ED4}"/>')
        assert got.body_element().tag == f"{{{ED4}}}RequestSystemStatusResponse"
    finally:
        service.close()


# -- subscriptions ---------------------------------------------------------------------------------
def subscribe(wire: Wire, devices=("2000",), notify: str | None = None, expires: str | None = None) -> str:
    parts = [f"<mx:NotifyTo>{notify}</mx:NotifyTo>"] if notify else []
    parts += [f"<mx:Device>{d}</mx:Device>" for d in devices]
    parts += [f"<mx:Expires>{expires}</mx:Expires>"] if expires else []
    got = wire.soap(f'<mx:Subscribe xmlns:mx="{WS_NS}">{"".join(parts)}</mx:Subscribe>')
    assert got.status == 200, got.body
    return got.body_element().findtext(f"{{{WS_NS}}}SubscriptionID")


def get_events(wire: Wire, sub_id: str, max_events: int | None = None, wait: str | None = None,
               auth: bytes | None = None) -> Response:
    parts = f"<mx:SubscriptionID>{sub_id}</mx:SubscriptionID>"
    parts += f"<mx:MaxEvents>{max_events}</mx:MaxEvents>" if max_events is not None else ""
    parts += f"<mx:Wait>{wait}</mx:Wait>" if wait else ""
    return wire.soap(f'<mx:GetEvents xmlns:mx="{WS_NS}">{parts}</mx:GetEvents>', auth=auth)


def event_names(got: Response) -> list[str]:
    return [etree.QName(e[0]).localname for e in got.body_element().iterfind(f"{{{WS_NS}}}Event")]


def out_of_service(device: str) -> dict:
    return {"event": "OutOfService", "device": device, "call_id": None}


@pytest.fixture
def devices(front):
    for number in ("1000", "2000", "2001"):
        front.bus.answer(f"dev:{number}", "device.get", {**DEVICE, "device": number})


def test_subscribe_pull_and_unsubscribe(front, service, wire, devices):
    got = wire.soap(f'<mx:Subscribe xmlns:mx="{WS_NS}"><mx:Device>2000</mx:Device><mx:Device>tel:1000</mx:Device>'
                    f'<mx:Device>2000</mx:Device><mx:Expires>PT5M</mx:Expires></mx:Subscribe>')
    answer = got.body_element()
    sub_id = answer.findtext(f"{{{WS_NS}}}SubscriptionID")
    assert answer.findtext(f"{{{WS_NS}}}Expires") == "PT300S"
    monitors = [(m.findtext(f"{{{WS_NS}}}Device"), m.findtext(f"{{{WS_NS}}}MonitorCrossRefID"))
                for m in answer.iterfind(f"{{{WS_NS}}}Monitor")]
    assert [d for d, _ in monitors] == ["2000", "1000"]
    assert all(x in front.monitors.by_xref for _, x in monitors)
    front.publish_device("2000", out_of_service("2000"))
    front.publish_device("1000", out_of_service("1000"))
    got = get_events(wire, sub_id)
    assert event_names(got) == ["OutOfServiceEvent", "OutOfServiceEvent"]
    assert got.body_element().findtext(f"{{{WS_NS}}}DroppedEvents") == "0"
    assert event_names(get_events(wire, sub_id)) == []
    got = wire.soap(f'<mx:Unsubscribe xmlns:mx="{WS_NS}"><mx:SubscriptionID>{sub_id}</mx:SubscriptionID>'
                    f'</mx:Unsubscribe>')
    assert got.status == 200 and etree.QName(got.body_element()).localname == "UnsubscribeResponse"
    assert front.monitors.by_xref == {} and service.subscriptions == {}
    got = get_events(wire, sub_id)
    assert got.status == 500 and "no subscription" in got.fault()[1]


def test_get_events_long_poll(front, service, wire, devices):
    sub_id = subscribe(wire)
    body = env(f'<mx:GetEvents xmlns:mx="{WS_NS}"><mx:SubscriptionID>{sub_id}</mx:SubscriptionID>'
               f'<mx:Wait>PT5S</mx:Wait></mx:GetEvents>')
    wire.send(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: "
              + basic("csta_user", "secret") + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert wire.responses() == []  # waiting
    front.advance(1)
    front.publish_device("2000", out_of_service("2000"))
    assert event_names(wire.responses()[0]) == ["OutOfServiceEvent"]
    # Nothing comes: the wait ends empty, after the time asked for (at most MAX_WAIT_S).
    wire.send(b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nAuthorization: "
              + basic("csta_user", "secret") + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    front.advance(4.9)
    assert wire.responses() == []
    front.advance(0.2)
    assert event_names(wire.responses()[0]) == []


def test_get_events_max_and_dropped(front, service, wire, devices, monkeypatch):
    monkeypatch.setattr(soap_subscriptions, "MAX_QUEUED", 5)
    sub_id = subscribe(wire)
    for _ in range(8):
        front.publish_device("2000", out_of_service("2000"))
    got = get_events(wire, sub_id, max_events=2)
    assert len(event_names(got)) == 2
    assert got.body_element().findtext(f"{{{WS_NS}}}DroppedEvents") == "3"
    assert got.body_element().findtext(f"{{{WS_NS}}}QueuedEvents") == "3"
    got = get_events(wire, sub_id)
    assert len(event_names(got)) == 3 and got.body_element().findtext(f"{{{WS_NS}}}DroppedEvents") == "0"


def test_subscriptions_belong_to_their_user(front, service, wire, devices):
    sub_id = subscribe(wire)
    other = Wire(service, front, peer="10.0.0.8:1")
    got = get_events(other, sub_id, auth=basic("other_user", "pw2"))
    assert got.status == 500 and got.fault()[0] == "soap:Client"
    reason = got.xml().find(f".//detail/{{{WS_NS}}}SubscriptionFault/{{{WS_NS}}}Reason").text
    assert reason == "unknownSubscription"


def test_subscription_expires_unless_renewed(front, service, wire, devices):
    sub_id = subscribe(wire, expires="PT60S")
    front.advance(50)
    got = wire.soap(f'<mx:Renew xmlns:mx="{WS_NS}"><mx:SubscriptionID>{sub_id}</mx:SubscriptionID>'
                    f'<mx:Expires>PT120S</mx:Expires></mx:Renew>')
    assert got.body_element().findtext(f"{{{WS_NS}}}Expires") == "PT120S"
    front.advance(100)
    assert sub_id in service.subscriptions and front.monitors.by_xref
    front.advance(21)
    assert sub_id not in service.subscriptions and front.monitors.by_xref == {}


def test_expires_is_bounded(wire, service, devices):
    got = wire.soap(f'<mx:Subscribe xmlns:mx="{WS_NS}"><mx:Device>2000</mx:Device><mx:Expires>P10D</mx:Expires>'
                    f'</mx:Subscribe>')
    assert got.body_element().findtext(f"{{{WS_NS}}}Expires") == f"PT{soap_subscriptions.MAX_EXPIRES_S}S"
    got = wire.soap(f'<mx:Subscribe xmlns:mx="{WS_NS}"><mx:Device>2000</mx:Device><mx:Expires>2030-01-01T00:00:00Z'
                    f'</mx:Expires></mx:Subscribe>')
    assert got.status == 500 and "Expires" in got.fault()[1]


@pytest.mark.parametrize("body, reason", [
    ("<mx:NotifyTo>https://x/</mx:NotifyTo><mx:Device>2000</mx:Device>", "invalidNotifyTo"),
    ("", "noDevice"),
    ("<mx:Device> </mx:Device>", "invalidDevice"),
    ("<mx:Device>2000</mx:Device><mx:Expires>-PT5S</mx:Expires>", "invalidExpirationTime"),
])
def test_subscribe_refusals(wire, body, reason):
    got = wire.soap(f'<mx:Subscribe xmlns:mx="{WS_NS}">{body}</mx:Subscribe>')
    assert got.status == 500
    assert got.xml().find(f".//detail/{{{WS_NS}}}SubscriptionFault/{{{WS_NS}}}Reason").text == reason


def test_subscribe_is_all_or_nothing(front, service, wire):
    front.bus.answer("dev:2000", "device.get", DEVICE)
    front.bus.answer("dev:9999", "device.get", {"ok": False, "error": "unknown_number"})
    got = wire.soap(f'<mx:Subscribe xmlns:mx="{WS_NS}"><mx:Device>2000</mx:Device><mx:Device>9999</mx:Device>'
                    f'</mx:Subscribe>')
    assert got.status == 500
    assert got.fault() == ("soap:Client", "MonitorStart 9999: CSTA error: operation invalidMonitorObject")
    assert front.monitors.by_xref == {} and service.subscriptions == {}
    assert front.sessions == set()


def test_subscription_header_routes_requests_to_its_session(front, service, wire, devices):
    sub_id = subscribe(wire)
    header = f'<mx:SubscriptionID xmlns:mx="{WS_NS}" soap:mustUnderstand="1">{sub_id}</mx:SubscriptionID>'
    got = wire.soap(f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                    f'</monitorObject></MonitorStart>', header)
    xref = got.body_element().findtext(f"{{{ED4}}}monitorCrossRefID")
    front.publish_device("1000", out_of_service("1000"))
    # Another connection of the same user, with the header, stops that monitor.
    other = Wire(service, front)
    got = other.soap(f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>{xref}</monitorCrossRefID></MonitorStop>',
                     header)
    assert got.status == 200 and xref not in front.monitors.by_xref
    assert event_names(get_events(other, sub_id)) == ["OutOfServiceEvent"]
    got = wire.soap(f'<RequestSystemStatus xmlns="{ED4}"/>',
                    f'<mx:SubscriptionID xmlns:mx="{WS_NS}">nope</mx:SubscriptionID>')
    assert got.status == 500 and "no subscription" in got.fault()[1]


class FakeNotifier:
    def __init__(self):
        self.posts: list[tuple] = []
        self.full = False
        self.dropped = 0

    def submit(self, host, port, path, action, body, on_failure) -> bool:
        if self.full:
            self.dropped += 1
            return False
        self.posts.append((host, port, path, action, body, on_failure))
        return True

    def close(self):
        pass


def test_push_and_what_happens_when_it_fails(front, service, wire, devices):
    service.notifier = notifier = FakeNotifier()
    sub_id = subscribe(wire, notify="http://listener.example:8099/csta-events")
    front.publish_device("2000", out_of_service("2000"))
    host, port, path, action, body, on_failure = notifier.posts[0]
    assert (host, port, path, action) == ("listener.example", 8099, "/csta-events", "OutOfServiceEvent")
    parsed = parse_envelope(body)
    assert [h.text for h in parsed.headers] == [sub_id]
    assert parsed.body.tag == f"{{{ED4}}}OutOfServiceEvent"
    assert event_names(get_events(wire, sub_id)) == []  # pushed, not queued
    # The listener fails: that event is kept for GetEvents, and for a while nothing is pushed.
    on_failure("ConnectionRefusedError")
    front.publish_device("2000", out_of_service("2000"))
    assert len(notifier.posts) == 1
    assert event_names(get_events(wire, sub_id)) == ["OutOfServiceEvent"] * 2
    front.advance(soap_subscriptions.PUSH_BACKOFF_S + 1)
    front.publish_device("2000", out_of_service("2000"))
    assert len(notifier.posts) == 2
    # The notification queue is full: the event is kept too.
    notifier.full = True
    front.publish_device("2000", out_of_service("2000"))
    assert event_names(get_events(wire, sub_id)) == ["OutOfServiceEvent"]


def test_notifier_posts_from_its_thread_and_reports_failures(front):
    """The real Notifier: a POST to a closed port fails and the failure comes back through the waker."""
    waker = Waker(front)
    notifier = soap_notify.Notifier(waker, timeout=1.0)
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))
    port = closed_port.getsockname()[1]
    closed_port.close()
    failures = []
    try:
        assert notifier.submit("127.0.0.1", port, "/", "X", b"<x/>", failures.append)
        sock, on_datagram = front.datagram_sockets[0]
        assert select.select([sock], [], [], 5)[0]
        on_datagram(sock.recv(16), None)
        assert len(failures) == 1 and "Connection" in failures[0]
        assert notifier.failed == 1
    finally:
        notifier.close()
        waker.close()


def test_notifier_queue_is_bounded(front):
    waker = Waker(front)
    notifier = soap_notify.Notifier(waker, maxsize=2)
    notifier.thread = threading.current_thread()  # no worker: the queue only fills
    try:
        results = [notifier.submit("127.0.0.1", 9, "/", "X", b"", lambda e: None) for _ in range(3)]
        assert results == [True, True, False] and notifier.dropped == 1
    finally:
        waker.close()


# -- zeep against the handler -------------------------------------------------------------------------
class HandlerTransport(Transport):
    """zeep's transport posting into an HttpHandler instead of a socket."""

    def __init__(self, wire: Wire, auth: bytes):
        super().__init__()
        self.wire = wire
        self.auth = auth

    def post_xml(self, address, envelope, headers):
        body = etree.tostring(envelope)
        got = self.wire.request("POST", "/csta", body, {**headers}, auth=self.auth)
        response = requests.Response()
        response.status_code = got.status
        response._content = got.body
        response.headers.update({k.decode(): v.decode() for k, v in got.headers.items()})
        return response


def test_zeep_calls_the_service(front, service, wire, devices):
    client = zeep.Client(str(WSDL_FILE), transport=HandlerTransport(wire, basic("csta_user", "secret")))
    assert client.service.RequestSystemStatus() == "normal"
    xref = client.service.MonitorStart(monitorObject={"deviceObject": "2000"})
    assert xref in front.monitors.by_xref
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "connected"})
    made = client.service.MakeCall(callingDevice="1000", calledDirectoryNumber="2000")
    assert (made.callID, made.deviceID) == (C1, "1000")
    front.bus.answer("dev:2000", "phone", {"ok": False, "error": "not_alerting"})
    with pytest.raises(zeep.exceptions.Fault) as err:
        client.service.AnswerCall(callToBeAnswered={"callID": C1, "deviceID": "2000"})
    assert err.value.code == "soap:Client"
    assert err.value.detail[0].tag == f"{{{ED4}}}CSTAErrorCode"
    sub = client.service.Subscribe(Device=["2001"])
    front.publish_device("2001", out_of_service("2001"))
    events = client.service.GetEvents(SubscriptionID=sub.SubscriptionID, MaxEvents=10)
    assert [e._value_1.device.deviceIdentifier for e in events.Event] == ["2001"]
    assert client.service.MonitorStop(monitorCrossRefID=xref) is None
    client.service.Unsubscribe(SubscriptionID=sub.SubscriptionID)
    assert front.monitors.by_xref == {}
    with pytest.raises(zeep.exceptions.TransportError) as err:
        zeep.Client(str(WSDL_FILE), transport=HandlerTransport(wire, basic("csta_user", "bad"))
                    ).service.RequestSystemStatus()
    assert err.value.status_code == 401

