"""Fakes for driving a real `csta_front.session.CstaSession` without sockets or a bus.

    front = FakeFront()
    front.bus.answer("dev:1000", "phone", {"ok": True, "call_id": "001...", "state": "connected"})
    client = FakeClient(front)
    frame = client.ask(7, b"<MakeCall xmlns=...>...</MakeCall>")   # the one frame sent back on invoke ID 7
    front.bus.requests                                                  # [(dst, kind, body), ...]

`FakeBus.request` answers synchronously, from a table keyed by (dst, kind) or from a callable, the
way the front end's handlers see a LIM's reply. Monitors, timers, settings and the topology are the
real ones; the clock is a `FakeClock` moved by `FakeFront.advance()`.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Callable

from lxml import etree

from broker.directory import Directory
from broker.envelope import call_topic, device_topic
from broker.timers import FakeClock, TimerQueue
from csta_front.framing import Frame, FrameDecoder, encode_frame
from csta_front.guard import AuthGuard
from csta_front.monitors import Monitors
from csta_front.server import FrontEnd
from csta_front.session import CstaSession
from topology.loader import load_default_topology
from topology.model import CstaSettings, Topology

Reply = dict[str, Any] | Callable[[str, str, dict], dict[str, Any]]


@lru_cache(maxsize=1)
def default_topology() -> Topology:
    return load_default_topology()


class FakeBus:
    """The front end's view of the bus: records every request and answers it at once."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        self.script: dict[tuple[str, str], Reply] = {}
        self.default: Reply | None = None
        self.subscribed: list[str] = []
        self.unsubscribed: list[str] = []
        # An unscripted request is a fault of the test. The session turns any exception of a handler
        # into operation/generic, so it is kept here too, and FakeClient raises it again.
        self.unscripted: list[AssertionError] = []

    def answer(self, dst: str, kind: str, reply: Reply) -> None:
        self.script[(dst, kind)] = reply

    def request(self, dst: str, kind: str, body: dict, on_reply: Callable[[dict], None] | None = None,
                timeout: float = 2.0) -> int:
        self.requests.append((dst, kind, copy.deepcopy(body)))
        reply = self.script.get((dst, kind), self.default)
        if reply is None:
            error = AssertionError(f"FakeBus: no scripted reply to {kind!r} for {dst!r} (body {body!r})")
            self.unscripted.append(error)
            raise error
        if callable(reply):
            reply = reply(dst, kind, body)
        if on_reply is not None:
            on_reply(copy.deepcopy(reply))
        return len(self.requests)

    def subscribe(self, topic: str) -> None:
        self.subscribed.append(topic)

    def unsubscribe(self, topic: str) -> None:
        self.unsubscribed.append(topic)


class FakeFront:
    """What `CstaSession` and the service handlers use of `csta_front.server.FrontEnd`.

    The authentication settings come from `store` (a `csta_front.settings.CstaStore`, or None: not
    initiated), read by FrontEnd's own methods."""

    auth_settings = FrontEnd.auth_settings
    authentication_required = FrontEnd.authentication_required
    system_status = FrontEnd.system_status

    def __init__(self, settings: CstaSettings | None = None, topology: Topology | None = None,
                 store: Any = None) -> None:
        self.store = store
        self.guard = AuthGuard()
        self._auth_cache = None
        self.bus = FakeBus()
        self.clock = FakeClock()
        self.timers = TimerQueue(self.clock)
        self.settings = settings or CstaSettings()
        self.topology = topology or default_topology()
        self.directory = Directory(self.topology)
        self.lim_states: dict[int, str] = {}
        self.monitors = Monitors(self.bus.subscribe, self.bus.unsubscribe, self.settings.max_monitors)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds, self.timers)
        self.timers.run_due()

    # -- events, as FrontEnd.on_event hands them to the sessions ------------------------------------
    def publish(self, topic: str, body: dict) -> None:
        for monitor in list(self.monitors.watching(topic)):
            monitor.session.event(monitor, copy.deepcopy(body))

    def publish_device(self, number: str, body: dict) -> None:
        self.publish(device_topic(number), body)

    def publish_call(self, call_id: str, body: dict) -> None:
        self.publish(call_topic(call_id), body)


class FakeClient:
    """One client connection: frames go in through `data_received`, what the session sends is
    decoded with a real `FrameDecoder`."""

    def __init__(self, front: FakeFront, peer: str = "test") -> None:
        self.front = front
        self.decoder = FrameDecoder()
        self.frames: list[Frame] = []
        self.raw: list[bytes] = []
        self.closes = 0
        self.session = CstaSession(front, self._send, self._close, peer)

    def _send(self, data: bytes) -> None:
        self.raw.append(bytes(data))
        self.frames.extend(self.decoder.feed(data))

    def _close(self) -> None:
        self.closes += 1

    def feed(self, data: bytes) -> list[Frame]:
        """Raw bytes in; the frames sent back meanwhile."""
        before = len(self.frames)
        self.session.data_received(data)
        if self.front.bus.unscripted:
            raise self.front.bus.unscripted.pop(0)
        return self.frames[before:]

    def send(self, invoke_id: int, xml: bytes | str) -> list[Frame]:
        if isinstance(xml, str):
            xml = xml.encode("utf-8")
        return self.feed(encode_frame(invoke_id, xml))

    def ask(self, invoke_id: int, xml: bytes | str) -> Frame:
        """A request that must be answered by exactly one frame, on its own invoke ID."""
        frames = self.send(invoke_id, xml)
        assert len(frames) == 1, f"expected one answer, got {len(frames)}: {[f.xml for f in frames]}"
        assert frames[0].invoke_id == invoke_id, f"answered on invoke ID {frames[0].invoke_id}, not {invoke_id}"
        return frames[0]


_PARSER = etree.XMLParser(remove_blank_text=True)


def canon(xml: bytes | str) -> str:
    """Canonical XML (C14N 1.0) of a document, ignoring the declaration and indentation, so an
    expected document can be written indented in a test."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    return etree.tostring(etree.fromstring(xml, _PARSER), method="c14n").decode("utf-8")


__all__ = ["FakeBus", "FakeFront", "FakeClient", "canon", "default_topology"]
