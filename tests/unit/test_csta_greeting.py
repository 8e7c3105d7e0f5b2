"""The greeting, the session limit and the system status services, with a fake clock.

A real `csta_front.server.Connection` on one end of a socketpair (its output is read from its
buffer, never sent), driven by hand: what a silent OpenScape-style client, a send-first MX-ONE-style
client, an HTTP client and a SIP client each receive. Expected documents come from ECMA-269 /
ECMA-323 (SystemStatus, CSTAErrorCode) and ECMA-354 (StartApplicationSessionNegResponse).
"""
from __future__ import annotations

import socket

import pytest
from lxml import etree

from csta_front.codec import ACSE_NS
from csta_front.framing import FrameDecoder, encode_frame
from csta_front.server import Connection
from tests.csta_fakes import FakeClient, FakeFront, canon
from topology.model import CstaSettings

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
STATUS = f'<RequestSystemStatus xmlns="{ED4}"/>'.encode()
GREETING = f'<SystemStatus xmlns="{ED4}"><systemStatus>normal</systemStatus></SystemStatus>'


def assert_xml(actual: bytes, expected: str) -> None:
    assert canon(actual) == canon(expected.encode()), actual


class LoopFront(FakeFront):
    """FakeFront plus what a Connection asks of its loop and server."""

    def __init__(self, settings: CstaSettings) -> None:
        super().__init__(settings)
        self.sessions: set = set()
        self.stream_handlers: dict = {}
        self.to_flush: list = []
        self.connections: dict = {}

    def want_write(self, conn, on: bool) -> None:
        pass

    def forget(self, conn) -> None:
        self.connections.pop(conn.fd, None)


class Handler:
    """Another protocol's handler (HTTP, SIP): records what it is given."""

    def __init__(self, front, conn) -> None:
        self.data = b""
        front.handlers.append(self)

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self) -> None:
        pass


@pytest.fixture
def sockets():
    made: list[socket.socket] = []

    def pair() -> socket.socket:
        a, b = socket.socketpair()
        made.extend((a, b))
        return a
    yield pair
    for sock in made:
        sock.close()


def make_front(**settings) -> LoopFront:
    front = LoopFront(CstaSettings(**settings))
    front.handlers = []
    front.stream_handlers = {"http": Handler, "sip": Handler}
    return front


def connect(front: LoopFront, sockets, tls: bool = False) -> Connection:
    conn = Connection(front, sockets(), "10.0.0.9:40000", tls=tls)
    front.connections[conn.fd] = conn
    return conn


def frames(conn: Connection):
    return FrameDecoder().feed(bytes(conn.out))


# -- the greeting ----------------------------------------------------------------------------------
def test_a_silent_client_is_greeted_after_the_silence(sockets):
    front = make_front(system_status_on_connect=True, greeting_silence_s=0.3)
    conn = connect(front, sockets)
    front.advance(0.29)
    assert conn.out == b"" and conn.session is None
    front.advance(0.01)
    [greeting] = frames(conn)
    assert greeting.invoke_id == 9000
    assert_xml(greeting.xml, GREETING)
    assert conn.session in front.sessions
    # It answers the greeting (no reply to that), then asks: the session carries on.
    conn.received(encode_frame(9000, f'<SystemStatusResponse xmlns="{ED4}"/>'.encode()) + encode_frame(1, STATUS))
    assert [f.invoke_id for f in frames(conn)] == [9000, 1]


def test_a_send_first_client_is_greeted_before_its_answer(sockets):
    front = make_front(system_status_on_connect=True)
    conn = connect(front, sockets)
    conn.received(encode_frame(1, STATUS))
    greeting, answer = frames(conn)
    assert (greeting.invoke_id, answer.invoke_id) == (9000, 1)
    assert_xml(greeting.xml, GREETING)
    front.advance(5)
    assert len(frames(conn)) == 2  # greeted once


