"""ECMA-269 services: each turns a request into bus requests to the LIM that owns the device (or
controls the call) and the LIM's answer into the ECMA-323 response or a CSTAErrorCode.

Handlers are registered by name; the registry is the list of supported services, which
GetCSTAFeatures reports. The front end holds no call state: everything is asked of the LIMs.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from broker.protocol import MAX_CONFERENCE_PARTIES, Kind, Refusal, device_address, lim_node
from csta_front.codec import (CodecError, Request, children, connection_el, device_el, device_number,
                              find, maker, text, to_bytes)
from csta_front.monitors import MonitorLimit

log = logging.getLogger("csta")
SERVICES: dict[str, Callable[["ServiceCall"], None]] = {}

# The capability lists of ECMA-269's capability exchange (GetCSTAFeatures), in the standard's
# clause order, with the services (and events) of each that this server supports: list element ->
# {capability element: service (bus event) name}, lists and capabilities in the schema's order and
# spelling (systemStatServList, singleStepTransfer, netwReached, physical before logical).
SERVICE_GROUPS: dict[str, dict[str, str]] = {
    "capExchangeServList": {"getCSTAFeatures": "GetCSTAFeatures",
                            "getLogicalDeviceInformation": "GetLogicalDeviceInformation",
                            "getPhysicalDeviceInformation": "GetPhysicalDeviceInformation",
                            "getSwitchingFunctionCaps": "GetSwitchingFunctionCaps",
                            "getSwitchingFunctionDevices": "GetSwitchingFunctionDevices"},
    "systemStatServList": {"systemRegister": "SystemRegister", "systemStatusRegisterCancel": "SystemRegisterCancel",
                           "requestSystemStatus": "RequestSystemStatus", "systemStatus": "SystemStatus"},
    "monitoringServList": {"changeMonitorFilter": "ChangeMonitorFilter", "monitorStart": "MonitorStart",
                           "monitorStop": "MonitorStop"},
    "snapshotServList": {"snapshotCall": "SnapshotCall", "snapshotDevice": "SnapshotDevice"},
    "callControlServList": {name[0].lower() + name[1:]: name for name in (
        "AlternateCall", "AnswerCall", "ClearCall", "ClearConnection", "ConferenceCall", "ConsultationCall",
        "DeflectCall", "HoldCall", "MakeCall", "MakePredictiveCall", "ReconnectCall", "RetrieveCall")}
    | {"singleStepTransfer": "SingleStepTransferCall", "transferCall": "TransferCall"},
    "callAssociatedServList": {"associateData": "AssociateData", "generateDigits": "GenerateDigits"},
    "routeingServList": {"routeRegister": "RouteRegister", "routeRegisterCancel": "RouteRegisterCancel",
                         "reRoute": "ReRoute", "routeEnd": "RouteEnd", "routeRequest": "RouteRequest",
                         "routeSelect": "RouteSelect", "routeUsed": "RouteUsed"},
    "physDevServList": {"getMessageWaitingIndicator": "GetMessageWaitingIndicator",
                        "setMessageWaitingIndicator": "SetMessageWaitingIndicator"},
    "logicalServList": {name[0].lower() + name[1:]: name for name in (
        "GetAgentState", "GetDoNotDisturb", "GetForwarding", "SetAgentState", "SetDoNotDisturb", "SetForwarding")},
}
EVENT_GROUPS: dict[str, dict[str, str]] = {
    "callControlEvtsList": {"callCleared": "CallCleared", "conferenced": "Conferenced",
                            "connectionCleared": "ConnectionCleared", "delivered": "Delivered",
                            "diverted": "Diverted", "established": "Established", "failed": "Failed",
                            "held": "Held", "netwReached": "NetworkReached", "originated": "Originated",
                            "queued": "Queued", "retrieved": "Retrieved", "serviceInitiated": "ServiceInitiated",
                            "transferred": "Transferred"},
    "callAssociatedEvtsList": {"callInformation": "CallInformation", "digitsGenerated": "DigitsGenerated"},
    "physDevEvtsList": {"messageWaiting": "MessageWaiting"},
    "logicalEvtsList": {name[0].lower() + name[1:]: name for name in (
        "AgentBusy", "AgentLoggedOff", "AgentLoggedOn", "AgentNotReady", "AgentReady", "AgentWorkingAfterCall",
        "DoNotDisturb", "Forwarding")},
    "deviceMaintEvtsList": {"backInService": "BackInService", "outOfService": "OutOfService"},
}


# Services the switching function invokes (the client only receives them): supported, though no
# handler of a client's request serves them.
SWITCHING_FUNCTION_SERVICES = frozenset({"ReRoute", "RouteRequest", "RouteUsed"})


def service(name: str):
    def register(fn):
        SERVICES[name] = fn
        return fn
    return register


# The exchange's refusal code (a LIM's, the broker's or the bus node's) -> (CSTAErrorCode category,
# value). Keys are `Refusal`s, equal to the codes as they arrive (plain strings).
LIM_ERRORS: dict[str, tuple[str, str]] = {
    Refusal.UNKNOWN_NUMBER: ("operation", "invalidDeviceID"),
    Refusal.UNKNOWN_REQUEST: ("operation", "serviceNotSupported"),
    Refusal.BAD_REQUEST: ("operation", "invalidParameterValue"),
    Refusal.BAD_DIGITS: ("operation", "invalidParameterValue"),
    Refusal.UNKNOWN_ACTION: ("operation", "invalidParameterValue"),
    Refusal.UNKNOWN_FEATURE: ("operation", "invalidFeature"),
    Refusal.NO_SUCH_CONNECTION: ("operation", "invalidConnectionID"),
    Refusal.NO_SUCH_CALL: ("operation", "invalidCallID"),
    Refusal.NOT_A_PHONE: ("operation", "requestIncompatibleWithObject"),
    Refusal.NOT_AN_EXTENSION: ("operation", "requestIncompatibleWithObject"),
    Refusal.NOT_A_TERMINAL: ("operation", "requestIncompatibleWithObject"),
    Refusal.VIRTUAL: ("operation", "requestIncompatibleWithObject"),
    Refusal.FORWARD_TO_SELF: ("operation", "invalidForwardingDestination"),
    Refusal.FORWARD_LOOP: ("operation", "invalidForwardingDestination"),
    Refusal.UNKNOWN_GROUP: ("operation", "invalidAgentGroup"),
    Refusal.NOT_A_MEMBER: ("operation", "invalidAgentGroup"),
    Refusal.BAD_AGENT_ID: ("operation", "invalidAgentIdentifier"),
    Refusal.ALREADY_LOGGED_ON: ("operation", "invalidAgentState"),
    Refusal.NOT_LOGGED_ON: ("operation", "invalidAgentState"),
    Refusal.BUSY: ("stateIncompatibility", "invalidObjectState"),
    Refusal.NOT_ALERTING: ("stateIncompatibility", "noCallToAnswer"),
    Refusal.IDLE: ("stateIncompatibility", "noConnectionToClear"),
    Refusal.NO_ACTIVE_CALL: ("stateIncompatibility", "noActiveCall"),
    Refusal.NO_HELD_CALL: ("stateIncompatibility", "noHeldCall"),
    Refusal.NOT_QUEUED: ("stateIncompatibility", "invalidObjectState"),
    Refusal.OUT_OF_SERVICE: ("systemResourceAvailibility", "resourceOutOfService"),
    Refusal.LIM_DOWN: ("systemResourceAvailibility", "resourceOutOfService"),
    Refusal.UNREACHABLE: ("systemResourceAvailibility", "resourceOutOfService"),
    Refusal.TRUNKS_BUSY: ("systemResourceAvailibility", "resourceBusy"),
    Refusal.TIMEOUT: ("systemResourceAvailibility", "resourceBusy"),
    # The bus is failing over (the request was resent until the deadline): busy for now, not out of service.
    Refusal.BROKER_FAILOVER: ("systemResourceAvailibility", "resourceBusy"),
    Refusal.CONFERENCE_FULL: ("systemResourceAvailibility", "conferenceMemberLimitExceeded"),
}


class ServiceCall:
    """One request being served: its session, its reply path and the bus."""

    def __init__(self, front: Any, session: Any, request: Request, invoke_id: int):
        self.front = front
        self.session = session
        self.request = request
        self.invoke_id = invoke_id
        self.E = maker(session.ns)

    def respond(self, element) -> None:
        self._answer(lambda: self.session.respond(self.invoke_id, to_bytes(element)))

    def fail(self, category: str, value: str) -> None:
        self._answer(lambda: self.session.error(self.invoke_id, category, value))

    def _answer(self, send: Callable[[], None]) -> None:
        faults = getattr(self.front, "faults", None)
        delay = faults.delay_for(self.request.name) if faults else 0.0
        if delay:
            self.front.timers.call_later(delay, send)  # `mxone fault ... delay`
        else:
            send()

    def ask(self, dst: str, kind: str, body: dict, on_ok: Callable[[dict], None],
            errors: Mapping[Refusal, tuple[str, str]] | None = None) -> None:
        """A bus request whose error reply becomes the right CSTAErrorCode."""
        def reply(answer: dict) -> None:
            if answer.get("ok"):
                try:
                    on_ok(answer)
                except CodecError as exc:
                    self.fail(exc.category, exc.value)
                except (KeyError, TypeError, ValueError) as exc:  # an answer we cannot use: say so, carry on
                    log.error("%s: unusable answer from %s: %r", self.request.name, dst, exc)
                    self.fail("operation", "generic")
                return
            code = answer.get("error", "")
            self.fail(*((errors or {}).get(code) or LIM_ERRORS.get(code, ("operation", "generic"))))
        self.front.bus.request(dst, kind, body, reply)

    # -- reading parameters ------------------------------------------------------------------------
    def device(self, *path: str) -> str:
        number = device_number(self.request.text(*path), self.front.directory)
        if not number:
            raise CodecError("invalidDeviceID", f"{self.request.name}: {'/'.join(path)} is missing")
        return number

    def connection(self, name: str) -> tuple[str | None, str]:
        """(callID, deviceID) of a connection parameter; the call ID may be absent."""
        el = self.request.find(name)
        if el is None:
            raise CodecError("invalidConnectionID", f"{self.request.name}: {name} is missing")
        number = device_number(text(el, "deviceID"), self.front.directory, "invalidConnectionID")
        if not number:
            raise CodecError("invalidConnectionID", f"{self.request.name}: {name}/deviceID is missing")
        return text(el, "callID"), number

    def name(self, number: str) -> str:
        """`number` as this session names devices: plain, or in a TR87 dialog its tel: URI."""
        naming = self.session.naming
        return naming.name(number) if naming is not None else number

    def learn(self, number: str, *path: str) -> None:
        """In a TR87 dialog: the client names `number` as it wrote it at `path` from now on."""
        naming = self.session.naming
        if naming is not None:
            naming.learn(number, self.request.text(*path) or number)

    def phone(self, number: str, action: str, on_ok: Callable[[dict], None], **body: Any) -> None:
        self.ask(device_address(number), Kind.PHONE, {"action": action, **body}, on_ok)


def empty_response(call: ServiceCall) -> Callable[[dict], None]:
    return lambda _: call.respond(call.E(f"{call.request.name}Response"))


# -- call control ------------------------------------------------------------------------------------
# A number to call that the exchange does not know is the called device's fault, not the caller's.
CALLED_NUMBER_ERRORS = {Refusal.UNKNOWN_NUMBER: ("operation", "invalidCalledDeviceID"),
                        Refusal.BAD_DIGITS: ("operation", "invalidCalledDeviceID")}


def calling_and_called(call: ServiceCall) -> tuple[str, str]:
    """MakeCall's and MakePredictiveCall's two devices; a calling device the exchange does not
    know is refused at once (the called number is judged by the exchange when it is dialled)."""
    calling = call.device("callingDevice")
    called = call.device("calledDirectoryNumber")
    if call.front.directory.owner(calling) is None:
        raise CodecError("invalidCallingDeviceID", f"{call.request.name}: calling device {calling} is not allocated")
    return calling, called


@service("MakeCall")
def make_call(call: ServiceCall) -> None:
    calling, called = calling_and_called(call)
    # The calling device goes off hook by itself (autoOriginate doNotPrompt, as Lync asks).

    def made(r: dict) -> None:
        call.learn(calling, "callingDevice")  # pidgin-sipe matches the deviceID against its line URI
        call.respond(call.E.MakeCallResponse(connection_el(call.E, "callingDevice", r["call_id"], call.name(calling))))
    call.ask(device_address(calling), Kind.PHONE, {"action": "dial", "digits": called}, made,
             errors=CALLED_NUMBER_ERRORS)


@service("AnswerCall")
def answer_call(call: ServiceCall) -> None:
    call_id, number = call.connection("callToBeAnswered")
    call.phone(number, "answer", empty_response(call), call_id=call_id)


@service("ClearConnection")
def clear_connection(call: ServiceCall) -> None:
    if _call_id_only(call, "connectionToBeCleared", _clear_sole_internal_connection):
        return
    call_id, number = call.connection("connectionToBeCleared")
    call.phone(number, "hangup", empty_response(call), call_id=call_id)


@service("ClearCall")
def clear_call(call: ServiceCall) -> None:
    if _call_id_only(call, "callToBeCleared", _clear_whole_call):
        return
    call_id, number = call.connection("callToBeCleared")
    call.ask(device_address(number), Kind.CALL_CLEAR, {"call_id": call_id}, empty_response(call))


@service("HoldCall")
def hold_call(call: ServiceCall) -> None:
    call_id, number = call.connection("callToBeHeld")
    call.phone(number, "hold", empty_response(call), call_id=call_id)


@service("RetrieveCall")
def retrieve_call(call: ServiceCall) -> None:
    call_id, number = call.connection("callToBeRetrieved")
    call.phone(number, "retrieve", empty_response(call), call_id=call_id)


@service("ConsultationCall")
def consultation_call(call: ServiceCall) -> None:
    call_id, number = call.connection("existingCall")
    consulted = call.device("consultedDevice")
    call.ask(device_address(number), Kind.PHONE, {"action": "consult", "call_id": call_id, "digits": consulted},
             lambda r: call.respond(call.E.ConsultationCallResponse(
                 connection_el(call.E, "initiatedCall", r["call_id"], call.name(number)))),
             errors=CALLED_NUMBER_ERRORS)


def _two_calls(call: ServiceCall, action: str, result: str | None) -> None:
    held_id, number = call.connection("heldCall")
    active_id, active_number = call.connection("activeCall")
    if active_number != number:
        raise CodecError("invalidConnectionID", f"{call.request.name}: heldCall and activeCall must be of one device")

    def done(reply: dict) -> None:
        parts = [connection_el(call.E, result, reply["call_id"], call.name(number))] if result else []
        call.respond(call.E(f"{call.request.name}Response", *parts))
    call.phone(number, action, done, call_id=held_id, other_call_id=active_id)


@service("TransferCall")
def transfer_call(call: ServiceCall) -> None:
    _two_calls(call, "transfer", "transferredCall")


@service("ConferenceCall")
def conference_call(call: ServiceCall) -> None:
    _two_calls(call, "conference", "conferenceCall")


@service("AlternateCall")
def alternate_call(call: ServiceCall) -> None:
    _two_calls(call, "alternate", None)


@service("ReconnectCall")
def reconnect_call(call: ServiceCall) -> None:
    _two_calls(call, "reconnect", None)


@service("DeflectCall")
def deflect_call(call: ServiceCall) -> None:
    call_id, number = call.connection("callToBeDiverted")
    call.ask(device_address(number), Kind.PHONE, {"action": "deflect", "call_id": call_id,
                                        "digits": call.device("newDestination")},
             empty_response(call), errors=CALLED_NUMBER_ERRORS)


@service("SingleStepTransferCall")
def single_step_transfer(call: ServiceCall) -> None:
    call_id, number = call.connection("activeCall")
    to = call.device("transferredTo")
    call.ask(device_address(number), Kind.PHONE, {"action": "sst", "call_id": call_id, "digits": to},
             lambda r: call.respond(call.E.SingleStepTransferCallResponse(
                 connection_el(call.E, "transferredCall", r["call_id"], call.name(to)))),
             errors=CALLED_NUMBER_ERRORS)


@service("GenerateDigits")
def generate_digits(call: ServiceCall) -> None:
    call_id, number = call.connection("connectionToSendDigits")
    digits = call.request.require("charactersToSend")
    call.phone(number, "digits", empty_response(call), call_id=call_id, digits=digits)


# -- features --------------------------------------------------------------------------------------
def _bool(call: ServiceCall, name: str) -> bool:
    value = call.request.require(name).lower()
    if value not in ("true", "false", "1", "0"):
        raise CodecError("invalidParameterValue", f"{call.request.name}: {name} must be true or false")
    return value in ("true", "1")


def _flag(value: Any) -> str:
    return "true" if value else "false"


@service("SetDoNotDisturb")
def set_dnd(call: ServiceCall) -> None:
    number = call.device("device")
    call.ask(device_address(number), Kind.FEATURE, {"feature": "dnd", "on": _bool(call, "doNotDisturbOn")},
             empty_response(call))


@service("GetDoNotDisturb")
def get_dnd(call: ServiceCall) -> None:
    number = call.device("device")
    call.ask(device_address(number), Kind.FEATURE_GET, {},
             lambda f: call.respond(call.E.GetDoNotDisturbResponse(call.E.doNotDisturbOn(_flag(f["dnd"])))))


@service("GetMessageWaitingIndicator")
def get_mwi(call: ServiceCall) -> None:
    number = call.device("device")
    call.ask(device_address(number), Kind.FEATURE_GET, {},
             lambda f: call.respond(call.E.GetMessageWaitingIndicatorResponse(call.E.messageWaitingOn(_flag(f["mwi"])))))


@service("SetMessageWaitingIndicator")
def set_mwi(call: ServiceCall) -> None:
    number = call.device("device")
    call.ask(device_address(number), Kind.FEATURE, {"feature": "mwi", "on": _bool(call, "messageWaitingOn")},
             empty_response(call))


FORWARDING_TYPES = {"forwardImmediate": "all", "forwardBusy": "busy", "forwardNoAns": "noanswer",
                    "forwardBusyInt": "busy", "forwardBusyExt": "busy", "forwardNoAnsInt": "noanswer",
                    "forwardNoAnsExt": "noanswer", "forwardImmInt": "all", "forwardImmExt": "all"}


@service("SetForwarding")
def set_forwarding(call: ServiceCall) -> None:
    number = call.device("device")
    ecma_type = call.request.require("forwardingType")
    kind = FORWARDING_TYPES.get(ecma_type)
    if kind is None:
        raise CodecError("invalidForwardingType", f"SetForwarding: forwarding type {ecma_type} is not supported")
    on = _bool(call, "activateForward")
    to = device_number(call.request.text("forwardDN"), call.front.directory) if on else None
    if on and not to:
        raise CodecError("invalidForwardingDestination", "SetForwarding: forwardDN is missing")
    ring_count = call.request.text("ringCount")
    after_s = None
    if ring_count:
        if not ring_count.isdigit() or not 1 <= int(ring_count) <= 60:
            raise CodecError("invalidParameterValue", "SetForwarding: ringCount must be 1 to 60")
        after_s = int(ring_count) * 5  # a ring cycle is 5 s
    call.ask(device_address(number), Kind.FEATURE, {"feature": "forward", "type": kind, "to": to, "after_s": after_s},
             empty_response(call))


@service("GetForwarding")
def get_forwarding(call: ServiceCall) -> None:
    number = call.device("device")
    E = call.E

    def done(f: dict) -> None:
        items = []
        for kind, ecma in (("all", "forwardImmediate"), ("busy", "forwardBusy"), ("noanswer", "forwardNoAns")):
            target = f.get(f"forward_{kind}")
            parts = [E.forwardingType(ecma), E.forwardStatus(_flag(target))]
            if target:
                parts.append(E.forwardDN(target))
            items.append(E.forwardListItem(*parts))
        call.respond(E.GetForwardingResponse(E.forwardingList(*items)))
    call.ask(device_address(number), Kind.FEATURE_GET, {}, done)


AGENT_REQUESTS = {"loggedOn": "login", "loggedOff": "logout", "ready": "ready", "notReady": "notready",
                  "workingAfterCall": "wrapup"}


@service("SetAgentState")
def set_agent_state(call: ServiceCall) -> None:
    number = call.device("device")
    requested = call.request.require("requestedAgentState")
    action = AGENT_REQUESTS.get(requested)
    if action is None:
        raise CodecError("invalidAgentState", f"SetAgentState: {requested} is not an agent state to request")
    body: dict[str, Any] = {"action": action}
    if action == "login":
        body["agent_id"] = call.request.text("agentID")
        plan = call.front.directory
        body["group"] = device_number(call.request.text("group"), plan) or device_number(call.request.text("acdGroup"), plan)
    def done(reply: dict) -> None:
        # ECMA-269: a state asked for while the agent is busy on a call is pending until it ends.
        pending = reply.get("pending_agent_state")
        call.respond(call.E.SetAgentStateResponse(*([call.E.pendingAgentState(pending)] if pending else [])))
    call.ask(device_address(number), Kind.AGENT, body, done)


AGENT_STATES = {"agentNull": "agentNull", "agentReady": "agentReady", "agentNotReady": "agentNotReady",
                "agentBusy": "agentBusy", "agentWorkingAfterCall": "agentWorkingAfterCall"}


@service("GetAgentState")
def get_agent_state(call: ServiceCall) -> None:
    number = call.device("device")
    E = call.E

    def done(f: dict) -> None:
        # ECMA-323 agentStateEntry: agentID?, loggedOnState, agentInfo (acdGroup?, agentState).
        entry = [E.agentID(f["agent_id"])] if f.get("agent_id") else []
        entry.append(E.loggedOnState(_flag(f["agent_state"] != "agentNull")))
        info = [E.acdGroup(f["agent_group"])] if f.get("agent_group") else []
        info.append(E.agentState(AGENT_STATES[f["agent_state"]]))
        if f.get("agent_pending"):
            info.append(E.pendingAgentState(f["agent_pending"]))
        entry.append(E.agentInfo(E.agentInfoItem(*info)))
        call.respond(E.GetAgentStateResponse(E.agentStateList(E.agentStateEntry(*entry))))
    call.ask(device_address(number), Kind.FEATURE_GET, {}, done)


# -- snapshots -----------------------------------------------------------------------------------------
@service("SnapshotDevice")
def snapshot_device(call: ServiceCall) -> None:
    number = call.device("snapshotObject")
    E = call.E

    def respond(calls: list[dict]) -> None:
        # An ACD group's calls come in queue order (first = next to be served): the schema's
        # SnapshotDeviceResponseInfo has no position element, so the order carries it.
        items = [E.snapshotDeviceResponseInfo(connection_el(E, "connectionIdentifier", c["call_id"], call.name(number)),
                                              E.localCallState(E.compoundCallState(E.localConnectionState(c["state"]))))
                 for c in calls]
        call.respond(E.SnapshotDeviceResponse(E.crossRefIDorSnapshotData(E.snapshotData(*items))))

    def done(d: dict) -> None:
        if d.get("type") == "hunt":
            _hunt_group_calls(call, number, respond)
        else:
            respond(d.get("calls", []))
    call.ask(device_address(number), Kind.DEVICE_GET, {}, done)


def _hunt_group_calls(call: ServiceCall, group: str, respond: Callable[[list[dict]], None]) -> None:
    """The calls ringing at a hunt group's members. The group's LIM keeps no call (each call's
    controller rings the members, tagging them with the group), so every LIM is asked for the
    calls it controls; a LIM that does not answer has none to show."""
    lims = [lim.number for lim in call.front.topology.lims]
    found: dict[str, str] = {}
    left = [len(lims)]

    def reply(answer: dict) -> None:
        for c in answer.get("calls", []) if answer.get("ok") else []:
            if any(x.get("hunt") == group and x.get("state") == "alerting" for x in c.get("connections", [])):
                found[c["call_id"]] = "alerting"
        left[0] -= 1
        if left[0] == 0:
            respond([{"call_id": c, "state": s} for c, s in sorted(found.items())])  # call IDs: oldest first per LIM
    for lim in lims:
        call.front.bus.request(lim_node(lim), Kind.LIM_STATUS, {}, reply)


@service("SnapshotCall")
def snapshot_call(call: ServiceCall) -> None:
    call_id = call.request.text("snapshotObject", "callID")
    if not call_id or not call_id.isdigit() or len(call_id) < 4:
        raise CodecError("invalidCallID", "SnapshotCall: snapshotObject/callID is missing or not a call ID")
    E = call.E

    def done(c: dict) -> None:
        items = [E.snapshotCallResponseInfo(device_el(E, "deviceOnCall", call.name(device)),
                                            connection_el(E, "callIdentifier", c["call_id"], call.name(device)),
                                            E.localConnectionInfo(state))
                 for device, state, _lim, _hunt in c["parties"]]
        correlator = (c.get("data") or {}).get("correlator")  # the schema's one place for call data here
        call.respond(E.SnapshotCallResponse(E.crossRefIDorSnapshotData(E.snapshotData(*items)),
                                            *([E.correlatorData(E.string(correlator))] if correlator else [])))
    # The call ID names the LIM that controls the call (its first three digits).
    call.ask(lim_node(int(call_id[:3])), Kind.CALL_GET, {"call_id": call_id}, done,
             errors={Refusal.UNREACHABLE: ("operation", "invalidCallID"), Refusal.LIM_DOWN: ("operation", "invalidCallID")})


# -- monitoring ----------------------------------------------------------------------------------------
def _filter(call: ServiceCall) -> frozenset[str]:
    """Events a MonitorStart asks not to see: a `true` in requestedMonitorFilter means filtered out."""
    names = set()
    filt = call.request.find("requestedMonitorFilter")
    for group in (filt if filt is not None else []):
        for item in group:
            if isinstance(item.tag, str) and (item.text or "").strip().lower() in ("true", "1"):
                local = item.tag.rsplit("}", 1)[-1]
                names.add(local[0].upper() + local[1:])
    return frozenset(names)


@service("MonitorStart")
def monitor_start(call: ServiceCall) -> None:
    obj = call.request.find("monitorObject")
    device = device_number(text(obj, "deviceObject"), call.front.directory, "invalidMonitorObject")
    call_id = text(obj, "callObject", "callID")
    if device is None and call_id is None:
        raise CodecError("invalidMonitorObject", "MonitorStart: monitorObject needs a deviceObject or callObject")
    filtered = _filter(call)
    monitor_type = call.request.text("monitorType") or "device"
    if monitor_type not in ("device", "call"):
        raise CodecError("invalidMonitorType", f"MonitorStart: monitorType {monitor_type!r} is neither call nor device")
    E = call.E

    def started(kind: str, target: str, calls: tuple[str, ...] = ()) -> None:
        if call.session.closed:
            return  # the client left while the LIM answered: no monitor for nobody
        try:
            monitor = call.front.monitors.start(call.session, kind, target, filtered, monitor_type, calls)
        except MonitorLimit:
            call.fail("systemResourceAvailibility", "overallMonitorLimitExceeded")
            return
        if kind == "device":
            call.learn(target, "monitorObject", "deviceObject")  # its events name the line as the client did
        call.respond(E.MonitorStartResponse(E.monitorCrossRefID(monitor.xref)))

    if device is not None:
        # Ask the owning LIM: the device must exist and its LIM be in service.
        call.ask(device_address(device), Kind.DEVICE_GET, {},
                 lambda d: started("device", device, tuple(c["call_id"] for c in d.get("calls", ()))),
                 errors={Refusal.UNKNOWN_NUMBER: ("operation", "invalidMonitorObject"),
                         Refusal.IDLE: ("operation", "invalidMonitorObject")})
    elif call_id is not None:  # one of the two, checked above
        call.ask(lim_node(int(call_id[:3]) if call_id.isdigit() and len(call_id) > 3 else 0), Kind.CALL_GET,
                 {"call_id": call_id}, lambda _: started("call", call_id),
                 errors={Refusal.NO_SUCH_CALL: ("operation", "invalidMonitorObject"),
                         Refusal.UNREACHABLE: ("operation", "invalidMonitorObject"),
                         Refusal.LIM_DOWN: ("operation", "invalidMonitorObject")})


@service("MonitorStop")
def monitor_stop(call: ServiceCall) -> None:
    xref = call.request.require("monitorCrossRefID")
    monitor = call.front.monitors.by_xref.get(xref)
    if monitor is None or monitor.session is not call.session:
        call.fail("operation", "invalidCrossRefID")
        return
    call.front.monitors.stop(xref)
    call.respond(call.E.MonitorStopResponse())


# -- system ---------------------------------------------------------------------------------------------
# ECMA-269's SystemStatusValue, for the status a client reports in its own SystemStatus.
SYSTEM_STATUS_VALUES = frozenset({"disabled", "partiallyDisabled", "enabled", "initializing", "messagesLost",
                                  "normal", "overloadImminent", "overloadReached", "overloadRelieved"})


def _registration(call: ServiceCall, required: bool) -> str | None:
    """The request's sysStatRegisterID, which must be one of this session's SystemRegisters."""
    register_id = call.request.text("sysStatRegisterID")
    if register_id is None and not required:
        return None
    if not register_id or register_id not in call.session.status_registrations:
        raise CodecError("invalidCrossRefID", f"{call.request.name}: no registration {register_id!r}")
    return register_id


@service("RequestSystemStatus")
def request_system_status(call: ServiceCall) -> None:
    _registration(call, required=False)  # optional; when given, it must be the session's
    call.respond(call.E.RequestSystemStatusResponse(call.E.systemStatus(call.front.system_status())))


@service("SystemStatus")
def system_status(call: ServiceCall) -> None:
    """The client (the computing function) reports its own status: acknowledged, nothing changes."""
    status = call.request.require("systemStatus")
    if status not in SYSTEM_STATUS_VALUES:
        raise CodecError("systemStatusOutOfRange", f"SystemStatus: {status!r} is no ECMA-269 system status")
    _registration(call, required=False)
    log.info("session %d: the client reports system status %s", call.session.id, status)
    call.respond(call.E.SystemStatusResponse())


@service("SystemRegister")
def system_register(call: ServiceCall) -> None:
    """From now on the session is sent SystemStatus, with this registration's ID, whenever the
    exchange's status changes."""
    register_id = call.session.register_id()
    call.session.status_registrations.append(register_id)
    call.respond(call.E.SystemRegisterResponse(call.E.sysStatRegisterID(register_id)))


