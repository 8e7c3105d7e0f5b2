"""SIP (csta_front/sip.py) and the TR87 dialog server (csta_front/tr87.py), without sockets or a bus.

Parsing and serialising, every refusal status, the transaction timers on a FakeClock, and TR87
dialogs driven end to end against a real CstaSession on tests/csta_fakes.py's FakeFront.
"""
from __future__ import annotations

import secrets
import socket

import pytest
from lxml import etree

from broker.timers import FakeClock, TimerQueue
from csta_front import tr87
from csta_front.sip import (MAX_MESSAGE, PING, Address, Dialog, Flow, ParseError, Request, Response, SipEndpoint,
                            SipMessage, StreamFramer, Uri, Via, make_response, parse_datagram, transaction_key)
from csta_front.tr87 import CSTA_TYPE, Tr87Server
from tests.csta_fakes import FakeBus, FakeFront
from topology.model import CstaSettings

SERVER = ("127.0.1.1", 5062)
CLIENT = ("10.1.1.5", 5070)
ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
LCS = "http://schemas.microsoft.com/Lcs/2005/04/RCCExtension"
C1 = "002000001000000000000001"


def raw(method: str, *, uri: str = "sip:csta@127.0.1.1:5062", transport: str = "UDP", host: str = "10.1.1.5:5070",
        branch: str | None = "auto", from_tag: str = "ft1", to_tag: str | None = None, call_id: str = "call-1",
        cseq: int = 1, cseq_method: str | None = None, body: bytes = b"", content_type: str | None = CSTA_TYPE,
        extra: list[str] = (), drop: tuple[str, ...] = (), contact: str | None = "<sip:lync@10.1.1.5:5070>") -> bytes:
    via = f"SIP/2.0/{transport} {host}"
    if branch == "auto":
        branch = "z9hG4bK" + secrets.token_hex(5)
    if branch:
        via += f";branch={branch}"
    fields = [("Via", via), ("Max-Forwards", "70"), ("From", f'"Lync" <sip:lync@test>;tag={from_tag}'),
              ("To", "<sip:csta@127.0.1.1>" + (f";tag={to_tag}" if to_tag else "")), ("Call-ID", call_id),
              ("CSeq", f"{cseq} {cseq_method or method}")]
    if contact:
        fields.append(("Contact", contact))
    if body and content_type:
        fields += [("Content-Type", content_type), ("Content-Disposition", "signal;handling=required")]
    lines = [f"{method} {uri} SIP/2.0"] + [f"{n}: {v}" for n, v in fields if n not in drop] + list(extra)
    if "Content-Length" not in drop:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def csta(name: str, inner: str = "") -> bytes:
    return f'<?xml version="1.0"?><{name} xmlns="{ED3}">{inner}</{name}>'.encode()


RSS = csta("RequestSystemStatus", f'<extensions><privateData><private><lcs:line xmlns:lcs="{LCS}">'
                                  "tel:2000;phone-context=dialstring</lcs:line></private></privateData></extensions>")


def monitor_start_body(device: str) -> bytes:
    return csta("MonitorStart", f"<monitorObject><deviceObject>{device}</deviceObject></monitorObject>")


def xml_name(body: bytes) -> str:
    return etree.QName(etree.fromstring(body)).localname


# =================================================================================================
# Parsing and serialising
# =================================================================================================
def test_parse_request_with_compact_forms_folding_and_list_headers():
    data = (b"INFO sip:csta@127.0.1.1:5062 SIP/2.0\r\n"
            b"v: SIP/2.0/UDP 10.1.1.5:5070;branch=z9hG4bKa1;rport, SIP/2.0/TCP proxy.test;branch=z9hG4bKp1\r\n"
            b"Via: SIP/2.0/TLS edge.test:5061;branch=z9hG4bKe1\r\n"
            b"f: \"Lync, user\" <sip:lync@test>;tag=abc;epid=12\r\n"
            b"t: <sip:csta@127.0.1.1>\r\n  ;tag=srv\r\n"
            b"i: c1@test\r\n"
            b"CSeq:   7\t INFO\r\n"
            b"m: <sip:lync@10.1.1.5:5070;transport=udp>\r\n"
            b"c: application/csta+xml\r\n"
            b"X-Custom: one\r\n"
            b"\tcontinued\r\n"
            b"l: 5\r\n\r\nhello")
    msg = parse_datagram(data)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri) == ("INFO", "sip:csta@127.0.1.1:5062")
    assert msg.values("Via") == ["SIP/2.0/UDP 10.1.1.5:5070;branch=z9hG4bKa1;rport",
                                 "SIP/2.0/TCP proxy.test;branch=z9hG4bKp1",
                                 "SIP/2.0/TLS edge.test:5061;branch=z9hG4bKe1"]
    assert msg.top_via.branch == "z9hG4bKa1" and msg.top_via.port == 5070 and "rport" in msg.top_via.params
    assert msg.from_tag == "abc" and msg.to_tag == "srv"
    assert Address.parse(msg.header("From")).display == "Lync, user"
    assert msg.call_id == "c1@test" and msg.cseq == (7, "INFO")
    assert msg.content_type == CSTA_TYPE
    assert msg.header("x-custom") == "one continued"
    assert msg.header("Contact") == "<sip:lync@10.1.1.5:5070;transport=udp>"
    assert msg.body == b"hello"


def test_parse_response_and_bare_lf_line_ends():
    data = (b"SIP/2.0 481 Call/Transaction Does Not Exist\n"
            b"Via: SIP/2.0/UDP 127.0.1.1:5062;branch=z9hG4bKs1\nFrom: <sip:csta@x>;tag=s\n"
            b"To: <sip:lync@test>;tag=c\nCall-ID: c1\nCSeq: 3 INFO\nContent-Length: 0\n\n")
    msg = parse_datagram(data)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (481, "Call/Transaction Does Not Exist")
    assert msg.cseq == (3, "INFO")


def test_serialise_and_parse_again():
    req = Request("INFO", "sip:lync@10.1.1.5:5070")
    for name, value in [("Via", "SIP/2.0/UDP 127.0.1.1:5062;branch=z9hG4bKx"), ("From", "<sip:csta@x>;tag=a"),
                        ("To", "<sip:lync@y>;tag=b"), ("Call-ID", "c9"), ("CSeq", "4 INFO"),
                        ("Content-Length", "999")]:
        req.add_header(name, value)
    req.body = "<x>é</x>".encode()
    data = req.encode()
    assert data.startswith(b"INFO sip:lync@10.1.1.5:5070 SIP/2.0\r\n")
    assert b"Content-Length: 9\r\n\r\n" in data and b"999" not in data  # recomputed, in bytes
    again = parse_datagram(data)
    assert again.headers == [h for h in req.headers if h[0] != "Content-Length"] + [("Content-Length", "9")]
    assert again.body == req.body


