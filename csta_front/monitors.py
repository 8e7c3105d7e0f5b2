"""Monitors of one CSTA server: who watches which device or call, and the bus topics that feeds.

Cross-reference IDs are unique for the life of the server process. A topic is subscribed on the
bus while at least one monitor needs it, so the front end receives exactly what its clients watch.
Every lookup is indexed (by cross-reference, topic and session): one server holds 10,000 monitors
and more, and a session ending does not walk the others' monitors.

A device monitor of ECMA-269's monitor type `call` follows every call the device is seen in on
that call's own topic too, so it keeps reporting the call after the device has left it, until the
call clears. One bus event reaches the front end once per topic it was published on (the device's
and the call's), so such a monitor is given each event once, by the event's bus identity.
"""
from __future__ import annotations

import itertools
from collections import deque
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
    monitor_type: str = "device"  # ECMA-269 monitorType: "call" follows the device's calls
    follows: set[str] = field(default_factory=set)  # call IDs followed (monitor type call)
    _seen: set = field(default_factory=set)        # bus identities of the events recently given
    _seen_order: deque = field(default_factory=lambda: deque(maxlen=SEEN_EVENTS))

    def first_sight(self, key: Any) -> bool:
        """True the first time this monitor is given the bus event `key` (None: always)."""
        if key is None:
            return True
        if key in self._seen:
            return False
        if len(self._seen_order) == self._seen_order.maxlen:
            self._seen.discard(self._seen_order[0])
        self._seen_order.append(key)
        self._seen.add(key)
        return True


SEEN_EVENTS = 64  # one event's copies arrive together: a short memory tells them apart


class Monitors:
    def __init__(self, subscribe: Callable[[str], None], unsubscribe: Callable[[str], None], limit: int):
        self.subscribe = subscribe
        self.unsubscribe = unsubscribe
        self.limit = limit
        self._xrefs = itertools.count(1)
        self.by_xref: dict[str, Monitor] = {}
        self.by_topic: dict[str, list[Monitor]] = {}
        self._by_session: dict[int, dict[str, Monitor]] = {}  # id(session) -> xref -> monitor

    def start(self, session: Any, kind: str, target: str, filtered: frozenset[str] = frozenset(),
              monitor_type: str = "device", calls: tuple[str, ...] = ()) -> Monitor:
        """`calls`: the calls the device is in now, followed at once by a call-type monitor."""
        if len(self.by_xref) >= self.limit:
            raise MonitorLimit(f"this server's {self.limit} monitors are all in use")
        topic = device_topic(target) if kind == "device" else call_topic(target)
        monitor = Monitor(str(next(self._xrefs)), session, kind, target, topic, filtered,
                          monitor_type if kind == "device" else "call")
        self.by_xref[monitor.xref] = monitor
        self._by_session.setdefault(id(session), {})[monitor.xref] = monitor
        self._watch(topic, monitor)
        if kind == "device" and monitor_type == "call":
            for call_id in calls:
                self.follow(monitor, call_id)
        return monitor

    def _watch(self, topic: str, monitor: Monitor) -> None:
        watchers = self.by_topic.setdefault(topic, [])
        if not watchers:
            self.subscribe(topic)
        watchers.append(monitor)

    def _unwatch(self, topic: str, monitor: Monitor) -> None:
        watchers = self.by_topic.get(topic, [])
        if monitor in watchers:
            watchers.remove(monitor)
        if not watchers and self.by_topic.pop(topic, None) is not None:
            self.unsubscribe(topic)

    def follow(self, monitor: Monitor, call_id: str) -> None:
        if call_id and call_id not in monitor.follows:
            monitor.follows.add(call_id)
            self._watch(call_topic(call_id), monitor)

    def unfollow(self, monitor: Monitor, call_id: str | None) -> None:
        if call_id in monitor.follows:
            monitor.follows.discard(call_id)
            self._unwatch(call_topic(call_id), monitor)

    def deliveries(self, topic: str, body: dict, key: Any = None) -> list[Monitor]:
        """The monitors that are to be given `body`, which arrived on `topic`; a call-type device
        monitor's followed calls are brought up to date (followed on first sight, let go when
        the call clears or is merged into another)."""
        out = []
        for monitor in list(self.by_topic.get(topic, ())):
            if monitor.monitor_type != "call" or monitor.kind != "device":
                out.append(monitor)
                continue
            if not monitor.first_sight(key):
                continue  # the same event on the device's topic and the call's
            out.append(monitor)
            call_id = body.get("call_id")
            if not call_id:
                continue
            if body.get("event") == "CallCleared":
                self.unfollow(monitor, call_id)
                continue
            self.follow(monitor, call_id)
            if body.get("event") in ("Transferred", "Conferenced"):
                for old in (body.get("primary_old_call"), body.get("secondary_old_call")):
                    if old != call_id:
                        self.unfollow(monitor, old)  # merged into call_id: it has no events of its own now
        return out

    def forget_calls_of_lim(self, prefix: str) -> None:
        """A LIM died: the calls it controlled (their IDs start with its number) end without a
        CallCleared; call-type monitors let them go."""
        for monitor in list(self.by_xref.values()):
            for call_id in [c for c in monitor.follows if c.startswith(prefix)]:
                self.unfollow(monitor, call_id)

    def stop(self, xref: str) -> Monitor | None:
        monitor = self.by_xref.pop(xref, None)
        if monitor is None:
            return None
        own = self._by_session.get(id(monitor.session))
        if own is not None:
            own.pop(xref, None)
            if not own:
                del self._by_session[id(monitor.session)]
        self._unwatch(monitor.topic, monitor)
        for call_id in list(monitor.follows):
            self.unfollow(monitor, call_id)
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