@service("SystemRegisterCancel")
def system_register_cancel(call: ServiceCall) -> None:
    call.session.status_registrations.remove(_registration(call, required=True))
    call.respond(call.E.SystemRegisterCancelResponse())


DEVICES_PER_SEGMENT = 200  # keeps each SwitchingFunctionDevices message well inside one frame


@service("GetSwitchingFunctionDevices")
def get_switching_function_devices(call: ServiceCall) -> None:
    """ECMA-269: a short response with a cross-reference, then the list in segmented
    SwitchingFunctionDevices messages (any exchange size fits: one frame holds at most 64 kB)."""
    topology = call.front.topology
    E = call.E
    devices = [(e.number, "station") for e in topology.extensions]
    devices += [(g.number, "acd") for g in topology.acd_groups]
    devices += [(g.number, "group") for g in topology.hunt_groups]
    xref = call.session.register_id()
    call.respond(E.GetSwitchingFunctionDevicesResponse(E.serviceCrossRefID(xref)))
    segments = [devices[i:i + DEVICES_PER_SEGMENT] for i in range(0, len(devices), DEVICES_PER_SEGMENT)] or [[]]
    for index, segment in enumerate(segments, 1):
        call.session.unsolicited(E.SwitchingFunctionDevices(
            E.serviceCrossRefID(xref), E.segmentID(str(index)),
            E.lastSegment("true" if index == len(segments) else "false"),
            E.deviceList(*[E.device(E.deviceID(n), E.deviceCategory(c)) for n, c in segment])))


