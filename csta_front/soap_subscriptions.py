"""Subscriptions of the CSTA Web Service: Subscribe, Renew, Unsubscribe and GetEvents.

A subscription is a CstaSession of its own with a device monitor per subscribed device; its events
are pushed to NotifyTo (csta_front/soap_notify.py) or queued for GetEvents (a long poll). It belongs
to the Linux user who made it and outlives the HTTP connections it is used on.
"""
from __future__ import annotations

import logging
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from lxml import etree

from csta_front.codec import DEFAULT_NS, CodecError, children, device_number, maker, text, to_bytes
from csta_front.safexml import local_name
from csta_front.soap_session import SessionPort
from csta_front.soap_envelope import (SoapFault, csta_error_fault, document_name, envelope, format_duration,
                                      own_document, parse_duration, ws_fault, ws_maker)
from csta_front.soap_notify import NotifyTarget, notify_target

if TYPE_CHECKING:
    from csta_front.soap import SoapService
    from csta_front.soap_http import Reply

log = logging.getLogger("csta")

DEFAULT_EXPIRES_S = 600
MAX_EXPIRES_S = 3600
MAX_SUBSCRIPTIONS = 256
MAX_USER_SUBSCRIPTIONS = 32
MAX_DEVICES = 64               # per Subscribe
MAX_QUEUED = 1000              # events kept per subscription for GetEvents
MAX_EVENTS = 1000              # per GetEvents answer
DEFAULT_MAX_EVENTS = 100
MAX_WAIT_S = 10.0              # GetEvents long poll
PUSH_BACKOFF_S = 10.0          # after a failed POST, the subscription's events are queued this long


class Subscription:
    """Monitors of some devices in a session of its own, and where their events go."""

    def __init__(self, service: "SoapService", owner: str, peer: str, target: NotifyTarget | None,
                 expires_s: float):
        self.service = service
        self.front = service.front
        self.id = uuid.uuid4().hex
        self.owner = owner
        self.target = target
        self.active = False
        self.ended = False
        self.monitors: dict[str, str] = {}  # device -> monitorCrossRefID
        self.events: deque[bytes] = deque()
        self.dropped = 0         # since the last GetEvents
        self.dropped_total = 0
        self.pushed = 0
        self.push_failures = 0
        self.backoff_until = 0.0
        self.getter: _Getter | None = None
        self.expires_s = expires_s
        self.timer = self.front.timers.call_later(expires_s, self._expired)
        self.port = SessionPort(self.front, owner, f"subscription {self.id[:8]} of {owner} ({peer})",
                                self.deliver, lambda: self.end("its session closed"))

    # -- lifetime ----------------------------------------------------------------------------------
    def renew(self, expires_s: float) -> None:
        self.timer.cancel()
        self.expires_s = expires_s
        self.timer = self.front.timers.call_later(expires_s, self._expired)

    def _expired(self) -> None:
        log.info("soap: subscription %s of %s expired", self.id, self.owner)
        self.end("expired")

    def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.timer.cancel()
        self.service.subscriptions.pop(self.id, None)
        if self.getter is not None:
            getter, self.getter = self.getter, None
            getter.answer(self)
        if not self.port.closed:
            self.port.close()  # stops the monitors
        log.info("soap: subscription %s of %s ended: %s (%d pushed, %d push failures, %d dropped)",
                 self.id, self.owner, reason, self.pushed, self.push_failures, self.dropped_total)

    # -- events ------------------------------------------------------------------------------------
    def deliver(self, xml: bytes) -> None:
        if self.ended:
            return
        target = self.target
        if target is not None and self.front.timers.now() >= self.backoff_until:
            body = envelope(xml, to_bytes(ws_maker().SubscriptionID(self.id)))
            action = document_name(xml)
            if self.service.notifier.submit(target.host, target.port, target.path, action, body,
                                            lambda error, xml=xml: self._push_failed(xml, error)):
                self.pushed += 1
                return
            dropped = self.service.notifier.dropped
            if dropped == 1 or dropped % 100 == 0:
                log.warning("soap: the notification queue is full (%d events not pushed so far): "
                            "subscription %s keeps its events for GetEvents", dropped, self.id)
        self._queue(xml)

    def _push_failed(self, xml: bytes, error: str) -> None:
        if self.ended:
            return
        self.push_failures += 1
        if self.front.timers.now() >= self.backoff_until:
            log.warning("soap: subscription %s: POST to %s failed (%s): events kept for GetEvents for %.0f s",
                        self.id, self.target.url if self.target else "?", error, PUSH_BACKOFF_S)
        self.backoff_until = self.front.timers.now() + PUSH_BACKOFF_S
        self._queue(xml)

    def _queue(self, xml: bytes) -> None:
        if len(self.events) >= MAX_QUEUED:
            self.events.popleft()
            self.dropped += 1
            self.dropped_total += 1
            if self.dropped_total == 1 or self.dropped_total % 100 == 0:
                log.warning("soap: subscription %s: %d events dropped (nobody fetches them)", self.id,
                            self.dropped_total)
        self.events.append(xml)
        if self.getter is not None:
            getter, self.getter = self.getter, None
            getter.answer(self)

    def take(self, max_events: int) -> tuple[list[bytes], int]:
        taken = [self.events.popleft() for _ in range(min(max_events, len(self.events)))]
        dropped, self.dropped = self.dropped, 0
        return taken, dropped

    def get_events(self, reply: "Reply", max_events: int, wait_s: float) -> None:
        if self.getter is not None:  # the newer request wins; the older one is answered now
            getter, self.getter = self.getter, None
            getter.answer(self)
        if self.events or wait_s <= 0:
            _Getter(reply, max_events, None).answer(self)
            return
        getter = _Getter(reply, max_events, None)
        getter.timer = self.front.timers.call_later(wait_s, lambda: self._wait_over(getter))
        self.getter = getter

    def _wait_over(self, getter: "_Getter") -> None:
        if self.getter is getter:
            self.getter = None
            getter.answer(self)


