"""The live view's process against real ones: a broker, two LIMs, LIM 1's CSTA server, and the
view (`python -m liveview`), spoken to over real sockets, politely and not."""
from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time

import pytest

from csta_front.client import CstaClient
from tests.procs import running_exchange, wait_for, wait_members, write_topology
from topology.loader import load_topology

WAIT_S = 30  # every wait polls; the limit is generous for a shared, sometimes very busy machine


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("liveview"), timeout=WAIT_S) as running:
        topology, procs = running.topology, running.procs
        procs.start("view", "liveview", "--topology", str(running.topology_file))
        address = (topology.live_view.address, topology.live_view.port)
        wait_for(lambda: listening(address) and (lambda s: s["lims"][1]["state"] == "up" and s["lims"][0]["csta"])(
            state(address)), WAIT_S, "the live view to see both LIMs and LIM 1's CSTA server")
        yield address, running.exchange, procs, topology, running.directory


def listening(address) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
        return True
    except OSError:
        return False


def request(address, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def state(address) -> dict:
    status, _, body = request(address, "GET", "/api/state")
    assert status == 200
    return json.loads(body)


def act(address, payload, content_type="application/json") -> tuple[int, dict]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, headers, body = request(address, "POST", "/api/phone", raw, {"Content-Type": content_type})
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def raw_exchange(address, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes as they are and read until the server closes (or the timeout)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return got


class Stream:
    """The page's event stream, read as EventSource reads it."""

    def __init__(self, address):
        self.conn = http.client.HTTPConnection(*address, timeout=10)
        self.conn.request("GET", "/api/events")
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type") == "text/event-stream"
        self.buffer = b""

    def next(self, timeout: float = WAIT_S) -> tuple[str, dict]:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buffer:
            assert time.monotonic() < deadline, "no event in time"
            self.buffer += self.response.read1(65536)
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line and not line.startswith(":"))
        if "data" not in fields:
            return self.next(max(0.1, deadline - time.monotonic()))  # retry: or a comment
        return fields["event"], json.loads(fields["data"])

    def wait(self, predicate, timeout: float = WAIT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            _, data = self.next(max(0.1, deadline - time.monotonic()))
            if predicate(data):
                return data

    def close(self):
        self.conn.close()


def parties(call: dict) -> list[tuple[str, str, int]]:
    return [(p["device"], p["state"], p["lim"]) for p in call["parties"]]


def test_the_page_and_its_files(view):
    address = view[0]
    status, headers, body = request(address, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"/app.js" in body
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, _ = request(address, "GET", path)
        assert status == 200 and headers["content-type"].startswith(kind)
    status, headers, body = request(address, "HEAD", "/")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 500
    snapshot = state(address)
    assert [(l["number"], l["state"]) for l in snapshot["lims"]] == [(1, "up"), (2, "up")]
    assert snapshot["lims"][0]["csta"]["sessions"] == 0 and snapshot["lims"][1]["csta"] is None
    assert len(snapshot["devices"]) == 100 and snapshot["groups"][0]["number"] == "5000"


def test_a_call_placed_elsewhere_shows_and_a_click_answers_it(view):
    address, ex = view[0], view[1]
    stream = Stream(address)
    try:
        event, snapshot = stream.next()
        assert event == "snapshot" and snapshot["calls"] == []
        call_id = ex.phone("1000").dial("2000")["call_id"]
        patch = stream.wait(lambda p: any(c["call_id"] == call_id and ("2000", "alerting", 2) in parties(c)
                                          for c in p.get("calls", [])))
        # (a LIM's entry changing meanwhile, suspect for a beat on a busy machine or its CSTA server's
        # figures, brings all its devices too: the idle ones and those with no terminal logged on)
        assert {d["number"]: d["state"] for d in patch["devices"] if d["state"] not in ("idle", "outOfService")} == \
            {"1000": "connected", "2000": "alerting"}

        status, reply = act(address, {"device": "2000", "action": "answer"})
        assert status == 200 and reply["ok"] and reply["call_id"] == call_id
        stream.wait(lambda p: any(parties(c) == [("1000", "connected", 1), ("2000", "connected", 2)]
                                  for c in p.get("calls", [])))
        assert [c["connections"] for c in ex.calls()] == [[{"device": "1000", "state": "connected", "lim": 1, "hunt": None},
                                                          {"device": "2000", "state": "connected", "lim": 2, "hunt": None}]]
        status, reply = act(address, {"device": "1000", "action": "hangup"})
        assert status == 200
        stream.wait(lambda p: p.get("calls") == [])
        status, reply = act(address, {"device": "1001", "action": "dial", "number": "2001"})
        assert status == 200 and reply["state"] == "connected"
        act(address, {"device": "1001", "action": "hangup"})
    finally:
        stream.close()


def test_refusals_and_hostile_requests(view):
    address = view[0]
    assert act(address, {"device": "2003", "action": "answer"}) == \
        (409, {"ok": False, "error": "not_alerting", "message": "2003 is not ringing"})
    assert act(address, {"device": "1010", "action": "offhook"})[0] == 409        # no terminal logged on
    assert act(address, {"device": "9999", "action": "answer"})[0] == 404
    assert act(address, {"device": "1000", "action": "fly"})[0] == 400
    assert act(address, b"{not json")[1]["error"] == "bad_json"
    assert act(address, {"device": "1000", "action": "offhook"}, "text/plain")[0] == 415
    status, headers, _ = request(address, "DELETE", "/api/phone")
    assert status == 405 and headers["allow"] == "POST"
    assert request(address, "GET", "/etc/passwd")[0] == 404
    status, _, body = request(address, "POST", "/api/phone", json.dumps({"device": "1000", "action": "offhook"}).encode(),
                              {"Content-Type": "application/json", "Origin": "http://evil.example"})
    assert status == 403 and b"evil.example" in body
    status, _, body = request(address, "GET", "/api/state", headers={"Host": "rebound.example"})
    assert status == 403 and json.loads(body)["error"] == "forbidden_host"
    # a huge body is refused on its Content-Length, before it is read
    reply = raw_exchange(address, b"POST /api/phone HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 100000000\r\n\r\n" + b"{" * 65536)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert raw_exchange(address, b"\x00\x01\x02 garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(address, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 100000).startswith(b"HTTP/1.1 431 ")
    # pipelined requests are answered in order on one connection
    reply = raw_exchange(address, b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                  b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 404 " in reply
    # many connections at once, then gone: the view still serves
    socks = [socket.create_connection(address, timeout=5) for _ in range(150)]
    for sock in socks:
        sock.close()
    def answers() -> bool:
        try:
            return state(address)["lims"][0]["state"] == "up"
        except OSError:  # refused while the crowd's connections are still counted
            return False
    wait_for(answers, WAIT_S, "the view to answer after a crowd")
    assert act(address, {"device": "1000", "action": "offhook"})[0] == 200
    assert act(address, {"device": "1000", "action": "onhook"})[0] == 200


def test_health_agents_and_csta_sessions(view):
    address, ex, procs, topology = view[:4]
    ex.phone("2005").agent("login", "41", "5000")

    async def with_a_csta_client():
        async with await CstaClient.connect(topology.lim(1).address, topology.lim(1).csta.port) as csta:
            await csta.monitor_start("2000")
            wait_for(lambda: state(address)["lims"][0]["csta"]["monitored_devices"] == ["2000"], WAIT_S,
                     "the view to show the CSTA session and its monitor")
            assert state(address)["lims"][0]["csta"]["sessions"] == 1
    asyncio.run(asyncio.wait_for(with_a_csta_client(), 30))
    wait_for(lambda: state(address)["lims"][0]["csta"]["sessions"] == 0, WAIT_S, "the session to end")
    [group] = state(address)["groups"]
    assert group["agents"] == [{"device": "2005", "agent_id": "41", "state": "agentReady"}]

    call_id = ex.phone("1000").dial("2000")["call_id"]
    # Ringing at 2000, not just dialled: killed while LIM 2 still had the offer to answer, the call
    # would rightly fail at the caller (Failed, 1000 in `fail` until it hangs up) and stay.
    wait_for(lambda: [(c["call_id"], {p["device"]: p["state"] for p in c["parties"]}.get("2000"))
                      for c in state(address)["calls"]] == [(call_id, "alerting")], WAIT_S, "the call to ring at 2000")
    procs.procs["lim-2"].kill()  # kill -9: the broker declares it dead, LIM 1 releases the call
    wait_for(lambda: (lambda s: s["lims"][1]["state"] == "dead" and s["calls"] == [] and
                      not [d for d in s["devices"] if d["lim"] == 2 and d["lim_up"]])(state(address)),
             WAIT_S, "the view to show LIM 2 dead and the call gone")
    procs.procs["lim-2"].wait()
    procs.start_lim(2)
    wait_for(lambda: state(address)["lims"][1]["state"] == "up", WAIT_S, "LIM 2 back up")
    wait_for(lambda: state(address)["groups"][0]["agents"] == group["agents"], WAIT_S, "the agent reported again")
    ex.phone("2005").agent("logout")
    wait_for(lambda: state(address)["groups"][0]["agents"] == [], WAIT_S, "the agent gone")
    assert {d["number"]: d["state"] for d in state(address)["devices"]}["1000"] == "idle"


def test_up_refuses_a_taken_live_view_port(tmp_path):
    from tests.procs import mxone
    topo = write_topology(tmp_path / "t.yaml")
    port = load_topology(topo).live_view.port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        out = mxone("up", str(topo), "--detach", "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 1 and f"live view port 127.0.0.1:{port} is not free" in out.stderr


def test_the_view_outlives_a_broker_restart(view):
    address, ex, procs = view[:3]
    procs.procs["broker"].kill()
    procs.procs["broker"].wait()
    wait_for(lambda: state(address)["broker"]["reachable"] is False, WAIT_S, "the view to see the broker gone")
    procs.start_broker()
    wait_members(ex.client, {("lim", 1), ("lim", 2), ("front", 1)}, timeout=WAIT_S)
    wait_for(lambda: state(address)["broker"]["reachable"] and
             [l["state"] for l in state(address)["lims"]] == ["up", "up"], WAIT_S, "the view to see the exchange back")
    stream = Stream(address)
    try:
        stream.next()
        call_id = ex.phone("1002").dial("2002")["call_id"]
        # last_event comes only from events (an answer to lim.status has none): they flow again
        stream.wait(lambda p: any(c["call_id"] == call_id and c["last_event"] == "Delivered" for c in p.get("calls", [])))
        ex.phone("1002").hangup()
        stream.wait(lambda p: p.get("calls") == [])
    finally:
        stream.close()