@service("GetCSTAFeatures")
def get_csta_features(call: ServiceCall) -> None:
    """Each supported service and event appears, by its capability element, in its list."""
    E = call.E
    services = [E(group, *[E(cap) for cap, name in caps.items()
                           if name in SERVICES or name in SWITCHING_FUNCTION_SERVICES])
                for group, caps in SERVICE_GROUPS.items()]
    events = [E(group, *[E(cap) for cap in caps]) for group, caps in EVENT_GROUPS.items()]
    call.respond(E.GetCSTAFeaturesResponse(E.supportedServices(*services), E.supportedEvents(*events)))



# -- monitor edges, connections named by call ID alone, capability exchange ----------------------------
# Monitor filter items, in the schema's order (MonitorFilter's groups and each group's booleans),
# with the bus event each one filters. Items of events the exchange never produces are not listed.
FILTER_ITEMS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("callcontrol", (("callCleared", "CallCleared"), ("conferenced", "Conferenced"),
                     ("connectionCleared", "ConnectionCleared"), ("delivered", "Delivered"),
                     ("diverted", "Diverted"), ("established", "Established"), ("failed", "Failed"),
                     ("held", "Held"), ("networkReached", "NetworkReached"), ("originated", "Originated"),
                     ("queued", "Queued"), ("retrieved", "Retrieved"), ("serviceInitiated", "ServiceInitiated"),
                     ("transferred", "Transferred"))),
    ("callAssociated", (("callInformation", "CallInformation"), ("digitsGenerated", "DigitsGenerated"))),
    ("physicalDeviceFeature", (("messageWaiting", "MessageWaiting"),)),
    ("logicalDeviceFeature", (("agentBusy", "AgentBusy"), ("agentLoggedOn", "AgentLoggedOn"),
                              ("agentLoggedOff", "AgentLoggedOff"), ("agentNotReady", "AgentNotReady"),
                              ("agentReady", "AgentReady"), ("agentWorkingAfterCall", "AgentWorkingAfterCall"),
                              ("doNotDisturb", "DoNotDisturb"), ("forwarding", "Forwarding"))),
    ("maintenance", (("backInService", "BackInService"), ("outOfService", "OutOfService"))),
)