def test_make_response_copies_the_dialog_fields_and_adds_a_tag():
    req = parse_datagram(raw("INVITE", body=RSS))
    resp = make_response(req, 200, to_tag="srvtag", headers=[("Contact", "<sip:x>")], body=b"abc")
    assert resp.header_all("Via") == req.header_all("Via")
    for name in ("From", "Call-ID", "CSeq"):
        assert resp.header(name) == req.header(name)
    assert resp.header("To") == "<sip:csta@127.0.1.1>;tag=srvtag"
    assert make_response(req, 100, to_tag="srvtag").header("To") == "<sip:csta@127.0.1.1>"  # 100: no tag
    tagged = parse_datagram(raw("INFO", to_tag="old"))
    assert make_response(tagged, 200, to_tag="new").to_tag == "old"
    encoded = parse_datagram(resp.encode())
    assert encoded.status == 200 and encoded.body == b"abc" and encoded.header("Content-Length") == "3"


def test_addresses_uris_and_vias():
    a = Address.parse('"A B" <sip:ab@h.test;transport=tcp>;tag=t1;epid=9')
    assert (a.display, a.uri, a.tag, a.params["epid"]) == ("A B", "sip:ab@h.test;transport=tcp", "t1", "9")
    assert Address.parse("sip:x@y;tag=z").tag == "z"  # addr-spec: the parameters are the header's
    with pytest.raises(ValueError):
        Address.parse("<sip:unclosed")
    u = Uri("sip:lync@[2001:db8::1]:5070;transport=udp")
    assert (u.user, u.host, u.port, u.params) == ("lync", "2001:db8::1", 5070, {"transport": "udp"})
    assert Uri("sip:10.0.0.1").port is None
    v = Via.parse("SIP/2.0/udp [2001:db8::1]:5070;branch=z9hG4bKq;rport")
    assert (v.transport, v.host, v.port, v.branch) == ("UDP", "[2001:db8::1]", 5070, "z9hG4bKq")
    assert str(v) == "SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKq;rport"


# -- every refusal -----------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_a_missing_mandatory_header_is_400(header):
    with pytest.raises(ParseError) as err:
        parse_datagram(raw("OPTIONS", drop=(header,)))
    assert err.value.status == 400 and header in err.value.detail and err.value.is_request


@pytest.mark.parametrize("data, detail", [
    (raw("OPTIONS", cseq_method="INFO"), "CSeq method"),
    (raw("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"), "bad CSeq"),
    (raw("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1"), "bad CSeq"),
    (raw("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: 42949672960 OPTIONS"), "bad CSeq"),
    (raw("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: 2147483648 OPTIONS"), "out of range"),
    (raw("OPTIONS", extra=["Call-ID: second"]), "2 Call-ID"),
    (raw("OPTIONS", extra=["CSeq: 2 OPTIONS"]), "2 CSeq"),
    (raw("OPTIONS").replace(b"From: \"Lync\" <sip:lync@test>", b"From: <sip:lync@test"), "bad From"),
    (raw("OPTIONS").replace(b"To: <sip:csta@127.0.1.1>", b"To: nobody"), "bad To"),
    (raw("OPTIONS").replace(b"Via: SIP/2.0/UDP", b"Via: SIP/1.0/UDP"), "bad Via"),
    (raw("OPTIONS", extra=["this is not a header"]), "not a header field"),
    (raw("OPTIONS").replace(b"Max-Forwards: 70", b"Max-Forwards: many"), "Max-Forwards"),
    (raw("OPTIONS").replace(b"Content-Length: 0", b"Content-Length: -1"), "Content-Length"),
    (raw("OPTIONS", extra=["Content-Length: 3"]), "Content-Length"),
    (raw("OPTIONS", body=b"abc").replace(b"Content-Length: 3", b"Content-Length: 30"), "Content-Length 30 but 3"),
    (raw("OPTIONS").replace(b"\r\n\r\n", b"\r\n"), "no blank line"),
    (raw("OPTIONS").replace(b"OPTIONS sip:", b"OPTIONS  sip:"), "bad request line"),
    (raw("OPTIONS").replace(b"From: \"Lync\"", "From: \"L\xfcnc\"".encode("latin-1")), "not UTF-8"),
    (raw("OPTIONS").replace(b"Call-ID: call-1", b"Call-ID: "), "empty Call-ID"),
    (raw("OPTIONS").replace(b"Call-ID: call-1", b"Call-ID: c\rX-Injected: 1"), "bare CR"),
    (b"OPTIONS sip:x SIP/2.0\r\n Via: x\r\n\r\n", "continuation line"),
])
def test_malformed_requests_are_400(data, detail):
    with pytest.raises(ParseError) as err:
        parse_datagram(data)
    assert err.value.status == 400 and detail in err.value.detail, err.value.detail


