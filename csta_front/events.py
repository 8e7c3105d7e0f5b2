"""Bus events (lim/control.py's `_emit`) as ECMA-323 events for one monitor. Pure.

An event is built per monitor because two fields depend on who watches: `monitorCrossRefID` and
`localConnectionInfo` (the state of the monitored device's own connection in the call).

The builders below are written against lxml's `ElementMaker` interface, and run on two makers:
`event_xml` (the wire) uses csta_front/xmlout.py's StringMaker, which writes the same bytes as
text without building a tree; `event_xml_lxml` builds the lxml tree, the reference the tests
hold the wire to. What does not depend on the monitor is written once per bus event, however
many monitors see it.

A TR87 dialog names devices its own way (csta_front/teluri.py's TelNaming): for its sessions the
builders run on a copy of the body whose device fields are renamed, once per dialog and bus event;
sessions without a naming (XML, SOAP) share the plain markup and pay nothing for it.
"""
from __future__ import annotations

from typing import Any, Callable

from csta_front.codec import connection_el, device_el, maker, to_bytes
from csta_front.xmlout import MAKER, Maker, Markup, document

Body = dict[str, Any]

# Bus event name -> ECMA-323 element name. Every event the exchange produces is here. The schema
# spells the transfer event with one r (`TransferedEvent`), and deployed clients match on it.
EVENT_NAMES = {name: f"{name}Event" for name in (
    "ServiceInitiated", "Originated", "Delivered", "Established", "Held", "Retrieved",
    "ConnectionCleared", "CallCleared", "Transferred", "Conferenced", "Diverted", "Failed", "Queued",
    "NetworkReached", "DigitsGenerated", "DoNotDisturb", "Forwarding", "AgentLoggedOn", "AgentLoggedOff",
    "AgentReady", "AgentNotReady", "AgentBusy", "AgentWorkingAfterCall", "MessageWaiting",
    "OutOfService", "BackInService", "CallInformation")} | {"Transferred": "TransferedEvent"}

# Where each event carries a call's data (lim/calls.py DATA_FIELDS): (correlatorData,
# userData), as each event type of the schema has them, both right after localConnectionInfo
# and before cause. CallInformation places its items itself; events not listed have no place.
BOTH, CORRELATOR = (True, True), (True, False)
DATA_PLACES: dict[str, tuple[bool, bool]] = {
    "Delivered": BOTH, "Established": BOTH, "ConnectionCleared": BOTH, "CallCleared": BOTH,
    "Transferred": BOTH, "Conferenced": BOTH, "Diverted": BOTH, "Failed": BOTH, "Queued": BOTH,
    "NetworkReached": BOTH, "ServiceInitiated": CORRELATOR, "Originated": CORRELATOR,
    "Held": CORRELATOR, "Retrieved": CORRELATOR}
# Events with no localConnectionInfo in the schema.
NO_LOCAL = frozenset({"CallCleared", "DigitsGenerated", "CallInformation"})

# The body fields that hold a device number, and those that hold a list of them.
DEVICE_FIELDS = ("device", "calling", "called", "alerting", "answering", "dropped", "failing", "holding",
                 "retrieving", "transferring", "transferred_to", "conferencing", "diverted_to", "queued",
                 "last_redirection", "forward_to", "group")
DEVICE_LISTS = ("added", "moved")

FORWARDING_TYPES = {"all": "forwardImmediate", "busy": "forwardBusy", "noanswer": "forwardNoAns"}


def local_state(body: Body, monitored: str | None) -> str:
    for device, state in body.get("connections") or ():
        if device == monitored:
            return state
    return "null"


def _has_local(body: Body, monitored: str | None) -> bool:
    return monitored is not None and bool(body.get("call_id")) and body["event"] not in NO_LOCAL


def _cause(E, body: Body) -> list:
    return [E.cause(body["cause"])] if body.get("cause") and body["event"] != "DigitsGenerated" else []


def _tail(E, body: Body) -> list:
    """What follows localConnectionInfo: the call's data where the event has a place for it, and
    the cause. Once per bus event; a call without data pays one dict lookup."""
    data = body.get("data")
    if not data:
        return _cause(E, body)
    correlator, user = DATA_PLACES.get(body["event"], (False, False))
    parts = []
    if correlator and data.get("correlator"):
        parts.append(E.correlatorData(E.string(data["correlator"])))
    if user and data.get("user"):
        parts.append(E.userData(E.string(data["user"])))
    return parts + _cause(E, body)


def _call_information(E: Maker, b: Body, m: str | None) -> list:
    """ECMA-269 CallInformation: the data just associated with the call, all of it, in the
    schema's order (accountInfo, authCode, correlatorData, userData)."""
    data = b.get("data") or {}
    parts = [_conn(E, "connection", b), device_el(E, "device", b.get("device")), _calling(E, b)]
    for key, name in (("account", "accountInfo"), ("auth", "authCode")):
        if data.get(key):
            parts.append(E(name, data[key]))
    if data.get("correlator"):
        parts.append(E.correlatorData(E.string(data["correlator"])))
    if data.get("user"):
        parts.append(E.userData(E.string(data["user"])))
    return parts