def _filter_of(el) -> frozenset[str]:
    """The bus events a MonitorFilter element filters out (`true`: not reported)."""
    names = set()
    for group, items in FILTER_ITEMS:
        for item, event in items:
            value = (text(el, group, item) or "").lower()
            if value not in ("", "true", "false", "1", "0"):
                raise CodecError("invalidMonitorFilter", f"{group}/{item} must be true or false, not {value!r}")
            if value in ("true", "1"):
                names.add(event)
    return frozenset(names)


def _filter_el(E, name: str, filtered: frozenset[str] | None = None):
    """A MonitorFilter element: each item true where filtered; with `filtered` None, every item
    true (capabilities: every event this server reports can be filtered)."""
    return E(name, *[E(group, *[E(item, "true" if filtered is None or event in filtered else "false")
                                for item, event in items]) for group, items in FILTER_ITEMS])


@service("ChangeMonitorFilter")
def change_monitor_filter(call: ServiceCall) -> None:
    """The requested filter list replaces the monitor's filter (an item left out is not filtered);
    the response carries the filter applied, every item spelt out."""
    xref = call.request.require("monitorCrossRefID")
    monitor = call.front.monitors.by_xref.get(xref)
    if monitor is None or monitor.session is not call.session:
        call.fail("operation", "invalidCrossRefID")
        return
    requested = call.request.find("requestedFilterList")
    if requested is None:
        raise CodecError("invalidMonitorFilter", "ChangeMonitorFilter: requestedFilterList is missing")
    monitor.filtered = _filter_of(requested)
    call.respond(call.E.ChangeMonitorFilterResponse(_filter_el(call.E, "actualFilterList", monitor.filtered)))


