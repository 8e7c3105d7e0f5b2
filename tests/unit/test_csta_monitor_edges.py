"""Monitor edges of the CSTA front end, driven through a real CstaSession with a fake bus:
the server ending monitors (ECMA-269 Monitor Stop sent by the switching function: at server stop,
when an application session's timer runs out, when a monitored call clears), ChangeMonitorFilter,
MonitorStart's monitorType `call`, and ClearCall / ClearConnection given a call ID alone.

Expected documents are written from the ECMA-323 schema (element names and order) and checked
against its facts (tests/svc_schema_check.py).
"""
from __future__ import annotations

import copy

import pytest

from broker.envelope import call_topic, device_topic
from csta_front.framing import EVENT_INVOKE_ID
from csta_front.server import FrontEnd
from csta_front.session import SERVER_INVOKE_IDS
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.svc_schema_check import assert_valid

ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
C1 = "001000001000000000000001"   # controlled by LIM 1
C2 = "002000001000000000000002"   # controlled by LIM 2


class RoutedFront(FakeFront):
    """A FakeFront whose bus events go through the server's own delivery (FrontEnd._deliver), so
    each event reaches the front end once per topic it was published on, as the bus delivers it,
    with its bus identity; and whose stop path is the server's (FrontEnd.stopping)."""

    _deliver = FrontEnd._deliver
    stopping = FrontEnd.stopping

    def __init__(self) -> None:
        super().__init__()
        self.seq = 0

    def emit(self, body: dict, devices: list[str]) -> None:
        """One publish, as lim/state.py's emit makes it: the devices' topics, then the call's."""
        self.seq += 1
        key = ("lim-1", 1, self.seq)
        topics = [device_topic(d) for d in devices] + ([call_topic(body["call_id"])] if body.get("call_id") else [])
        for topic in topics:
            self._deliver(topic, copy.deepcopy(body), key)


@pytest.fixture
def front() -> RoutedFront:
    return RoutedFront()


@pytest.fixture
def client(front: RoutedFront) -> FakeClient:
    return FakeClient(front)


def event(name: str, call_id: str | None, device: str, connections: list, **fields) -> dict:
    return {"event": name, "call_id": call_id, "device": device, "cause": "normal", "calling": "1000",
            "called": "2000", "connections": connections, "lim": 1, **fields}


def monitor_device(front: RoutedFront, client: FakeClient, number: str, *, monitor_type: str | None = None,
                   calls: list[dict] | None = None, invoke_id: int = 1, ns: str = ED4) -> str:
    front.bus.answer(f"dev:{number}", "device.get", {"ok": True, "device": number, "type": "ip", "calls": calls or []})
    kind = f"<monitorType>{monitor_type}</monitorType>" if monitor_type else ""
    frame = client.ask(invoke_id, f'<MonitorStart xmlns="{ns}"><monitorObject><deviceObject>{number}</deviceObject>'
                                  f'</monitorObject>{kind}</MonitorStart>')
    assert b"MonitorStartResponse" in frame.xml, frame.xml
    return canon(frame.xml).split("<monitorCrossRefID>")[1].split("<")[0]


def sent_events(client: FakeClient, since: int = 0) -> list[str]:
    return [canon(f.xml).split(">", 1)[0].lstrip("<").split(" ")[0]
            for f in client.frames[since:] if f.invoke_id == EVENT_INVOKE_ID]


def monitor_stops(client: FakeClient) -> list[tuple[int, str]]:
    return [(f.invoke_id, canon(f.xml)) for f in client.frames if b"<MonitorStop" in f.xml]


def expected_monitor_stop(ns: str, xref: str) -> str:
    # ECMA-323 MonitorStop: monitorCrossRefID (then optional extensions).
    return canon(f'<MonitorStop xmlns="{ns}"><monitorCrossRefID>{xref}</monitorCrossRefID></MonitorStop>')