def test_other_refusal_statuses():
    with pytest.raises(ParseError) as err:
        parse_datagram(raw("OPTIONS", uri="http://example.test/"))
    assert err.value.status == 416
    with pytest.raises(ParseError) as err:
        parse_datagram(raw("OPTIONS").replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert err.value.status == 505
    with pytest.raises(ParseError) as err:
        parse_datagram(raw("OPTIONS", body=b"x" * MAX_MESSAGE))
    assert err.value.status == 513


def test_a_bad_response_is_not_answered():
    with pytest.raises(ParseError) as err:
        parse_datagram(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n")
    assert not err.value.is_request
    with pytest.raises(ParseError) as err:
        parse_datagram(b"SIP/2.0 2x0 OK\r\n\r\n")
    assert not err.value.is_request


def test_bytes_after_content_length_in_a_datagram_are_discarded():
    msg = parse_datagram(raw("OPTIONS", body=b"abc").replace(b"Content-Length: 3", b"Content-Length: 2"))
    assert msg.body == b"ab"
    no_length = parse_datagram(raw("OPTIONS", body=b"abc", drop=("Content-Length",)))
    assert no_length.body == b"abc"  # UDP without Content-Length: the rest of the datagram


# -- stream framing ------------------------------------------------------------------------------------
def test_stream_framing_byte_by_byte_and_several_per_chunk():
    one, two = raw("INFO", body=b"<a/>"), raw("OPTIONS")
    framer = StreamFramer()
    got = []
    for i in range(len(one)):
        got += framer.feed(one[i:i + 1])
        if i < len(one) - 1:
            assert not got and framer.partial
    assert len(got) == 1 and got[0].body == b"<a/>" and not framer.partial
    got = framer.feed(b"\r\n" + one + two + b"\r\n\r\n" + one[:10])
    assert [type(m).__name__ if m is not PING else PING for m in got] == ["Request", "Request", PING]
    assert framer.partial


def test_stream_bad_message_costs_that_message_only():
    framer = StreamFramer()
    got = framer.feed(raw("OPTIONS", drop=("Call-ID",)) + raw("OPTIONS"))
    assert isinstance(got[0], ParseError) and got[0].status == 400 and not got[0].fatal
    assert isinstance(got[1], Request)


@pytest.mark.parametrize("data, status", [
    (raw("OPTIONS").replace(b"Content-Length: 0", b"Content-Length: ten"), 400),
    (raw("OPTIONS", extra=["l: 4"]), 400),
    (raw("INFO").replace(b"Content-Length: 0", b"Content-Length: 70000"), 513),
    (b"INFO sip:x SIP/2.0\r\nX-Big: " + b"y" * MAX_MESSAGE, 513),
])
def test_stream_fatal_errors(data, status):
    framer = StreamFramer()
    got = framer.feed(data)
    assert len(got) == 1 and got[0].status == status and got[0].fatal
    assert framer.feed(raw("OPTIONS")) == [] and not framer.buffer  # nothing more is read or kept


def test_stream_buffer_stays_bounded():
    framer = StreamFramer()
    framer.feed(raw("INFO", body=b"x" * 60000)[:40000])
    assert len(framer.buffer) == 40000
    framer = StreamFramer()
    for _ in range(100):
        if framer.feed(b"X-Header: " + b"z" * 1000 + b"\r\n"):
            break
    assert framer.broken and not framer.buffer


def test_stream_without_content_length_takes_an_empty_body():
    framer = StreamFramer()
    got = framer.feed(raw("OPTIONS", drop=("Content-Length",)) + raw("OPTIONS"))
    assert [m.body for m in got] == [b"", b""]


# =================================================================================================
# Transactions, on a fake clock
# =================================================================================================
class Recorder:
    """A transaction user that records what reaches it; `auto` answers each request at once."""

    def __init__(self, auto: int | None = None):
        self.auto = auto
        self.requests, self.acks, self.cancels, self.ack_timeouts = [], [], [], []

    def on_request(self, req, txn):
        self.requests.append((req, txn))
        if self.auto:
            txn.respond(self.auto)

    def on_ack(self, req, flow, txn):
        self.acks.append((req, txn))

    def on_cancel(self, txn):
        self.cancels.append(txn)

    def on_ack_timeout(self, txn):
        self.ack_timeouts.append(txn)


class Wire:
    def __init__(self, transport: str = "UDP"):
        self.clock = FakeClock(0.0)
        self.timers = TimerQueue(self.clock)
        self.sent: list[tuple[float, bytes]] = []
        self.flow = Flow(transport, SERVER, CLIENT, lambda data: self.sent.append((self.clock.t, data)))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds, self.timers)

    def messages(self) -> list[SipMessage]:
        out = [parse_datagram(d) for _, d in self.sent]
        self.sent.clear()
        return out

    def times(self) -> list[float]:
        return [t for t, _ in self.sent]


def endpoint(tu, transport="UDP"):
    wire = Wire(transport)
    return SipEndpoint(wire.timers, tu), wire


def test_non_invite_server_transaction_over_udp():
    tu = Recorder(auto=200)
    ep, wire = endpoint(tu)
    info = raw("INFO", branch="z9hG4bKi1")
    ep.datagram_received(info, wire.flow)
    assert len(tu.requests) == 1 and [m.status for m in wire.messages()] == [200]
    ep.datagram_received(info, wire.flow)  # a retransmission: the same response, the TU hears nothing
    assert len(tu.requests) == 1 and [m.status for m in wire.messages()] == [200]
    wire.advance(31.9)
    ep.datagram_received(info, wire.flow)
    assert len(tu.requests) == 1 and len(wire.messages()) == 1
    wire.advance(0.2)  # Timer J (64*T1) is over: the transaction is gone
    assert not ep.server_txns
    ep.datagram_received(info, wire.flow)
    assert len(tu.requests) == 2


def test_non_invite_retransmission_before_the_answer_is_absorbed():
    tu = Recorder()
    ep, wire = endpoint(tu)
    info = raw("INFO", branch="z9hG4bKi2")
    ep.datagram_received(info, wire.flow)
    ep.datagram_received(info, wire.flow)
    assert len(tu.requests) == 1 and not wire.sent
    txn = tu.requests[0][1]
    txn.respond(200)
    assert txn.respond(500) is None  # after a final response nothing more goes out
    assert [m.status for m in wire.messages()] == [200]


def test_server_transactions_over_tcp_end_with_the_response():
    tu = Recorder(auto=200)
    ep, wire = endpoint(tu, "TCP")
    ep.receive(parse_datagram(raw("INFO", transport="TCP")), wire.flow)
    assert not ep.server_txns and len(wire.sent) == 1


def test_rfc2543_requests_without_a_branch_are_matched_by_their_fields():
    tu = Recorder(auto=200)
    ep, wire = endpoint(tu)
    first = raw("INFO", branch=None, cseq=2)
    ep.datagram_received(first, wire.flow)
    ep.datagram_received(first, wire.flow)
    ep.datagram_received(raw("INFO", branch=None, cseq=3), wire.flow)
    assert len(tu.requests) == 2 and len(wire.messages()) == 3
    assert transaction_key(parse_datagram(first))[0] == "2543"
    # pidgin-sipe restarts CSeq after a re-INVITE: the same CSeq with another body is a new request.
    ep.datagram_received(raw("INFO", branch=None, cseq=2, body=b"<other/>"), wire.flow)
    assert len(tu.requests) == 3
    wire.messages()
    # ... and a CANCEL without a branch finds its INVITE.
    tu.auto = None
    ep.datagram_received(raw("INVITE", branch=None, cseq=9, body=RSS), wire.flow)
    ep.datagram_received(raw("CANCEL", branch=None, cseq=9), wire.flow)
    assert [m.status for m in wire.messages()] == [200, 487] and len(tu.cancels) == 1


def test_sipe_refresh_ack_finds_the_re_invite():
    """pidgin-sipe, no branches: INVITE 1, ACK 1, ..., re-INVITE 5, ACK 1 (its CSeq restarts)."""
    tu = Recorder(auto=200)
    ep, wire = endpoint(tu)
    ep.datagram_received(raw("INVITE", branch=None, cseq=1, body=RSS), wire.flow)
    tag = wire.messages()[0].to_tag
    ep.datagram_received(raw("ACK", branch=None, cseq=1, to_tag=tag), wire.flow)
    ep.datagram_received(raw("INVITE", branch=None, cseq=5, to_tag=tag, body=RSS), wire.flow)
    ep.datagram_received(raw("ACK", branch=None, cseq=1, to_tag=tag), wire.flow)
    reinvite = tu.requests[1][1]
    assert reinvite.acked and tu.acks[1][1] is reinvite
    wire.messages()
    wire.advance(40)
    assert not wire.sent and not tu.ack_timeouts  # neither 200 is retransmitted


def test_invite_2xx_is_retransmitted_until_the_ack():
    tu = Recorder()
    ep, wire = endpoint(tu)
    invite = raw("INVITE", branch="z9hG4bKinv", body=RSS)
    ep.datagram_received(invite, wire.flow)
    txn = tu.requests[0][1]
    txn.respond(200)
    wire.advance(8.0)
    assert wire.times() == [0.0, 0.5, 1.5, 3.5, 7.5]  # T1, doubling
    ep.datagram_received(invite, wire.flow)  # the INVITE again: the 2xx again
    assert len(wire.messages()) == 6
    wire.advance(4.0)
    assert wire.times() == [11.5]  # capped at T2
    wire.messages()
    ack = raw("ACK", branch="z9hG4bKack", cseq=1)  # the ACK of a 2xx is a transaction of its own
    tagged = f"To: <sip:csta@127.0.1.1>;tag={txn.to_tag}".encode()
    ep.datagram_received(ack.replace(b"To: <sip:csta@127.0.1.1>", tagged), wire.flow)
    assert len(tu.acks) == 1 and tu.acks[0][1] is txn
    wire.advance(30)
    assert not wire.sent and not tu.ack_timeouts and not ep.server_txns


def test_invite_2xx_never_acknowledged():
    tu = Recorder()
    ep, wire = endpoint(tu)
    ep.datagram_received(raw("INVITE", body=RSS), wire.flow)
    tu.requests[0][1].respond(200)
    wire.advance(31.9)
    assert not tu.ack_timeouts
    wire.advance(0.2)
    assert len(tu.ack_timeouts) == 1 and not ep.server_txns


def test_ack_of_a_2xx_with_another_cseq_still_counts():
    """pidgin-sipe resets its CSeq before the ACK: the ACK is matched by Call-ID and From tag."""
    tu = Recorder()
    ep, wire = endpoint(tu)
    ep.datagram_received(raw("INVITE", cseq=11, body=RSS), wire.flow)
    txn = tu.requests[0][1]
    txn.respond(200)
    ep.datagram_received(raw("ACK", branch=None, cseq=1, to_tag=txn.to_tag), wire.flow)
    assert tu.acks[0][1] is txn and txn.acked
    wire.advance(40)
    assert len(wire.sent) == 1 and not tu.ack_timeouts


def test_invite_error_response_is_retransmitted_until_its_ack_which_is_absorbed():
    tu = Recorder(auto=415)
    ep, wire = endpoint(tu)
    invite = raw("INVITE", branch="z9hG4bKbad", body=b"v=0", content_type="application/sdp")
    ep.datagram_received(invite, wire.flow)
    wire.advance(2.0)
    assert wire.times() == [0.0, 0.5, 1.5]  # Timer G
    resp = wire.messages()[0]
    ack = raw("ACK", branch="z9hG4bKbad", to_tag=resp.to_tag)
    ep.datagram_received(ack, wire.flow)
    assert not tu.acks  # the ACK of a non-2xx stays in the transaction layer
    wire.advance(10)
    assert not wire.sent and not ep.server_txns  # Timer I ended it


def test_invite_error_response_without_ack_gives_up_after_timer_h():
    tu = Recorder(auto=486)
    ep, wire = endpoint(tu)
    ep.datagram_received(raw("INVITE", body=RSS), wire.flow)
    wire.advance(40)
    assert wire.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert not ep.server_txns


def test_cancel():
    tu = Recorder()
    ep, wire = endpoint(tu)
    invite = raw("INVITE", branch="z9hG4bKc1", body=RSS)
    ep.datagram_received(invite, wire.flow)
    txn = tu.requests[0][1]
    cancel = raw("CANCEL", branch="z9hG4bKc1")
    ep.datagram_received(cancel, wire.flow)
    statuses = [(m.status, m.cseq[1]) for m in wire.messages()]
    assert statuses == [(200, "CANCEL"), (487, "INVITE")] and tu.cancels == [txn]
    assert txn.respond(200) is None  # too late
    ep.datagram_received(cancel, wire.flow)  # a retransmitted CANCEL: the same 200
    assert [(m.status, m.cseq[1]) for m in wire.messages()] == [(200, "CANCEL")]
    ep.datagram_received(raw("CANCEL", branch="z9hG4bKnone"), wire.flow)
    assert [m.status for m in wire.messages()] == [481]
    # A CANCEL after the final response: 200 to it, nothing else.
    ep.datagram_received(raw("INVITE", branch="z9hG4bKc2", call_id="c2", body=RSS), wire.flow)
    tu.requests[-1][1].respond(200)
    wire.messages()
    ep.datagram_received(raw("CANCEL", branch="z9hG4bKc2", call_id="c2"), wire.flow)
    assert [m.status for m in wire.messages()] == [200] and len(tu.cancels) == 1


def test_via_received_and_rport():
    tu = Recorder(auto=200)
    ep, wire = endpoint(tu)
    ep.datagram_received(raw("OPTIONS", host="lync.test:5070").replace(b";branch", b";rport;branch"), wire.flow)
    via = Via.parse(wire.messages()[0].values("Via")[0])
    assert via.params["received"] == "10.1.1.5" and via.params["rport"] == "5070"


def test_parse_errors_are_answered_with_what_could_be_read():
    ep, wire = endpoint(Recorder())
    ep.datagram_received(raw("INVITE", cseq_method="INFO", call_id="bad-1"), wire.flow)
    resp = wire.messages()[0]
    assert resp.status == 400 and resp.call_id == "bad-1" and resp.to_tag
    assert "CSeq method" in resp.header("Warning")
    ep.datagram_received(b"\r\n", wire.flow)  # a keep-alive: nothing
    ep.datagram_received(b"SIP/2.0 200 OK\r\n\r\n", wire.flow)  # a bad response: dropped
    assert not wire.sent


def test_client_transaction_timer_e_and_timer_f():
    ep, wire = endpoint(Recorder())
    answers = []
    req = Request("INFO", "sip:lync@10.1.1.5:5070", [("Via", "SIP/2.0/UDP 127.0.1.1:5062;branch=z9hG4bKc"),
                                                     ("From", "<sip:s@x>;tag=s"), ("To", "<sip:c@y>;tag=c"),
                                                     ("Call-ID", "k"), ("CSeq", "1 INFO")])
    ep.send_request(req, wire.flow, answers.append)
    wire.advance(31.9)
    assert wire.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert not answers
    wire.advance(0.2)
    assert answers == [None] and not ep.client_txns


def test_client_transaction_response_stops_retransmissions():
    ep, wire = endpoint(Recorder())
    answers = []
    req = Request("INFO", "sip:lync@10.1.1.5:5070", [("Via", "SIP/2.0/UDP 127.0.1.1:5062;branch=z9hG4bKd"),
                                                     ("From", "<sip:s@x>;tag=s"), ("To", "<sip:c@y>;tag=c"),
                                                     ("Call-ID", "k"), ("CSeq", "1 INFO")])
    ep.send_request(req, wire.flow, answers.append)
    wire.advance(0.6)
    ep.receive(make_response(req, 100), wire.flow)
    wire.advance(5.0)
    assert wire.times() == [0.0, 0.5, 1.5, 5.5]  # after a provisional response: Timer E goes on at T2
    ep.receive(make_response(req, 200), wire.flow)
    ep.receive(make_response(req, 200), wire.flow)  # a retransmitted response: absorbed
    wire.advance(40)
    assert [a.status for a in answers] == [200] and len(wire.sent) == 4 and not ep.client_txns


def test_client_transaction_over_tcp_is_sent_once():
    ep, wire = endpoint(Recorder(), "TCP")
    answers = []
    req = Request("INFO", "sip:lync@10.1.1.5:5070", [("Via", "SIP/2.0/TCP 127.0.1.1:5062;branch=z9hG4bKt"),
                                                     ("From", "<sip:s@x>;tag=s"), ("To", "<sip:c@y>;tag=c"),
                                                     ("Call-ID", "k"), ("CSeq", "1 INFO")])
    ep.send_request(req, wire.flow, answers.append)
    wire.advance(40)
    assert len(wire.sent) == 1 and answers == [None]


def test_dialog_builds_requests_from_the_invite():
    invite = parse_datagram(raw("INVITE", body=RSS, extra=["Record-Route: <sip:p1.test;lr>, <sip:p2.test;lr>"]))
    wire = Wire()
    dialog = Dialog(invite, "srv", wire.flow)
    req = dialog.request("INFO", wire.flow, body=b"<e/>")
    assert req.uri == "sip:lync@10.1.1.5:5070"
    assert req.header("From") == "<sip:csta@127.0.1.1>;tag=srv"
    assert req.header("To") == invite.header("From")
    assert req.values("Route") == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]
    assert req.cseq == (1, "INFO") and dialog.request("INFO", wire.flow).cseq == (2, "INFO")
    assert req.top_via.branch.startswith("z9hG4bK") and req.top_via.host == "127.0.1.1"
    assert dialog.next_hop().host == "p1.test"