def _call_id_only(call: ServiceCall, name: str, then: Callable[[ServiceCall, str, list], None]) -> bool:
    """A ConnectionID with a callID and no deviceID (the schema allows either alone): the call's
    parties are asked of the LIM that controls it and `then(call, call_id, parties)` decides.
    False when the connection names a device (the usual path serves it)."""
    el = call.request.find(name)
    call_id = text(el, "callID")
    if el is None or not call_id or text(el, "deviceID"):  # a device named: read (and refused) there
        return False
    if not call_id.isdigit() or len(call_id) < 4:
        raise CodecError("invalidCallID", f"{call.request.name}: {name}/callID {call_id!r} is not a call ID")
    not_a_call = ("operation", "invalidCallID")
    call.ask(lim_node(int(call_id[:3])), Kind.CALL_GET, {"call_id": call_id},
             lambda c: then(call, call_id, c["parties"]),
             errors={Refusal.NO_SUCH_CALL: not_a_call, Refusal.UNREACHABLE: not_a_call, Refusal.LIM_DOWN: not_a_call})
    return True


def _clear_whole_call(call: ServiceCall, call_id: str, parties: list) -> None:
    """ClearCall by call ID: asked through a party of the call on the controlling LIM (any LIM of
    the call clears all of it)."""
    controller = int(call_id[:3])
    ordered = sorted(parties, key=lambda p: p[2] != controller)
    if not ordered:
        call.fail("operation", "invalidCallID")
        return
    call.ask(device_address(ordered[0][0]), Kind.CALL_CLEAR, {"call_id": call_id}, empty_response(call),
             errors={Refusal.IDLE: ("operation", "invalidCallID")})