# -- the server ends monitors ---------------------------------------------------------------------------
def test_server_stop_sends_monitor_stop_for_every_open_monitor_before_closing(front, client):
    other = FakeClient(front)
    a = monitor_device(front, client, "1000")
    b = monitor_device(front, client, "2000", invoke_id=2)
    c = monitor_device(front, other, "1001", ns=ED6)
    front.stopping()
    assert [doc for _, doc in monitor_stops(client)] == [expected_monitor_stop(ED4, a), expected_monitor_stop(ED4, b)]
    assert [doc for _, doc in monitor_stops(other)] == [expected_monitor_stop(ED6, c)]
    for _, doc in monitor_stops(client) + monitor_stops(other):
        assert_valid(doc.encode())
    # A request of the server's own: an invoke ID from the server's range, not a client's nor 9999.
    assert all(SERVER_INVOKE_IDS <= invoke_id < EVENT_INVOKE_ID for invoke_id, _ in monitor_stops(client))
    assert front.monitors.by_xref == {}
    assert set(front.bus.unsubscribed) >= {device_topic("1000"), device_topic("2000"), device_topic("1001")}


def test_the_clients_monitor_stop_response_is_taken_as_an_answer_not_a_request(front, client):
    xref = monitor_device(front, client, "1000")
    front.stopping()
    before = len(client.frames)
    client.send(SERVER_INVOKE_IDS, f'<MonitorStopResponse xmlns="{ED4}"/>')
    assert len(client.frames) == before  # nothing answered to an answer
    assert xref not in front.monitors.by_xref


def test_application_session_timer_running_out_ends_monitors_before_the_close(front, client):
    client.ask(1, '<StartApplicationSession xmlns="http://www.ecma-international.org/standards/ecma-354/appl_session">'
                  '<applicationInfo><applicationID>t</applicationID></applicationInfo>'
                  f'<requestedProtocolVersions><protocolVersion>{ED4}</protocolVersion></requestedProtocolVersions>'
                  '<requestedSessionDuration>30</requestedSessionDuration></StartApplicationSession>')
    xref = monitor_device(front, client, "1000", invoke_id=2)
    front.advance(31)
    assert [doc for _, doc in monitor_stops(client)] == [expected_monitor_stop(ED4, xref)]
    assert client.closes == 1
    assert front.monitors.by_xref == {}


def test_a_call_monitor_ends_with_its_call(front, client):
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": C1, "parties": [["1000", "connected", 1, None]]})
    frame = client.ask(1, f'<MonitorStart xmlns="{ED4}"><monitorObject><callObject><callID>{C1}</callID>'
                          f'</callObject></monitorObject></MonitorStart>')
    xref = canon(frame.xml).split("<monitorCrossRefID>")[1].split("<")[0]
    front.emit(event("CallCleared", C1, None, []), [])
    assert sent_events(client) == ["CallClearedEvent"]
    assert [doc for _, doc in monitor_stops(client)] == [expected_monitor_stop(ED4, xref)]
    # The CallCleared event came first, then the end of the monitor.
    names = [f.xml for f in client.frames[1:]]
    assert b"CallClearedEvent" in names[0] and b"<MonitorStop" in names[1]
    assert front.monitors.by_xref == {} and call_topic(C1) in front.bus.unsubscribed


def test_a_device_monitor_does_not_end_when_a_call_of_its_device_clears(front, client):
    xref = monitor_device(front, client, "1000")
    front.emit(event("ConnectionCleared", C1, "1000", [], dropped="1000"), ["1000"])
    front.emit(event("CallCleared", C1, None, []), ["1000"])
    assert monitor_stops(client) == []
    assert xref in front.monitors.by_xref


# -- ChangeMonitorFilter -------------------------------------------------------------------------------
CHANGED = (f'<ChangeMonitorFilter xmlns="{ED4}"><monitorCrossRefID>{{xref}}</monitorCrossRefID>'
           '<requestedFilterList><callcontrol><delivered>true</delivered><established>false</established>'
           '</callcontrol><logicalDeviceFeature><doNotDisturb>true</doNotDisturb></logicalDeviceFeature>'
           '</requestedFilterList></ChangeMonitorFilter>')