# =================================================================================================
# TR87 dialogs against a real CstaSession
# =================================================================================================
class HoldingBus(FakeBus):
    """A FakeBus that, while `hold` is set, keeps its answers until `release()`: the LIMs answering
    later, as over the real bus."""

    def __init__(self):
        super().__init__()
        self.hold = False
        self.held = []

    def request(self, dst, kind, body, on_reply=None, timeout=2.0):
        if self.hold:
            self.held.append((dst, kind, body, on_reply))
            return len(self.requests)
        return super().request(dst, kind, body, on_reply, timeout)

    def release(self):
        held, self.held = self.held, []
        for dst, kind, body, on_reply in held:
            super().request(dst, kind, body, on_reply)


class Front(FakeFront):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.bus = HoldingBus()
        from csta_front.monitors import Monitors
        self.monitors = Monitors(self.bus.subscribe, self.bus.unsubscribe, self.settings.max_monitors)
        self.sessions = set()
        self.address = SERVER[0]
        self.stream_handlers = {}
        self.bus.answer("dev:2000", "device.get", {"ok": True, "device": "2000", "type": "ip", "logged_on": True,
                                                    "lim": 2, "features": {}, "calls": []})
        self.bus.answer("dev:2000", "phone", {"ok": True, "device": "2000", "call_id": C1, "state": "connected"})
        self.bus.answer("dev:1999", "device.get", {"ok": False, "error": "unknown_number", "message": "no"})