def _clear_sole_internal_connection(call: ServiceCall, call_id: str, parties: list) -> None:
    """ClearConnection by call ID alone names a connection only when one party of the call is
    inside the exchange (the other end being the public network): that party's connection is
    cleared. With more, the connection is ambiguous: invalidConnectionID, not a guess."""
    directory = call.front.directory
    internal = [device for device, _state, _lim, _hunt in parties if not directory.is_external(device)]
    if len(internal) != 1:
        log.info("ClearConnection: call %s alone names %d connections of this exchange: refused", call_id, len(internal))
        call.fail("operation", "invalidConnectionID")
        return
    call.phone(internal[0], "hangup", empty_response(call), call_id=call_id)


# What a device of each kind really does in this exchange, for GetLogicalDeviceInformation and
# GetPhysicalDeviceInformation: names as the schema's capability lists spell them.
_STATION_SERVICES = ("alternateCall", "answerCall", "clearCall", "clearConnection", "conferenceCall",
                     "consultationCall", "deflectCall", "holdCall", "makeCall", "reconnectCall", "retrieveCall",
                     "singleStepTransfer", "transferCall")
_CALL_EVENTS = ("callCleared", "conferenced", "connectionCleared", "delivered", "diverted", "established",
                "failed", "held", "netwReached", "originated", "queued", "retrieved", "serviceInitiated",
                "transferred")
