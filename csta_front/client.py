"""A CSTA XML client (asyncio): framing, invoke IDs, request/response and the event stream.

    async with await CstaClient.connect("127.0.1.1", 8882) as csta:
        xref = await csta.monitor_start("2000")
        call_id = await csta.make_call("1000", "2000")
        event = await csta.next_event()          # an lxml element, e.g. DeliveredEvent
        print(event_name(event), field(event, "connection", "callID"))

A CSTAErrorCode (or an ECMA-354 negative response) raises CstaError with its category and value.
The tests, the benchmark and users' own test suites use this client.
"""
from __future__ import annotations

import asyncio
import itertools
from lxml import etree

from csta_front.codec import ACSE_NS, CSTA_NS_PREFIX, find, maker, text, to_bytes
from csta_front.framing import EVENT_INVOKE_ID, FrameDecoder, encode_frame
from csta_front.safexml import local_name, parse_xml

ED3, ED4, ED5, ED6 = (CSTA_NS_PREFIX + e for e in ("ed3", "ed4", "ed5", "ed6"))


class CstaError(Exception):
    def __init__(self, category: str, value: str, element=None):
        super().__init__(f"{category}: {value}")
        self.category = category
        self.value = value
        self.element = element


def event_name(el) -> str:
    return local_name(el)


def field(el, *path: str) -> str | None:
    """Text at a path of local names, e.g. field(ev, "connection", "callID")."""
    return text(el, *path)


def device_field(el, name: str) -> str | None:
    """A device element's identifier: <callingDevice><deviceIdentifier>1000</...>, or the number of
    a redirection device (<lastRedirectionDevice><numberDialed>1000</...>)."""
    return text(el, name, "deviceIdentifier") or text(el, name, "numberDialed")


class CstaClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ns: str):
        self.reader = reader
        self.writer = writer
        self.ns = ns
        self.E = maker(ns)
        self._invoke = itertools.cycle(range(1, EVENT_INVOKE_ID))
        self._pending: dict[int, asyncio.Future] = {}
        self.events: asyncio.Queue = asyncio.Queue()
        self.server_requests: asyncio.Queue = asyncio.Queue()  # e.g. SystemStatus sent by the server
        self._reader_task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, host: str, port: int, ns: str = ED4, timeout: float = 5.0, ssl=None) -> "CstaClient":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl), timeout)
        return cls(reader, writer, ns)

    async def __aenter__(self) -> "CstaClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        self._reader_task.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def _read(self) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for frame in decoder.feed(data):
                    root = parse_xml(frame.xml)
                    name = local_name(root)
                    # By name first: a server's own request (SystemStatus) may carry an invoke ID
                    # that one of ours also uses.
                    if name.endswith("Event"):
                        self.events.put_nowait(root)
                        continue
                    is_answer = name == "CSTAErrorCode" or name.endswith("Response")
                    future = self._pending.pop(frame.invoke_id, None) if is_answer else None
                    if future is not None and not future.done():
                        future.set_result(root)
                    else:
                        self.server_requests.put_nowait((frame.invoke_id, root))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the CSTA server closed the connection"))
            self.events.put_nowait(None)  # wakes a reader of next_event: the connection is gone

    # -- requests ----------------------------------------------------------------------------------
    async def send_raw(self, xml: bytes, invoke_id: int | None = None, timeout: float = 5.0):
        """Send one document, wait for the answer with its invoke ID; returns the root element."""
        invoke_id = next(self._invoke) if invoke_id is None else invoke_id
        future = asyncio.get_running_loop().create_future()
        self._pending[invoke_id] = future
        self.writer.write(encode_frame(invoke_id, xml))
        await self.writer.drain()
        try:
            root = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(invoke_id, None)
        name = local_name(root)
        if name == "CSTAErrorCode":
            category = next(iter(root), None)
            raise CstaError(local_name(category) if category is not None else "unknown",
                            (category.text or "").strip() if category is not None else "", root)
        if name.endswith("NegResponse"):
            raise CstaError("applicationSession", text(root, "errorCode", "definedError") or "", root)
        return root

    async def request(self, element, timeout: float = 5.0):
        return await self.send_raw(to_bytes(element), timeout=timeout)

    async def answer_server(self, invoke_id: int, element) -> None:
        """Answer a request the server sent (SystemStatus)."""
        self.writer.write(encode_frame(invoke_id, to_bytes(element)))
        await self.writer.drain()

    async def next_server_request(self, timeout: float | None = 5.0) -> tuple[int, object]:
        """The next document the server sent that is neither an event nor an answer of ours:
        its own requests (RouteRequest, ReRoute, RouteUsed, RouteEnd, SystemStatus), and the
        CSTAErrorCode refusing a one-way request (RouteSelect); (invoke ID, root element)."""
        item = await asyncio.wait_for(self.server_requests.get(), timeout)
        return item

    async def send_one_way(self, element) -> int:
        """A request ECMA-323 has no response to (RouteSelect, RouteEnd): sent, not waited for. A
        refusal comes back as a CSTAErrorCode with the returned invoke ID (next_server_request)."""
        invoke_id = next(self._invoke)
        self.writer.write(encode_frame(invoke_id, to_bytes(element)))
        await self.writer.drain()
        return invoke_id

    async def next_event(self, timeout: float = 5.0):
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event is None:
            raise ConnectionError("the CSTA server closed the connection")
        return event

    # -- services ----------------------------------------------------------------------------------
    def _conn(self, name: str, call_id: str | None, device: str):
        E = self.E
        return E(name, *([E.callID(call_id)] if call_id else []), E.deviceID(device))

    async def start_application_session(self, application_id: str = "mxone-sim client", *,
                                        user: str | None = None, password: str | None = None,
                                        duration: int | None = None, versions: list[str] | None = None):
        A = maker(ACSE_NS)
        info = [A.applicationID(application_id)]
        if user is not None:
            info.append(A.applicationSpecificInfo(A.user(user), A.password(password or "")))
        parts = [A.applicationInfo(*info),
                 A.requestedProtocolVersions(*[A.protocolVersion(v) for v in (versions or [self.ns])])]
        if duration is not None:
            parts.append(A.requestedSessionDuration(str(duration)))
        root = await self.request(A.StartApplicationSession(*parts))
        return {"session_id": text(root, "sessionID"), "protocol": text(root, "actualProtocolVersion"),
                "duration": int(text(root, "actualSessionDuration") or 0)}

    async def monitor_start(self, device: str | None = None, call_id: str | None = None,
                            filtered: list[str] = ()) -> str:
        E = self.E
        obj = E.deviceObject(device) if device is not None else E.callObject(E.callID(call_id))
        parts = [E.monitorObject(obj)]
        if filtered:
            parts.append(E.requestedMonitorFilter(E.callcontrol(*[E(n[0].lower() + n[1:], "true") for n in filtered])))
        root = await self.request(E.MonitorStart(*parts))
        return text(root, "monitorCrossRefID")

    async def monitor_stop(self, xref: str) -> None:
        await self.request(self.E.MonitorStop(self.E.monitorCrossRefID(xref)))

    async def make_call(self, calling: str, called: str) -> str:
        E = self.E
        root = await self.request(E.MakeCall(E.callingDevice(calling), E.calledDirectoryNumber(called),
                                             E.autoOriginate("doNotPrompt")))
        return text(root, "callingDevice", "callID")

    async def make_predictive_call(self, calling: str, called: str, *, condition: str | None = None,
                                   detection: dict[str, str] | None = None, alert_time: int | None = None) -> str:
        """MakePredictiveCall: the exchange dials `called`, then connects `calling` (a device or a
        group) when `called` answers (`condition` callEstablished) or alerts (callDelivered);
        `detection` maps destination conditions (answeringMachine, ...) to detection actions."""
        E = self.E
        parts = [E.callingDevice(calling), E.calledDirectoryNumber(called)]
        if condition or detection:
            parts.append(E.signallingDetection(
                E.signallingCondition(condition or "callEstablished"),
                E.signallingConditionsAction("destinationDetection" if detection else "remainConnected")))
        if detection:
            parts.append(E.destinationDetection(*(
                E.detectionItem(E.destinationCondition(c), E.detectionAction(a)) for c, a in detection.items())))
        if alert_time is not None:
            parts.append(E.alertTime(str(alert_time)))
        root = await self.request(E.MakePredictiveCall(*parts))
        return text(root, "initiatedCall", "callID")

    async def answer_call(self, call_id: str, device: str) -> None:
        await self.request(self.E.AnswerCall(self._conn("callToBeAnswered", call_id, device)))

    async def clear_connection(self, call_id: str, device: str) -> None:
        await self.request(self.E.ClearConnection(self._conn("connectionToBeCleared", call_id, device)))

    async def clear_call(self, call_id: str, device: str) -> None:
        await self.request(self.E.ClearCall(self._conn("callToBeCleared", call_id, device)))

    async def hold_call(self, call_id: str, device: str) -> None:
        await self.request(self.E.HoldCall(self._conn("callToBeHeld", call_id, device)))

    async def retrieve_call(self, call_id: str, device: str) -> None:
        await self.request(self.E.RetrieveCall(self._conn("callToBeRetrieved", call_id, device)))

    async def consultation_call(self, call_id: str, device: str, consulted: str) -> str:
        E = self.E
        root = await self.request(E.ConsultationCall(self._conn("existingCall", call_id, device),
                                                     E.consultedDevice(consulted)))
        return text(root, "initiatedCall", "callID")

    async def _two(self, service: str, held: str, active: str, device: str):
        E = self.E
        return await self.request(E(service, self._conn("heldCall", held, device), self._conn("activeCall", active, device)))

    async def transfer_call(self, held: str, active: str, device: str) -> str | None:
        return text(await self._two("TransferCall", held, active, device), "transferredCall", "callID")

    async def conference_call(self, held: str, active: str, device: str) -> str | None:
        return text(await self._two("ConferenceCall", held, active, device), "conferenceCall", "callID")

    async def alternate_call(self, held: str, active: str, device: str) -> None:
        await self._two("AlternateCall", held, active, device)

    async def reconnect_call(self, held: str, active: str, device: str) -> None:
        await self._two("ReconnectCall", held, active, device)

    async def deflect_call(self, call_id: str, device: str, to: str) -> None:
        E = self.E
        await self.request(E.DeflectCall(self._conn("callToBeDiverted", call_id, device), E.newDestination(to)))

    async def single_step_transfer(self, call_id: str, device: str, to: str) -> str | None:
        E = self.E
        root = await self.request(E.SingleStepTransferCall(self._conn("activeCall", call_id, device), E.transferredTo(to)))
        return text(root, "transferredCall", "callID")

    async def generate_digits(self, call_id: str, device: str, digits: str) -> None:
        E = self.E
        await self.request(E.GenerateDigits(self._conn("connectionToSendDigits", call_id, device),
                                            E.charactersToSend(digits)))

    async def associate_data(self, call_id: str | None, device: str, *, correlator: str | None = None,
                             account: str | None = None, auth: str | None = None) -> None:
        """AssociateData: attach data (octet strings in hex) to the call; every later event carries it."""
        E = self.E
        parts = [E.accountCode(account)] if account else []
        parts += [E.authCode(auth)] if auth else []
        parts += [E.correlatorData(E.string(correlator))] if correlator else []
        await self.request(E.AssociateData(self._conn("existingCall", call_id, device), *parts))

    async def route_register(self, device: str | None = None) -> str:
        """RouteRegister for one route point (or, without one, every route point): the exchange
        then sends RouteRequest for each call reaching it. Returns the routeRegisterReqID."""
        E = self.E
        root = await self.request(E.RouteRegister(*([E.routeingDevice(device)] if device else [])))
        return text(root, "routeRegisterReqID")

    async def route_register_cancel(self, register_id: str) -> None:
        await self.request(self.E.RouteRegisterCancel(self.E.routeRegisterReqID(register_id)))

    async def route_select(self, xref: str, destination: str, *, register_id: str | None = None,
                           route_used_req: bool = False) -> int:
        """RouteSelect: the destination of the call in routeing dialogue `xref` (RouteRequest's
        crossRefIdentifier). One-way: returns its invoke ID; a bad destination comes back as ReRoute."""
        E = self.E
        parts = [E.crossRefIdentifier(xref)]
        parts += [E.routeRegisterReqID(register_id)] if register_id else []
        parts += [E.routeSelected(destination)]
        parts += [E.routeUsedReq("true")] if route_used_req else []
        return await self.send_one_way(E.RouteSelect(*parts))

    async def route_end(self, xref: str, *, register_id: str | None = None) -> int:
        """RouteEnd from the application: no destination (the route point's default takes the call)."""
        E = self.E
        parts = [E.crossRefIdentifier(xref)] + ([E.routeRegisterReqID(register_id)] if register_id else [])
        return await self.send_one_way(E.RouteEnd(*parts, E.errorValue(E.unspecified())))

    async def set_do_not_disturb(self, device: str, on: bool) -> None:
        E = self.E
        await self.request(E.SetDoNotDisturb(E.device(device), E.doNotDisturbOn("true" if on else "false")))

    async def get_do_not_disturb(self, device: str) -> bool:
        root = await self.request(self.E.GetDoNotDisturb(self.E.device(device)))
        return text(root, "doNotDisturbOn") == "true"

    async def set_forwarding(self, device: str, kind: str, to: str | None) -> None:
        """kind: forwardImmediate, forwardBusy or forwardNoAns; to None switches it off."""
        E = self.E
        parts = [E.device(device), E.forwardingType(kind), E.activateForward("true" if to else "false")]
        if to:
            parts.append(E.forwardDN(to))
        await self.request(E.SetForwarding(*parts))

    async def get_forwarding(self, device: str) -> dict[str, str | None]:
        root = await self.request(self.E.GetForwarding(self.E.device(device)))
        result = {}
        items = find(root, "forwardingList")
        for item in (items if items is not None else []):
            result[text(item, "forwardingType")] = text(item, "forwardDN") if text(item, "forwardStatus") == "true" else None
        return result

    async def set_agent_state(self, device: str, state: str, agent_id: str | None = None,
                              group: str | None = None) -> None:
        """state: loggedOn (with agent_id and group), loggedOff, ready, notReady, workingAfterCall."""
        E = self.E
        parts = [E.device(device), E.requestedAgentState(state)]
        if agent_id:
            parts.append(E.agentID(agent_id))
        if group:
            parts.append(E.group(group))
        await self.request(E.SetAgentState(*parts))

    async def get_agent_state(self, device: str) -> str | None:
        root = await self.request(self.E.GetAgentState(self.E.device(device)))
        return text(root, "agentStateList", "agentStateEntry", "agentInfo", "agentInfoItem", "agentState")

    async def get_message_waiting(self, device: str) -> bool:
        root = await self.request(self.E.GetMessageWaitingIndicator(self.E.device(device)))
        return text(root, "messageWaitingOn") == "true"

    async def snapshot_device(self, device: str) -> list[tuple[str, str]]:
        root = await self.request(self.E.SnapshotDevice(self.E.snapshotObject(device)))
        data = find(root, "crossRefIDorSnapshotData", "snapshotData")
        return [(text(i, "connectionIdentifier", "callID"), text(i, "localCallState", "compoundCallState",
                                                                  "localConnectionState"))
                for i in (data if data is not None else [])]

    async def snapshot_call(self, call_id: str) -> list[tuple[str, str]]:
        E = self.E
        root = await self.request(E.SnapshotCall(E.snapshotObject(E.callID(call_id))))
        data = find(root, "crossRefIDorSnapshotData", "snapshotData")
        return [(text(i, "deviceOnCall", "deviceIdentifier"), text(i, "localConnectionInfo"))
                for i in (data if data is not None else [])]

    async def request_system_status(self) -> str | None:
        return text(await self.request(self.E.RequestSystemStatus()), "systemStatus")

    async def get_csta_features(self) -> list[str]:
        """Every capability element of the supported services, capitalised: "MakeCall", "SingleStepTransfer"."""
        root = await self.request(self.E.GetCSTAFeatures())
        services = find(root, "supportedServices")
        return [etree.QName(item).localname[0].upper() + etree.QName(item).localname[1:]
                for group in (services if services is not None else []) for item in group]