class _Getter:
    """A GetEvents waiting for events."""

    def __init__(self, reply: "Reply", max_events: int, timer: Any):
        self.reply = reply
        self.max_events = max_events
        self.timer = timer

    def answer(self, sub: Subscription) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.reply.alive:
            return  # the client went away: the events stay queued
        events, dropped = sub.take(self.max_events)
        W = ws_maker()
        items = [W.Event(own_document(xml)) for xml in events]
        self.reply.ok(to_bytes(W.GetEventsResponse(*items, W.DroppedEvents(str(dropped)),
                                                   W.QueuedEvents(str(len(sub.events))))))


# -- the operations ------------------------------------------------------------------------------------
def subscription_request(service: "SoapService", reply: "Reply", user: str, peer: str, el: etree._Element) -> None:
    """Subscribe, Renew, Unsubscribe or GetEvents (an element in WS_NS); a SoapFault is answered as one."""
    name = local_name(el)
    try:
        if name == "Subscribe":
            _subscribe(service, reply, user, peer, el)
        elif name == "Renew":
            sub = service.find(text(el, "SubscriptionID"), user)
            sub.renew(_expires(text(el, "Expires")))
            W = ws_maker()
            reply.ok(to_bytes(W.RenewResponse(W.Expires(format_duration(sub.expires_s)))))
        elif name == "Unsubscribe":
            sub = service.find(text(el, "SubscriptionID"), user)
            sub.end("unsubscribed")
            reply.ok(to_bytes(ws_maker().UnsubscribeResponse()))
        elif name == "GetEvents":
            sub = service.find(text(el, "SubscriptionID"), user)
            raw_max = text(el, "MaxEvents")
            if raw_max is not None and not raw_max.isdigit():
                raise ws_fault("invalidMaxEvents", f"MaxEvents {raw_max!r} is not a number")
            max_events = min(max(int(raw_max), 1), MAX_EVENTS) if raw_max else DEFAULT_MAX_EVENTS
            raw_wait = text(el, "Wait")
            wait = parse_duration(raw_wait) if raw_wait else 0.0
            if wait is None:
                raise ws_fault("invalidWait", f"Wait {raw_wait!r}: give an xs:duration such as PT5S")
            sub.get_events(reply, max_events, min(wait, MAX_WAIT_S))
        else:
            raise ws_fault("unknownOperation", f"{name} is not an operation of this service")
    except SoapFault as fault:
        reply.fault(fault)