class Peer:
    """A SIP client of the TR87 server: over UDP (datagrams through the server's one UDP socket)
    or TCP (a flow of its own)."""

    def __init__(self, server: Tr87Server, net: "Net", transport: str = "UDP", address: tuple = CLIENT):
        self.server, self.net, self.transport, self.address = server, net, transport.upper(), address
        self.call_id = secrets.token_hex(6)
        self.tag = secrets.token_hex(3)
        self.cseq = 0
        self.to_tag = None
        self.closed = False
        if self.transport == "TCP":
            self.flow = Flow("TCP", SERVER, address, lambda data: net.out.append((data, address)), self._close)
            self.stream = server.endpoint.stream(self.flow)

    def _close(self):
        self.closed = True
        self.server.flow_closed(self.flow)

    def send(self, data: bytes) -> None:
        if self.transport == "TCP":
            self.stream.data_received(data)
        else:
            self.net.on_datagram(data, self.address)

    def take(self) -> list[SipMessage]:
        mine = [lenient(d) for d, a in self.net.out if a == self.address]
        self.net.out[:] = [(d, a) for d, a in self.net.out if a != self.address]
        return mine

    def one(self) -> SipMessage:
        got = self.take()
        assert len(got) == 1, got
        return got[0]

    def build(self, method: str, body: bytes = b"", **kw) -> bytes:
        if "cseq" not in kw:
            self.cseq += 1
            kw["cseq"] = self.cseq
        kw.setdefault("to_tag", self.to_tag)
        kw.setdefault("contact", f"<sip:lync@{self.address[0]}:{self.address[1]}>")
        return raw(method, transport=self.transport, host=f"{self.address[0]}:{self.address[1]}",
                   from_tag=self.tag, call_id=self.call_id, body=body, **kw)

    def ask(self, method: str, body: bytes = b"", **kw) -> SipMessage:
        self.send(self.build(method, body, **kw))
        return self.one()

    def invite(self, body: bytes = RSS, **kw) -> SipMessage:
        resp = self.ask("INVITE", body, to_tag=None, **kw)
        if resp.status == 200:
            self.to_tag = resp.to_tag
            self.send(self.build("ACK", cseq=self.cseq))
        return resp

    def answer(self, request: SipMessage, status: int = 200) -> None:
        self.send(make_response(request, status).encode())


def lenient(data: bytes) -> SipMessage:
    """A message the server sent, even a 400 to a request that lacked the fields it must copy."""
    try:
        return parse_datagram(data)
    except ParseError as exc:
        assert not exc.is_request, exc
        return Response(int(data.split(b" ", 2)[1]), None, exc.headers)


class Net:
    def __init__(self, server: Tr87Server):
        self.out: list[tuple[bytes, tuple]] = []
        self.on_datagram = server.attach_udp(lambda data, address: self.out.append((data, address)), SERVER)


@pytest.fixture
def front():
    return Front()


@pytest.fixture
def server(front):
    return Tr87Server(front)


@pytest.fixture
def net(server):
    return Net(server)


@pytest.fixture(params=["UDP", "TCP"])
def peer(request, server, net):
    return Peer(server, net, request.param)


def monitor_start(peer, number="2000", device: str | None = None) -> str:
    device = device or f"tel:{number};phone-context=dialstring"
    resp = peer.ask("INFO", csta("MonitorStart", f"<monitorObject><deviceObject>{device}"
                                                 "</deviceObject></monitorObject>"))
    assert resp.status == 200 and xml_name(resp.body) == "MonitorStartResponse", resp.body
    return etree.fromstring(resp.body)[0].text


def event(kind: str, device: str = "2000") -> dict:
    return {"event": kind, "call_id": C1, "device": device, "cause": "newCall", "calling": "2000", "called": "1000",
            "connections": [["2000", "connected"]], "lim": 2, "time": 1.0}


def test_invite_opens_a_dialog_and_a_session(front, server, peer):
    resp = peer.invite()
    assert resp.status == 200
    assert resp.content_type == CSTA_TYPE and resp.header("Content-Disposition") == "signal;handling=required"
    root = etree.fromstring(resp.body)
    assert root.tag == f"{{{ED3}}}RequestSystemStatusResponse" and root[0].text == "normal"
    assert resp.to_tag and resp.header("Contact") == f"<sip:127.0.1.1:5062;transport={peer.transport.lower()}>"
    assert "INFO" in resp.header("Allow")
    assert len(front.sessions) == 1 and len(server.dialogs) == 1
    assert not peer.take()  # the ACK is absorbed
    dialog = next(iter(server.dialogs.values()))
    assert dialog.acked and dialog.state == "confirmed"