def renamed(body: Body, name: Callable[[str], str]) -> Body:
    """A copy of `body` with every device number replaced by `name(number)`. A tel: URI says what
    kind of number it is itself (a global `+` number, or one with a phone-context), so the renamed
    body drops the type of number."""
    out = dict(body)
    out.pop("calling_public", None)
    for key in DEVICE_FIELDS:
        value = out.get(key)
        if value:
            out[key] = name(value)
    for key in DEVICE_LISTS:
        if out.get(key):
            out[key] = [name(d) for d in out[key]]
    if out.get("connections"):
        out["connections"] = [[name(d), state] for d, state in out["connections"]]
    return out


def event_xml_lxml(ns: str, body: Body, xref: str, monitored: str | None, naming: Any = None) -> bytes | None:
    """`event_xml` the slow way, through an lxml tree: the reference for the tests."""
    build = BUILDERS.get(body.get("event", ""))
    if build is None:
        return None
    E = maker(ns)
    parts = build(E, renamed(body, naming.name) if naming is not None else body, monitored)
    if _has_local(body, monitored):
        parts.append(E.localConnectionInfo(local_state(body, monitored)))
    return to_bytes(E(EVENT_NAMES[body["event"]], E.monitorCrossRefID(xref), *parts, *_tail(E, body)))


def event_xml(ns: str, body: Body, xref: str, monitored: str | None, shared: dict | None = None,
              naming: Any = None) -> bytes | None:
    """The ECMA-323 event for a monitor (`monitored` is None for a call monitor), or None for an
    event this interface does not report. `shared`: a dict the caller keeps for one bus event
    while it serves each monitor of it; the markup that does not depend on the monitor is kept
    there, written once (once per naming: a TR87 dialog's TelNaming, None for plain numbers)."""
    build = BUILDERS.get(body.get("event", ""))
    if build is None:
        return None
    key = "common" if naming is None else ("common", id(naming))
    common = shared.get(key) if shared is not None else None
    if common is None:
        # The builders ignore `monitored`: what depends on it is added below.
        source = body if naming is None else renamed(body, naming.name)
        common = (Markup("".join(build(MAKER, source, monitored))), Markup("".join(_tail(MAKER, body))))
        if shared is not None:
            shared[key] = common
    parts, cause = common
    local = MAKER.localConnectionInfo(local_state(body, monitored)) if _has_local(body, monitored) else Markup("")
    return document(ns, EVENT_NAMES[body["event"]], MAKER.monitorCrossRefID(xref), parts, local, cause)


def _conn(E: Maker, name: str, body: Body, device: str | None = None):
    return connection_el(E, name, body.get("call_id"), device if device is not None else body.get("device"))


# ECMA-269's type of number for a caller on the public network: its number as the exchange writes
# it starts with the trunk prefix, whose digits imply the type (national, international).
PUBLIC_NUMBER = "implicitPublic"


def _calling(E: Maker, body: Body):
    """callingDevice, typed when the LIM says the caller is on the public network (`calling_public`);
    an extension's number stays plain, as before."""
    return device_el(E, "callingDevice", body.get("calling"), PUBLIC_NUMBER if body.get("calling_public") else None)


def _parties(E: Maker, body: Body, with_redirection: bool = True) -> list:
    parts = [_calling(E, body), device_el(E, "calledDevice", body.get("called"))]
    if with_redirection:
        redirected = body.get("last_redirection")
        # ECMA-269: notRequired when the call was never redirected (notKnown would mean it was,
        # by a device nobody knows). ECMA-323's RedirectionDeviceID has no deviceIdentifier: the
        # redirecting device's number travels as numberDialed.
        parts.append(E.lastRedirectionDevice(E.numberDialed(str(redirected))) if redirected
                     else E.lastRedirectionDevice(E.notRequired()))
    return parts


def _connection_list(E: Maker, name: str, body: Body):
    """The joined call's connections; those that came from the other call name their old one,
    so a client can re-map the connection IDs it holds."""
    moved = set(body.get("moved") or ())
    items = []
    for device, _ in body.get("connections") or ():
        parts = [connection_el(E, "newConnection", body["call_id"], device)]
        if device in moved and body.get("secondary_old_call"):
            parts.append(connection_el(E, "oldConnection", body["secondary_old_call"], device))
        items.append(E.connectionListItem(*parts))
    return E(name, *items)


