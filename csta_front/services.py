"""ECMA-269 services: each turns a request into bus requests to the LIM that owns the device (or
controls the call) and the LIM's answer into the ECMA-323 response or a CSTAErrorCode.

Handlers are registered by name; the registry is the list of supported services, which
GetCSTAFeatures reports. The front end holds no call state: everything is asked of the LIMs.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from broker.protocol import Kind, Refusal, device_address, lim_node
from csta_front.codec import (CodecError, Request, children, connection_el, device_el, device_number,
                              find, maker, text, to_bytes)
from csta_front.monitors import MonitorLimit

log = logging.getLogger("csta")
SERVICES: dict[str, Callable[["ServiceCall"], None]] = {}

# The capability lists of ECMA-269's capability exchange (GetCSTAFeatures), in the standard's
# clause order, with the services (and events) of each that this server supports.
SERVICE_GROUPS = {
    "capExchangeServList": ("GetCSTAFeatures", "GetSwitchingFunctionDevices"),
    "systemStatusServList": ("RequestSystemStatus", "SystemRegister"),
    "monitoringServList": ("MonitorStart", "MonitorStop"),
    "snapshotServList": ("SnapshotCall", "SnapshotDevice"),
    "callControlServList": ("AlternateCall", "AnswerCall", "ClearCall", "ClearConnection", "ConferenceCall",
                            "ConsultationCall", "DeflectCall", "HoldCall", "MakeCall", "ReconnectCall",
                            "RetrieveCall", "SingleStepTransferCall", "TransferCall"),
    "callAssociatedServList": ("GenerateDigits",),
    "logicalServList": ("GetAgentState", "GetDoNotDisturb", "GetForwarding", "SetAgentState",
                        "SetDoNotDisturb", "SetForwarding"),
    "physicalServList": ("GetMessageWaitingIndicator", "SetMessageWaitingIndicator"),
}
EVENT_GROUPS = {
    "callControlEvtsList": ("CallCleared", "Conferenced", "ConnectionCleared", "Delivered", "Diverted",
                            "Established", "Failed", "Held", "NetworkReached", "Originated", "Queued",
                            "Retrieved", "ServiceInitiated", "Transferred"),
    "callAssociatedEvtsList": ("DigitsGenerated",),
    "logicalDeviceEvtsList": ("AgentBusy", "AgentLoggedOff", "AgentLoggedOn", "AgentNotReady", "AgentReady",
                              "AgentWorkingAfterCall", "DoNotDisturb", "Forwarding"),
    "physicalDeviceEvtsList": ("MessageWaiting",),
    "maintenanceEvtsList": ("BackInService", "OutOfService"),
}


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
    Refusal.OUT_OF_SERVICE: ("systemResourceAvailability", "resourceOutOfService"),
    Refusal.LIM_DOWN: ("systemResourceAvailability", "resourceOutOfService"),
    Refusal.UNREACHABLE: ("systemResourceAvailability", "resourceOutOfService"),
    Refusal.TRUNKS_BUSY: ("systemResourceAvailability", "resourceBusy"),
    Refusal.TIMEOUT: ("systemResourceAvailability", "resourceBusy"),
    Refusal.CONFERENCE_FULL: ("systemResourceAvailability", "conferenceMemberLimitExceeded"),
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
            errors: dict[str, tuple[str, str]] | None = None) -> None:
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
CALLED_NUMBER_ERRORS = {Refusal.UNKNOWN_NUMBER: ("operation", "invalidCalledDevice"),
                        Refusal.BAD_DIGITS: ("operation", "invalidCalledDevice")}


@service("MakeCall")
def make_call(call: ServiceCall) -> None:
    calling = call.device("callingDevice")
    called = call.device("calledDirectoryNumber")
    if call.front.directory.owner(calling) is None:
        raise CodecError("invalidCallingDevice", f"MakeCall: calling device {calling} is not allocated")
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
    call_id, number = call.connection("connectionToBeCleared")
    call.phone(number, "hangup", empty_response(call), call_id=call_id)


@service("ClearCall")
def clear_call(call: ServiceCall) -> None:
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
    body = {"action": action}
    if action == "login":
        body["agent_id"] = call.request.text("agentID")
        plan = call.front.directory
        body["group"] = device_number(call.request.text("group"), plan) or device_number(call.request.text("acdGroup"), plan)
    call.ask(device_address(number), Kind.AGENT, body, empty_response(call))


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
        entry.append(E.agentInfo(E.agentInfoItem(*info)))
        call.respond(E.GetAgentStateResponse(E.agentStateList(E.agentStateEntry(*entry))))
    call.ask(device_address(number), Kind.FEATURE_GET, {}, done)


# -- snapshots -----------------------------------------------------------------------------------------
@service("SnapshotDevice")
def snapshot_device(call: ServiceCall) -> None:
    number = call.device("snapshotObject")
    E = call.E

    def done(d: dict) -> None:
        items = [E.snapshotDeviceResponseInfo(connection_el(E, "connectionIdentifier", c["call_id"], call.name(number)),
                                              E.localCallState(E.compoundCallState(E.localConnectionState(c["state"]))))
                 for c in d.get("calls", [])]
        call.respond(E.SnapshotDeviceResponse(E.crossRefIDorSnapshotData(E.snapshotData(*items))))
    call.ask(device_address(number), Kind.DEVICE_GET, {}, done)


@service("SnapshotCall")
def snapshot_call(call: ServiceCall) -> None:
    call_id = call.request.text("snapshotObject", "callID")
    if not call_id or not call_id.isdigit() or len(call_id) < 4:
        raise CodecError("invalidCallID", "SnapshotCall: snapshotObject/callID is missing or not a call ID")
    E = call.E

    def done(c: dict) -> None:
        items = [E.snapshotCallResponseInfo(device_el(E, "deviceOnCall", call.name(device)),
                                            connection_el(E, "callIdentifier", c["call_id"], call.name(device)),
                                            E.localConnectionState(state))
                 for device, state, _lim, _hunt in c["parties"]]
        call.respond(E.SnapshotCallResponse(E.crossRefIDorSnapshotData(E.snapshotData(*items))))
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
    E = call.E

    def started(kind: str, target: str) -> None:
        if call.session.closed:
            return  # the client left while the LIM answered: no monitor for nobody
        try:
            monitor = call.front.monitors.start(call.session, kind, target, filtered)
        except MonitorLimit:
            call.fail("systemResourceAvailability", "overallMonitorLimitExceeded")
            return
        if kind == "device":
            call.learn(target, "monitorObject", "deviceObject")  # its events name the line as the client did
        call.respond(E.MonitorStartResponse(E.monitorCrossRefID(monitor.xref)))

    if device is not None:
        # Ask the owning LIM: the device must exist and its LIM be in service.
        call.ask(device_address(device), Kind.DEVICE_GET, {}, lambda _: started("device", device),
                 errors={Refusal.UNKNOWN_NUMBER: ("operation", "invalidMonitorObject"),
                         Refusal.IDLE: ("operation", "invalidMonitorObject")})
    else:
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
@service("RequestSystemStatus")
def request_system_status(call: ServiceCall) -> None:
    call.respond(call.E.RequestSystemStatusResponse(call.E.systemStatus(call.front.system_status())))


@service("SystemRegister")
def system_register(call: ServiceCall) -> None:
    """From now on the session is sent SystemStatus whenever the exchange's status changes."""
    call.session.registered_for_status = True
    call.respond(call.E.SystemRegisterResponse(call.E.sysStatRegisterID(call.session.register_id())))


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
            E.deviceList(*[E.deviceListItem(E.deviceID(n), E.deviceCategory(c)) for n, c in segment])))


@service("GetCSTAFeatures")
def get_csta_features(call: ServiceCall) -> None:
    """Each supported service appears, by its lowerCamel name, in its capability list."""
    E = call.E
    camel = lambda name: name[0].lower() + name[1:]
    services = [E(group, *[E(camel(n)) for n in names if n in SERVICES]) for group, names in SERVICE_GROUPS.items()]
    events = [E(group, *[E(camel(n)) for n in names]) for group, names in EVENT_GROUPS.items()]
    call.respond(E.GetCSTAFeaturesResponse(E.supportedServices(*services), E.supportedEvents(*events)))


__all__ = ["SERVICES", "ServiceCall", "LIM_ERRORS", "children", "find"]
