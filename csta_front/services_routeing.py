"""ECMA-269 routeing services a client invokes: RouteRegister, RouteRegisterCancel, RouteSelect and
RouteEnd. The switching function's side (RouteRequest, ReRoute, RouteUsed, RouteEnd) is sent by
csta_front/routeing.py when a route point's LIM asks; the dialogue itself lives on that LIM
(lim/routes.py). Registrations are exchange-wide: a client of any LIM's server routes the calls
of every LIM's route points.

RouteSelect and RouteEnd have no response in ECMA-323: nothing is sent back on success, a
CSTAErrorCode on failure (an unknown or finished crossRefIdentifier: invalidRouteingCrossRefID).
"""
from __future__ import annotations

import itertools

from broker.protocol import Kind, Refusal, device_address, lim_node
from csta_front.codec import CodecError, device_number
from csta_front.routeing import RouteRegistration
from csta_front.services import ServiceCall, service

_register_ids = itertools.count(1)
ONE_WAY_SERVICES = frozenset({"RouteSelect", "RouteEnd"})  # ECMA-323 has no response to these
NOT_A_DIALOGUE = ("operation", "invalidRouteingCrossRefID")
NOT_A_REGISTRATION = ("operation", "invalidRouteRegistrationCrossRefID")


def _boolean(call: ServiceCall, name: str) -> bool:
    value = (call.request.text(name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise CodecError("invalidParameterValue", f"{call.request.name}: {name} must be true or false")
    return value in ("true", "1")


@service("RouteRegister")
def route_register(call: ServiceCall) -> None:
    """For one route point (routeingDevice) or, without one, for all of them. Every route point's
    LIM holds the registration; the response follows their answers."""
    device = None
    if call.request.find("routeingDevice") is not None:
        device = call.device("routeingDevice")
        if device not in {r.number for r in call.front.topology.route_points}:
            if call.front.directory.owner(device) is None:
                raise CodecError("invalidDeviceID", f"RouteRegister: {device} is not a device of this exchange")
            raise CodecError("requestIncompatibleWithObject", f"RouteRegister: {device} is not a route point")
    routeing = call.front.routeing
    register_id = f"{getattr(call.front, 'lim', 0)}-{call.session.id}-{next(_register_ids)}"
    registration = RouteRegistration(register_id, call.session, device, routeing.lims_for(device))
    routeing.registrations[register_id] = registration
    waiting = {"n": len(registration.lims), "failed": 0}

    def answered(reply: dict) -> None:
        waiting["n"] -= 1
        waiting["failed"] += not reply.get("ok")
        if waiting["n"]:
            return
        if registration.lims and waiting["failed"] == len(registration.lims):
            routeing.registrations.pop(register_id, None)  # no route point's LIM holds it
            call.fail("systemResourceAvailibility", "resourceOutOfService")
        elif call.session.closed:
            routeing.cancel(registration)
        else:
            call.respond(call.E.RouteRegisterResponse(call.E.routeRegisterReqID(register_id)))
    if not registration.lims:
        call.respond(call.E.RouteRegisterResponse(call.E.routeRegisterReqID(register_id)))
        return
    for lim in registration.lims:
        dst = device_address(device) if device else lim_node(lim)
        call.front.bus.request(dst, Kind.ROUTE, {"op": "register", "register_id": register_id, "device": device},
                               answered)


@service("RouteRegisterCancel")
def route_register_cancel(call: ServiceCall) -> None:
    register_id = call.request.require("routeRegisterReqID")
    registration = call.front.routeing.registrations.get(register_id)
    if registration is None or registration.session is not call.session:
        call.fail(*NOT_A_REGISTRATION)
        return
    call.front.routeing.cancel(registration)
    call.respond(call.E.RouteRegisterCancelResponse())


def _dialogue(call: ServiceCall) -> tuple[str, int] | None:
    xref = call.request.require("crossRefIdentifier")
    found = call.front.routeing.dialogue(call.session, xref)
    if found is None:
        call.fail(*NOT_A_DIALOGUE)
        return None
    return xref, found[1]


@service("RouteSelect")
def route_select(call: ServiceCall) -> None:
    """The application names the destination; an unknown or busy one comes back as ReRoute."""
    destination = device_number(call.request.text("routeSelected"), call.front.directory, "invalidDestination")
    if not destination:
        raise CodecError("invalidDestination", "RouteSelect: routeSelected is missing")
    route_used_req = _boolean(call, "routeUsedReq")
    found = _dialogue(call)
    if found is None:
        return
    xref, lim = found
    call.ask(lim_node(lim), Kind.ROUTE, {"op": "select", "xref": xref, "destination": destination,
                                         "route_used_req": route_used_req},
             lambda _: None, errors={Refusal.NO_SUCH_ROUTE: NOT_A_DIALOGUE})


@service("RouteEnd")
def route_end(call: ServiceCall) -> None:
    """The application ends the dialogue without a destination: the call goes to the default."""
    found = _dialogue(call)
    if found is None:
        return
    xref, lim = found
    registration = call.front.routeing.dialogue(call.session, xref)[0]
    call.ask(lim_node(lim), Kind.ROUTE, {"op": "end", "xref": xref},
             lambda _: registration.dialogues.pop(xref, None), errors={Refusal.NO_SUCH_ROUTE: NOT_A_DIALOGUE})
