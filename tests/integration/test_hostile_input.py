"""Hostile input against a live CSTA server (real processes, loopback only): fuzzed frames, XML
bombs, impossible and lying frame lengths, a thousand idle connections, floods, and sessions that
try to reach into each other.

One exchange for the module: a broker, LIMs 1 and 2, and the CSTA server of LIM 1 with room for
1,500 sessions and a 1-second frame timeout. Every test ends with that server still running, and
no process may have logged a traceback.
"""
from __future__ import annotations

import asyncio
import resource
import select
import socket
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from csta_front.client import ED3, ED4, CstaClient, CstaError, event_name, field
from csta_front.codec import ACSE_NS, CSTA_NS_PREFIX, CodecError, maker, parse_request, to_bytes
from csta_front.framing import HEADER_SIZE, Frame, FrameDecoder, FramingError, encode_frame
from csta_front.safexml import local_name, parse_xml
from csta_front.server import MAX_OUTPUT
from csta_front.session import CLIENT_ANSWERS
from csta_front.sniff import sniff
from lim.phone import Exchange
from cluster.children import Children
from tests.procs import wait_for, write_topology
from topology.loader import load_topology

FRAME_TIMEOUT_S = 1.0
MAX_SESSIONS = 1500
E4 = maker(ED4)
STATUS_XML = to_bytes(E4.RequestSystemStatus())
ED4_ATTR = f'xmlns="{ED4}"'.encode()


# -- the exchange ------------------------------------------------------------------------------------
def hostile_settings(data: dict) -> None:
    lim1 = next(lim for lim in data["lims"] if lim["number"] == 1)
    lim1["csta"]["max_sessions"] = MAX_SESSIONS
    lim1["csta"]["frame_timeout_s"] = FRAME_TIMEOUT_S


@dataclass
class Live:
    ex: Exchange
    procs: Children
    topology: object
    log_dir: Path

    @property
    def addr(self) -> tuple[str, int]:
        lim = self.topology.lim(1)
        return lim.address, lim.csta.port

    def log(self, name: str = "csta-1") -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def log_about(self, peer: str) -> list[str]:
        """The server's log lines about one client address ("127.0.0.1:40000")."""
        return [line for line in self.log().splitlines() if peer in line]

    def server_alive(self) -> bool:
        return self.procs.procs["csta-1"].poll() is None

    def status(self) -> dict:
        return self.ex.client.request("csta-1", "csta.status", timeout=2.0)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    topo_file = write_topology(tmp / "topology.yaml", edit=hostile_settings)
    topology = load_topology(topo_file)
    assert topology.lim(1).csta.max_sessions == MAX_SESSIONS
    assert topology.lim(1).csta.frame_timeout_s == FRAME_TIMEOUT_S
    procs = Children(topo_file, tmp / "data", tmp)
    procs.start_broker()
    procs.start_lim(1)
    procs.start_lim(2)
    procs.start_csta(1)
    ex = Exchange(topology)

    def ready():
        members = ex.client.request("broker", "status", timeout=1.0)["members"]
        return {(m["role"], m["lim"]) for m in members if m["state"] == "up"} >= {
            ("lim", 1), ("lim", 2), ("front", 1)}
    try:
        wait_for(ready, 20, "two LIMs and the CSTA server of LIM 1")
        yield Live(ex, procs, topology, tmp)
    finally:
        ex.close()
        procs.stop_all()
        for name in procs.procs:
            text = (tmp / f"{name}.log").read_text(errors="replace")
            assert "Traceback" not in text, f"{name} logged a traceback:\n{text[-4000:]}"


@pytest.fixture(autouse=True)
def server_survives(live):
    yield
    assert live.server_alive(), f"the CSTA server died:\n{live.log()[-4000:]}"


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(live: Live, ns: str = ED4) -> CstaClient:
    return await CstaClient.connect(*live.addr, ns=ns)


async def timed_status(client: CstaClient) -> float:
    start = time.perf_counter()
    assert await client.request_system_status() == "normal"
    return time.perf_counter() - start


async def full_service(client: CstaClient, calling: str, called: str) -> None:
    """The session does everything a CTI client does: status, a monitor, a call, its events."""
    assert await client.request_system_status() == "normal"
    xref = await client.monitor_start(calling)
    call_id = await client.make_call(calling, called)
    event = await client.next_event(timeout=5)
    assert field(event, "monitorCrossRefID") == xref
    assert event_name(event) == "ServiceInitiatedEvent"
    await client.clear_call(call_id, calling)
    await client.monitor_stop(xref)


