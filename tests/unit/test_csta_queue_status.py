"""Queue and agent status over CSTA (fake front end): SnapshotDevice of an ACD group, Queued
events' counts, pending agent states in SetAgentState, GetAgentState and AgentBusy.

The LIM answers and bus events are the real ones, made by LIM cores on the fake bus
(tests/fakes.py), then handed to a CSTA session; the expected documents follow the ECMA-323
schema (element names and order of SnapshotDeviceResponseInfo, QueuedEvent, AgentBusyEvent,
AgentInfo) and are validated against it in every edition."""
from __future__ import annotations

import pytest
from lxml import etree

from broker.protocol import Kind, device_address
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.fakes import FakeNetwork
from tests.svc_schema_check import assert_valid
from tests.unit.test_lim_features import make_topology

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED5 = "http://www.ecma-international.org/standards/ecma-323/csta/ed5"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(FakeFront(topology=make_topology()))


def relay(net: FakeNetwork, front: FakeFront, number: str, kind: str, **body) -> dict:
    """Ask the fake exchange, and script the front's bus with its real answer."""
    reply = net.request(device_address(number), kind, **body)
    front.bus.answer(device_address(number), kind, reply)
    return reply


def same(actual: bytes, expected: str) -> None:
    assert_valid(expected.encode())
    assert_valid(actual)
    assert canon(actual) == canon(expected)


@pytest.mark.parametrize("ns", [ED3, ED4, ED5, ED6])
def test_snapshot_of_a_group_lists_its_queue_first_waiting_first(net, client, ns):
    ids = [net.phone(caller, "dial", digits="5000")["call_id"] for caller in ("0701", "2000", "3000")]
    relay(net, client.front, "5000", Kind.DEVICE_GET)
    frame = client.ask(3, f'<SnapshotDevice xmlns="{ns}"><snapshotObject>5000</snapshotObject></SnapshotDevice>')
    item = ("<snapshotDeviceResponseInfo><connectionIdentifier><callID>{}</callID><deviceID>5000</deviceID>"
            "</connectionIdentifier><localCallState><compoundCallState><localConnectionState>queued"
            "</localConnectionState></compoundCallState></localCallState></snapshotDeviceResponseInfo>")
    same(frame.xml, f'<SnapshotDeviceResponse xmlns="{ns}"><crossRefIDorSnapshotData><snapshotData>'
                    f'{"".join(item.format(c) for c in ids)}</snapshotData></crossRefIDorSnapshotData>'
                    f'</SnapshotDeviceResponse>')
    # The first caller hangs up: the list is the two left, in order.
    net.phone("0701", "hangup")
    relay(net, client.front, "5000", Kind.DEVICE_GET)
    frame = client.ask(4, f'<SnapshotDevice xmlns="{ns}"><snapshotObject>5000</snapshotObject></SnapshotDevice>')
    listed = etree.fromstring(frame.xml).findall(f".//{{{ns}}}callID")
    assert [e.text for e in listed] == ids[1:]


def monitor(client: FakeClient, number: str, ns: str = ED4) -> None:
    client.ask(1, f'<MonitorStart xmlns="{ns}"><monitorObject><deviceObject>{number}</deviceObject>'
                  f'</monitorObject></MonitorStart>')


def test_queued_events_carry_number_queued_and_calls_in_front(net, client):
    front = client.front
    front.bus.default = {"ok": True, "device": "5000", "type": "acd", "lim": 1, "queue": [], "calls": [],
                         "agents": []}
    monitor(client, "5000")
    net.phone("0701", "dial", digits="5000")
    net.phone("0702", "dial", digits="5000")
    second = [e for e in net.events("5000") if e["event"] == "Queued"][-1]
    before = len(client.frames)
    front.publish_device("5000", second)
    event = client.frames[before:][0].xml
    assert_valid(event)
    root = etree.fromstring(event)
    names = [etree.QName(c).localname for c in root]
    # ECMA-323's order: ... lastRedirectionDevice, numberQueued, callsInFront, localConnectionInfo, cause.
    assert names[-5:] == ["lastRedirectionDevice", "numberQueued", "callsInFront", "localConnectionInfo", "cause"]
    assert root.findtext(f"{{{ED4}}}numberQueued") == "2" and root.findtext(f"{{{ED4}}}callsInFront") == "1"