BUILDERS: dict[str, Callable[[Maker, Body, str | None], list]] = {
    "ServiceInitiated": lambda E, b, m: [_conn(E, "initiatedConnection", b),
                                         device_el(E, "initiatingDevice", b.get("device"))],
    "Originated": lambda E, b, m: [_conn(E, "originatedConnection", b), *_parties(E, b, False)],
    "Delivered": lambda E, b, m: [_conn(E, "connection", b), device_el(E, "alertingDevice", b.get("alerting")),
                                  *_parties(E, b)],
    "Established": lambda E, b, m: [_conn(E, "establishedConnection", b),
                                    device_el(E, "answeringDevice", b.get("answering")), *_parties(E, b)],
    "ConnectionCleared": lambda E, b, m: [_conn(E, "droppedConnection", b),
                                          device_el(E, "releasingDevice", b.get("dropped"))],
    "CallCleared": lambda E, b, m: [connection_el(E, "clearedCall", b.get("call_id"), None)],
    "Held": lambda E, b, m: [_conn(E, "heldConnection", b), device_el(E, "holdingDevice", b.get("holding"))],
    "Retrieved": lambda E, b, m: [_conn(E, "retrievedConnection", b),
                                  device_el(E, "retrievingDevice", b.get("retrieving"))],
    "Failed": lambda E, b, m: [_conn(E, "failedConnection", b), device_el(E, "failingDevice", b.get("failing")),
                               *_parties(E, b)],
    "NetworkReached": lambda E, b, m: [_conn(E, "outboundConnection", b),
                                       device_el(E, "networkInterfaceUsed", b.get("device")), *_parties(E, b)],
    "Transferred": lambda E, b, m: [connection_el(E, "primaryOldCall", b.get("primary_old_call") or b["call_id"], b.get("device")),
                                    *([connection_el(E, "secondaryOldCall", b["secondary_old_call"], b.get("device"))]
                                      if b.get("secondary_old_call") else []),
                                    device_el(E, "transferringDevice", b.get("transferring")),
                                    device_el(E, "transferredToDevice", b.get("transferred_to")),
                                    _connection_list(E, "transferredConnections", b)],
    "Conferenced": lambda E, b, m: [connection_el(E, "primaryOldCall", b.get("primary_old_call"), b.get("device")),
                                    connection_el(E, "secondaryOldCall", b.get("secondary_old_call"), b.get("device")),
                                    device_el(E, "conferencingDevice", b.get("conferencing")),
                                    device_el(E, "addedParty", (b.get("added") or [None])[0]),
                                    _connection_list(E, "conferenceConnections", b)],
    "Diverted": lambda E, b, m: [_conn(E, "connection", b), device_el(E, "divertingDevice", b.get("device")),
                                 device_el(E, "newDestination", b.get("diverted_to")), *_parties(E, b)],
    "Queued": lambda E, b, m: [_conn(E, "queuedConnection", b), device_el(E, "queue", b.get("queued")),
                               *_parties(E, b), *_queue_counts(E, b)],
    "DigitsGenerated": lambda E, b, m: [_conn(E, "connection", b), E.digitGeneratedList(b.get("digits", ""))],
    "DoNotDisturb": lambda E, b, m: [device_el(E, "device", b["device"]),
                                     E.doNotDisturbOn("true" if b.get("do_not_disturb") else "false")],
    "Forwarding": lambda E, b, m: [device_el(E, "device", b["device"]),
                                   E.forwardingType(FORWARDING_TYPES.get(b.get("forwarding_type", ""), "forwardImmediate")),
                                   E.forwardStatus("true" if b.get("forwarding_on") else "false"),
                                   *([E.forwardTo(b["forward_to"])] if b.get("forward_to") else [])],
    "MessageWaiting": lambda E, b, m: [device_el(E, "targetDevice", b["device"]),
                                       E.messageWaitingOn("true" if b.get("message_waiting") else "false")],
    "OutOfService": lambda E, b, m: [device_el(E, "device", b["device"])],
    "BackInService": lambda E, b, m: [device_el(E, "device", b["device"])],
    "CallInformation": _call_information,
}


def _queue_counts(E: Maker, b: Body) -> list:
    """ECMA-269: numberQueued counts the calls in the queue including this one, callsInFront those
    ahead of it. Older bodies carry only the position, which is numberQueued for a call that joined
    at the end of the queue."""
    number = b.get("number_queued") or b.get("queue_position")
    parts = [E.numberQueued(str(number))] if number else []
    if b.get("calls_in_front") is not None:
        parts.append(E.callsInFront(str(b["calls_in_front"])))
    return parts


# The pending agent state (ECMA-269: the state an agent takes when its call ends) as each event
# spells it: AgentBusyEvent uses the PendingAgentState enumeration, AgentWorkingAfterCallEvent its
# own (notReady, ready, null).
WAC_PENDING = {"agentNotReady": "notReady", "agentReady": "ready", "agentNull": "null"}


def _agent(E: Maker, b: Body, m: str | None) -> list:
    parts = [device_el(E, "agentDevice", b["device"])]
    if b.get("agent_id"):
        parts.append(E.agentID(b["agent_id"]))
    if b.get("group"):
        parts.append(E.acdGroup(b["group"]))  # a plain DeviceID in ECMA-323's agent events
    pending = b.get("pending_agent_state")
    if pending and b["event"] == "AgentBusy":
        parts.append(E.pendingAgentState(pending))
    elif pending in WAC_PENDING and b["event"] == "AgentWorkingAfterCall":
        parts.append(E.pendingAgentState(WAC_PENDING[pending]))
    return parts


for _name in ("AgentLoggedOn", "AgentLoggedOff", "AgentReady", "AgentNotReady", "AgentBusy", "AgentWorkingAfterCall"):
    BUILDERS[_name] = _agent