# -- raw sockets ----------------------------------------------------------------------------------------
def readable(sock: socket.socket, timeout: float) -> bool:
    """poll(), not select(): this process holds more than FD_SETSIZE descriptors in one test."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(max(0, int(timeout * 1000))))


class Raw:
    """A plain TCP connection to the server, with a frame decoder for what comes back."""

    def __init__(self, addr: tuple[str, int], rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer = "%s:%d" % self.sock.getsockname()[:2]  # as the server's log names it
        self.decoder = FrameDecoder()
        self.received = bytearray()
        self.eof = False

    def send(self, data: bytes) -> bool:
        """False when the server has already closed (a hostile stream may be cut off midway)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def read(self, want: int | None, timeout: float) -> list[Frame]:
        """Frames until `want` have come (None: until the server closes) or `timeout` passes."""
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout
        while not self.eof and (want is None or len(frames) < want):
            left = deadline - time.monotonic()
            if left <= 0 or not readable(self.sock, left):
                break
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.eof = True
                break
            self.received += data
            frames += self.decoder.feed(data)
        return frames

    def still_open(self) -> bool:
        """Drain what has arrived without waiting; True unless the server has closed."""
        self.sock.setblocking(False)  # a socket with a timeout would wait out the timeout
        try:
            while not self.eof:
                try:
                    data = self.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    return True
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                if not data:
                    self.eof = True
                else:
                    self.received += data
                    self.decoder.feed(data)
            return False
        finally:
            self.sock.settimeout(5)

    def close(self) -> None:
        self.sock.close()


def response_of(frame: Frame) -> tuple[str, str | None, str | None]:
    """(root name, error category, error value) of an answer from the server."""
    root = parse_xml(frame.xml)
    name = local_name(root)
    if name != "CSTAErrorCode":
        return name, None, None
    category = next(iter(root), None)
    assert category is not None, frame.xml
    return name, local_name(category), (category.text or "").strip()


# -- test 1: property-based fuzzing ----------------------------------------------------------------------
@dataclass
class Expected:
    """What the server must do with a byte stream on a fresh connection, by the protocol's rules."""
    closes: bool                                            # broken framing or a foreign protocol
    ids: Counter = dc_field(default_factory=Counter)        # invoke IDs of the frames to be answered
    unreadable_ids: set = dc_field(default_factory=set)     # IDs whose every frame is unreadable XML
    other_protocol: bool = False                            # HTTP or SIP: another handler's business


def expected_outcome(data: bytes) -> Expected:
    kind = sniff(data)
    if kind is None:
        return Expected(False)  # the first bytes cannot tell the protocol yet: the server waits
    if kind in ("http", "sip"):
        return Expected(False, other_protocol=True)  # served by the SOAP or TR87 handler on this port
    if kind != "csta":
        return Expected(True)
    try:
        frames, closes = FrameDecoder().feed(data), False
    except FramingError as exc:
        frames, closes = list(exc.frames), True
    result = Expected(closes)
    readable_ids = set()
    for frame in frames:
        try:
            request = parse_request(frame.xml)
        except CodecError:
            result.ids[frame.invoke_id] += 1
            result.unreadable_ids.add(frame.invoke_id)
            continue
        readable_ids.add(frame.invoke_id)
        if request.namespace == ACSE_NS or request.name not in CLIENT_ANSWERS:
            result.ids[frame.invoke_id] += 1
    result.unreadable_ids -= readable_ids
    return result


def probe(live: Live, data: bytes) -> None:
    """Send `data` on a fresh connection; the answers and the close must be what the rules say."""
    expected = expected_outcome(data)
    event("server must close" if expected.closes else "connection stays open")
    event(f"frames to answer: {min(sum(expected.ids.values()), 3)}{'+' if sum(expected.ids.values()) > 3 else ''}")
    conn = Raw(live.addr)
    try:
        sent = conn.send(data)
        if expected.other_protocol:
            # Another protocol's handler answers in its own way (a status line, or nothing yet);
            # what matters here is that the server stays up, which the test checks afterwards.
            return
        if expected.closes:
            frames = conn.read(None, 5)
            assert conn.eof, f"connection not closed after broken framing: {data[:80]!r}"
            got = Counter(f.invoke_id for f in frames)
            # Frames before the error in the same read may go unanswered, as the connection closes.
            assert not got - expected.ids, (got, expected.ids)
        else:
            assert sent, "the server closed a connection whose bytes so far are valid"
            frames = conn.read(sum(expected.ids.values()), 5)
            frames += conn.read(None, 0.01)  # nothing more, and no close
            assert not conn.eof, f"server closed a connection with valid framing: {data[:80]!r}"
            assert Counter(f.invoke_id for f in frames) == expected.ids
        for frame in frames:
            name, category, value = response_of(frame)
            assert name == "CSTAErrorCode" or name.endswith("Response"), frame.xml
            if frame.invoke_id in expected.unreadable_ids:
                assert (category, value) == ("operation", "invalidParameterValue"), frame.xml
    finally:
        conn.close()


