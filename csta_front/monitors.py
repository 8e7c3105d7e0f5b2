"""Monitors of one CSTA server: who watches which device or call, and the bus topics that feeds.

Cross-reference IDs are unique for the life of the server process. A topic is subscribed on the
bus while at least one monitor needs it, so the front end receives exactly what its clients watch.
Every lookup is indexed (by cross-reference, topic and session): one server holds 10,000 monitors
and more, and a session ending does not walk the others' monitors.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from broker.envelope import call_topic, device_topic


class MonitorLimit(Exception):
    pass


@dataclass(eq=False)
class Monitor:
    xref: str
    session: Any
    kind: str                 # "device" or "call"
    target: str               # device number or call ID
    topic: str
    filtered: frozenset[str] = field(default_factory=frozenset)  # bus event names not to report


class Monitors:
    def __init__(self, subscribe: Callable[[str], None], unsubscribe: Callable[[str], None], limit: int):
        self.subscribe = subscribe
        self.unsubscribe = unsubscribe
        self.limit = limit
        self._xrefs = itertools.count(1)
        self.by_xref: dict[str, Monitor] = {}
        self.by_topic: dict[str, list[Monitor]] = {}
        self._by_session: dict[int, dict[str, Monitor]] = {}  # id(session) -> xref -> monitor

    def start(self, session: Any, kind: str, target: str, filtered: frozenset[str] = frozenset()) -> Monitor:
        if len(self.by_xref) >= self.limit:
            raise MonitorLimit(f"this server's {self.limit} monitors are all in use")
        topic = device_topic(target) if kind == "device" else call_topic(target)
        monitor = Monitor(str(next(self._xrefs)), session, kind, target, topic, filtered)
        self.by_xref[monitor.xref] = monitor
        self._by_session.setdefault(id(session), {})[monitor.xref] = monitor
        watchers = self.by_topic.setdefault(topic, [])
        if not watchers:
            self.subscribe(topic)
        watchers.append(monitor)
        return monitor

    def stop(self, xref: str) -> Monitor | None:
        monitor = self.by_xref.pop(xref, None)
        if monitor is None:
            return None
        own = self._by_session.get(id(monitor.session))
        if own is not None:
            own.pop(xref, None)
            if not own:
                del self._by_session[id(monitor.session)]
        watchers = self.by_topic.get(monitor.topic, [])
        if monitor in watchers:
            watchers.remove(monitor)
        if not watchers:
            self.by_topic.pop(monitor.topic, None)
            self.unsubscribe(monitor.topic)
        return monitor

    def stop_session(self, session: Any) -> None:
        for xref in list(self._by_session.get(id(session), {})):
            self.stop(xref)

    def of_session(self, session: Any) -> list[Monitor]:
        return list(self._by_session.get(id(session), {}).values())

    def watching(self, topic: str) -> list[Monitor]:
        return self.by_topic.get(topic, [])

    def devices(self) -> list[str]:
        return sorted({m.target for m in self.by_xref.values() if m.kind == "device"})
