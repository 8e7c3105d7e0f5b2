"""The SOAP web service with real processes: a broker, two LIMs and the CSTA server of LIM 1, a
throwaway Linux account (useradd + chpasswd, removed with userdel) that logs in through PAM, and
zeep, a stock SOAP client, loading the WSDL from the server and calling it over HTTP Basic. Events
are pushed to a small HTTP server the test runs, and pulled with GetEvents."""
from __future__ import annotations

import asyncio
import datetime
import os
import queue
import secrets
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import zeep
from lxml import etree
from zeep.transports import Transport

from csta_front.client import CstaClient
from csta_front.soap_envelope import SOAP_NS, WS_NS, parse_envelope
from tests.procs import require_root_and, running_exchange

ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"

@pytest.fixture(autouse=True)
def root_and_tools():
    require_root_and("useradd", "chpasswd")  # a Linux account for the PAM logins


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("soap")) as running:
        yield running.topology


@pytest.fixture(scope="module")
def account():
    """A Linux account as seed 6.1 makes one, with a password set through chpasswd."""
    name = f"mxsoap{os.getpid() % 100000}"
    password = "Pw-" + secrets.token_hex(8)
    subprocess.run(["userdel", name], capture_output=True)  # a leftover of an interrupted run
    subprocess.run(["useradd", "-M", "-d", "/tmp", "-s", "/bin/true", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        yield name, password
    finally:
        subprocess.run(["userdel", name], check=True)


def url(topology, path: str = "/csta") -> str:
    lim = topology.lim(1)
    return f"http://{lim.address}:{lim.csta.port}{path}"


def zeep_client(topology, user: str, password: str) -> zeep.Client:
    session = requests.Session()
    session.auth = (user, password)
    return zeep.Client(url(topology, "/csta?wsdl"), transport=Transport(session=session, timeout=10,
                                                                        operation_timeout=20))


class Listener:
    """The client's notification endpoint: an HTTP server on 127.0.0.1 collecting POSTed envelopes."""

    def __init__(self):
        self.received: queue.Queue = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.put((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/csta-events"

    def next(self, timeout: float = 10.0):
        path, headers, body = self.received.get(timeout=timeout)
        return path, headers, parse_envelope(body)

    def wait_for(self, name: str, timeout: float = 10.0):
        """The next notification whose event is `name`; earlier ones are returned too."""
        seen = []
        while True:
            path, headers, parsed = self.next(timeout)
            seen.append((path, headers, parsed))
            if etree.QName(parsed.body).localname == name:
                return seen

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


def names(events) -> list[str]:
    return [type(e._value_1).__name__ for e in events.Event]


def test_zeep_monitors_calls_and_receives_events(exchange, account, listener):
    topology = exchange
    user, password = account
    client = zeep_client(topology, user, password)
    lim = topology.lim(1)
    assert client.service._binding_options["address"] == f"http://{lim.address}:{lim.csta.port}/csta"
    service = client.service
    assert service.RequestSystemStatus() == "normal"
    # A device of LIM 2, monitored through LIM 1's server.
    xref = service.MonitorStart(monitorObject={"deviceObject": "2000"})
    assert xref
    pushed = service.Subscribe(NotifyTo=listener.url, Device=["2000"], Expires=datetime.timedelta(minutes=5))
    assert pushed.Expires == datetime.timedelta(minutes=5)
    assert [m.Device for m in pushed.Monitor] == ["2000"]
    pulled = service.Subscribe(Device=["1000"])
    made = service.MakeCall(callingDevice="1000", calledDirectoryNumber="2000", autoOriginate="doNotPrompt")
    call_id = made.callID
    assert len(call_id) == 24 and made.deviceID == "1000"

    # Push: the Delivered event of 2000 arrives at the listener, in a SOAP envelope.
    (path, headers, delivered), = listener.wait_for("DeliveredEvent")
    assert path == "/csta-events"
    assert headers["Content-Type"].startswith("text/xml")
    assert headers["SOAPAction"] == f'"{WS_NS}#DeliveredEvent"'
    assert [h.tag for h in delivered.headers] == [f"{{{WS_NS}}}SubscriptionID"]
    assert delivered.headers[0].text == pushed.SubscriptionID
    event = delivered.body
    assert event.findtext(f"{{{ED4}}}monitorCrossRefID") == pushed.Monitor[0].MonitorCrossRefID
    assert event.findtext(f"{{{ED4}}}connection/{{{ED4}}}callID") == call_id
    assert event.findtext(f"{{{ED4}}}callingDevice/{{{ED4}}}deviceIdentifier") == "1000"
    assert event.findtext(f"{{{ED4}}}localConnectionInfo") == "alerting"

    # Pull: 1000's events wait for GetEvents.
    events = service.GetEvents(SubscriptionID=pulled.SubscriptionID, MaxEvents=10,
                               Wait=datetime.timedelta(seconds=3))
    got = names(events)
    while len(got) < 3:
        more = service.GetEvents(SubscriptionID=pulled.SubscriptionID, Wait=datetime.timedelta(seconds=3))
        assert more.Event, f"only {got}"
        got += names(more)
    assert got == ["ServiceInitiatedEvent", "OriginatedEvent", "DeliveredEvent"]
    assert events.Event[0]._value_1.initiatedConnection.callID == call_id

    # More call control; the events keep coming by both routes.
    assert service.AnswerCall(callToBeAnswered={"callID": call_id, "deviceID": "2000"}) is None
    listener.wait_for("EstablishedEvent")
    snapshot = service.SnapshotDevice(snapshotObject="2000")
    info = snapshot.snapshotData.snapshotDeviceResponseInfo
    assert [(i.connectionIdentifier.callID, i.localCallState.compoundCallState.localConnectionState)
            for i in info] == [(call_id, ["connected"])]
    service.HoldCall(callToBeHeld={"callID": call_id, "deviceID": "1000"})
    service.RetrieveCall(callToBeRetrieved={"callID": call_id, "deviceID": "1000"})
    service.ClearConnection(connectionToBeCleared={"callID": call_id, "deviceID": "2000"})
    listener.wait_for("ConnectionClearedEvent")
    got = []
    while "ConnectionClearedEvent" not in got:
        more = service.GetEvents(SubscriptionID=pulled.SubscriptionID, Wait=datetime.timedelta(seconds=3))
        assert more.Event, f"only {got}"
        got += names(more)
    assert got[:3] == ["EstablishedEvent", "HeldEvent", "RetrievedEvent"]
    # A call that is gone: a SOAP Fault carrying the CSTAErrorCode.
    with pytest.raises(zeep.exceptions.Fault) as err:
        service.ClearCall(callToBeCleared={"callID": call_id, "deviceID": "1000"})
    assert err.value.code == "soap:Client"
    assert err.value.detail[0].tag == f"{{{ED4}}}CSTAErrorCode"

    assert service.Unsubscribe(SubscriptionID=pushed.SubscriptionID) is None
    assert service.Unsubscribe(SubscriptionID=pulled.SubscriptionID) is None
    with pytest.raises(zeep.exceptions.Fault):
        service.GetEvents(SubscriptionID=pulled.SubscriptionID)
    assert service.MonitorStop(monitorCrossRefID=xref) is None
    # Nothing more is pushed after Unsubscribe (once what was on its way has arrived).
    while True:
        try:
            listener.next(timeout=0.5)
        except queue.Empty:
            break
    service.MakeCall(callingDevice="1001", calledDirectoryNumber="2000")
    with pytest.raises(queue.Empty):
        listener.next(timeout=1.0)
    service.ClearConnection(connectionToBeCleared={"deviceID": "1001"})


def test_wrong_password_is_401(exchange, account):
    topology = exchange
    user, _ = account
    client = zeep_client(topology, user, "not-the-password")  # the WSDL needs no login
    with pytest.raises(zeep.exceptions.TransportError) as err:
        client.service.RequestSystemStatus()
    assert err.value.status_code == 401
    answer = requests.post(url(topology), data=b"<x/>", headers={"Content-Type": "text/xml"}, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="MX-ONE CSTA"'


def raw_http(topology, data: bytes) -> bytes:
    lim = topology.lim(1)
    with socket.create_connection((lim.address, lim.csta.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received  # the server closed the connection
            received += chunk


def test_bad_http_and_bad_soap_and_the_server_carries_on(exchange, account):
    topology = exchange
    user, password = account
    # Malformed HTTP: 400, and the connection is closed.
    assert raw_http(topology, b"GET /csta?wsdl HTTP/1.1\r\nthis is no header\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_http(topology, b"POST /csta HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n<a").startswith(
        b"HTTP/1.1 413 ")
    with requests.Session() as http:
        http.auth = (user, password)
        assert http.get(url(topology, "/nothing"), timeout=10).status_code == 404
        assert http.put(url(topology), data=b"x", timeout=10).status_code == 405
        # Not a SOAP envelope: a Client fault with HTTP 500, on a connection that stays usable.
        for body in (b"this is not XML", b'<MakeCall xmlns="urn:x"/>'):
            answer = http.post(url(topology), data=body, headers={"Content-Type": "text/xml"}, timeout=10)
            assert answer.status_code == 500
            fault = etree.fromstring(answer.content).find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
            assert fault.findtext("faultcode") == "soap:Client"
        envelope = (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><RequestSystemStatus xmlns="{ED4}"/></s:Body>'
                    f'</s:Envelope>').encode()
        answer = http.post(url(topology), data=envelope, headers={"Content-Type": "text/xml"}, timeout=10)
        assert answer.status_code == 200 and b"normal" in answer.content

    # A framed-XML client on the same port is served as before.
    lim = topology.lim(1)

    async def framed():
        async with await CstaClient.connect(lim.address, lim.csta.port) as csta:
            return await csta.request_system_status()
    assert asyncio.run(asyncio.wait_for(framed(), 20)) == "normal"
    # And zeep still works.
    assert zeep_client(topology, user, password).service.RequestSystemStatus() == "normal"