def test_info_requests_are_served_by_the_session(front, server, peer):
    peer.invite()
    features = peer.ask("INFO", csta("GetCSTAFeatures"))
    assert features.status == 200 and xml_name(features.body) == "GetCSTAFeaturesResponse"
    xref = monitor_start(peer)
    assert front.bus.requests[-1] == ("dev:2000", "device.get", {})
    made = peer.ask("INFO", csta("MakeCall", "<callingDevice>tel:2000;phone-context=dialstring</callingDevice>"
                                             "<calledDirectoryNumber>tel:+3222220220</calledDirectoryNumber>"
                                             "<autoOriginate>doNotPrompt</autoOriginate>"))
    assert front.bus.requests[-1] == ("dev:2000", "phone", {"action": "dial", "digits": "003222220220"})
    assert xml_name(made.body) == "MakeCallResponse" and C1.encode() in made.body
    error = peer.ask("INFO", monitor_start_body("tel:1999"))
    assert error.status == 200 and xml_name(error.body) == "CSTAErrorCode" and b"invalidMonitorObject" in error.body
    stop = peer.ask("INFO", csta("MonitorStop", f"<monitorCrossRefID>{xref}</monitorCrossRefID>"))
    assert xml_name(stop.body) == "MonitorStopResponse"
    assert peer.ask("INFO").status == 200  # without a body: a keep-alive


def test_a_lync_line_with_ext_is_named_as_the_client_wrote_it(front, server, peer):
    """The issue's Lync line URI (`tel:+E.164;ext=N`): lcs:line and MonitorStart name extension
    2000; MakeCallResponse names it exactly as the line URI (pidgin-sipe's sip-csta.c compares them
    as strings), and the events name the line that way and the other party as a tel: URI with
    phone-context (RFC 3966's local number, what Office Communicator parses in callingDevice)."""
    line = "tel:+4687572000;ext=2000"
    rss = csta("RequestSystemStatus", f'<extensions><privateData><private><lcs:line xmlns:lcs="{LCS}">{line}'
                                      "</lcs:line></private></privateData></extensions>")
    assert peer.invite(rss).status == 200
    xref = monitor_start(peer, number=None, device=line)
    assert front.bus.requests[-1] == ("dev:2000", "device.get", {})
    made = peer.ask("INFO", csta("MakeCall", f"<callingDevice>{line}</callingDevice>"
                                             "<calledDirectoryNumber>tel:1000;phone-context=dialstring"
                                             "</calledDirectoryNumber><autoOriginate>doNotPrompt</autoOriginate>"))
    assert front.bus.requests[-1] == ("dev:2000", "phone", {"action": "dial", "digits": "1000"})
    root = etree.fromstring(made.body)
    assert root.findtext(f"{{{ED3}}}callingDevice/{{{ED3}}}deviceID") == line
    front.publish_device("2000", {**event("Delivered"), "alerting": "1000",
                                  "connections": [["2000", "connected"], ["1000", "alerting"]]})
    info = peer.one()
    body = etree.fromstring(info.body)
    get = lambda *path: body.findtext("/".join(f"{{{ED3}}}{p}" for p in path))
    assert get("monitorCrossRefID") == xref
    assert get("connection", "deviceID") == line
    assert get("callingDevice", "deviceIdentifier") == line
    assert get("calledDevice", "deviceIdentifier") == "tel:1000;phone-context=dialstring"
    assert get("alertingDevice", "deviceIdentifier") == "tel:1000;phone-context=dialstring"
    assert get("localConnectionInfo") == "connected"
    peer.answer(info)
    # The deviceID of an event comes back in ClearConnection (sip-csta.c) and is read.
    front.bus.answer("dev:2000", "phone", {"ok": True})
    cleared = peer.ask("INFO", csta("ClearConnection", f"<connectionToBeCleared><callID>{C1}</callID>"
                                                       f"<deviceID>{line}</deviceID></connectionToBeCleared>"))
    assert xml_name(cleared.body) == "ClearConnectionResponse"
    assert front.bus.requests[-1] == ("dev:2000", "phone", {"action": "hangup", "call_id": C1})


def test_an_unreadable_line_gets_a_csta_error_and_the_dialog_carries_on(front, server, peer):
    peer.invite()
    error = peer.ask("INFO", monitor_start_body("tel:+4687572000;ext=20x0"))
    assert xml_name(error.body) == "CSTAErrorCode" and b"invalidMonitorObject" in error.body
    monitor_start(peer)  # the next request is served


def test_responses_wait_for_the_lims_and_find_their_transaction(front, server, peer):
    peer.invite()
    front.bus.hold = True
    first = peer.build("INFO", monitor_start_body("tel:2000"))
    second = peer.build("INFO", csta("MakeCall", "<callingDevice>tel:2000</callingDevice>"
                                                 "<calledDirectoryNumber>1000</calledDirectoryNumber>"))
    peer.send(first)
    peer.send(second)
    peer.send(first)  # retransmitted while in progress: absorbed
    assert not peer.take() and len(front.bus.held) == 2
    front.publish_device("2000", event("ServiceInitiated"))  # nobody monitors yet
    front.bus.hold = False
    front.bus.release()
    answers = {m.cseq[0]: m for m in peer.take()}
    assert xml_name(answers[peer.cseq - 1].body) == "MonitorStartResponse"
    assert xml_name(answers[peer.cseq].body) == "MakeCallResponse"


def test_events_go_out_as_info_in_the_dialog_one_at_a_time(front, server, peer):
    invite_ok = peer.invite()
    xref = monitor_start(peer)
    for kind in ("ServiceInitiated", "Originated", "Delivered"):
        front.publish_device("2000", event(kind))
    first = peer.one()
    assert isinstance(first, Request) and first.method == "INFO"
    assert first.uri == f"sip:lync@{CLIENT[0]}:{CLIENT[1]}"
    assert first.from_tag == invite_ok.to_tag and first.to_tag == peer.tag and first.call_id == peer.call_id
    assert first.content_type == CSTA_TYPE and first.header("Content-Disposition") == "signal;handling=required"
    assert first.top_via.transport == peer.transport and first.top_via.branch.startswith("z9hG4bK")
    body = etree.fromstring(first.body)
    assert body.tag == f"{{{ED3}}}ServiceInitiatedEvent" and body[0].text == xref
    peer.answer(first)
    second = peer.one()
    assert second.cseq == (first.cseq[0] + 1, "INFO") and xml_name(second.body) == "OriginatedEvent"
    peer.answer(second, 500)  # an error answer costs that event only
    third = peer.one()
    assert xml_name(third.body) == "DeliveredEvent"
    peer.answer(third)
    assert not peer.take()


def test_events_wait_while_a_request_is_served(front, server, peer):
    peer.invite()
    monitor_start(peer)
    front.bus.hold = True
    peer.send(peer.build("INFO", csta("MakeCall", "<callingDevice>tel:2000</callingDevice>"
                                                  "<calledDirectoryNumber>1000</calledDirectoryNumber>")))
    front.publish_device("2000", event("ServiceInitiated"))
    front.publish_device("2000", event("Originated"))
    assert not peer.take()
    front.bus.release()
    got = peer.take()
    assert [m.status if isinstance(m, Response) else xml_name(m.body) for m in got] == [200, "ServiceInitiatedEvent"]
    # A request that comes after an event does not hold it up.
    peer.send(peer.build("INFO", monitor_start_body("2000")))
    peer.answer(got[1])
    assert xml_name(peer.one().body) == "OriginatedEvent"
    front.bus.release()
    assert xml_name(peer.one().body) == "MonitorStartResponse"