def test_change_monitor_filter_answers_the_filter_applied_and_filters_from_then_on(front, client):
    xref = monitor_device(front, client, "1000")
    delivered = event("Delivered", C1, "2000", [["1000", "connected"], ["2000", "alerting"]])
    front.emit(delivered, ["1000", "2000"])
    assert sent_events(client) == ["DeliveredEvent"]

    frame = client.ask(2, CHANGED.format(xref=xref))
    assert_valid(frame.xml)
    # ChangeMonitorFilterResponse: actualFilterList, a MonitorFilter: its groups and items in the
    # schema's order, every event this server reports spelt out, true where filtered.
    f = "false"
    assert canon(frame.xml) == canon(
        f'<ChangeMonitorFilterResponse xmlns="{ED4}"><actualFilterList>'
        f'<callcontrol><callCleared>{f}</callCleared><conferenced>{f}</conferenced>'
        f'<connectionCleared>{f}</connectionCleared><delivered>true</delivered><diverted>{f}</diverted>'
        f'<established>{f}</established><failed>{f}</failed><held>{f}</held><networkReached>{f}</networkReached>'
        f'<originated>{f}</originated><queued>{f}</queued><retrieved>{f}</retrieved>'
        f'<serviceInitiated>{f}</serviceInitiated><transferred>{f}</transferred></callcontrol>'
        f'<callAssociated><callInformation>{f}</callInformation><digitsGenerated>{f}</digitsGenerated></callAssociated>'
        f'<physicalDeviceFeature><messageWaiting>{f}</messageWaiting></physicalDeviceFeature>'
        f'<logicalDeviceFeature><agentBusy>{f}</agentBusy><agentLoggedOn>{f}</agentLoggedOn>'
        f'<agentLoggedOff>{f}</agentLoggedOff><agentNotReady>{f}</agentNotReady><agentReady>{f}</agentReady>'
        f'<agentWorkingAfterCall>{f}</agentWorkingAfterCall><doNotDisturb>true</doNotDisturb>'
        f'<forwarding>{f}</forwarding></logicalDeviceFeature>'
        f'<maintenance><backInService>{f}</backInService><outOfService>{f}</outOfService></maintenance>'
        f'</actualFilterList></ChangeMonitorFilterResponse>')

    before = len(client.frames)
    front.emit(delivered, ["1000", "2000"])
    front.emit(event("Established", C1, "2000", [["1000", "connected"], ["2000", "connected"]]), ["1000", "2000"])
    front.emit({"event": "DoNotDisturb", "call_id": None, "device": "1000", "do_not_disturb": True,
                "connections": []}, ["1000"])
    assert sent_events(client, before) == ["EstablishedEvent"]


def test_change_monitor_filter_replaces_the_filter_of_monitor_start(front, client):
    front.bus.answer("dev:1000", "device.get", {"ok": True, "device": "1000", "type": "ip", "calls": []})
    frame = client.ask(1, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                          '</monitorObject><requestedMonitorFilter><callcontrol><established>true</established>'
                          '</callcontrol></requestedMonitorFilter></MonitorStart>')
    xref = canon(frame.xml).split("<monitorCrossRefID>")[1].split("<")[0]
    client.ask(2, CHANGED.format(xref=xref))
    before = len(client.frames)
    front.emit(event("Established", C1, "2000", [["1000", "connected"], ["2000", "connected"]]), ["1000"])
    assert sent_events(client, before) == ["EstablishedEvent"]  # no longer filtered


@pytest.mark.parametrize("xref_of", [lambda mine: "999", lambda mine: mine])
def test_change_monitor_filter_of_an_unknown_or_anothers_monitor_is_invalid_cross_ref(front, client, xref_of):
    other = FakeClient(front)
    theirs = monitor_device(front, other, "1000")
    mine = monitor_device(front, client, "1001")
    target = client if xref_of(mine) == "999" else other
    frame = target.ask(5, CHANGED.format(xref=xref_of(mine) if target is client else mine))
    assert canon(frame.xml) == canon(f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCrossRefID</operation>'
                                     '</CSTAErrorCode>')
    assert front.monitors.by_xref[theirs].filtered == frozenset()


