"""The live view's HTTP side without sockets: the action checks (liveview/api.py), the h11
connection (liveview/http.py), and the topology's live_view section."""
from __future__ import annotations

import json

import h11
import pytest
import yaml

from broker.directory import Directory
from liveview.api import (ApiError, check_host, check_origin, check_route, load_static, parse_phone_action,
                          status_of_refusal)
from liveview.http import MAX_BODY, HttpConnection
from cluster.control import program_names, render_supervisord_conf
from topology.loader import TopologyError, load_default_topology, parse_topology
from topology.ports import move_to_free_ports


@pytest.fixture(scope="module")
def default():
    return load_default_topology()


def action(default, body, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_phone_action(default, Directory(default), content_type, raw)


def refusal(default, body, content_type="application/json") -> ApiError:
    with pytest.raises(ApiError) as info:
        action(default, body, content_type)
    return info.value


# -- actions ---------------------------------------------------------------------------------------
def test_good_actions(default):
    assert action(default, {"device": "1000", "action": "dial", "number": "2000"}).bus_body() == \
        {"action": "dial", "digits": "2000"}
    assert action(default, {"device": "2000", "action": "answer"}).bus_body() == {"action": "answer"}
    assert action(default, {"device": 1000, "action": "hangup", "number": ""}).device == "1000"
    assert action(default, {"device": "0701234567", "action": "answer"}).device == "0701234567"  # external
    assert action(default, {"device": "1000", "action": "digits", "number": "12#A"}).digits == "12#A"
    assert action(default, {"device": "1000", "action": "offhook"}, "Application/JSON; charset=utf-8").action == "offhook"


@pytest.mark.parametrize("body, status, code", [
    (b"{bad", 400, "bad_json"),
    (b"\xff\xfe", 400, "bad_json"),
    (b"", 400, "bad_json"),
    (b"[1, 2]", 400, "bad_request"),
    (b'"answer"', 400, "bad_request"),
    ({"device": "1000", "action": "answer", "extra": 1}, 400, "bad_request"),
    ({"action": "answer"}, 400, "bad_device"),
    ({"device": "10a0", "action": "answer"}, 400, "bad_device"),
    ({"device": "1" * 33, "action": "answer"}, 400, "bad_device"),
    ({"device": True, "action": "answer"}, 400, "bad_device"),
    ({"device": -5, "action": "answer"}, 400, "bad_device"),
    ({"device": "1000", "action": "explode"}, 400, "unknown_action"),
    ({"device": "1000", "action": ["answer"]}, 400, "unknown_action"),
    ({"device": "1000"}, 400, "unknown_action"),
    ({"device": "5000", "action": "answer"}, 400, "not_a_phone"),
    ({"device": "6000", "action": "offhook"}, 400, "not_a_phone"),
    ({"device": "9999", "action": "answer"}, 404, "unknown_number"),
    ({"device": "1000", "action": "dial"}, 400, "bad_number"),
    ({"device": "1000", "action": "dial", "number": "20 00"}, 400, "bad_number"),
    ({"device": "1000", "action": "dial", "number": "<script>"}, 400, "bad_number"),
    ({"device": "1000", "action": "dial", "number": "1" * 33}, 400, "bad_number"),
    ({"device": "1000", "action": "dial", "number": {"x": 1}}, 400, "bad_number"),
    ({"device": "1000", "action": "answer", "number": "2000"}, 400, "bad_number"),
])
def test_bad_actions(default, body, status, code):
    err = refusal(default, body)
    assert (err.status, err.code) == (status, code), err.message
    assert err.body() == {"ok": False, "error": code, "message": err.message} and "\n" not in err.message


def test_an_action_must_be_json(default):
    for content_type in ("", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        assert refusal(default, {"device": "1000", "action": "offhook"}, content_type).status == 415


def test_routes_and_refusals():
    check_route("GET", "/")
    check_route("HEAD", "/api/state")
    check_route("POST", "/api/phone")
    for method, path, status in [("GET", "/nope", 404), ("GET", "/api/phone", 405), ("DELETE", "/", 405),
                                 ("POST", "/api/events", 405), ("GET", "/../etc/passwd", 404)]:
        with pytest.raises(ApiError) as info:
            check_route(method, path)
        assert info.value.status == status
    assert [status_of_refusal(c) for c in ("unknown_number", "lim_down", "timeout", "not_alerting", "busy")] == \
        [404, 503, 504, 409, 409]
    assert b"EventSource" in load_static()["/app.js"][0]


def test_only_this_page_and_this_address():
    for host in ("127.0.0.1:8890", "[::1]:8890", "localhost:8890", "LOCALHOST", "10.1.2.3", "", "pbx.lab:80"):
        check_host(host, "pbx.lab")
    for host in ("evil.example:8890", "127.0.0.1.evil.example", "[::1"):
        with pytest.raises(ApiError) as info:
            check_host(host, "127.0.0.1")
        assert info.value.status == (400 if host == "[::1" else 403)
    check_origin("", "127.0.0.1:8890")
    check_origin("http://127.0.0.1:8890", "127.0.0.1:8890")
    for origin in ("http://evil.example", "null", "http://127.0.0.1:8891"):
        with pytest.raises(ApiError):
            check_origin(origin, "127.0.0.1:8890")


# -- HTTP ------------------------------------------------------------------------------------------
class Client:
    """An HttpConnection with a recording transport, and an h11 client to read what it sends."""

    def __init__(self, answer=None):
        self.sent = bytearray()
        self.closed = False
        self.requests = []
        self.answer = answer or (lambda conn, req: conn.respond_text(200, f"{req.method} {req.path}"))
        self.conn = HttpConnection(self.sent.extend, self._close, self._on_request)
        self.h = h11.Connection(h11.CLIENT)

    def _close(self):
        self.closed = True

    def _on_request(self, conn, request):
        self.requests.append(request)
        self.answer(conn, request)

    def responses(self) -> list[tuple[int, bytes]]:
        self.h.receive_data(bytes(self.sent))
        self.sent.clear()
        out, current = [], None
        while True:
            event = self.h.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
                return out
            if isinstance(event, h11.Response):
                current = [event.status_code, b""]
            elif isinstance(event, h11.Data):
                current[1] += event.data
            elif isinstance(event, h11.EndOfMessage):
                out.append(tuple(current))
                if self.h.our_state is h11.DONE and self.h.their_state is h11.DONE:
                    self.h.start_next_cycle()


def test_pipelined_requests_are_answered_in_order():
    client = Client()
    client.conn.data_received(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [r.path for r in client.requests] == ["/a", "/b"] and client.requests[1].query == "q=1"
    client.h.send(h11.Request(method="GET", target="/a", headers=[("host", "x")]))
    client.h.send(h11.EndOfMessage())
    assert client.responses()[0] == (200, b"GET /a\n")


def test_a_late_answer_releases_the_next_request():
    waiting = []
    client = Client(answer=lambda conn, req: waiting.append((conn, req)))
    client.conn.data_received(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                              b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [req.path for _, req in waiting] == ["/p"] and waiting[0][1].body == b"{}"
    conn, _ = waiting.pop()
    conn.respond_json(409, {"ok": False})
    assert [req.path for _, req in waiting] == ["/q"]  # only now


@pytest.mark.parametrize("data, status", [
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                                   # no Host
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 40000 + b"\r\n\r\n", 431),
    (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", 413),
    (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"4000\r\n" + b"x" * 0x4000
     + b"\r\n4000\r\n" + b"x" * 0x4000 + b"\r\n", 413),                # chunked, over the limit
])
def test_bad_http_gets_a_status_and_the_connection_closes(data, status):
    client = Client()
    for start in range(0, len(data), 4096):  # as a socket delivers it
        client.conn.data_received(data[start:start + 4096])
    assert client.requests == []
    assert client.responses()[0][0] == status and client.closed


def test_a_body_just_under_the_limit_is_read():
    client = Client()
    body = b"x" * MAX_BODY
    client.conn.data_received(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert client.requests[0].body == body


def test_an_event_stream():
    client = Client(answer=lambda conn, req: conn.start_stream())
    client.conn.data_received(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    client.conn.send_event("patch", '{"a":1}')
    client.conn.send_comment("keep-alive")
    client.conn.data_received(b"GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n")  # nothing more is read
    client.h.send(h11.Request(method="GET", target="/api/events", headers=[("host", "x")]))
    client.h.send(h11.EndOfMessage())
    client.h.receive_data(bytes(client.sent))
    response = client.h.next_event()
    assert response.status_code == 200 and (b"content-type", b"text/event-stream") in response.headers
    data = b""
    while isinstance(event := client.h.next_event(), h11.Data):
        data += event.data
    assert data == b'event: patch\ndata: {"a":1}\n\n: keep-alive\n\n'
    assert len(client.requests) == 1


def test_head_gets_no_body():
    client = Client()
    client.conn.data_received(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"content-length: 7" in bytes(client.sent).lower() and not bytes(client.sent).endswith(b"HEAD /\n")


# -- topology --------------------------------------------------------------------------------------
BASE = "lims:\n  - {number: 1, address: 127.0.1.1, csta: {port: 8882}}\n"


def test_live_view_in_the_topology(default, tmp_path):
    assert (default.live_view.address, default.live_view.port) == ("127.0.0.1", 8890)
    assert parse_topology(BASE).live_view.port == 8890  # on unless turned off
    assert parse_topology(BASE + "live_view: {address: '::1', port: 9000}").live_view.address == "::1"
    off = parse_topology(BASE + "live_view: {enabled: false}")
    assert off.live_view is None and "view" not in program_names(off)
    assert "[program:view]" not in render_supervisord_conf(off, tmp_path)
    assert "view" in program_names(default)
    assert "-m liveview --topology" in render_supervisord_conf(default, tmp_path)


@pytest.mark.parametrize("text, line, words", [
    ("live_view: {port: 0}", 4, "port must be an integer from 1 to 65535"),
    ("live_view: {prot: 80}", 4, "unknown key 'prot'; did you mean 'port'"),
    ("live_view: {enabled: yes please}", 4, "enabled must be true or false"),
    ("live_view: {address: 300.1.1.1}", 4, "must be an IPv4 or IPv6 address"),
    ("live_view: [8890]", 4, "live_view must be a mapping"),
    ("live_view:\n  address: 127.0.1.1\n  port: 8882", 6, "live_view port 8882 on 127.0.1.1 is already used by LIM 1 csta port"),
])
def test_bad_live_view_settings(text, line, words):
    with pytest.raises(TopologyError) as info:
        parse_topology(BASE + "\n" + text, "t.yaml")
    assert info.value.line == line and words in info.value.problem, str(info.value)


def test_free_ports_move_the_live_view_too(default):
    from topology.loader import default_topology_path
    data = move_to_free_ports(yaml.safe_load(default_topology_path().read_text()))
    ports = [data["broker"][k] for k in ("router_port", "pub_port", "sub_port")]
    ports += [lim["csta"]["port"] for lim in data["lims"]] + [data["live_view"]["port"]]
    assert len(set(ports)) == len(ports) and 8890 not in ports
    assert move_to_free_ports({"broker": {}, "lims": [], "live_view": {"enabled": False}})["live_view"] == {"enabled": False}
    assert "port" in move_to_free_ports({"broker": {}, "lims": []})["live_view"]