SAFE_REQUESTS = [  # no call control: the fuzzer must not ring real phones
    STATUS_XML,
    to_bytes(E4.GetCSTAFeatures()),
    to_bytes(E4.SystemRegister()),
    to_bytes(E4.MonitorStart(E4.monitorObject(E4.deviceObject("1003")))),
    to_bytes(E4.MonitorStop(E4.monitorCrossRefID("77"))),
    to_bytes(E4.SnapshotDevice(E4.snapshotObject("1003"))),
    to_bytes(E4.GetDoNotDisturb(E4.device("2003"))),
    to_bytes(E4.SystemStatusResponse()),
    to_bytes(maker(ED3).RequestSystemStatus()),
    to_bytes(maker(ACSE_NS).StartApplicationSession(
        maker(ACSE_NS).applicationInfo(maker(ACSE_NS).applicationID("fuzz")),
        maker(ACSE_NS).requestedProtocolVersions(maker(ACSE_NS).protocolVersion(ED4)))),
    b'<ns3:RequestSystemStatus xmlns:ns3="' + CSTA_NS_PREFIX.encode() + b'ed5"/>',
]
NAMES = st.sampled_from([
    "RequestSystemStatus", "GetCSTAFeatures", "SystemRegister", "MonitorStart", "MonitorStop",
    "SnapshotDevice", "GetDoNotDisturb", "GetForwarding", "GetAgentState", "SystemStatusResponse",
    "SystemRegisterAbort", "StartApplicationSession", "StopApplicationSession",
    "ResetApplicationSessionTimer", "monitorObject", "deviceObject", "monitorCrossRefID", "snapshotObject",
    "device", "applicationInfo", "applicationID", "protocolVersion", "sessionID", "ns3:MonitorStart",
    "CSTAErrorCode"]) | st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.:-]{0,12}\Z")
NAMESPACES = st.sampled_from([None, ED4, ED3, CSTA_NS_PREFIX + "ed6", CSTA_NS_PREFIX + "ed9", ACSE_NS,
                              "urn:x", "", "http://a b"])
TEXTS = st.sampled_from(["", "1003", "2003", "tel:1003", "sip:2003@x", "77", "normal", "&amp;", "&lt;",
                         "&#0;", "&#x10FFFF;", "&nope;", "]]>", "\u00e9\u4e2d\U0001f600"]) | st.text(max_size=30)


@st.composite
def xml_elements(draw, depth: int = 0) -> str:
    name = draw(NAMES)
    head = [name]
    ns = draw(NAMESPACES)
    if ns is not None:
        head.append(f'xmlns="{ns}"')
    if draw(st.booleans()):
        head.append('xmlns:ns3="' + CSTA_NS_PREFIX + 'ed5"')
    for i in range(draw(st.integers(0, 2))):
        head.append(f'a{i}="{escape(draw(TEXTS), {chr(34): "&quot;"})}"')
    kids = [draw(xml_elements(depth + 1)) for _ in range(draw(st.integers(0, 3 if depth < 3 else 0)))]
    text = draw(TEXTS)
    body = (escape(text) if draw(st.booleans()) else text) + "".join(kids)
    if not body and draw(st.booleans()):
        return f"<{' '.join(head)}/>"
    closing = name if draw(st.integers(0, 9)) else draw(NAMES)  # now and then, mismatched
    return f"<{' '.join(head)}>{body}</{closing}>"


@st.composite
def xml_documents(draw) -> bytes:
    declaration = draw(st.sampled_from([
        "", "<?xml version='1.0' encoding='UTF-8'?>\n", '<?xml version="1.0"?>', "<?xml version='1.0' encoding='utf8'?>",
        "<?xml version='1.0' encoding='ISO-8859-1'?>", "<?xml version='1.0' encoding='UTF-16'?>",
        "\ufeff", "<!-- c -->", "<?pi x?>", "<!DOCTYPE x>", "<!doctype x [<!ENTITY a 'b'>]>", "<!ENTITY a 'b'>",
        "  \n"]))
    tail = draw(st.sampled_from(["", "", "<extra/>", "garbage", "<!-- c -->", "\x00"]))
    return (declaration + draw(xml_elements()) + tail).encode("utf-8", "surrogatepass")