def test_change_monitor_filter_with_a_value_that_is_no_boolean_is_refused(front, client):
    xref = monitor_device(front, client, "1000")
    frame = client.ask(2, CHANGED.format(xref=xref).replace("<delivered>true", "<delivered>maybe"))
    assert canon(frame.xml) == canon(f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidMonitorFilter</operation>'
                                     '</CSTAErrorCode>')
    assert front.monitors.by_xref[xref].filtered == frozenset()


# -- monitorType call ----------------------------------------------------------------------------------
def test_a_call_type_monitor_follows_the_call_after_its_device_leaves_until_it_clears(front, client):
    monitor_device(front, client, "1000", monitor_type="call")
    both = [["1000", "connected"], ["2000", "connected"], ["2001", "alerting"]]
    front.emit(event("Established", C1, "2000", both[:2]), ["1000", "2000"])
    assert call_topic(C1) in front.bus.subscribed
    # Each event once, though it came on the device's topic and the call's.
    assert sent_events(client) == ["EstablishedEvent"]
    # 1000 transfers away (here: leaves); the call goes on between 2000 and 2001 without it.
    front.emit(event("ConnectionCleared", C1, "1000", [["2000", "connected"]], dropped="1000"), ["2000", "1000"])
    front.emit(event("Delivered", C1, "2001", [["2000", "connected"], ["2001", "alerting"]]), ["2000", "2001"])
    front.emit(event("Established", C1, "2001", [["2000", "connected"], ["2001", "connected"]]), ["2000", "2001"])
    front.emit(event("ConnectionCleared", C1, "2001", [["2000", "connected"]], dropped="2001"), ["2000", "2001"])
    front.emit(event("CallCleared", C1, None, []), ["2000"])
    assert sent_events(client) == ["EstablishedEvent", "ConnectionClearedEvent", "DeliveredEvent",
                                   "EstablishedEvent", "ConnectionClearedEvent", "CallClearedEvent"]
    assert call_topic(C1) in front.bus.unsubscribed
    # The monitor itself stays: it is the device's (no MonitorStop).
    assert monitor_stops(client) == []
    for frame in client.frames[1:]:
        assert_valid(frame.xml)


def test_a_device_type_monitor_stops_reporting_a_call_its_device_left(front, client):
    monitor_device(front, client, "1000")
    front.emit(event("ConnectionCleared", C1, "1000", [["2000", "connected"]], dropped="1000"), ["2000", "1000"])
    front.emit(event("Delivered", C1, "2001", [["2000", "connected"], ["2001", "alerting"]]), ["2000", "2001"])
    assert sent_events(client) == ["ConnectionClearedEvent"]
    assert call_topic(C1) not in front.bus.subscribed


def test_a_call_type_monitor_follows_the_calls_its_device_is_in_when_it_starts(front, client):
    monitor_device(front, client, "1000", monitor_type="call",
                   calls=[{"call_id": C2, "state": "connected", "connections": []}])
    assert call_topic(C2) in front.bus.subscribed
    front.emit(event("Delivered", C2, "2001", [["2000", "connected"], ["2001", "alerting"]]), ["2000", "2001"])
    assert sent_events(client) == ["DeliveredEvent"]


def test_a_call_type_monitor_lets_go_of_the_calls_of_a_dead_lim(front, client):
    xref = monitor_device(front, client, "1000", monitor_type="call",
                          calls=[{"call_id": C2, "state": "connected", "connections": []}])
    for name in ("on_member", "_lim_dead", "_tell_monitors"):
        setattr(front, name, getattr(FrontEnd, name).__get__(front))
    front._releasing, front._held_back = {}, {}
    front._lim_incarnations = {}
    front.dead_incarnations = {}
    front.sessions = {client.session}
    front.lim_states[2] = "up"
    front.on_member({"role": "lim", "lim": 2, "state": "dead", "incarnation": 1})
    assert front.monitors.by_xref[xref].follows == set()
    assert call_topic(C2) in front.bus.unsubscribed