_GROUP_EVENTS = ("callCleared", "connectionCleared", "delivered", "diverted", "established", "queued")
_AGENT_EVENTS = ("agentBusy", "agentLoggedOff", "agentLoggedOn", "agentNotReady", "agentReady",
                 "agentWorkingAfterCall")
MODEL_NAMES = {"ip": "IP/SIP extension", "remote": "remote extension", "dect": "cordless DECT extension",
               "digital": "digital extension", "analog": "analog extension", "cas": "CAS extension"}


def _device_kind(call: ServiceCall, number: str) -> tuple[str, Any]:
    """("extension", Extension) | ("acd", AcdGroup) | ("hunt", HuntGroup) | ("external", None)
    from the topology every process shares; an unknown number is the client's error."""
    topology = call.front.topology
    for kind, items in (("extension", topology.extensions), ("acd", topology.acd_groups),
                        ("hunt", topology.hunt_groups)):
        for item in items:
            if item.number == number:
                return kind, item
    if call.front.directory.is_external(number):
        return "external", None
    raise CodecError("invalidDeviceID", f"{call.request.name}: {number} is not a device of this exchange")


def _bools(E, name: str, items) -> Any:
    """A group of booleans (profiles, swDomainFeatures, ...): each item named is true."""
    return E(name, *[E(item, "true") for item in items])


def _caps(E, name: str, items) -> Any:
    """A capability list (callControlServList, physDevEvtsList, ...): each item is a *Caps
    structure of optional details, present and empty for a service or event supported."""
    return E(name, *[E(item) for item in items])