def describe_event(el) -> str:
    """One readable line for an event: the screen-pop view of `mxone watch`."""
    name = event_name(el).removesuffix("Event")
    parts = [f"{name:<18}"]
    for conn in ("connection", "initiatedConnection", "originatedConnection", "establishedConnection",
                 "droppedConnection", "heldConnection", "retrievedConnection", "failedConnection",
                 "queuedConnection", "outboundConnection", "primaryOldCall"):
        call_id = text(el, conn, "callID")
        if call_id:
            parts.append(f"call {call_id}")
            break
    for role, label in (("callingDevice", "from"), ("calledDevice", "to"), ("alertingDevice", "ringing"),
                        ("answeringDevice", "answered by"), ("releasingDevice", "released by"),
                        ("holdingDevice", "held by"), ("retrievingDevice", "retrieved by"),
                        ("failingDevice", "failed at"), ("transferringDevice", "transferred by"),
                        ("transferredToDevice", "transferred to"), ("divertingDevice", "diverted from"),
                        ("newDestination", "to"), ("lastRedirectionDevice", "via"), ("queue", "queue"),
                        ("device", "device"), ("agentDevice", "agent at"), ("targetDevice", "device")):
        value = device_field(el, role)
        if value:
            parts.append(f"{label} {value}")
    for simple in ("agentID", "numberQueued", "digitGeneratedList", "doNotDisturbOn", "forwardingType",
                   "forwardTo", "messageWaitingOn", "localConnectionInfo", "cause"):
        value = text(el, simple)
        if value:
            parts.append(f"{simple} {value}")
    return "  ".join(parts)


__all__ = ["CstaClient", "CstaError", "ED3", "ED4", "ED5", "ED6", "event_name", "field", "device_field",
           "describe_event"]