def _subscribe(service: "SoapService", reply: "Reply", user: str, peer: str, el: etree._Element) -> None:
    raw_target = text(el, "NotifyTo")
    target = notify_target(raw_target)
    if raw_target and target is None:
        raise ws_fault("invalidNotifyTo", f"NotifyTo {raw_target!r}: give an http:// URL")
    devices: list[str] = []
    for item in children(el, "Device"):
        try:
            number = device_number(item.text)
        except CodecError as exc:
            raise ws_fault("invalidDevice", exc.message) from None
        if not number:
            raise ws_fault("invalidDevice", "an empty Device")
        if number not in devices:
            devices.append(number)
    if not devices:
        raise ws_fault("noDevice", "Subscribe needs at least one Device")
    if len(devices) > MAX_DEVICES:
        raise ws_fault("tooManyDevices", f"at most {MAX_DEVICES} devices per subscription")
    expires = _expires(text(el, "Expires"))
    if len(service.subscriptions) >= MAX_SUBSCRIPTIONS:
        raise ws_fault("tooManySubscriptions", f"this server's {MAX_SUBSCRIPTIONS} subscriptions are in use",
                       code="Server")
    if sum(1 for s in service.subscriptions.values() if s.owner == user) >= MAX_USER_SUBSCRIPTIONS:
        raise ws_fault("tooManySubscriptions", f"{user} has {MAX_USER_SUBSCRIPTIONS} subscriptions already")
    sub = Subscription(service, user, peer, target, expires)
    service.subscriptions[sub.id] = sub
    answers: dict[str, bytes] = {}
    E = maker(DEFAULT_NS)

    def answered(device: str, xml: bytes) -> None:
        answers[device] = xml
        if len(answers) == len(devices):
            finish()

    def finish() -> None:
        for device in devices:
            root = own_document(answers[device])
            if local_name(root) == "CSTAErrorCode":
                sub.end(f"MonitorStart {device} failed")
                reply.fault(csta_error_fault(root, f"MonitorStart {device}"))
                return
            sub.monitors[device] = text(root, "monitorCrossRefID") or ""
        if not reply.alive:
            sub.end("the client left before the answer")
            return
        sub.active = True
        W = ws_maker()
        log.info("soap: subscription %s of %s (%s): %s, %s", sub.id, user, peer, " ".join(devices),
                 f"notify {target.url}" if target else "pull")
        reply.ok(to_bytes(W.SubscribeResponse(
            W.SubscriptionID(sub.id), W.Expires(format_duration(expires)),
            *[W.Monitor(W.Device(d), W.MonitorCrossRefID(x)) for d, x in sub.monitors.items()])))

    for device in devices:
        if sub.ended:
            break
        sub.port.request(to_bytes(E.MonitorStart(E.monitorObject(E.deviceObject(device)))),
                         lambda xml, device=device: answered(device, xml))
    if sub.ended and len(answers) < len(devices):
        reply.fault(SoapFault("Server", "the subscription's session closed while starting its monitors"))


def _expires(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_EXPIRES_S
    seconds = parse_duration(raw)
    if seconds is None or seconds <= 0:
        raise ws_fault("invalidExpirationTime", f"Expires {raw!r}: give a positive xs:duration such as PT10M")
    return min(max(seconds, 1.0), MAX_EXPIRES_S)