def test_a_call_type_monitor_lets_go_of_the_call_merged_into_another(front, client):
    monitor_device(front, client, "1000", monitor_type="call")
    front.emit(event("Established", C2, "2000", [["1000", "connected"], ["2000", "connected"]]), ["1000", "2000"])
    front.emit(event("Transferred", C1, "1000", [["2000", "connected"], ["2001", "connected"]],
                     primary_old_call=C1, secondary_old_call=C2, transferring="1000", transferred_to="2001"),
               ["2000", "2001", "1000"])
    assert front.monitors.by_xref["1"].follows == {C1}
    assert call_topic(C2) in front.bus.unsubscribed


def test_monitor_type_neither_call_nor_device_is_refused(front, client):
    frame = client.ask(1, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                          '</monitorObject><monitorType>trunk</monitorType></MonitorStart>')
    assert canon(frame.xml) == canon(f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidMonitorType</operation>'
                                     '</CSTAErrorCode>')
    assert front.bus.requests == []


# -- ClearCall / ClearConnection by call ID alone ----------------------------------------------------------
def clear(client: FakeClient, service: str, element: str, call_id: str) -> bytes:
    return client.ask(3, f'<{service} xmlns="{ED4}"><{element}><callID>{call_id}</callID></{element}></{service}>').xml


def test_clear_call_by_call_id_alone_clears_the_call_through_a_party_on_its_controller(front, client):
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": C1,
                                           "parties": [["2000", "connected", 2, None], ["1000", "connected", 1, None]]})
    front.bus.answer("dev:1000", "call.clear", {"ok": True, "device": "1000", "call_id": C1, "state": "null"})
    xml = clear(client, "ClearCall", "callToBeCleared", C1)
    assert canon(xml) == canon(f'<ClearCallResponse xmlns="{ED4}"/>')
    assert front.bus.requests == [("lim-1", "call.get", {"call_id": C1}), ("dev:1000", "call.clear", {"call_id": C1})]


def test_clear_connection_by_call_id_alone_clears_the_one_party_of_the_exchange(front, client):
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": C1, "parties": [
        ["1000", "connected", 1, None], ["0701234567", "connected", 1, None]]})
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "null"})
    xml = clear(client, "ClearConnection", "connectionToBeCleared", C1)
    assert canon(xml) == canon(f'<ClearConnectionResponse xmlns="{ED4}"/>')
    assert front.bus.requests[-1] == ("dev:1000", "phone", {"action": "hangup", "call_id": C1})


def test_clear_connection_by_call_id_alone_with_two_parties_of_the_exchange_is_ambiguous(front, client):
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": C1, "parties": [
        ["1000", "connected", 1, None], ["2000", "connected", 2, None]]})
    xml = clear(client, "ClearConnection", "connectionToBeCleared", C1)
    assert canon(xml) == canon(f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidConnectionID</operation>'
                               '</CSTAErrorCode>')
    assert [r[1] for r in front.bus.requests] == ["call.get"]  # nothing cleared


@pytest.mark.parametrize("service,element", [("ClearCall", "callToBeCleared"),
                                             ("ClearConnection", "connectionToBeCleared")])
def test_clearing_a_call_not_in_progress_by_call_id_is_invalid_call_id(front, client, service, element):
    front.bus.answer("lim-1", "call.get", {"ok": False, "error": "no_such_call"})
    assert canon(clear(client, service, element, C1)) == canon(
        f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCallID</operation></CSTAErrorCode>')
    assert canon(clear(client, service, element, "12ab")) == canon(
        f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCallID</operation></CSTAErrorCode>')