@pytest.mark.parametrize("kind,first", [
    ("http", b"GET /csta?wsdl HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("http", b"POST /csta HTTP/1.1\r\n"),
    ("sip", b"OPTIONS sip:10.0.0.1:8882 SIP/2.0\r\n"),
    ("sip", b"INVITE sip:csta@10.0.0.1 SIP/2.0\r\n"),
])
def test_http_and_sip_clients_are_never_greeted(sockets, kind, first):
    front = make_front(system_status_on_connect=True)
    conn = connect(front, sockets)
    conn.received(first[:2])  # undecided bytes when the silence ends: not silent, so no greeting
    front.advance(1)
    conn.received(first[2:])
    front.advance(60)
    assert conn.out == b"" and conn.session is None and not front.sessions
    assert [h.data for h in front.handlers] == [first]


def test_no_greeting_unless_configured(sockets):
    front = make_front()
    silent, sender = connect(front, sockets), connect(front, sockets)
    front.advance(60)
    assert silent.out == b"" and silent.session is None
    sender.received(encode_frame(1, STATUS))
    assert [f.invoke_id for f in frames(sender)] == [1]


def test_tls_the_silence_counts_from_the_handshake(sockets):
    front = make_front(system_status_on_connect=True, greeting_silence_s=0.5)
    conn = connect(front, sockets, tls=True)
    front.advance(5)  # a slow handshake is no silence of the inner protocol
    assert conn.out == b"" and conn.session is None
    conn.handshake_done()
    front.advance(0.5)
    assert_xml(frames(conn)[0].xml, GREETING)


def test_a_closed_connection_is_not_greeted(sockets):
    front = make_front(system_status_on_connect=True)
    conn = connect(front, sockets)
    conn.close()
    front.advance(1)
    assert conn.session is None and not front.sessions


# -- the session limit -----------------------------------------------------------------------------
def test_past_max_sessions_the_first_request_gets_the_standards_refusal(sockets):
    front = make_front(max_sessions=1)
    first = connect(front, sockets)
    first.received(encode_frame(1, STATUS))
    assert len(front.sessions) == 1
    # ECMA-354: StartApplicationSession past the limit -> maxNumberSessions.
    acse = connect(front, sockets)
    acse.received(encode_frame(3, f'<StartApplicationSession xmlns="{ACSE_NS}"><applicationInfo><applicationID>a'
                                  f'</applicationID></applicationInfo></StartApplicationSession>'.encode()))
    [answer] = frames(acse)
    assert answer.invoke_id == 3
    assert_xml(answer.xml, f'<StartApplicationSessionNegResponse xmlns="{ACSE_NS}"><errorCode>'
                           f'<definedError>maxNumberSessions</definedError></errorCode>'
                           f'</StartApplicationSessionNegResponse>')
    assert acse.closing or acse.closed
    # Any CSTA request -> CSTAErrorCode systemResourceAvailibility (the schema's spelling), in its edition.
    csta = connect(front, sockets)
    csta.received(encode_frame(4, f'<MakeCall xmlns="{ED3}"><callingDevice>1000</callingDevice>'
                                  f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>'.encode()))
    [answer] = frames(csta)
    assert_xml(answer.xml, f'<CSTAErrorCode xmlns="{ED3}"><systemResourceAvailibility>resourceLimitExceeded'
                           f'</systemResourceAvailibility></CSTAErrorCode>')
    assert csta.closing or csta.closed
    assert front.bus.requests == []  # nothing of the refused request reached the exchange
    # The refused ones never counted: once the first session ends, a new client is served.
    assert len(front.sessions) == 1
    first.close()
    assert not front.sessions
    again = connect(front, sockets)
    again.received(encode_frame(5, STATUS))
    assert etree.QName(etree.fromstring(frames(again)[0].xml)).localname == "RequestSystemStatusResponse"


def test_a_refused_connection_that_says_nothing_is_not_kept(sockets):
    front = make_front(max_sessions=1, system_status_on_connect=True, frame_timeout_s=2.0)
    connect(front, sockets).received(encode_frame(1, STATUS))
    silent = connect(front, sockets)
    front.advance(0.3)
    assert silent.out == b""  # past the limit: no greeting, the first request will be refused
    assert not silent.stalled(front.timers.now(), 2.0)
    front.advance(2.1)
    assert silent.stalled(front.timers.now(), 2.0)  # the server's reaper closes it


def test_unreadable_first_request_past_the_limit_is_refused_too(sockets):
    front = make_front(max_sessions=1)
    connect(front, sockets).received(encode_frame(1, STATUS))
    conn = connect(front, sockets)
    conn.received(encode_frame(2, b"<broken"))
    assert_xml(frames(conn)[0].xml, f'<CSTAErrorCode xmlns="{ED4}"><systemResourceAvailibility>'
                                    f'resourceLimitExceeded</systemResourceAvailibility></CSTAErrorCode>')


# -- system status registrations -------------------------------------------------------------------
def test_status_changes_carry_each_registrations_id():
    front = FakeFront()
    client = FakeClient(front)
    first = etree.fromstring(client.ask(1, f'<SystemRegister xmlns="{ED4}"/>').xml)[0].text
    second = etree.fromstring(client.ask(2, f'<SystemRegister xmlns="{ED4}"/>').xml)[0].text
    assert first != second
    client.session.status_changed("partiallyDisabled")
    sent = client.frames[2:]
    assert [f.invoke_id >= 9000 for f in sent] == [True, True]
    for frame, register_id in zip(sent, (first, second)):
        # ECMA-323 SystemStatus: sysStatRegisterID first, then systemStatus.
        assert_xml(frame.xml, f'<SystemStatus xmlns="{ED4}"><sysStatRegisterID>{register_id}</sysStatRegisterID>'
                              f'<systemStatus>partiallyDisabled</systemStatus></SystemStatus>')
    # SystemRegisterCancel of the first: only the second is told from now on.
    cancel = client.ask(3, f'<SystemRegisterCancel xmlns="{ED4}"><sysStatRegisterID>{first}</sysStatRegisterID>'
                           f'</SystemRegisterCancel>')
    assert_xml(cancel.xml, f'<SystemRegisterCancelResponse xmlns="{ED4}"/>')
    client.session.status_changed("normal")
    assert_xml(client.frames[-1].xml, f'<SystemStatus xmlns="{ED4}"><sysStatRegisterID>{second}'
                                      f'</sysStatRegisterID><systemStatus>normal</systemStatus></SystemStatus>')
    assert len(client.frames) == 6


@pytest.mark.parametrize("request_xml", [
    f'<SystemRegisterCancel xmlns="{ED4}"><sysStatRegisterID>nope</sysStatRegisterID></SystemRegisterCancel>',
    f'<SystemRegisterCancel xmlns="{ED4}"/>',
    f'<RequestSystemStatus xmlns="{ED4}"><sysStatRegisterID>nope</sysStatRegisterID></RequestSystemStatus>',
])
def test_unknown_registrations_are_refused(request_xml):
    client = FakeClient(FakeFront())
    assert_xml(client.ask(1, request_xml).xml,
               f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCrossRefID</operation></CSTAErrorCode>')


def test_request_system_status_with_the_sessions_registration():
    client = FakeClient(FakeFront())
    register_id = etree.fromstring(client.ask(1, f'<SystemRegister xmlns="{ED4}"/>').xml)[0].text
    assert_xml(client.ask(2, f'<RequestSystemStatus xmlns="{ED4}"><sysStatRegisterID>{register_id}'
                             f'</sysStatRegisterID></RequestSystemStatus>').xml,
               f'<RequestSystemStatusResponse xmlns="{ED4}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')


@pytest.mark.parametrize("body,error", [
    ("<systemStatus>sleepy</systemStatus>", "systemStatusOutOfRange"),
    ("", "invalidParameterValue"),
])
def test_a_clients_system_status_must_be_an_ecma269_value(body, error):
    client = FakeClient(FakeFront())
    assert_xml(client.ask(1, f'<SystemStatus xmlns="{ED4}">{body}</SystemStatus>').xml,
               f'<CSTAErrorCode xmlns="{ED4}"><operation>{error}</operation></CSTAErrorCode>')


@pytest.mark.parametrize("status", ["normal", "disabled", "overloadImminent", "messagesLost"])
def test_a_clients_system_status_is_acknowledged(status):
    client = FakeClient(FakeFront())
    assert_xml(client.ask(7, f'<SystemStatus xmlns="{ED3}"><systemStatus>{status}</systemStatus></SystemStatus>').xml,
               f'<SystemStatusResponse xmlns="{ED3}"/>')
