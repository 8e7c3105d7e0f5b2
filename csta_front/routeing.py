"""The CSTA server's side of ECMA-269 routeing: which session holds which route registration, and
which routeing dialogue belongs to which session. No call state: the route point's LIM holds the
dialogue (lim/routes.py); this table only carries its messages to and from the right client.

A route point's LIM asks through `route.dialogue` (msg request, reroute: requests, answered ok
when the registration's session is here; used, end: one-way); each becomes the ECMA-323 document
the switching function sends: RouteRequest, ReRoute, RouteUsed, RouteEnd, on a server invoke ID.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from broker.protocol import Kind, Refusal, lim_node
from csta_front.codec import connection_el, device_el, maker

log = logging.getLogger("csta")


@dataclass
class RouteRegistration:
    register_id: str
    session: Any
    device: str | None     # a route point, or None: all of them
    lims: tuple[int, ...]  # the LIMs holding it (the route points' LIMs)
    dialogues: dict[str, int] = field(default_factory=dict)  # xref -> the route point's LIM


def _correlator(E, data: dict | None) -> list:
    """The call's correlator data, where RouteRequest has it (after routedCall and the optional
    elements we do not send); the other items of call data have no place in RouteRequest."""
    correlator = (data or {}).get("correlator")
    return [E.correlatorData(E.string(str(correlator)))] if correlator else []


class Routeing:
    def __init__(self, front: Any):
        self.front = front
        self.registrations: dict[str, RouteRegistration] = {}

    def lims_for(self, device: str | None) -> tuple[int, ...]:
        points = self.front.topology.route_points
        return tuple(sorted({r.lim for r in points if device in (None, r.number)}))

    def dialogue(self, session: Any, xref: str) -> tuple[RouteRegistration, int] | None:
        """The registration of `session` a dialogue belongs to, and its LIM."""
        for registration in self.registrations.values():
            if registration.session is session and xref in registration.dialogues:
                return registration, registration.dialogues[xref]
        return None

    def cancel(self, registration: RouteRegistration) -> None:
        self.registrations.pop(registration.register_id, None)
        for lim in registration.lims:
            self.front.bus.send(lim_node(lim), Kind.ROUTE, {"op": "cancel", "register_id": registration.register_id})

    def session_closed(self, session: Any) -> None:
        """A client gone: its registrations end, and its calls waiting for it go to the defaults."""
        for registration in [r for r in self.registrations.values() if r.session is session]:
            self.cancel(registration)

    # -- from a route point's LIM ----------------------------------------------------------------
    def on_dialogue(self, env: Any) -> dict[str, Any]:
        body = env.body
        registration = self.registrations.get(str(body.get("register_id")))
        if registration is None or registration.session.closed:
            return {"ok": False, "error": Refusal.NO_SUCH_ROUTE, "message": "no such route registration here"}
        msg, xref = body.get("msg"), str(body.get("xref"))
        lim = self.front.directory.owner(str(body.get("route_point")))
        session = registration.session
        E = maker(session.ns)
        name = session.naming.name if session.naming is not None else (lambda n: n)
        head = [E.crossRefIdentifier(xref), E.routeRegisterReqID(registration.register_id)]
        if msg == "request":
            registration.dialogues[xref] = lim
            point = str(body["route_point"])
            session.invoke(E.RouteRequest(
                *head, device_el(E, "currentRoute", name(str(body.get("called") or point))),
                device_el(E, "callingDevice", name(str(body["calling"])) if body.get("calling") else None),
                device_el(E, "routeingDevice", name(point)),
                connection_el(E, "routedCall", str(body["call_id"]), name(point)),
                *_correlator(E, body.get("data"))))
        elif msg == "reroute":
            registration.dialogues[xref] = lim
            session.invoke(E.ReRoute(*head))
        elif msg == "used":
            session.invoke(E.RouteUsed(*head, device_el(E, "routeUsed", name(str(body["destination"]))),
                                       device_el(E, "callingDevice", name(str(body["calling"])))))
        elif msg == "end":
            registration.dialogues.pop(xref, None)
            category, value = body.get("error") or ("unspecified", None)
            error = E(category, value) if value else E(category)
            session.invoke(E.RouteEnd(*head, E.errorValue(error)))
        else:
            return {"ok": False, "error": Refusal.UNKNOWN_ACTION, "message": f"unknown routeing message {msg!r}"}
        return {"ok": True}


__all__ = ["Routeing", "RouteRegistration"]