def not_utf8(doc: bytes, pos: int, bad: bytes) -> bytes:
    pos %= len(doc) + 1
    return doc[:pos] + bad + doc[pos:]


PAYLOADS = st.one_of(
    st.sampled_from(SAFE_REQUESTS),
    xml_documents(),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.builds(not_utf8, st.sampled_from(SAFE_REQUESTS), st.integers(0, 200),
              st.sampled_from([b"\xff", b"\xfe", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"])),
    st.integers(0, 65600).map(lambda n: b"<RequestSystemStatus " + ED4_ATTR + b">" + b"x" * n
                              + b"</RequestSystemStatus>"),
)


def loose_frame(invoke_id: int, xml: bytes) -> bytes:
    """A frame as a careless client builds it: the length field wraps past 65535."""
    return b"\x00\x00" + ((HEADER_SIZE + len(xml)) % 65536).to_bytes(2, "big") + b"%04d" % invoke_id + xml


@st.composite
def mutated_streams(draw) -> bytes:
    frames = draw(st.lists(st.tuples(st.integers(0, 9999), PAYLOADS), min_size=1, max_size=4))
    starts, data = [], bytearray()
    for invoke_id, xml in frames:
        starts.append(len(data))
        data += loose_frame(invoke_id, xml)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "length", "invoke", "truncate", "insert", "delete", "append"]))
        at = draw(st.sampled_from(starts))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "length" and len(data) >= at + 4:
            data[at + 2:at + 4] = draw(st.integers(0, 65535)).to_bytes(2, "big")
        elif op == "invoke" and len(data) >= at + 8:
            data[at + 4:at + 8] = draw(st.binary(min_size=4, max_size=4)
                                       | st.from_regex(r"\A[0-9]{4}\Z").map(str.encode))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=20))
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i:i + draw(st.integers(1, 20))]
        elif op == "append":
            data += draw(st.binary(max_size=40) | st.sampled_from(SAFE_REQUESTS).map(lambda x: encode_frame(1, x)))
    return bytes(data) or b"\x00"