def test_the_sessions_own_requests_go_out_as_info(front, server, peer):
    peer.invite()
    session = next(iter(front.sessions))
    session.system_status("partiallyDisabled")  # to a SystemRegister'ed session, when a LIM fails
    info = peer.one()
    assert info.method == "INFO" and xml_name(info.body) == "SystemStatus" and b"partiallyDisabled" in info.body
    peer.answer(info)
    assert not peer.take()


def test_event_info_is_retransmitted_over_udp_and_ends_the_dialog_unanswered(front, server, net):
    peer = Peer(server, net, "UDP")
    peer.invite()
    monitor_start(peer)
    front.publish_device("2000", event("ServiceInitiated"))
    front.advance(2.0)
    sent = peer.take()
    assert len(sent) == 3 and len({m.encode() for m in sent}) == 1  # at 0, 0.5 and 1.5 s
    front.advance(30.1)
    assert len(peer.take()) == 8  # at 3.5, 7.5, ... 31.5 s; Timer F at 32 s
    assert not front.sessions and not server.dialogs and front.monitors.devices() == []
    assert front.bus.unsubscribed  # the monitor's subscription is gone


@pytest.mark.parametrize("status", [481, 408])
def test_event_answered_481_or_408_ends_the_dialog(front, server, peer, status):
    peer.invite()
    monitor_start(peer)
    front.publish_device("2000", event("ServiceInitiated"))
    peer.answer(peer.one(), status)
    bye = peer.one()
    assert bye.method == "BYE" and bye.to_tag == peer.tag
    assert not front.sessions and front.monitors.devices() == []


def test_bye_ends_the_session_and_its_monitors(front, server, peer):
    peer.invite()
    monitor_start(peer)
    assert front.monitors.devices() == ["2000"]
    assert peer.ask("BYE").status == 200
    assert not front.sessions and not server.dialogs and front.monitors.devices() == []
    front.publish_device("2000", event("ServiceInitiated"))
    assert not peer.take()
    assert peer.ask("INFO", csta("GetCSTAFeatures")).status == 481
    assert peer.ask("BYE").status == 481


def test_pending_requests_get_487_when_the_dialog_ends(front, server, peer):
    peer.invite()
    front.bus.hold = True
    peer.send(peer.build("INFO", monitor_start_body("2000")))
    peer.send(peer.build("BYE"))
    assert sorted((m.status, m.cseq[1]) for m in peer.take()) == [(200, "BYE"), (487, "INFO")]
    front.bus.release()  # the LIM answers late: nobody is left to hear it
    assert not peer.take() and not front.sessions


def test_reinvite_refreshes_the_dialog(front, server, peer):
    peer.invite()
    again = peer.ask("INVITE", RSS, extra=["Session-Expires: 1800", "Supported: timer"])
    assert again.status == 200 and xml_name(again.body) == "RequestSystemStatusResponse"
    assert again.to_tag == peer.to_tag and again.header("Session-Expires") == "1800;refresher=uac"
    assert again.header("Require") == "timer"
    peer.send(peer.build("ACK", cseq=peer.cseq))
    empty = peer.ask("INVITE", contact="<sip:lync@10.1.1.5:5099>")
    assert empty.status == 200 and empty.body == b"" and empty.content_type is None
    peer.send(peer.build("ACK", cseq=peer.cseq))
    other = peer.ask("INVITE", csta("GetCSTAFeatures"))
    assert other.status == 200 and other.body == b""
    peer.send(peer.build("ACK", cseq=peer.cseq))
    assert len(front.sessions) == 1


def test_session_timer_ends_a_dialog_that_is_not_refreshed(front, server, peer):
    resp = peer.invite(extra=["Session-Expires: 120;refresher=uac"])
    assert resp.header("Session-Expires") == "120;refresher=uac" and resp.header("Require") is None
    front.advance(80)
    peer.ask("INVITE", RSS, extra=["Session-Expires: 120"])  # refreshed
    peer.send(peer.build("ACK", cseq=peer.cseq))
    front.advance(87)
    assert front.sessions
    front.advance(1.1)  # 32 s before the interval ends (RFC 4028 10)
    assert peer.take()[0].method == "BYE" and not front.sessions


def test_a_client_supporting_timers_is_given_an_interval(front, server, peer):
    """pidgin-sipe sends `Supported: timer` only, and refreshes 60 s before the 200's Session-Expires."""
    resp = peer.invite(extra=["Supported: timer"])
    assert resp.header("Session-Expires") == f"{tr87.SESSION_EXPIRES};refresher=uac"
    assert resp.header("Require") == "timer"
    assert peer.invite(extra=["Supported: timer", "Min-SE: 3600"]).header("Session-Expires") == "3600;refresher=uac"
    assert peer.invite().header("Session-Expires") is None  # no support, no timer