@pytest.mark.parametrize("ns", [ED3, ED6])
def test_a_state_asked_for_during_a_call_is_pending(net, client, ns):
    front = client.front
    net.agent("2005", "login", agent_id="25", group="5000")
    net.phone("0701", "dial", digits="5000")
    net.advance(0)
    net.phone("2005", "answer")
    relay(net, front, "2005", Kind.DEVICE_GET)
    monitor(client, "2005", ns)

    # SetAgentState notReady: accepted, and pending (the agent is busy on the call).
    reply = net.request(device_address("2005"), Kind.AGENT, action="notready")
    front.bus.answer(device_address("2005"), Kind.AGENT, reply)
    frame = client.ask(5, f'<SetAgentState xmlns="{ns}"><device>2005</device>'
                          f'<requestedAgentState>notReady</requestedAgentState></SetAgentState>')
    same(frame.xml, f'<SetAgentStateResponse xmlns="{ns}"><pendingAgentState>agentNotReady</pendingAgentState>'
                    f'</SetAgentStateResponse>')

    # The AgentBusy event that says so, with the agent ID and the group.
    busy = [e for e in net.events("2005") if e["event"] == "AgentBusy"][-1]
    before = len(client.frames)
    front.publish_device("2005", busy)
    same(client.frames[before].xml,
         f'<AgentBusyEvent xmlns="{ns}"><monitorCrossRefID>1</monitorCrossRefID>'
         f'<agentDevice><deviceIdentifier>2005</deviceIdentifier></agentDevice><agentID>25</agentID>'
         f'<acdGroup>5000</acdGroup><pendingAgentState>agentNotReady</pendingAgentState></AgentBusyEvent>')

    # GetAgentState: busy, notReady pending.
    relay(net, front, "2005", Kind.FEATURE_GET)
    frame = client.ask(6, f'<GetAgentState xmlns="{ns}"><device>2005</device></GetAgentState>')
    same(frame.xml, f'<GetAgentStateResponse xmlns="{ns}"><agentStateList><agentStateEntry><agentID>25</agentID>'
                    f'<loggedOnState>true</loggedOnState><agentInfo><agentInfoItem><acdGroup>5000</acdGroup>'
                    f'<agentState>agentBusy</agentState><pendingAgentState>agentNotReady</pendingAgentState>'
                    f'</agentInfoItem></agentInfo></agentStateEntry></agentStateList></GetAgentStateResponse>')

    # The call ends: AgentNotReady, and nothing pending any more.
    net.phone("0701", "hangup")
    not_ready = net.events("2005")[-1]
    before = len(client.frames)
    front.publish_device("2005", not_ready)
    same(client.frames[before].xml,
         f'<AgentNotReadyEvent xmlns="{ns}"><monitorCrossRefID>1</monitorCrossRefID>'
         f'<agentDevice><deviceIdentifier>2005</deviceIdentifier></agentDevice><agentID>25</agentID>'
         f'<acdGroup>5000</acdGroup></AgentNotReadyEvent>')
    relay(net, front, "2005", Kind.FEATURE_GET)
    frame = client.ask(7, f'<GetAgentState xmlns="{ns}"><device>2005</device></GetAgentState>')
    assert etree.fromstring(frame.xml).find(f".//{{{ns}}}pendingAgentState") is None
    assert etree.fromstring(frame.xml).findtext(f".//{{{ns}}}agentState") == "agentNotReady"


def test_set_agent_state_when_idle_has_nothing_pending(net, client):
    net.agent("1005", "login", agent_id="15", group="5000")
    relay(net, client.front, "1005", Kind.AGENT, action="notready")
    frame = client.ask(5, f'<SetAgentState xmlns="{ED4}"><device>1005</device>'
                          f'<requestedAgentState>notReady</requestedAgentState></SetAgentState>')
    same(frame.xml, f'<SetAgentStateResponse xmlns="{ED4}"/>')


def test_snapshot_of_a_hunt_group_lists_the_calls_ringing_at_its_members(net, client):
    front = client.front
    first = net.phone("1000", "dial", digits="6002")["call_id"]    # parallel: 1008, 2008, 3008 ring
    second = net.phone("2000", "dial", digits="6000")["call_id"]   # linear: 1006 rings
    net.phone("3000", "dial", digits="1001")                       # no group: not listed
    relay(net, front, "6002", Kind.DEVICE_GET)
    for lim in (1, 2, 3):
        reply = net.request(f"lim-{lim}", Kind.LIM_STATUS)
        front.bus.answer(f"lim-{lim}", Kind.LIM_STATUS, reply)
    frame = client.ask(3, f'<SnapshotDevice xmlns="{ED4}"><snapshotObject>6002</snapshotObject></SnapshotDevice>')
    same(frame.xml, f'<SnapshotDeviceResponse xmlns="{ED4}"><crossRefIDorSnapshotData><snapshotData>'
                    f'<snapshotDeviceResponseInfo><connectionIdentifier><callID>{first}</callID>'
                    f'<deviceID>6002</deviceID></connectionIdentifier><localCallState><compoundCallState>'
                    f'<localConnectionState>alerting</localConnectionState></compoundCallState></localCallState>'
                    f'</snapshotDeviceResponseInfo></snapshotData></crossRefIDorSnapshotData></SnapshotDeviceResponse>')
    assert second != first
    # A LIM that does not answer has nothing to show; the others still do.
    front.bus.answer("lim-3", Kind.LIM_STATUS, {"ok": False, "error": "lim_down", "message": "LIM 3 is down"})
    relay(net, front, "6000", Kind.DEVICE_GET)
    frame = client.ask(4, f'<SnapshotDevice xmlns="{ED4}"><snapshotObject>6000</snapshotObject></SnapshotDevice>')
    assert [e.text for e in etree.fromstring(frame.xml).iter(f"{{{ED4}}}callID")] == [second]