RANDOM_BYTES = st.one_of(
    st.binary(min_size=1, max_size=3000),
    st.binary(max_size=3000).map(lambda b: b"\x00\x00" + b),  # past the protocol sniffing
    st.tuples(st.integers(0, 65535), st.binary(min_size=4, max_size=4), st.binary(max_size=500)).map(
        lambda t: b"\x00\x00" + t[0].to_bytes(2, "big") + t[1] + t[2]),
    st.sampled_from([b"GET / HTTP/1.1\r\n\r\n", b"INVITE sip:1000@x SIP/2.0\r\n", b"\x16\x03\x01\x02\x00",
                     b"OPTIONS * HTTP/1.1\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
)
FUZZ = settings(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example, HealthCheck.filter_too_much])


def test_fuzzed_streams_leave_the_server_serving(live):
    loop = asyncio.new_event_loop()
    before = None
    try:
        before = loop.run_until_complete(connect(live))
        assert loop.run_until_complete(before.request_system_status()) == "normal"
        started = time.monotonic()

        @settings(FUZZ, max_examples=150)
        @given(RANDOM_BYTES)
        def random_bytes(data):
            probe(live, data)

        @settings(FUZZ, max_examples=250)
        @given(mutated_streams())
        def mutated_frames(data):
            probe(live, data)

        random_bytes()
        mutated_frames()
        print(f"\n400 fuzzed connections in {time.monotonic() - started:.1f} s")
        assert live.server_alive(), live.log()[-4000:]

        async def afterwards():
            await full_service(before, "1000", "2000")
            async with await connect(live) as after:
                await full_service(after, "1001", "2001")
        loop.run_until_complete(asyncio.wait_for(afterwards(), 30))
    finally:
        if before is not None:  # closed even when the test fails, so the next tests start clean
            loop.run_until_complete(before.close())
        loop.close()


# -- test 2: XML bombs ---------------------------------------------------------------------------------
def _bombs() -> list[tuple[str, bytes]]:
    root_open = b"<RequestSystemStatus " + ED4_ATTR + b">"
    laughs = [b'<!ENTITY lol0 "lol">'] + [
        b'<!ENTITY lol%d "%s">' % (i, b"".join(b"&lol%d;" % (i - 1) for _ in range(10))) for i in range(1, 10)]
    depth = 9000
    return [
        ("external entity", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                            + root_open + b"&xxe;</RequestSystemStatus>"),
        ("external entity in a MonitorStart",
         b'<!DOCTYPE MonitorStart [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><MonitorStart ' + ED4_ATTR
         + b"><monitorObject><deviceObject>&xxe;</deviceObject></monitorObject></MonitorStart>"),
        ("parameter entity", b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>' + root_open
                             + b"</RequestSystemStatus>"),
        ("external DTD", b'<!DOCTYPE RequestSystemStatus SYSTEM "file:///etc/passwd">' + root_open
                         + b"</RequestSystemStatus>"),
        ("lower-case doctype", b'<!doctype r [<!entity xxe SYSTEM "file:///etc/passwd">]>' + root_open
                               + b"&xxe;</RequestSystemStatus>"),
        ("doctype after a BOM", b'\xef\xbb\xbf<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                                + root_open + b"&xxe;</RequestSystemStatus>"),
        ("billion laughs", b"<?xml version='1.0'?><!DOCTYPE lolz [" + b"".join(laughs) + b"]>" + root_open
                           + b"&lol9;</RequestSystemStatus>"),
        ("undeclared entity", root_open + b"&xxe;</RequestSystemStatus>"),
        ("deep nesting", root_open + b"<a>" * depth + b"</a>" * depth + b"</RequestSystemStatus>"),
        ("deep nesting, bare", b"<a>" * depth + b"</a>" * depth),
        ("latin-1 bytes", root_open + b"caf\xe9</RequestSystemStatus>"),
        ("overlong UTF-8", root_open + b"\xc0\xaf</RequestSystemStatus>"),
        ("UTF-8 surrogate", root_open + b"\xed\xa0\x80</RequestSystemStatus>"),
        ("UTF-16 document", '<?xml version="1.0" encoding="UTF-16"?><RequestSystemStatus xmlns="{}"/>'
                            .format(ED4).encode("utf-16")),
        ("declared ISO-8859-1", b"<?xml version='1.0' encoding='ISO-8859-1'?>" + root_open
                                + b"</RequestSystemStatus>"),
    ]


BOMBS = _bombs()


def _passwd_fragments() -> list[bytes]:
    try:
        lines = Path("/etc/passwd").read_bytes().splitlines()
    except OSError:
        lines = []
    fragments = [b"root:x:0:0", b"root:", b"/bin/bash", b"/usr/sbin/nologin"]
    return fragments + [line for line in lines[:5] if len(line) > 8]


def test_xml_bombs_are_refused_and_the_connection_carries_on(live):
    passwd = _passwd_fragments()
    conn = Raw(live.addr)
    try:
        for n, (what, xml) in enumerate(BOMBS, start=1):
            assert HEADER_SIZE + len(xml) <= 65535, what
            started = time.perf_counter()
            assert conn.send(encode_frame(n, xml)), what
            frames = conn.read(1, 5)
            assert len(frames) == 1, f"{what}: no answer (closed: {conn.eof})"
            elapsed = time.perf_counter() - started
            assert frames[0].invoke_id == n, what
            assert response_of(frames[0]) == ("CSTAErrorCode", "operation", "invalidParameterValue"), \
                (what, frames[0].xml)
            for fragment in passwd:
                assert fragment not in conn.received, f"{what}: /etc/passwd leaked: {conn.received[-500:]!r}"
            assert elapsed < 1.0, f"{what}: answered in {elapsed:.2f} s"
            # The same connection still serves.
            assert conn.send(encode_frame(5000 + n, STATUS_XML))
            frames = conn.read(1, 5)
            assert [f.invoke_id for f in frames] == [5000 + n], what
            assert parse_xml(frames[0].xml).findtext(f"{{{ED4}}}systemStatus") == "normal"
        # XInclude is not processed either: the request is served as if the include were not there.
        xinclude = (b"<RequestSystemStatus " + ED4_ATTR + b' xmlns:xi="http://www.w3.org/2001/XInclude">'
                    b'<xi:include href="file:///etc/passwd" parse="text"/></RequestSystemStatus>')
        assert conn.send(encode_frame(77, xinclude))
        frames = conn.read(1, 5)
        assert [f.invoke_id for f in frames] == [77]
        assert response_of(frames[0])[0] == "RequestSystemStatusResponse", frames[0].xml
        for fragment in passwd:
            assert fragment not in conn.received, f"XInclude: /etc/passwd leaked: {conn.received[-500:]!r}"
        assert not conn.eof
    finally:
        conn.close()


# -- test 3: impossible and lying lengths ----------------------------------------------------------------------
def test_impossible_lengths_close_only_that_connection(live):
    async def scenario():
        async with await connect(live) as good:
            xref = await good.monitor_start("1002")
            for length in (0, 1, 7):
                reader, writer = await asyncio.open_connection(*live.addr)
                writer.write(b"\x00\x00" + length.to_bytes(2, "big") + b"0001" + STATUS_XML)
                try:
                    rest = await asyncio.wait_for(reader.read(), 5)
                except ConnectionResetError:
                    rest = b""
                assert rest == b"", f"length {length}: answered {rest!r} instead of closing"
                writer.close()
                assert await good.request_system_status() == "normal"
            await good.monitor_stop(xref)
    run(scenario())


def test_unfinished_frames_time_out_while_others_are_served(live):
    lying = b"\x00\x00" + (2000).to_bytes(2, "big") + b"0042" + (b"<RequestSystemStatus " + ED4_ATTR + b">" + b" " * 200)[:92]
    assert len(lying) == 100
    stalls = {
        "length says 2000, 100 bytes sent": lying,
        "a header alone": b"\x00\x00\x07\xd00043",
        "one byte": b"\x00",
        "first bytes of a protocol": b"OPTIO",
    }

    async def until_closed(data: bytes) -> float:
        reader, writer = await asyncio.open_connection(*live.addr)
        writer.write(data)
        await writer.drain()
        started = time.monotonic()
        try:
            while await reader.read(4096):
                pass
        except ConnectionResetError:
            pass
        finally:
            writer.close()
        return time.monotonic() - started

    async def scenario():
        async with await connect(live) as good:
            latencies = []
            closing = {what: asyncio.create_task(asyncio.wait_for(until_closed(data), 5)) for what, data in stalls.items()}
            while not all(t.done() for t in closing.values()):
                latencies.append(await timed_status(good))
            closed_after = {what: t.result() for what, t in closing.items()}  # TimeoutError: never closed
            print(f"\nclosed after (frame_timeout_s={FRAME_TIMEOUT_S}): "
                  + ", ".join(f"{what}: {s:.2f} s" for what, s in closed_after.items()))
            print(f"meanwhile {len(latencies)} RequestSystemStatus on another session: median "
                  f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
            for what, seconds in closed_after.items():
                assert FRAME_TIMEOUT_S - 0.1 <= seconds < 5, (what, seconds)
            assert max(latencies) < 1.0
            assert await good.request_system_status() == "normal"
    run(scenario())


def test_a_steady_stream_split_mid_frame_is_not_a_stalled_frame(live):
    """Pipelined requests that always arrive with the next frame begun: each frame is finished in
    far less than frame_timeout_s, so the connection must stay open however long the stream lasts."""
    frame_len = HEADER_SIZE + len(STATUS_XML)
    count = 30
    stream = b"".join(encode_frame(i, STATUS_XML) for i in range(1, count + 1))
    conn = Raw(live.addr)
    try:
        answered = []
        pos = frame_len // 2  # every write ends half-way through a frame
        assert conn.send(stream[:pos])
        started = time.monotonic()
        while pos < len(stream):
            next_pos = min(pos + frame_len, len(stream))
            assert conn.send(stream[pos:next_pos]), f"closed after {time.monotonic() - started:.2f} s"
            pos = next_pos
            # Each write finishes one frame: wait for its answer (this paces the stream, ~10/s).
            answered += conn.read(1, 1.0)
            assert not conn.eof, f"the server closed a busy connection after {time.monotonic() - started:.2f} s " \
                                 f"and {len(answered)} answers: {live.log_about(conn.peer)}"
            if pos < len(stream):
                time.sleep(0.1)
        answered += conn.read(count - len(answered), 2)
        assert [f.invoke_id for f in answered] == list(range(1, count + 1))
        assert time.monotonic() - started > 2 * FRAME_TIMEOUT_S
        assert conn.still_open()
    finally:
        conn.close()


# -- test 4: a thousand idle connections ------------------------------------------------------------------------
def test_a_thousand_idle_connections(live):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    assert hard == resource.RLIM_INFINITY or hard >= 1300, f"hard descriptor limit {hard} is too low"
    silent: list[Raw] = []
    framed: list[Raw] = []
    partial: list[Raw] = []
    try:
        opened = time.monotonic()
        for i in range(1000):
            conn = Raw(live.addr)
            if i % 5 in (1, 3) or i == 999:  # 400 send one valid frame, the last one among them
                conn.send(encode_frame(1 + i % 9000, STATUS_XML))
                framed.append(conn)
            else:
                silent.append(conn)
        for i in range(50):  # besides: 50 that begin and never finish
            conn = Raw(live.addr)
            conn.send(b"\x00" if i % 2 else encode_frame(1, STATUS_XML)[:20])
            partial.append(conn)
        print(f"\n{len(silent)} silent + {len(framed)} framed + {len(partial)} unfinished connections "
              f"opened in {time.monotonic() - opened:.2f} s")
        # Accepted in order: once the last framed connection is answered, all 1,000 are in.
        assert [f.invoke_id for f in framed[-1].read(1, 10)] == [1 + 999 % 9000]
        for conn in framed[:-1]:
            assert len(conn.read(1, 5)) == 1
        assert live.status()["sessions"] >= len(framed)

        async def measure():
            latencies = []
            async with await connect(live) as csta:
                deadline = time.monotonic() + 8
                # At least 100 round trips, and on until the unfinished connections are gone.
                while len(latencies) < 100 or any(c.still_open() for c in partial):
                    assert time.monotonic() < deadline, "unfinished connections not closed in time"
                    latencies.append(await timed_status(csta))
            return latencies
        latencies = run(measure())
        print(f"RequestSystemStatus with 1,000 idle connections: {len(latencies)} round trips, median "
              f"{statistics.median(latencies) * 1000:.2f} ms, max {max(latencies) * 1000:.2f} ms")
        assert max(latencies) < 1.0
        assert all(c.eof for c in partial)
        assert time.monotonic() - opened > FRAME_TIMEOUT_S
        # Idle is not unfinished: connections that sent nothing, or whole frames, stay open.
        still = sum(c.still_open() for c in silent + framed)
        assert still == len(silent) + len(framed), f"only {still} of 1,000 idle connections still open"
    finally:
        for conn in silent + framed + partial:
            conn.close()
    wait_for(lambda: live.status()["sessions"] == 0, 10, "the server to see the 1,000 connections go")

    async def after():
        async with await connect(live) as csta:
            assert await csta.request_system_status() == "normal"
    run(after())


# -- test 5: floods --------------------------------------------------------------------------------------------
def test_a_flooding_session_does_not_hold_up_another(live):
    count = 5000
    stream = b"".join(encode_frame(i, STATUS_XML) for i in range(1, count + 1))

    async def scenario():
        reader, writer = await asyncio.open_connection(*live.addr)
        peer = "%s:%d" % writer.get_extra_info("sockname")[:2]
        measurer = await connect(live)
        answers: list[Frame] = []

        async def read_answers():
            decoder = FrameDecoder()
            while len(answers) < count:
                data = await reader.read(65536)
                if not data:
                    return
                answers.extend(decoder.feed(data))

        started = time.monotonic()
        reading = asyncio.create_task(read_answers())
        writer.write(stream)  # all 5,000 at once
        latencies = []
        try:
            while not reading.done():
                latencies.append(await timed_status(measurer))
            await reading
            took = time.monotonic() - started
        finally:
            writer.close()
            await measurer.close()
        print(f"\nflood of {count} requests ({len(stream)} bytes) answered {len(answers)} times in {took:.2f} s; "
              f"the other session meanwhile: {len(latencies)} requests, median "
              f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
        assert [f.invoke_id for f in answers] == list(range(1, count + 1)), \
            f"{len(answers)} answers in {took:.2f} s; the server says: {live.log_about(peer)}"
        assert {parse_xml(f.xml).findtext(f"{{{ED4}}}systemStatus") for f in answers} == {"normal"}
        assert max(latencies) < 1.0
    run(scenario())


def test_a_flooder_that_never_reads_is_cut_off(live):
    big = to_bytes(E4.GetSwitchingFunctionDevices())  # a small request, a large answer
    conn = Raw(live.addr, rcvbuf=4096)
    sent = 0
    started = time.monotonic()
    try:
        batch = b"".join(encode_frame(1 + i, big) for i in range(50))
        while conn.send(batch):  # never a recv: the answers pile up in the server
            sent += 50
            assert time.monotonic() - started < 30, f"still connected after {sent} requests"
            if f"{conn.peer} reads nothing" in live.log():
                break
        took = time.monotonic() - started
        lines = wait_for(lambda: live.log_about(conn.peer), 5, "the server to log why it closed the flooder")
        cut = [line for line in lines if "reads nothing" in line]
        assert cut, f"the never-reading flooder was closed for another reason after {sent} requests " \
                    f"in {took:.2f} s: {lines}"
        line = cut[-1]
        waiting = int(line.split("(")[-1].split()[0])
        assert waiting > MAX_OUTPUT
        # The server closed it: sending more fails, and reading finds the end (after what was in flight).
        deadline = time.monotonic() + 10
        while conn.send(batch) and not conn.eof:
            assert time.monotonic() < deadline, "the connection is still open"
            conn.read(None, 0.05)
        print(f"\nnever-reading flooder cut off after {sent} requests in {took:.2f} s: {line}")
    finally:
        conn.close()
    assert live.server_alive()

    async def after():
        async with await connect(live) as csta:
            assert await csta.request_system_status() == "normal"
            assert len(await csta.get_csta_features()) > 10
    run(after())


# -- test 6: sessions are isolated -----------------------------------------------------------------------
def test_sessions_see_only_their_own_monitors(live):
    async def events_until_quiet(client: CstaClient, first_timeout: float = 5, quiet: float = 0.4) -> list:
        """Every event that comes, until none has come for `quiet` seconds (polling, bounded)."""
        events = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                events.append(await client.next_event(timeout=quiet if events else first_timeout))
            except asyncio.TimeoutError:
                return events
        raise AssertionError(f"events never stopped: {[event_name(e) for e in events][-10:]}")

    async def nothing_for(client: CstaClient, seconds: float = 0.3) -> None:
        try:
            event = await client.next_event(timeout=seconds)
        except asyncio.TimeoutError:
            return
        pytest.fail(f"an event for another session's monitor: {event_name(event)} "
                    f"xref {field(event, 'monitorCrossRefID')}")

    def devices_in(event) -> set[str]:
        return {(el.text or "").strip() for el in event.iter()
                if isinstance(el.tag, str) and local_name(el) in ("deviceID", "deviceIdentifier")}

    def all_mine(events: list, xref: str, call_id: str, device: str, partner: str) -> list[str]:
        """Every event is for this session's monitor, about its own call and its two devices."""
        names = [event_name(e) for e in events]
        assert events, "no events for the session's own monitor"
        for ev in events:
            assert field(ev, "monitorCrossRefID") == xref, names
            calls = {(el.text or "").strip() for el in ev.iter() if isinstance(el.tag, str)
                     and local_name(el) == "callID"}
            assert calls == {call_id}, (event_name(ev), calls)
            assert devices_in(ev) <= {device, partner}, (event_name(ev), devices_in(ev))
        assert any(device in devices_in(e) for e in events)
        return names

    async def scenario():
        async with await connect(live) as alice, await connect(live) as bob:
            a_xref = await alice.monitor_start("1004")
            b_xref = await bob.monitor_start("2004")
            assert a_xref != b_xref
            # Bob's device calls: only Bob hears of it.
            call = await bob.make_call("2004", "2005")
            await bob.clear_call(call, "2004")
            names = all_mine(await events_until_quiet(bob), b_xref, call, "2004", "2005")
            assert names[0] == "ServiceInitiatedEvent" and "ConnectionClearedEvent" in names, names
            await nothing_for(alice)
            # Alice's device calls: only Alice hears of it.
            call = await alice.make_call("1004", "1005")
            await alice.clear_call(call, "1004")
            names = all_mine(await events_until_quiet(alice), a_xref, call, "1004", "1005")
            assert names[0] == "ServiceInitiatedEvent" and "ConnectionClearedEvent" in names, names
            await nothing_for(bob)
            # Neither can stop the other's monitor, whatever the edition or spelling.
            for stopper, other in ((alice, b_xref), (bob, a_xref)):
                with pytest.raises(CstaError) as err:
                    await stopper.monitor_stop(other)
                assert (err.value.category, err.value.value) == ("operation", "invalidCrossRefID")
                with pytest.raises(CstaError) as err:
                    await stopper.send_raw(b"<ns3:MonitorStop xmlns:ns3=\"" + CSTA_NS_PREFIX.encode()
                                           + b"ed5\"><ns3:monitorCrossRefID> " + other.encode()
                                           + b" </ns3:monitorCrossRefID></ns3:MonitorStop>")
                assert (err.value.category, err.value.value) == ("operation", "invalidCrossRefID")
            # Both monitors survived the attempts, each still reporting to its own session only.
            # (Monitors of connections other tests closed go as soon as the server sees the close.)
            wait_for(lambda: live.status()["monitored_devices"] == ["1004", "2004"], 5,
                     "only these two monitors to remain")
            call = await bob.make_call("2004", "2005")
            await bob.clear_call(call, "2004")
            all_mine(await events_until_quiet(bob), b_xref, call, "2004", "2005")
            call = await alice.make_call("1004", "1005")
            await alice.clear_call(call, "1004")
            all_mine(await events_until_quiet(alice), a_xref, call, "1004", "1005")
            await nothing_for(bob)
            await alice.monitor_stop(a_xref)
            await bob.monitor_stop(b_xref)
    run(scenario())