def test_options_in_and_out_of_dialogs(front, server, peer):
    for resp in (peer.ask("OPTIONS", to_tag=None), ):
        assert resp.status == 200 and resp.header("Accept") == CSTA_TYPE
        assert set(resp.header("Allow").split(", ")) == {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"}
    peer.invite()
    assert peer.ask("OPTIONS").status == 200
    assert peer.ask("OPTIONS", to_tag="unknown").status == 481


def test_cancel_of_a_pending_invite(front, server, net):
    peer = Peer(server, net, "UDP")
    front.bus.hold = True
    invite = peer.build("INVITE", monitor_start_body("2000"),
                        branch="z9hG4bKcancelme")
    peer.send(invite)
    trying = peer.one()
    assert trying.status == 100 and len(front.sessions) == 1
    peer.send(peer.build("CANCEL", branch="z9hG4bKcancelme", cseq=peer.cseq, body=b""))
    assert sorted((m.status, m.cseq[1]) for m in peer.take()) == [(200, "CANCEL"), (487, "INVITE")]
    assert not front.sessions and not server.dialogs
    front.bus.release()
    assert not peer.take() and not front.sessions


def test_a_late_monitor_start_answer_starts_no_monitor(front, server, net):
    peer = Peer(server, net, "TCP")
    peer.invite()
    front.bus.hold = True
    peer.send(peer.build("INFO", monitor_start_body("2000")))
    peer.send(peer.build("BYE"))
    assert sorted(m.status for m in peer.take()) == [200, 487] and not front.sessions
    front.bus.release()
    assert front.monitors.devices() == []


def test_an_invite_the_session_never_answers(front, server, net):
    peer = Peer(server, net, "UDP")
    front.bus.hold = True
    peer.send(peer.build("INVITE", monitor_start_body("2000")))
    assert peer.one().status == 100
    front.advance(tr87.REQUEST_TIMEOUT + 0.1)
    assert peer.one().status == 500 and not front.sessions


@pytest.mark.parametrize("kind, expected", [
    ({"body": b"v=0", "content_type": "application/sdp"}, (415, "Accept", CSTA_TYPE)),
    ({"body": RSS, "content_type": None}, (415, "Accept", CSTA_TYPE)),
    ({"body": RSS, "extra": ["Content-Encoding: gzip"]}, (415, "Accept-Encoding", "identity")),
    ({"body": RSS, "extra": ["Require: 100rel, timer"]}, (420, "Unsupported", "100rel")),
    ({"body": RSS, "extra": ["Session-Expires: 60"]}, (422, "Min-SE", "90")),
])
def test_invite_refusals(front, server, peer, kind, expected):
    resp = peer.invite(**kind)
    status, header, value = expected
    assert resp.status == status and resp.header(header) == value
    assert not front.sessions and not server.dialogs


def test_refusals_in_and_out_of_dialogs(front, server, peer):
    assert peer.ask("INFO", csta("GetCSTAFeatures"), to_tag=None).status == 481
    assert peer.ask("INFO", csta("GetCSTAFeatures"), to_tag="nope").status == 481
    assert peer.ask("BYE", to_tag=None).status == 481
    assert peer.ask("INVITE", RSS, to_tag="nope").status == 481
    for method, status in [("SUBSCRIBE", 405), ("REGISTER", 405), ("MESSAGE", 405), ("FROBNICATE", 501)]:
        resp = peer.ask(method, to_tag=None)
        assert resp.status == status and "INFO" in resp.header("Allow")
    peer.invite()
    wrong = peer.ask("INFO", b"<x/>", content_type="text/plain")
    assert wrong.status == 415 and wrong.header("Accept") == CSTA_TYPE
    bad_xml = peer.ask("INFO", b"<not xml")
    assert bad_xml.status == 200 and xml_name(bad_xml.body) == "CSTAErrorCode"
    assert peer.ask("INFO", csta("GetCSTAFeatures")).status == 200  # and the dialog carries on
    assert len(front.sessions) == 1


def test_malformed_messages_are_answered_and_the_server_carries_on(front, server, peer):
    peer.send(peer.build("OPTIONS", drop=("Call-ID",)))
    assert peer.one().status == 400
    peer.send(peer.build("OPTIONS", uri="mailto:x@y"))
    assert peer.one().status == 416
    assert peer.invite().status == 200


def test_a_tcp_connection_closing_ends_its_dialogs(front, server, net):
    peer = Peer(server, net, "TCP")
    peer.invite()
    monitor_start(peer)
    peer.flow.close()
    assert not front.sessions and not server.dialogs and front.monitors.devices() == []


def test_a_fatal_stream_error_closes_the_connection(front, server, net):
    peer = Peer(server, net, "TCP")
    peer.invite()
    peer.send(b"INFO sip:x SIP/2.0\r\nContent-Length: many\r\n\r\n")
    assert peer.one().status == 400 and peer.closed and not front.sessions


def test_udp_dialog_without_ack_ends(front, server, net):
    peer = Peer(server, net, "UDP")
    peer.send(peer.build("INVITE", RSS))
    front.advance(40)
    sent = peer.take()
    kinds = [getattr(m, "status", None) or m.method for m in sent]
    assert kinds[:11] == [200] * 11 and set(kinds[11:]) == {"BYE"}  # the session is ended with BYE
    assert not front.sessions


def test_tcp_dialog_without_ack_is_kept(front, server, net):
    peer = Peer(server, net, "TCP")
    peer.send(peer.build("INVITE", RSS))
    front.advance(40)
    assert len(peer.take()) == 1 and len(front.sessions) == 1


def test_the_session_limit(server, net):
    front = server.front
    front.settings = CstaSettings(max_sessions=2)
    peers = [Peer(server, net, "UDP", ("10.1.1.5", 6000 + i)) for i in range(3)]
    assert [p.invite().status for p in peers] == [200, 200, 503]
    peers[0].ask("BYE")
    assert peers[2].invite().status == 200


def test_the_session_closing_on_its_own_sends_bye(front, server, peer):
    peer.invite()
    session = next(iter(front.sessions))
    session.close()  # e.g. its application session timer ran out
    bye = peer.one()
    assert bye.method == "BYE" and bye.from_tag == peer.to_tag and not server.dialogs
    peer.answer(bye)


def test_requests_to_udp_clients_go_to_their_contact(front, server, net):
    peer = Peer(server, net, "UDP", ("10.1.1.5", 5070))
    peer.invite(contact="<sip:lync@10.9.9.9:5999;transport=udp>")
    monitor_start(peer)
    front.publish_device("2000", event("ServiceInitiated"))
    assert [(parse_datagram(d).method, a) for d, a in net.out] == [("INFO", ("10.9.9.9", 5999))]


def test_install_binds_udp_only_for_tr87_servers():
    class InstallFront(Front):
        def __init__(self, server_type):
            super().__init__(settings=CstaSettings(server_type=server_type, port=0))
            self.address = "127.0.0.1"
            self.lim = 1
            self.datagram = []

        def add_datagram_socket(self, sock, on_datagram):
            self.datagram.append((sock, on_datagram))

    xml = InstallFront("XML")
    tr87.install(xml)
    assert "sip" in xml.stream_handlers and not xml.datagram
    front = InstallFront("TR87_uaCSTA")
    tr87.install(front)
    (sock, on_datagram), = front.datagram
    try:
        assert sock.type == socket.SOCK_DGRAM
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        on_datagram(raw("OPTIONS"), client.getsockname())
        client.settimeout(2)
        answer = parse_datagram(client.recv(65536))
        assert answer.status == 200 and answer.header("Accept") == CSTA_TYPE
        client.close()
    finally:
        sock.close()


# =================================================================================================
# Fuzzing: whatever arrives, the server answers or ignores it, and keeps serving
# =================================================================================================
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

GOOD = [raw("INVITE", body=RSS), raw("INFO", body=csta("GetCSTAFeatures"), to_tag="x"), raw("OPTIONS"),
        raw("BYE", to_tag="y"), raw("ACK", to_tag="z"), raw("CANCEL"),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.1.1:5062;branch=z9hG4bKq\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 1 INFO\r\nContent-Length: 0\r\n\r\n"]


@st.composite
def mangled(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(GOOD)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.sampled_from([b"\r\n", b":", b";tag=", b",", b" ", b"\x00", b"<", b"\xff", b"\r\n "])
                             | st.binary(max_size=8))
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i:i + draw(st.integers(1, 30))]
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "dup":
            data += data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(deadline=None, max_examples=400, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mangled(), min_size=1, max_size=4), st.sampled_from(["UDP", "TCP"]))
def test_fuzzed_messages_never_break_the_server(messages, transport):
    front = Front()
    server = Tr87Server(front)
    net = Net(server)
    peer = Peer(server, net, transport)
    for data in messages:
        peer.send(data)  # an exception here is a failure: every fault must be a SIP answer
    for data, _ in net.out:
        assert data.startswith(b"SIP/2.0 ") or data == b"\r\n" or data.split(b" ", 1)[0] in (b"INFO", b"BYE")
        assert not data.startswith(b"SIP/2.0 500 "), data  # the endpoint's answer to a fault of ours
    front.advance(40)
    fresh = Peer(server, net, transport, ("10.1.1.6", 5070))
    assert fresh.invite().status == 200