@service("GetLogicalDeviceInformation")
def get_logical_device_information(call: ServiceCall) -> None:
    number = call.device("device")
    kind, item = _device_kind(call, number)
    topology = call.front.topology
    E = call.E
    parts: list = []
    if kind == "extension":
        agent_of = [g.number for g in topology.acd_groups if number in g.agents]
        groups = agent_of + [g.number for g in topology.hunt_groups if number in g.all_members()]
        parts += [E.deviceCategory("station"), E.namedDeviceTypes("station"),
                  E.hasPhysicalElement(_flag(item.type != "virtual"))]
        if agent_of:
            parts.append(_bools(E, "agentLogOnModels", ("logOnToACDGroupExplOneStep",)))
        parts += [E.appearanceAddressable("false"), E.appearanceType("basicStandard")]
        if groups:
            parts.append(E.associatedGroupList(*[E.deviceID(g) for g in groups]))
        parts += [E.maxActiveCalls("1"), E.maxHeldCalls("1"), E.maxFwdSettings("3"),
                  E.maxDevicesInConf(str(MAX_CONFERENCE_PARTIES)),
                  _bools(E, "transAndConfSetup", ("consultationCall", "alternateCall")),
                  E.logDevServList(_caps(E, "callControlServList", _STATION_SERVICES),
                                   _caps(E, "callAssociatedServList", ("associateData", "generateDigits")),
                                   _caps(E, "logicalServList", ("getAgentState", "getDoNotDisturb", "getForwarding",
                                                                 "setAgentState", "setDoNotDisturb", "setForwarding")
                                          if agent_of else ("getDoNotDisturb", "getForwarding", "setDoNotDisturb",
                                                            "setForwarding"))),
                  E.logDevEvtsList(_caps(E, "callControlEvtsList", _CALL_EVENTS),
                                   _caps(E, "callAssociatedEvtsList", ("callInformation", "digitsGenerated")),
                                   _caps(E, "logicalEvtsList", (*(_AGENT_EVENTS if agent_of else ()),
                                                                 "doNotDisturb", "forwarding"))),
                  E.deviceMaintEvtsList(E.backInService(), E.outOfService())]
    elif kind in ("acd", "hunt"):
        parts += [E.deviceCategory("acd" if kind == "acd" else "group"),
                  _bools(E, "groupDeviceAttributes", ("acd" if kind == "acd" else "hunt",)),
                  E.namedDeviceTypes("acdGroup" if kind == "acd" else "stationGroup"),
                  E.hasPhysicalElement("false")]
        if kind == "acd":
            parts.append(_bools(E, "agentLogOnModels", ("logOnToACDGroupExplOneStep",)))
        parts += [E.appearanceAddressable("false"), E.appearanceType("basicStandard"),
                  E.logDevEvtsList(_caps(E, "callControlEvtsList", _GROUP_EVENTS)),
                  E.deviceMaintEvtsList(E.backInService(), E.outOfService())]
    else:  # a number on the public network, reached over a trunk
        parts += [E.deviceCategory("networkInterface"), E.namedDeviceTypes("trunk"), E.hasPhysicalElement("false"),
                  E.appearanceAddressable("false"), E.appearanceType("basicStandard"),
                  E.logDevEvtsList(_caps(E, "callControlEvtsList", ("callCleared", "connectionCleared", "delivered",
                                                                     "established", "failed", "netwReached")))]
    call.respond(E.GetLogicalDeviceInformationResponse(*parts))


@service("GetPhysicalDeviceInformation")
def get_physical_device_information(call: ServiceCall) -> None:
    """Only a terminal has a physical element: a virtual extension, a group or a number on the
    public network is refused (requestIncompatibleWithObject)."""
    number = call.device("device")
    kind, item = _device_kind(call, number)
    if kind != "extension" or item.type == "virtual":
        call.fail("operation", "requestIncompatibleWithObject")
        return
    E = call.E
    call.respond(E.GetPhysicalDeviceInformationResponse(
        E.deviceCategory("station"), E.namedDeviceTypes("station"), E.hasLogicalElement("true"),
        E.deviceModelName(MODEL_NAMES.get(item.type, item.type)),
        _caps(E, "physDevServList", ("getMessageWaitingIndicator", "setMessageWaitingIndicator")),
        _caps(E, "physDevEvtsList", ("messageWaiting",))))


@service("GetSwitchingFunctionCaps")
def get_switching_function_caps(call: ServiceCall) -> None:
    """The switching function as it is: the exchange's name, what monitors and agents it offers,
    and fixed connection IDs (a call ID and a device number mean the same to every client)."""
    topology = call.front.topology
    E = call.E
    features = ["negativeAcknowledgment"]
    if topology.trunks:
        features += ["extCallsIncoming", "extCallsOutgoing"]
    parts = [E.switchingSubDomainName(topology.name), E.manufacturerName("mxone-sim (a simulated Mitel MX-ONE)"),
             _bools(E, "profiles", ("basicTelephonyProfile",)),
             _bools(E, "swDomainFeatures", features),
             E.ignoreUnsupportedParameters("ignoreParameters"),
             _bools(E, "transAndConfSetup", ("consultationCall", "alternateCall")),
             E.monitorFilterItems(_filter_el(E, "deviceOnDeviceMonitorFilter"),
                                  _filter_el(E, "callOnDeviceMonitorFilter"),
                                  _filter_el(E, "callOnConnectionMonitorFilter"))]
    if topology.acd_groups:
        parts.append(_bools(E, "agentLogOnModels", ("logOnToACDGroupExplOneStep",)))
    parts.append(E.connectionView("fixed"))
    call.respond(E.GetSwitchingFunctionCapsResponse(*parts))

__all__ = ["SERVICES", "ServiceCall", "LIM_ERRORS", "children", "find"]
