"""Golden tests of the CSTA front end: the exact ECMA-323 documents on the wire.

A real `CstaSession` is driven with J.2 frames (tests/csta_fakes.py); the bus is a fake that records
each request the front end makes of a LIM and answers it from a script. For every service in
`SERVICES` the test pins the request document, the bus request it causes (destination, kind and
body, exactly), the LIM's reply and the response document; for every event in `EVENT_NAMES` a bus
event and the event document. Documents are compared canonicalised (C14N, indentation ignored), so
the expected documents below are the wire format as a client sees it.
Every expected and actual document is also checked against the ECMA-323 schema facts
(tests/ecma323_validator.py), written in each of the four editions: the standard is the oracle,
not the product's earlier output.

Where the product differs from ECMA-269/ECMA-323, a test marked xfail(strict=True) states what the
standard requires and why; when the product is fixed it fails: drop the marker and adjust the golden.
None is marked today: the deviations found so far are fixed, and their tests (at the end) pin the
standard's form.
"""
from __future__ import annotations

import re
from pathlib import Path
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import pytest
from lxml import etree

from csta_front.codec import ACSE_NS
from csta_front.events import EVENT_NAMES, event_xml
from csta_front.framing import EVENT_INVOKE_ID, encode_frame
from csta_front.service_table import SERVICES
from csta_front.services import DEVICES_PER_SEGMENT, EVENT_GROUPS, LIM_ERRORS, SERVICE_GROUPS, \
    SWITCHING_FUNCTION_SERVICES
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.ecma323_validator import describe, validate
from topology.model import CstaSettings, Extension, Extensions

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED5 = "http://www.ecma-international.org/standards/ecma-323/csta/ed5"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
ACSE = "http://www.ecma-international.org/standards/ecma-354/appl_session"
assert ACSE == ACSE_NS

C1 = "001000001000000000000001"  # call IDs as LIM 1 makes them: LIM, incarnation, serial
C2 = "001000001000000000000002"


EDITIONS = (ED3, ED4, ED5, ED6)


def assert_valid(xml: bytes | str) -> None:
    """The document is valid against the ECMA-323 schema facts in every edition (written in each
    namespace in turn; a session answers in its own), or against ECMA-354's."""
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8")
    ns = etree.QName(etree.fromstring(xml.encode("utf-8"))).namespace
    for edition in (EDITIONS if ns in EDITIONS else (ns,)):
        written = xml.replace(f'"{ns}"', f'"{edition}"')
        problems = validate(written)
        assert not problems, f"not valid in {edition}:\n{describe(written, problems)}"


def assert_xml(actual: bytes | str, expected: str) -> None:
    """Expected and actual are valid, in all four editions, and the same document."""
    assert_valid(expected)
    assert_valid(actual)
    assert canon(actual) == canon(expected)


@pytest.fixture
def front() -> FakeFront:
    return FakeFront()


@pytest.fixture
def client(front: FakeFront) -> FakeClient:
    return FakeClient(front)


# =================================================================================================
# 1. Every service: request -> bus request -> LIM reply -> response
# =================================================================================================
@dataclass
class Golden:
    request: str                                   # the client's document (ed4, default namespace)
    bus: list[tuple[str, str, dict]]               # the bus requests it must make, in order
    reply: dict | None                             # the LIM's answer to each of them
    response: str                                  # the answer on the request's invoke ID
    setup: Callable[[FakeFront, FakeClient], None] | None = None
    replies: dict[tuple[str, str], dict] = field(default_factory=dict)  # per (dst, kind), if several
    unsolicited: list[str] = field(default_factory=list)  # what follows the response on invoke ID 9999

    @property
    def name(self) -> str:
        return etree.QName(etree.fromstring(self.request.encode())).localname


def _start_monitor_on_1000(front: FakeFront, client: FakeClient) -> None:
    front.bus.answer("dev:1000", "device.get", {"ok": True, "device": "1000", "type": "ip", "logged_on": True,
                                                 "lim": 1, "features": {}, "calls": []})
    client.ask(1, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                  f'</monitorObject></MonitorStart>')


FEATURES = {"dnd": False, "forward_all": None, "forward_busy": None, "forward_noanswer": None,
            "forward_noanswer_s": 15.0, "mwi": False, "agent_group": None, "agent_id": None,
            "agent_state": "agentNull"}  # lim/features.py Features().to_store()

SWITCHING_FUNCTION_DEVICES = "".join(
    [f"<device><deviceID>{n}</deviceID><deviceCategory>station</deviceCategory></device>"
     for n in [*range(1000, 1050), *range(2000, 2050)]]
    + ["<device><deviceID>5000</deviceID><deviceCategory>acd</deviceCategory></device>",
       "<device><deviceID>6000</deviceID><deviceCategory>group</deviceCategory></device>",
       "<device><deviceID>6100</deviceID><deviceCategory>group</deviceCategory></device>"])

GOLDEN: list[Golden] = [
    # -- call control ------------------------------------------------------------------------------
    Golden(
        f"""<MakeCall xmlns="{ED4}">
              <callingDevice>1000</callingDevice>
              <calledDirectoryNumber>2000</calledDirectoryNumber>
            </MakeCall>""",
        [("dev:1000", "phone", {"action": "dial", "digits": "2000"})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "connected"},
        f"""<MakeCallResponse xmlns="{ED4}">
              <callingDevice><callID>{C1}</callID><deviceID>1000</deviceID></callingDevice>
            </MakeCallResponse>"""),
    Golden(
        f"""<AnswerCall xmlns="{ED4}">
              <callToBeAnswered><callID>{C1}</callID><deviceID>2000</deviceID></callToBeAnswered>
            </AnswerCall>""",
        [("dev:2000", "phone", {"action": "answer", "call_id": C1})],
        {"ok": True, "device": "2000", "call_id": C1, "state": "connected"},
        f'<AnswerCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<ClearConnection xmlns="{ED4}">
              <connectionToBeCleared><callID>{C1}</callID><deviceID>1000</deviceID></connectionToBeCleared>
            </ClearConnection>""",
        [("dev:1000", "phone", {"action": "hangup", "call_id": C1})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "null"},
        f'<ClearConnectionResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<ClearCall xmlns="{ED4}">
              <callToBeCleared><callID>{C1}</callID><deviceID>1000</deviceID></callToBeCleared>
            </ClearCall>""",
        [("dev:1000", "call.clear", {"call_id": C1})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "null"},
        f'<ClearCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<HoldCall xmlns="{ED4}">
              <callToBeHeld><callID>{C1}</callID><deviceID>1000</deviceID></callToBeHeld>
            </HoldCall>""",
        [("dev:1000", "phone", {"action": "hold", "call_id": C1})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "hold"},
        f'<HoldCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<RetrieveCall xmlns="{ED4}">
              <callToBeRetrieved><callID>{C1}</callID><deviceID>1000</deviceID></callToBeRetrieved>
            </RetrieveCall>""",
        [("dev:1000", "phone", {"action": "retrieve", "call_id": C1})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "connected"},
        f'<RetrieveCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<ConsultationCall xmlns="{ED4}">
              <existingCall><callID>{C1}</callID><deviceID>1000</deviceID></existingCall>
              <consultedDevice>1001</consultedDevice>
            </ConsultationCall>""",
        [("dev:1000", "phone", {"action": "consult", "call_id": C1, "digits": "1001"})],
        {"ok": True, "device": "1000", "call_id": C2, "state": "connected"},
        f"""<ConsultationCallResponse xmlns="{ED4}">
              <initiatedCall><callID>{C2}</callID><deviceID>1000</deviceID></initiatedCall>
            </ConsultationCallResponse>"""),
    Golden(
        f"""<TransferCall xmlns="{ED4}">
              <heldCall><callID>{C1}</callID><deviceID>1000</deviceID></heldCall>
              <activeCall><callID>{C2}</callID><deviceID>1000</deviceID></activeCall>
            </TransferCall>""",
        [("dev:1000", "phone", {"action": "transfer", "call_id": C1, "other_call_id": C2})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "null"},
        f"""<TransferCallResponse xmlns="{ED4}">
              <transferredCall><callID>{C1}</callID><deviceID>1000</deviceID></transferredCall>
            </TransferCallResponse>"""),
    Golden(
        f"""<ConferenceCall xmlns="{ED4}">
              <heldCall><callID>{C1}</callID><deviceID>1000</deviceID></heldCall>
              <activeCall><callID>{C2}</callID><deviceID>1000</deviceID></activeCall>
            </ConferenceCall>""",
        [("dev:1000", "phone", {"action": "conference", "call_id": C1, "other_call_id": C2})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "connected"},
        f"""<ConferenceCallResponse xmlns="{ED4}">
              <conferenceCall><callID>{C1}</callID><deviceID>1000</deviceID></conferenceCall>
            </ConferenceCallResponse>"""),
    Golden(
        f"""<AlternateCall xmlns="{ED4}">
              <heldCall><callID>{C1}</callID><deviceID>1000</deviceID></heldCall>
              <activeCall><callID>{C2}</callID><deviceID>1000</deviceID></activeCall>
            </AlternateCall>""",
        [("dev:1000", "phone", {"action": "alternate", "call_id": C1, "other_call_id": C2})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "connected"},
        f'<AlternateCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<ReconnectCall xmlns="{ED4}">
              <activeCall><callID>{C2}</callID><deviceID>1000</deviceID></activeCall>
              <heldCall><callID>{C1}</callID><deviceID>1000</deviceID></heldCall>
            </ReconnectCall>""",
        [("dev:1000", "phone", {"action": "reconnect", "call_id": C1, "other_call_id": C2})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "connected"},
        f'<ReconnectCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<DeflectCall xmlns="{ED4}">
              <callToBeDiverted><callID>{C1}</callID><deviceID>2000</deviceID></callToBeDiverted>
              <newDestination>1001</newDestination>
            </DeflectCall>""",
        [("dev:2000", "phone", {"action": "deflect", "call_id": C1, "digits": "1001"})],
        {"ok": True, "device": "2000", "call_id": C1, "state": "null"},
        f'<DeflectCallResponse xmlns="{ED4}"/>'),
    Golden(
        f"""<SingleStepTransferCall xmlns="{ED4}">
              <activeCall><callID>{C1}</callID><deviceID>1000</deviceID></activeCall>
              <transferredTo>1001</transferredTo>
            </SingleStepTransferCall>""",
        [("dev:1000", "phone", {"action": "sst", "call_id": C1, "digits": "1001"})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "null"},
        f"""<SingleStepTransferCallResponse xmlns="{ED4}">
              <transferredCall><callID>{C1}</callID><deviceID>1001</deviceID></transferredCall>
            </SingleStepTransferCallResponse>"""),
    Golden(
        f"""<GenerateDigits xmlns="{ED4}">
              <connectionToSendDigits><callID>{C1}</callID><deviceID>1000</deviceID></connectionToSendDigits>
              <charactersToSend>12#</charactersToSend>
            </GenerateDigits>""",
        [("dev:1000", "phone", {"action": "digits", "call_id": C1, "digits": "12#"})],
        {"ok": True, "device": "1000", "call_id": C1, "state": "connected"},
        f'<GenerateDigitsResponse xmlns="{ED4}"/>'),
    # -- features ----------------------------------------------------------------------------------
    Golden(
        f"""<SetDoNotDisturb xmlns="{ED4}">
              <device>1000</device>
              <doNotDisturbOn>true</doNotDisturbOn>
            </SetDoNotDisturb>""",
        [("dev:1000", "feature", {"feature": "dnd", "on": True})],
        {"ok": True, "device": "1000", "dnd": True},
        f'<SetDoNotDisturbResponse xmlns="{ED4}"/>'),
    Golden(
        f'<GetDoNotDisturb xmlns="{ED4}"><device>1000</device></GetDoNotDisturb>',
        [("dev:1000", "feature.get", {})],
        {"ok": True, "device": "1000", **FEATURES, "dnd": True},
        f"""<GetDoNotDisturbResponse xmlns="{ED4}">
              <doNotDisturbOn>true</doNotDisturbOn>
            </GetDoNotDisturbResponse>"""),
    Golden(
        f"""<SetMessageWaitingIndicator xmlns="{ED4}">
              <device>1000</device>
              <messageWaitingOn>false</messageWaitingOn>
            </SetMessageWaitingIndicator>""",
        [("dev:1000", "feature", {"feature": "mwi", "on": False})],
        {"ok": True, "device": "1000", "mwi": False},
        f'<SetMessageWaitingIndicatorResponse xmlns="{ED4}"/>'),
    Golden(
        f'<GetMessageWaitingIndicator xmlns="{ED4}"><device>1000</device></GetMessageWaitingIndicator>',
        [("dev:1000", "feature.get", {})],
        {"ok": True, "device": "1000", **FEATURES, "mwi": True},
        f"""<GetMessageWaitingIndicatorResponse xmlns="{ED4}">
              <messageWaitingOn>true</messageWaitingOn>
            </GetMessageWaitingIndicatorResponse>"""),
    Golden(
        f"""<SetForwarding xmlns="{ED4}">
              <device>1000</device>
              <forwardingType>forwardNoAns</forwardingType>
              <activateForward>true</activateForward>
              <forwardDN>2000</forwardDN>
              <ringCount>3</ringCount>
            </SetForwarding>""",
        [("dev:1000", "feature", {"feature": "forward", "type": "noanswer", "to": "2000", "after_s": 15})],
        {"ok": True, "device": "1000",
         "forwarding": {"all": None, "busy": None, "noanswer": "2000", "noanswer_s": 15.0}},
        f'<SetForwardingResponse xmlns="{ED4}"/>'),
    Golden(
        f'<GetForwarding xmlns="{ED4}"><device>1000</device></GetForwarding>',
        [("dev:1000", "feature.get", {})],
        {"ok": True, "device": "1000", **FEATURES, "forward_all": "2000", "forward_noanswer": "1001"},
        f"""<GetForwardingResponse xmlns="{ED4}">
              <forwardingList>
                <forwardListItem>
                  <forwardingType>forwardImmediate</forwardingType>
                  <forwardStatus>true</forwardStatus>
                  <forwardDN>2000</forwardDN>
                </forwardListItem>
                <forwardListItem>
                  <forwardingType>forwardBusy</forwardingType>
                  <forwardStatus>false</forwardStatus>
                </forwardListItem>
                <forwardListItem>
                  <forwardingType>forwardNoAns</forwardingType>
                  <forwardStatus>true</forwardStatus>
                  <forwardDN>1001</forwardDN>
                </forwardListItem>
              </forwardingList>
            </GetForwardingResponse>"""),
    Golden(
        f"""<SetAgentState xmlns="{ED4}">
              <device>1000</device>
              <requestedAgentState>loggedOn</requestedAgentState>
              <agentID>42</agentID>
              <group>5000</group>
            </SetAgentState>""",
        [("dev:1000", "agent", {"action": "login", "agent_id": "42", "group": "5000"})],
        {"ok": True, "device": "1000", "agent_state": "agentReady", "agent_id": "42", "group": "5000"},
        f'<SetAgentStateResponse xmlns="{ED4}"/>'),
    Golden(
        f'<GetAgentState xmlns="{ED4}"><device>1000</device></GetAgentState>',
        [("dev:1000", "feature.get", {})],
        {"ok": True, "device": "1000", **FEATURES, "agent_group": "5000", "agent_id": "42",
         "agent_state": "agentReady"},
        # ECMA-323 agentStateEntry: agentID?, loggedOnState, agentInfo/agentInfoItem(acdGroup?, agentState).
        f"""<GetAgentStateResponse xmlns="{ED4}">
              <agentStateList>
                <agentStateEntry>
                  <agentID>42</agentID>
                  <loggedOnState>true</loggedOnState>
                  <agentInfo>
                    <agentInfoItem>
                      <acdGroup>5000</acdGroup>
                      <agentState>agentReady</agentState>
                    </agentInfoItem>
                  </agentInfo>
                </agentStateEntry>
              </agentStateList>
            </GetAgentStateResponse>"""),
    # -- snapshots ---------------------------------------------------------------------------------
    Golden(
        f'<SnapshotDevice xmlns="{ED4}"><snapshotObject>1000</snapshotObject></SnapshotDevice>',
        [("dev:1000", "device.get", {})],
        {"ok": True, "device": "1000", "type": "ip", "logged_on": True, "lim": 1, "features": FEATURES,
         "calls": [{"call_id": C1, "state": "hold", "connections": [["1000", "hold"], ["2000", "connected"]]},
                   {"call_id": C2, "state": "connected",
                    "connections": [["1000", "connected"], ["1001", "connected"]]}]},
        f"""<SnapshotDeviceResponse xmlns="{ED4}">
              <crossRefIDorSnapshotData>
                <snapshotData>
                  <snapshotDeviceResponseInfo>
                    <connectionIdentifier><callID>{C1}</callID><deviceID>1000</deviceID></connectionIdentifier>
                    <localCallState>
                      <compoundCallState><localConnectionState>hold</localConnectionState></compoundCallState>
                    </localCallState>
                  </snapshotDeviceResponseInfo>
                  <snapshotDeviceResponseInfo>
                    <connectionIdentifier><callID>{C2}</callID><deviceID>1000</deviceID></connectionIdentifier>
                    <localCallState>
                      <compoundCallState><localConnectionState>connected</localConnectionState></compoundCallState>
                    </localCallState>
                  </snapshotDeviceResponseInfo>
                </snapshotData>
              </crossRefIDorSnapshotData>
            </SnapshotDeviceResponse>"""),
    Golden(
        f"""<SnapshotCall xmlns="{ED4}">
              <snapshotObject><callID>{C1}</callID></snapshotObject>
            </SnapshotCall>""",
        [("lim-1", "call.get", {"call_id": C1})],
        {"ok": True, "call_id": C1, "controller": 1, "calling": "1000", "called": "2000", "cleared": False,
         "parties": [["1000", "connected", 1, None], ["2000", "alerting", 2, None]]},
        f"""<SnapshotCallResponse xmlns="{ED4}">
              <crossRefIDorSnapshotData>
                <snapshotData>
                  <snapshotCallResponseInfo>
                    <deviceOnCall><deviceIdentifier>1000</deviceIdentifier></deviceOnCall>
                    <callIdentifier><callID>{C1}</callID><deviceID>1000</deviceID></callIdentifier>
                    <localConnectionInfo>connected</localConnectionInfo>
                  </snapshotCallResponseInfo>
                  <snapshotCallResponseInfo>
                    <deviceOnCall><deviceIdentifier>2000</deviceIdentifier></deviceOnCall>
                    <callIdentifier><callID>{C1}</callID><deviceID>2000</deviceID></callIdentifier>
                    <localConnectionInfo>alerting</localConnectionInfo>
                  </snapshotCallResponseInfo>
                </snapshotData>
              </crossRefIDorSnapshotData>
            </SnapshotCallResponse>"""),
    # -- monitoring --------------------------------------------------------------------------------
    Golden(
        f"""<MonitorStart xmlns="{ED4}">
              <monitorObject><deviceObject>1000</deviceObject></monitorObject>
            </MonitorStart>""",
        [("dev:1000", "device.get", {})],
        {"ok": True, "device": "1000", "type": "ip", "logged_on": True, "lim": 1, "features": FEATURES,
         "calls": []},
        f"""<MonitorStartResponse xmlns="{ED4}">
              <monitorCrossRefID>1</monitorCrossRefID>
            </MonitorStartResponse>"""),
    Golden(
        f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID></MonitorStop>',
        [],
        None,
        f'<MonitorStopResponse xmlns="{ED4}"/>',
        setup=_start_monitor_on_1000),
    # -- system --------------------------------------------------------------------------------------
    Golden(
        f'<RequestSystemStatus xmlns="{ED4}"/>',
        [],
        None,
        f"""<RequestSystemStatusResponse xmlns="{ED4}">
              <systemStatus>normal</systemStatus>
            </RequestSystemStatusResponse>"""),
    Golden(
        f'<SystemRegister xmlns="{ED4}"/>',
        [],
        None,
        # SESSION is this session's number: register IDs are "<session>-<n>".
        f"""<SystemRegisterResponse xmlns="{ED4}">
              <sysStatRegisterID>SESSION-1</sysStatRegisterID>
            </SystemRegisterResponse>"""),
    Golden(
        # ECMA-269: the client tells the switch its own status; the switch acknowledges.
        f'<SystemStatus xmlns="{ED4}"><systemStatus>normal</systemStatus></SystemStatus>',
        [],
        None,
        f'<SystemStatusResponse xmlns="{ED4}"/>'),
    Golden(
        f'<SystemRegisterCancel xmlns="{ED4}"><sysStatRegisterID>SESSION-1</sysStatRegisterID>'
        f'</SystemRegisterCancel>',
        [],
        None,
        f'<SystemRegisterCancelResponse xmlns="{ED4}"/>',
        setup=lambda front, client: client.ask(1, f'<SystemRegister xmlns="{ED4}"/>')),
    Golden(
        f'<GetSwitchingFunctionDevices xmlns="{ED4}"/>',
        [],
        None,
        # ECMA-269: the response carries a cross-reference; the list follows in SwitchingFunctionDevices
        # messages (the default topology's 103 devices fit in one segment).
        f"""<GetSwitchingFunctionDevicesResponse xmlns="{ED4}">
              <serviceCrossRefID>SESSION-1</serviceCrossRefID>
            </GetSwitchingFunctionDevicesResponse>""",
        unsolicited=[f"""<SwitchingFunctionDevices xmlns="{ED4}">
                           <serviceCrossRefID>SESSION-1</serviceCrossRefID>
                           <segmentID>1</segmentID>
                           <lastSegment>true</lastSegment>
                           <deviceList>{SWITCHING_FUNCTION_DEVICES}</deviceList>
                         </SwitchingFunctionDevices>"""]),
    Golden(
        f'<GetCSTAFeatures xmlns="{ED4}"/>',
        [],
        None,
        # ECMA-269's capability lists in the standard's order, then the events the server reports.
        f"""<GetCSTAFeaturesResponse xmlns="{ED4}">
              <supportedServices>
                <capExchangeServList>
                  <getCSTAFeatures/>
                  <getLogicalDeviceInformation/>
                  <getPhysicalDeviceInformation/>
                  <getSwitchingFunctionCaps/>
                  <getSwitchingFunctionDevices/>
                </capExchangeServList>
                <systemStatServList>
                  <systemRegister/>
                  <systemStatusRegisterCancel/>
                  <requestSystemStatus/>
                  <systemStatus/>
                </systemStatServList>
                <monitoringServList>
                  <changeMonitorFilter/>
                  <monitorStart/>
                  <monitorStop/>
                </monitoringServList>
                <snapshotServList>
                  <snapshotCall/>
                  <snapshotDevice/>
                </snapshotServList>
                <callControlServList>
                  <alternateCall/>
                  <answerCall/>
                  <clearCall/>
                  <clearConnection/>
                  <conferenceCall/>
                  <consultationCall/>
                  <deflectCall/>
                  <holdCall/>
                  <makeCall/>
                  <makePredictiveCall/>
                  <reconnectCall/>
                  <retrieveCall/>
                  <singleStepTransfer/>
                  <transferCall/>
                </callControlServList>
                <callAssociatedServList>
                  <associateData/>
                  <generateDigits/>
                </callAssociatedServList>
                <routeingServList>
                  <routeRegister/>
                  <routeRegisterCancel/>
                  <reRoute/>
                  <routeEnd/>
                  <routeRequest/>
                  <routeSelect/>
                  <routeUsed/>
                </routeingServList>
                <physDevServList>
                  <getMessageWaitingIndicator/>
                  <setMessageWaitingIndicator/>
                </physDevServList>
                <logicalServList>
                  <getAgentState/>
                  <getDoNotDisturb/>
                  <getForwarding/>
                  <setAgentState/>
                  <setDoNotDisturb/>
                  <setForwarding/>
                </logicalServList>
              </supportedServices>
              <supportedEvents>
                <callControlEvtsList>
                  <callCleared/>
                  <conferenced/>
                  <connectionCleared/>
                  <delivered/>
                  <diverted/>
                  <established/>
                  <failed/>
                  <held/>
                  <netwReached/>
                  <originated/>
                  <queued/>
                  <retrieved/>
                  <serviceInitiated/>
                  <transferred/>
                </callControlEvtsList>
                <callAssociatedEvtsList>
                  <callInformation/>
                  <digitsGenerated/>
                </callAssociatedEvtsList>
                <physDevEvtsList>
                  <messageWaiting/>
                </physDevEvtsList>
                <logicalEvtsList>
                  <agentBusy/>
                  <agentLoggedOff/>
                  <agentLoggedOn/>
                  <agentNotReady/>
                  <agentReady/>
                  <agentWorkingAfterCall/>
                  <doNotDisturb/>
                  <forwarding/>
                </logicalEvtsList>
                <deviceMaintEvtsList>
                  <backInService/>
                  <outOfService/>
                </deviceMaintEvtsList>
              </supportedEvents>
            </GetCSTAFeaturesResponse>"""),
]
BY_NAME = {g.name: g for g in GOLDEN}


# Services whose documents are pinned in a file of their own (each case written from the schema).
GOLDEN_ELSEWHERE = {
    "ChangeMonitorFilter": "tests/unit/test_csta_monitor_edges.py",
    "GetSwitchingFunctionCaps": "tests/unit/test_csta_capabilities.py",
    "GetLogicalDeviceInformation": "tests/unit/test_csta_capabilities.py",
    "GetPhysicalDeviceInformation": "tests/unit/test_csta_capabilities.py",
    "AssociateData": "tests/unit/test_call_data.py",
    "MakePredictiveCall": "tests/unit/test_csta_predictive.py",
    "RouteRegister": "tests/unit/test_csta_routeing.py",
    "RouteRegisterCancel": "tests/unit/test_csta_routeing.py",
    "RouteSelect": "tests/unit/test_csta_routeing.py",
    "RouteEnd": "tests/unit/test_csta_routeing.py",
}


def test_every_service_has_a_golden():
    assert sorted([*BY_NAME, *GOLDEN_ELSEWHERE]) == sorted(SERVICES)
    assert len(BY_NAME) == len(GOLDEN)
    root = Path(__file__).resolve().parents[2]
    for name, path in GOLDEN_ELSEWHERE.items():
        assert name in (root / path).read_text(), f"{path} does not test {name}"


def test_every_service_is_in_a_capability_list():
    """GetCSTAFeatures reports a service only through its SERVICE_GROUPS list."""
    grouped = [name for caps in SERVICE_GROUPS.values() for name in caps.values()]
    # ... and the switching function's own requests of routeing (RouteRequest, ReRoute, RouteUsed).
    assert sorted(grouped) == sorted(set(SERVICES) | SWITCHING_FUNCTION_SERVICES)


def test_every_event_is_in_a_capability_list():
    """GetCSTAFeatures reports each event the interface sends, once, through its EVENT_GROUPS list."""
    grouped = [name for caps in EVENT_GROUPS.values() for name in caps.values()]
    assert sorted(grouped) == sorted(EVENT_NAMES)


def run_golden(front: FakeFront, client: FakeClient, golden: Golden, invoke_id: int = 4711):
    """The response frame; any unsolicited frames that follow it are checked against the golden's."""
    if golden.setup:
        golden.setup(front, client)
    front.bus.requests.clear()
    for dst, kind, _ in golden.bus:
        front.bus.answer(dst, kind, golden.replies.get((dst, kind), golden.reply))
    frames = client.send(invoke_id, golden.request.replace("SESSION", str(client.session.id)))
    assert [f.invoke_id for f in frames] == [invoke_id] + [EVENT_INVOKE_ID] * len(golden.unsolicited), \
        [f.xml for f in frames]
    for frame, expected in zip(frames[1:], golden.unsolicited):
        assert_xml(frame.xml, expected.replace("SESSION", str(client.session.id)))
    return frames[0]


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: g.name)
def test_service_golden(front, client, golden: Golden):
    frame = run_golden(front, client, golden)
    assert front.bus.requests == golden.bus
    assert_xml(frame.xml, golden.response.replace("SESSION", str(client.session.id)))
    # The session is still there for the next request.
    assert client.closes == 0
    assert_xml(client.ask(4712, f'<RequestSystemStatus xmlns="{ED4}"/>').xml,
               f'<RequestSystemStatusResponse xmlns="{ED4}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')


def test_response_bytes_on_the_wire(front, client):
    """One frame in full: J.2 header (length counts the header, invoke ID echoed as four digits),
    the XML declaration and the response in the client's namespace."""
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "hold"})
    client.send(42, GOLDEN[4].request)
    xml = (b"<?xml version='1.0' encoding='UTF-8'?>\n"
           b'<HoldCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>')
    assert client.raw == [b"\x00\x00" + (8 + len(xml)).to_bytes(2, "big") + b"0042" + xml]


def test_two_requests_in_one_chunk_answered_in_order(front, client):
    front.bus.default = {"ok": True, "device": "1000", "call_id": C1, "state": "hold"}
    frames = client.feed(encode_frame(1, BY_NAME["HoldCall"].request.encode())
                         + encode_frame(2, BY_NAME["RetrieveCall"].request.encode()))
    assert [f.invoke_id for f in frames] == [1, 2]
    assert_xml(frames[0].xml, f'<HoldCallResponse xmlns="{ED4}"/>')
    assert_xml(frames[1].xml, f'<RetrieveCallResponse xmlns="{ED4}"/>')


def test_set_forwarding_off_sends_no_destination(front, client):
    front.bus.answer("dev:1000", "feature", {"ok": True, "device": "1000", "forwarding": {}})
    frame = client.ask(5, f"""<SetForwarding xmlns="{ED4}">
                                <device>1000</device>
                                <forwardingType>forwardBusyInt</forwardingType>
                                <activateForward>false</activateForward>
                              </SetForwarding>""")
    assert front.bus.requests == [("dev:1000", "feature", {"feature": "forward", "type": "busy", "to": None,
                                                           "after_s": None})]
    assert_xml(frame.xml, f'<SetForwardingResponse xmlns="{ED4}"/>')


@pytest.mark.parametrize("requested, body", [
    ("loggedOff", {"action": "logout"}),
    ("ready", {"action": "ready"}),
    ("notReady", {"action": "notready"}),
    ("workingAfterCall", {"action": "wrapup"}),
])
def test_set_agent_state_requests(front, client, requested, body):
    front.bus.answer("dev:1000", "agent", {"ok": True, "device": "1000", "agent_state": "agentReady",
                                           "agent_id": "42", "group": "5000"})
    frame = client.ask(6, f'<SetAgentState xmlns="{ED4}"><device>1000</device>'
                          f'<requestedAgentState>{requested}</requestedAgentState></SetAgentState>')
    assert front.bus.requests == [("dev:1000", "agent", body)]
    assert_xml(frame.xml, f'<SetAgentStateResponse xmlns="{ED4}"/>')


def test_monitor_start_on_a_call(front, client):
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": C1, "controller": 1, "calling": "1000",
                                           "called": "2000", "cleared": False, "parties": []})
    frame = client.ask(8, f'<MonitorStart xmlns="{ED4}"><monitorObject><callObject><callID>{C1}</callID>'
                          f'</callObject></monitorObject></MonitorStart>')
    assert front.bus.requests == [("lim-1", "call.get", {"call_id": C1})]
    assert front.bus.subscribed == [f"c:{C1}|"]
    assert_xml(frame.xml, f'<MonitorStartResponse xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>'
                          f'</MonitorStartResponse>')


# =================================================================================================
# 2. LIM refusals -> CSTAErrorCode, on the request's invoke ID
# =================================================================================================
# (LIM error code, the service that meets it, the CSTAErrorCode content). Written out, not derived
# from LIM_ERRORS, so a change of mapping shows here.
LIM_ERROR_CASES = [
    ("unknown_number", "HoldCall", "<operation>invalidDeviceID</operation>"),
    ("unknown_request", "SnapshotDevice", "<operation>serviceNotSupported</operation>"),
    ("bad_request", "SetForwarding", "<operation>invalidParameterValue</operation>"),
    ("bad_digits", "GenerateDigits", "<operation>invalidParameterValue</operation>"),
    ("unknown_action", "AnswerCall", "<operation>invalidParameterValue</operation>"),
    ("unknown_feature", "SetDoNotDisturb", "<operation>invalidFeature</operation>"),
    ("no_such_connection", "HoldCall", "<operation>invalidConnectionID</operation>"),
    ("no_such_call", "ClearCall", "<operation>invalidCallID</operation>"),
    ("not_a_phone", "AnswerCall", "<operation>requestIncompatibleWithObject</operation>"),
    ("not_an_extension", "GetDoNotDisturb", "<operation>requestIncompatibleWithObject</operation>"),
    ("not_a_terminal", "HoldCall", "<operation>requestIncompatibleWithObject</operation>"),
    ("virtual", "AnswerCall", "<operation>requestIncompatibleWithObject</operation>"),
    ("forward_to_self", "SetForwarding", "<operation>invalidForwardingDestination</operation>"),
    ("forward_loop", "SetForwarding", "<operation>invalidForwardingDestination</operation>"),
    ("unknown_group", "SetAgentState", "<operation>invalidAgentGroup</operation>"),
    ("not_a_member", "SetAgentState", "<operation>invalidAgentGroup</operation>"),
    ("bad_agent_id", "SetAgentState", "<operation>invalidAgentIdentifier</operation>"),
    ("already_logged_on", "SetAgentState", "<operation>invalidAgentState</operation>"),
    ("not_logged_on", "SetAgentState", "<operation>invalidAgentState</operation>"),
    ("busy", "RetrieveCall", "<stateIncompatibility>invalidObjectState</stateIncompatibility>"),
    ("not_alerting", "AnswerCall", "<stateIncompatibility>noCallToAnswer</stateIncompatibility>"),
    ("idle", "ClearConnection", "<stateIncompatibility>noConnectionToClear</stateIncompatibility>"),
    ("no_active_call", "HoldCall", "<stateIncompatibility>noActiveCall</stateIncompatibility>"),
    ("no_held_call", "RetrieveCall", "<stateIncompatibility>noHeldCall</stateIncompatibility>"),
    ("not_queued", "AnswerCall", "<stateIncompatibility>invalidObjectState</stateIncompatibility>"),
    ("out_of_service", "MakeCall", "<systemResourceAvailibility>resourceOutOfService</systemResourceAvailibility>"),
    ("lim_down", "HoldCall", "<systemResourceAvailibility>resourceOutOfService</systemResourceAvailibility>"),
    # The bus still failing over at the request's deadline (it was sent again until then).
    ("broker_failover", "HoldCall", "<systemResourceAvailibility>resourceBusy</systemResourceAvailibility>"),
    ("unreachable", "GetForwarding", "<systemResourceAvailibility>resourceOutOfService</systemResourceAvailibility>"),
    ("trunks_busy", "MakeCall", "<systemResourceAvailibility>resourceBusy</systemResourceAvailibility>"),
    ("timeout", "GetAgentState", "<systemResourceAvailibility>resourceBusy</systemResourceAvailibility>"),
    ("conference_full", "ConferenceCall",
     "<systemResourceAvailibility>conferenceMemberLimitExceeded</systemResourceAvailibility>"),
    # A code the front end does not know (lim/control.py answers "refused" and "cleared").
    ("refused", "DeflectCall", "<operation>generic</operation>"),
    # Service-specific mappings.
    ("unknown_number", "MakeCall", "<operation>invalidCalledDeviceID</operation>"),
    ("bad_digits", "MakeCall", "<operation>invalidCalledDeviceID</operation>"),
    ("unknown_number", "MonitorStart", "<operation>invalidMonitorObject</operation>"),
    ("unreachable", "SnapshotCall", "<operation>invalidCallID</operation>"),
    ("lim_down", "SnapshotCall", "<operation>invalidCallID</operation>"),
    ("no_such_call", "SnapshotCall", "<operation>invalidCallID</operation>"),
]


def test_every_lim_error_code_has_a_case():
    assert set(LIM_ERRORS) <= {code for code, _, _ in LIM_ERROR_CASES}


@pytest.mark.parametrize("code, service, error", LIM_ERROR_CASES,
                         ids=[f"{c}-{s}" for c, s, _ in LIM_ERROR_CASES])
def test_lim_error_mapping(front, client, code, service, error):
    golden = BY_NAME[service]
    front.bus.default = {"ok": False, "error": code, "message": f"refused: {code}"}
    frame = client.ask(1234, golden.request)
    assert front.bus.requests == golden.bus
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}">{error}</CSTAErrorCode>')


def test_make_call_from_an_unallocated_device(front, client):
    """ECMA-323 invalidCallingDeviceID, found in the directory before anything is asked of a LIM
    (an unknown_number from the bus is about the called device: invalidCalledDeviceID above)."""
    assert front.directory.owner("9999") is None
    frame = client.ask(3, f'<MakeCall xmlns="{ED4}"><callingDevice>9999</callingDevice>'
                          f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>')
    assert front.bus.requests == []
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCallingDeviceID</operation>'
                          f'</CSTAErrorCode>')
    assert client.closes == 0


# =================================================================================================
# 3. Every event: bus event -> ECMA-323 event document
# =================================================================================================
def call_event(event: str, device: str | None, cause: str | None, connections, **fields) -> dict:
    """A call event as lim/state.py `emit` publishes it."""
    return {"event": event, "call_id": C1, "device": device, "cause": cause, "calling": "1000",
            "called": "2000", "connections": connections, "lim": 1, "time": 17.0, **fields}


def device_event(event: str, device: str, **fields) -> dict:
    """A device event as lim/state.py `emit_device` publishes it."""
    return {"event": event, "call_id": None, "device": device, "cause": None, "connections": [], "lim": 1,
            "time": 17.0, **fields}


def conn(device: str, call_id: str = C1) -> str:
    return f"<callID>{call_id}</callID><deviceID>{device}</deviceID>"


def dev(number: str) -> str:
    return f"<deviceIdentifier>{number}</deviceIdentifier>"


NOT_REQUIRED = "<notRequired/>"  # ECMA-269: the call was never redirected

# (bus event, monitored device or None for a call monitor, expected event document). xref is "7".
EVENTS = [
    pytest.param(
        {"event": "CallInformation", "call_id": C1, "device": "1000", "cause": None, "calling": "1000",
         "called": "2000", "connections": [["1000", "connected"]], "data": {"correlator": "C0FFEE01", "account": "4711"}},
        "1000",
        f"""<CallInformationEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <connection>{conn("1000")}</connection>
              <device>{dev("1000")}</device>
              <callingDevice>{dev("1000")}</callingDevice>
              <accountInfo>4711</accountInfo>
              <correlatorData><string>C0FFEE01</string></correlatorData>
            </CallInformationEvent>""", id="CallInformation"),
    pytest.param(
        call_event("ServiceInitiated", "1000", "newCall", [["1000", "initiated"]], called=None),
        "1000",
        f"""<ServiceInitiatedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <initiatedConnection>{conn("1000")}</initiatedConnection>
              <initiatingDevice>{dev("1000")}</initiatingDevice>
              <localConnectionInfo>initiated</localConnectionInfo>
              <cause>newCall</cause>
            </ServiceInitiatedEvent>""", id="ServiceInitiated"),
    pytest.param(
        call_event("Originated", "1000", "newCall", [["1000", "connected"]]),
        "1000",
        f"""<OriginatedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <originatedConnection>{conn("1000")}</originatedConnection>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("2000")}</calledDevice>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>newCall</cause>
            </OriginatedEvent>""", id="Originated"),
    pytest.param(
        call_event("Delivered", "2000", "newCall", [["1000", "connected"], ["2000", "alerting"]], alerting="2000"),
        "1000",
        f"""<DeliveredEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <connection>{conn("2000")}</connection>
              <alertingDevice>{dev("2000")}</alertingDevice>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("2000")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>newCall</cause>
            </DeliveredEvent>""", id="Delivered-at-caller"),
    pytest.param(
        call_event("Delivered", "6001", "distributed", [["1000", "connected"], ["6001", "alerting"]],
                   called="6000", alerting="6001", last_redirection="6000"),
        "6001",
        f"""<DeliveredEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <connection>{conn("6001")}</connection>
              <alertingDevice>{dev("6001")}</alertingDevice>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("6000")}</calledDevice>
              <lastRedirectionDevice><numberDialed>6000</numberDialed></lastRedirectionDevice>
              <localConnectionInfo>alerting</localConnectionInfo>
              <cause>distributed</cause>
            </DeliveredEvent>""", id="Delivered-via-hunt-group"),
    pytest.param(
        call_event("Delivered", "2000", "newCall", [["1000", "connected"], ["2000", "alerting"]], alerting="2000"),
        None,
        f"""<DeliveredEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <connection>{conn("2000")}</connection>
              <alertingDevice>{dev("2000")}</alertingDevice>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("2000")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <cause>newCall</cause>
            </DeliveredEvent>""", id="Delivered-call-monitor"),
    pytest.param(
        call_event("Established", "2000", "newCall", [["1000", "connected"], ["2000", "connected"]],
                   answering="2000"),
        "2000",
        f"""<EstablishedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <establishedConnection>{conn("2000")}</establishedConnection>
              <answeringDevice>{dev("2000")}</answeringDevice>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("2000")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>newCall</cause>
            </EstablishedEvent>""", id="Established"),
    pytest.param(
        call_event("Held", "1000", "keyOperation", [["1000", "hold"], ["2000", "connected"]], holding="1000"),
        "1000",
        f"""<HeldEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <heldConnection>{conn("1000")}</heldConnection>
              <holdingDevice>{dev("1000")}</holdingDevice>
              <localConnectionInfo>hold</localConnectionInfo>
              <cause>keyOperation</cause>
            </HeldEvent>""", id="Held"),
    pytest.param(
        call_event("Retrieved", "1000", "alternate", [["1000", "connected"], ["2000", "connected"]],
                   retrieving="1000"),
        "2000",
        f"""<RetrievedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <retrievedConnection>{conn("1000")}</retrievedConnection>
              <retrievingDevice>{dev("1000")}</retrievingDevice>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>alternate</cause>
            </RetrievedEvent>""", id="Retrieved"),
    pytest.param(
        call_event("ConnectionCleared", "2000", "normalClearing", [["1000", "connected"]], dropped="2000"),
        "2000",
        f"""<ConnectionClearedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <droppedConnection>{conn("2000")}</droppedConnection>
              <releasingDevice>{dev("2000")}</releasingDevice>
              <localConnectionInfo>null</localConnectionInfo>
              <cause>normalClearing</cause>
            </ConnectionClearedEvent>""", id="ConnectionCleared"),
    pytest.param(
        call_event("CallCleared", None, "normalClearing", []),
        "1000",
        f"""<CallClearedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <clearedCall><callID>{C1}</callID></clearedCall>
              <cause>normalClearing</cause>
            </CallClearedEvent>""", id="CallCleared"),
    pytest.param(
        call_event("Transferred", "1000", "transfer", [["2000", "connected"], ["1001", "connected"]],
                   calling="2000", transferring="1000", transferred="2000", transferred_to="1001",
                   moved=["1001"], primary_old_call=C1, secondary_old_call=C2),
        "2000",
        f"""<TransferedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <primaryOldCall>{conn("1000")}</primaryOldCall>
              <secondaryOldCall>{conn("1000", C2)}</secondaryOldCall>
              <transferringDevice>{dev("1000")}</transferringDevice>
              <transferredToDevice>{dev("1001")}</transferredToDevice>
              <transferredConnections>
                <connectionListItem><newConnection>{conn("2000")}</newConnection></connectionListItem>
                <connectionListItem>
                  <newConnection>{conn("1001")}</newConnection>
                  <oldConnection>{conn("1001", C2)}</oldConnection>
                </connectionListItem>
              </transferredConnections>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>transfer</cause>
            </TransferedEvent>""", id="Transferred"),
    pytest.param(
        call_event("Transferred", "1000", "singleStepTransfer", [["2000", "connected"]],
                   calling="2000", transferring="1000", transferred="2000", transferred_to="1001"),
        "1000",
        f"""<TransferedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <primaryOldCall>{conn("1000")}</primaryOldCall>
              <transferringDevice>{dev("1000")}</transferringDevice>
              <transferredToDevice>{dev("1001")}</transferredToDevice>
              <transferredConnections>
                <connectionListItem><newConnection>{conn("2000")}</newConnection></connectionListItem>
              </transferredConnections>
              <localConnectionInfo>null</localConnectionInfo>
              <cause>singleStepTransfer</cause>
            </TransferedEvent>""", id="Transferred-single-step"),
    pytest.param(
        call_event("Conferenced", "1000", "conference",
                   [["2000", "connected"], ["1000", "connected"], ["1001", "connected"]],
                   conferencing="1000", added=["1001"], moved=["1001"], primary_old_call=C1,
                   secondary_old_call=C2),
        "1000",
        f"""<ConferencedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <primaryOldCall>{conn("1000")}</primaryOldCall>
              <secondaryOldCall>{conn("1000", C2)}</secondaryOldCall>
              <conferencingDevice>{dev("1000")}</conferencingDevice>
              <addedParty>{dev("1001")}</addedParty>
              <conferenceConnections>
                <connectionListItem><newConnection>{conn("2000")}</newConnection></connectionListItem>
                <connectionListItem><newConnection>{conn("1000")}</newConnection></connectionListItem>
                <connectionListItem>
                  <newConnection>{conn("1001")}</newConnection>
                  <oldConnection>{conn("1001", C2)}</oldConnection>
                </connectionListItem>
              </conferenceConnections>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>conference</cause>
            </ConferencedEvent>""", id="Conferenced"),
    pytest.param(
        call_event("Diverted", "2000", "callForwardImmediate", [["1000", "connected"]], diverted_to="1001"),
        "2000",
        f"""<DivertedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <connection>{conn("2000")}</connection>
              <divertingDevice>{dev("2000")}</divertingDevice>
              <newDestination>{dev("1001")}</newDestination>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("2000")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <localConnectionInfo>null</localConnectionInfo>
              <cause>callForwardImmediate</cause>
            </DivertedEvent>""", id="Diverted"),
    pytest.param(
        call_event("Failed", "1000", "busy", [["1000", "fail"]], failing="2000"),
        "1000",
        f"""<FailedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <failedConnection>{conn("1000")}</failedConnection>
              <failingDevice>{dev("2000")}</failingDevice>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("2000")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <localConnectionInfo>fail</localConnectionInfo>
              <cause>busy</cause>
            </FailedEvent>""", id="Failed"),
    pytest.param(
        call_event("Queued", "5000", "enteringDistribution", [["1000", "connected"], ["5000", "queued"]],
                   called="5000", queued="5000", queue_position=2),
        "1000",
        f"""<QueuedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <queuedConnection>{conn("5000")}</queuedConnection>
              <queue>{dev("5000")}</queue>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("5000")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <numberQueued>2</numberQueued>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>enteringDistribution</cause>
            </QueuedEvent>""", id="Queued"),
    pytest.param(
        call_event("NetworkReached", "0046812345", "networkSignal",
                   [["1000", "connected"], ["0046812345", "alerting"]], called="0046812345"),
        "1000",
        f"""<NetworkReachedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <outboundConnection>{conn("0046812345")}</outboundConnection>
              <networkInterfaceUsed>{dev("0046812345")}</networkInterfaceUsed>
              <callingDevice>{dev("1000")}</callingDevice>
              <calledDevice>{dev("0046812345")}</calledDevice>
              <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
              <localConnectionInfo>connected</localConnectionInfo>
              <cause>networkSignal</cause>
            </NetworkReachedEvent>""", id="NetworkReached"),
    pytest.param(
        call_event("DigitsGenerated", "1000", "dTMFDigitDetected", [["1000", "connected"], ["2000", "connected"]],
                   digits="12#"),
        "2000",
        f"""<DigitsGeneratedEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <connection>{conn("1000")}</connection>
              <digitGeneratedList>12#</digitGeneratedList>
            </DigitsGeneratedEvent>""", id="DigitsGenerated"),
    pytest.param(
        device_event("DoNotDisturb", "1000", do_not_disturb=True),
        "1000",
        f"""<DoNotDisturbEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <device>{dev("1000")}</device>
              <doNotDisturbOn>true</doNotDisturbOn>
            </DoNotDisturbEvent>""", id="DoNotDisturb"),
    pytest.param(
        device_event("Forwarding", "1000", forwarding_type="noanswer", forward_to="2000", forwarding_on=True,
                     forwarding={"all": None, "busy": None, "noanswer": "2000", "noanswer_s": 15.0}),
        "1000",
        f"""<ForwardingEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <device>{dev("1000")}</device>
              <forwardingType>forwardNoAns</forwardingType>
              <forwardStatus>true</forwardStatus>
              <forwardTo>2000</forwardTo>
            </ForwardingEvent>""", id="Forwarding"),
    pytest.param(
        device_event("Forwarding", "1000", forwarding_type="busy", forward_to=None, forwarding_on=False,
                     forwarding={"all": None, "busy": None, "noanswer": None, "noanswer_s": 15.0}),
        "1000",
        f"""<ForwardingEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <device>{dev("1000")}</device>
              <forwardingType>forwardBusy</forwardingType>
              <forwardStatus>false</forwardStatus>
            </ForwardingEvent>""", id="Forwarding-off"),
    pytest.param(
        device_event("AgentLoggedOn", "1000", agent_id="42", group="5000"),
        "5000",
        f"""<AgentLoggedOnEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <agentDevice>{dev("1000")}</agentDevice>
              <agentID>42</agentID>
              <acdGroup>5000</acdGroup>
            </AgentLoggedOnEvent>""", id="AgentLoggedOn"),
    pytest.param(
        device_event("AgentLoggedOff", "1000", agent_id="42", group="5000"),  # the agent that was logged on
        "1000",
        f"""<AgentLoggedOffEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <agentDevice>{dev("1000")}</agentDevice>
              <agentID>42</agentID>
              <acdGroup>5000</acdGroup>
            </AgentLoggedOffEvent>""", id="AgentLoggedOff"),
    *[pytest.param(
        device_event(name, "1000", agent_id="42", group="5000", agent_state=state),
        "1000",
        f"""<{name}Event xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <agentDevice>{dev("1000")}</agentDevice>
              <agentID>42</agentID>
              <acdGroup>5000</acdGroup>
            </{name}Event>""", id=name)
      for name, state in [("AgentReady", "agentReady"), ("AgentNotReady", "agentNotReady"),
                          ("AgentBusy", "agentBusy"), ("AgentWorkingAfterCall", "agentWorkingAfterCall")]],
    pytest.param(
        device_event("MessageWaiting", "1000", message_waiting=True),
        "1000",
        f"""<MessageWaitingEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <targetDevice>{dev("1000")}</targetDevice>
              <messageWaitingOn>true</messageWaitingOn>
            </MessageWaitingEvent>""", id="MessageWaiting"),
    pytest.param(
        device_event("OutOfService", "1000"),
        "1000",
        f"""<OutOfServiceEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <device>{dev("1000")}</device>
            </OutOfServiceEvent>""", id="OutOfService"),
    pytest.param(
        {"event": "BackInService", "device": "1000", "call_id": None},  # as FrontEnd.on_member makes it
        "1000",
        f"""<BackInServiceEvent xmlns="{ED4}">
              <monitorCrossRefID>7</monitorCrossRefID>
              <device>{dev("1000")}</device>
            </BackInServiceEvent>""", id="BackInService"),
]


def test_every_event_has_a_golden():
    assert {p.values[0]["event"] for p in EVENTS} == set(EVENT_NAMES)


@pytest.mark.parametrize("body, monitored, expected", EVENTS)
def test_event_golden(body, monitored, expected):
    assert_xml(event_xml(ED4, body, "7", monitored), expected)


def test_event_in_the_session_namespace():
    body = call_event("Held", "1000", "keyOperation", [["1000", "hold"]], holding="1000")
    assert_xml(event_xml(ED6, body, "12", None),
               f"""<HeldEvent xmlns="{ED6}">
                     <monitorCrossRefID>12</monitorCrossRefID>
                     <heldConnection>{conn("1000")}</heldConnection>
                     <holdingDevice>{dev("1000")}</holdingDevice>
                     <cause>keyOperation</cause>
                   </HeldEvent>""")


@pytest.mark.parametrize("body", [{"event": "Offered", "call_id": C1, "device": "1000"}, {"device": "1000"}])
def test_events_the_interface_does_not_report(body):
    assert event_xml(ED4, body, "7", "1000") is None


# =================================================================================================
# 4. Namespaces and device IDs
# =================================================================================================
def make_call_response(ns: str) -> str:
    return (f'<MakeCallResponse xmlns="{ns}"><callingDevice><callID>{C1}</callID><deviceID>1000</deviceID>'
            f'</callingDevice></MakeCallResponse>')


NAMESPACED_REQUESTS = [
    pytest.param(ED3, f'<MakeCall xmlns="{ED3}"><callingDevice>1000</callingDevice>'
                      f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>', id="ed3"),
    pytest.param(ED5, f'<MakeCall xmlns="{ED5}"><callingDevice>1000</callingDevice>'
                      f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>', id="ed5"),
    pytest.param(ED6, f'<MakeCall xmlns="{ED6}"><callingDevice>1000</callingDevice>'
                      f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>', id="ed6"),
    pytest.param(ED5, f'<?xml version="1.0" encoding="UTF-8"?>'
                      f'<ns3:MakeCall xmlns:ns3="{ED5}"><ns3:callingDevice>1000</ns3:callingDevice>'
                      f'<ns3:calledDirectoryNumber>2000</ns3:calledDirectoryNumber></ns3:MakeCall>', id="prefix"),
    pytest.param(ED5, f'<MakeCall xmlns="{ED5}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                      f'xsi:schemaLocation="{ED5} csta-make-call.xsd"><callingDevice>1000</callingDevice>'
                      f'<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>', id="schemaLocation"),
    pytest.param(ED4, '<MakeCall><callingDevice>1000</callingDevice>'
                      '<calledDirectoryNumber>2000</calledDirectoryNumber></MakeCall>', id="no-namespace"),
    pytest.param(ED4, '<MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed9">'
                      '<callingDevice>1000</callingDevice><calledDirectoryNumber>2000</calledDirectoryNumber>'
                      '</MakeCall>', id="unknown-edition"),
]


@pytest.mark.parametrize("ns, request_xml", NAMESPACED_REQUESTS)
def test_answered_in_the_clients_namespace(front, client, ns, request_xml):
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "connected"})
    frame = client.ask(21, request_xml)
    assert front.bus.requests == [("dev:1000", "phone", {"action": "dial", "digits": "2000"})]
    assert_xml(frame.xml, make_call_response(ns))
    # Its errors and its events too.
    assert_xml(client.ask(22, b"<oops").xml,
               f'<CSTAErrorCode xmlns="{ns}"><operation>invalidParameterValue</operation></CSTAErrorCode>')


def test_prefixed_response_is_written_with_a_default_namespace(front, client):
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "connected"})
    frame = client.ask(21, NAMESPACED_REQUESTS[3].values[1])
    assert frame.xml == (b"<?xml version='1.0' encoding='UTF-8'?>\n" + make_call_response(ED5).encode())


def test_events_follow_the_session_namespace(front, client):
    front.bus.default = {"ok": True, "device": "1000", "calls": []}
    client.ask(1, f'<ns1:MonitorStart xmlns:ns1="{ED3}"><ns1:monitorObject><ns1:deviceObject>1000'
                  f'</ns1:deviceObject></ns1:monitorObject></ns1:MonitorStart>')
    front.publish_device("1000", device_event("DoNotDisturb", "1000", do_not_disturb=False))
    assert client.frames[-1].invoke_id == EVENT_INVOKE_ID
    assert_xml(client.frames[-1].xml,
               f'<DoNotDisturbEvent xmlns="{ED3}"><monitorCrossRefID>1</monitorCrossRefID>'
               f'<device>{dev("1000")}</device><doNotDisturbOn>false</doNotDisturbOn></DoNotDisturbEvent>')


@pytest.mark.parametrize("calling, called, dst, digits", [
    ("tel:1000;phone-context=dialstring", "tel:2000;phone-context=dialstring", "dev:1000", "2000"),
    ("1000", "tel:+3222220220", "dev:1000", "003222220220"),
    ('<deviceID typeOfNumber="dialingNumber">1000</deviceID>', "2000", "dev:1000", "2000"),
    ("sip:1000@mx-one.example;user=phone", "sips:2000@mx-one.example", "dev:1000", "2000"),
    ("1000", "+46 8 123-456", "dev:1000", "00468123456"),
])
def test_device_ids(front, client, calling, called, dst, digits):
    front.bus.answer(dst, "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "connected"})
    if calling.startswith("<"):  # an element with attributes, where a device ID goes
        calling = calling.replace("deviceID", "callingDevice")
        body = f"{calling}<calledDirectoryNumber>{called}</calledDirectoryNumber>"
    else:
        body = f"<callingDevice>{calling}</callingDevice><calledDirectoryNumber>{called}</calledDirectoryNumber>"
    frame = client.ask(9, f'<MakeCall xmlns="{ED4}">{body}</MakeCall>')
    assert front.bus.requests == [(dst, "phone", {"action": "dial", "digits": digits})]
    assert_xml(frame.xml, make_call_response(ED4))


def test_connection_device_id_with_attributes(front, client):
    front.bus.answer("dev:1000", "phone", {"ok": True, "device": "1000", "call_id": C1, "state": "connected"})
    frame = client.ask(9, f"""<AnswerCall xmlns="{ED4}">
                                <callToBeAnswered>
                                  <callID>{C1}</callID>
                                  <deviceID typeOfNumber="dialingNumber">tel:1000;phone-context=dialstring</deviceID>
                                </callToBeAnswered>
                              </AnswerCall>""")
    assert front.bus.requests == [("dev:1000", "phone", {"action": "answer", "call_id": C1})]
    assert_xml(frame.xml, f'<AnswerCallResponse xmlns="{ED4}"/>')


# =================================================================================================
# 5. Bad input at the session level
# =================================================================================================
BAD_REQUESTS = [
    pytest.param(b'<MakeCall xmlns="' + ED4.encode() + b'"><callingDevice>1000</callingDevice>',
                 "<operation>invalidParameterValue</operation>", id="malformed"),
    pytest.param(b"", "<operation>invalidParameterValue</operation>", id="empty"),
    pytest.param(b'<?xml version="1.0"?><!DOCTYPE MakeCall [<!ENTITY e "1000">]><MakeCall xmlns="'
                 + ED4.encode() + b'"><callingDevice>&e;</callingDevice></MakeCall>',
                 "<operation>invalidParameterValue</operation>", id="doctype"),
    pytest.param(b'<?xml version="1.0" encoding="ISO-8859-1"?><MakeCall/>',
                 "<operation>invalidParameterValue</operation>", id="not-utf8"),
    pytest.param(f'<FrobnicateCall xmlns="{ED4}"/>'.encode(),
                 "<operation>serviceNotSupported</operation>", id="unknown-request"),
    pytest.param(f'<MakeCall xmlns="{ED4}"><callingDevice>1000</callingDevice></MakeCall>'.encode(),
                 "<operation>invalidDeviceID</operation>", id="MakeCall-no-called"),
    pytest.param(f'<AnswerCall xmlns="{ED4}"/>'.encode(),
                 "<operation>invalidConnectionID</operation>", id="AnswerCall-no-connection"),
    pytest.param(f'<AnswerCall xmlns="{ED4}"><callToBeAnswered><callID>{C1}</callID></callToBeAnswered>'
                 f'</AnswerCall>'.encode(),
                 "<operation>invalidConnectionID</operation>", id="AnswerCall-no-deviceID"),
    pytest.param(f'<TransferCall xmlns="{ED4}"><heldCall><callID>{C1}</callID><deviceID>1000</deviceID></heldCall>'
                 f'<activeCall><callID>{C2}</callID><deviceID>1001</deviceID></activeCall></TransferCall>'.encode(),
                 "<operation>invalidConnectionID</operation>", id="TransferCall-two-devices"),
    pytest.param(f'<GenerateDigits xmlns="{ED4}"><connectionToSendDigits><callID>{C1}</callID><deviceID>1000'
                 f'</deviceID></connectionToSendDigits></GenerateDigits>'.encode(),
                 "<operation>invalidParameterValue</operation>", id="GenerateDigits-no-digits"),
    pytest.param(f'<SetDoNotDisturb xmlns="{ED4}"><device>1000</device><doNotDisturbOn>maybe</doNotDisturbOn>'
                 f'</SetDoNotDisturb>'.encode(),
                 "<operation>invalidParameterValue</operation>", id="SetDoNotDisturb-not-boolean"),
    pytest.param(f'<SetForwarding xmlns="{ED4}"><device>1000</device><forwardingType>forwardDND</forwardingType>'
                 f'<activateForward>true</activateForward><forwardDN>2000</forwardDN></SetForwarding>'.encode(),
                 "<operation>invalidForwardingType</operation>", id="SetForwarding-unsupported-type"),
    pytest.param(f'<SetForwarding xmlns="{ED4}"><device>1000</device><forwardingType>forwardImmediate'
                 f'</forwardingType><activateForward>true</activateForward></SetForwarding>'.encode(),
                 "<operation>invalidForwardingDestination</operation>", id="SetForwarding-no-destination"),
    pytest.param(f'<SetForwarding xmlns="{ED4}"><device>1000</device><forwardingType>forwardNoAns</forwardingType>'
                 f'<activateForward>true</activateForward><forwardDN>2000</forwardDN><ringCount>99</ringCount>'
                 f'</SetForwarding>'.encode(),
                 "<operation>invalidParameterValue</operation>", id="SetForwarding-ring-count"),
    pytest.param(f'<SetAgentState xmlns="{ED4}"><device>1000</device><requestedAgentState>busy'
                 f'</requestedAgentState></SetAgentState>'.encode(),
                 "<operation>invalidAgentState</operation>", id="SetAgentState-bad-state"),
    pytest.param(f'<SnapshotCall xmlns="{ED4}"><snapshotObject><callID>12</callID></snapshotObject>'
                 f'</SnapshotCall>'.encode(),
                 "<operation>invalidCallID</operation>", id="SnapshotCall-bad-call-id"),
    pytest.param(f'<MonitorStart xmlns="{ED4}"><monitorObject/></MonitorStart>'.encode(),
                 "<operation>invalidMonitorObject</operation>", id="MonitorStart-no-object"),
    pytest.param(f'<MonitorStop xmlns="{ED4}"/>'.encode(),
                 "<operation>invalidParameterValue</operation>", id="MonitorStop-no-xref"),
    pytest.param(f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>99</monitorCrossRefID></MonitorStop>'.encode(),
                 "<operation>invalidCrossRefID</operation>", id="MonitorStop-unknown-xref"),
    pytest.param(f'<ResumeApplicationSession xmlns="{ACSE}"/>'.encode(),
                 "<operation>serviceNotSupported</operation>", id="unknown-ECMA-354-request"),
]


@pytest.mark.parametrize("xml, error", BAD_REQUESTS)
def test_bad_request_then_next_request(front, client, xml, error):
    frame = client.ask(77, xml)
    assert front.bus.requests == []
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}">{error}</CSTAErrorCode>')
    # The session goes on.
    assert client.closes == 0
    assert_xml(client.ask(78, f'<RequestSystemStatus xmlns="{ED4}"/>').xml,
               f'<RequestSystemStatusResponse xmlns="{ED4}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')


@pytest.mark.parametrize("data", [
    pytest.param(b"\x00\x00\x00\x03", id="length-shorter-than-header"),
    pytest.param(b"\x00\x00\x00\x07" + b"0001", id="length-7"),
    pytest.param(b"\x01\x00\x00\x10", id="bad-marker"),
    pytest.param(b"\x00\x00\x00\x0cab12<a/>", id="bad-invoke-id"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="http"),
])
def test_framing_error_closes_the_session(front, client, data):
    client.feed(data)
    assert client.closes == 1
    assert client.session.closed
    # Nothing more is sent, whatever arrives later.
    assert client.feed(encode_frame(1, f'<RequestSystemStatus xmlns="{ED4}"/>'.encode())) == []
    assert client.frames == []
    assert client.closes == 1


def test_framing_error_after_a_good_frame_in_the_same_chunk(front, client):
    """The frame before the error is answered, as it would be had TCP split the bytes there; then
    the session closes."""
    client.feed(encode_frame(1, f'<RequestSystemStatus xmlns="{ED4}"/>'.encode()) + b"\x00\x00\x00\x02")
    assert client.closes == 1
    assert [f.invoke_id for f in client.frames] == [1]


def test_framing_error_closes_monitors(front, client):
    front.bus.default = {"ok": True, "device": "1000", "calls": []}
    client.ask(1, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                  f'</monitorObject></MonitorStart>')
    client.feed(b"\xff")
    assert client.closes == 1
    assert front.monitors.by_xref == {}
    assert front.bus.unsubscribed == ["d:1000|"]


def test_request_split_across_chunks(front, client):
    frame = encode_frame(3, f'<RequestSystemStatus xmlns="{ED4}"/>'.encode())
    assert client.feed(frame[:3]) == []
    assert client.feed(frame[3:11]) == []
    frames = client.feed(frame[11:])
    assert [f.invoke_id for f in frames] == [3]


# =================================================================================================
# 6. ECMA-354 application sessions
# =================================================================================================
def start_session(version: str | None = ED5, app: str | None = "golden-test", duration: str | None = "60") -> str:
    parts = [f"<applicationInfo><applicationID>{app}</applicationID></applicationInfo>" if app is not None
             else "<applicationInfo/>"]
    if version is not None:
        parts.append(f"<requestedProtocolVersions><protocolVersion>{version}</protocolVersion>"
                     f"</requestedProtocolVersions>")
    if duration is not None:
        parts.append(f"<requestedSessionDuration>{duration}</requestedSessionDuration>")
    return f'<StartApplicationSession xmlns="{ACSE}">{"".join(parts)}</StartApplicationSession>'


def session_id_of(frame) -> str:
    found = etree.fromstring(frame.xml).find(f"{{{ACSE}}}sessionID")
    assert found is not None and re.fullmatch(r"[0-9a-f]{32}", found.text), frame.xml
    return found.text


@pytest.mark.parametrize("version", [ED3, ED4, ED5, ED6])
def test_start_application_session(front, client, version):
    frame = client.ask(1, start_session(version))
    sid = session_id_of(frame)
    assert_xml(frame.xml, f"""<StartApplicationSessionPosResponse xmlns="{ACSE}">
                                <sessionID>{sid}</sessionID>
                                <actualProtocolVersion>{version}</actualProtocolVersion>
                                <actualSessionDuration>60</actualSessionDuration>
                              </StartApplicationSessionPosResponse>""")
    # Requests without a namespace, and errors, are answered in the negotiated edition.
    assert_xml(client.ask(2, "<RequestSystemStatus/>").xml,
               f'<RequestSystemStatusResponse xmlns="{version}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')
    assert_xml(client.ask(3, b"<broken").xml,
               f'<CSTAErrorCode xmlns="{version}"><operation>invalidParameterValue</operation></CSTAErrorCode>')


def test_start_application_session_first_supported_version_and_default_duration(front, client):
    xml = (f'<StartApplicationSession xmlns="{ACSE}"><applicationInfo><applicationID>x</applicationID>'
           f'</applicationInfo><requestedProtocolVersions>'
           f'<protocolVersion>http://www.ecma-international.org/standards/ecma-323/csta/ed2</protocolVersion>'
           f'<protocolVersion>{ED6}</protocolVersion><protocolVersion>{ED3}</protocolVersion>'
           f'</requestedProtocolVersions></StartApplicationSession>')
    frame = client.ask(1, xml)
    sid = session_id_of(frame)
    assert_xml(frame.xml, f"""<StartApplicationSessionPosResponse xmlns="{ACSE}">
                                <sessionID>{sid}</sessionID>
                                <actualProtocolVersion>{ED6}</actualProtocolVersion>
                                <actualSessionDuration>86400</actualSessionDuration>
                              </StartApplicationSessionPosResponse>""")


# Private variants of an edition, as Avaya DMCC clients ask for them (".../csta/ed3/priv5"): the
# version is granted as asked, and the documents are the edition's.
@pytest.mark.parametrize("edition,private", [(ED3, "priv5"), (ED3, "priv1"), (ED6, "priv2")])
def test_start_application_session_private_variant(front, client, edition, private):
    version = f"{edition}/{private}"
    frame = client.ask(1, start_session(version))
    sid = session_id_of(frame)
    assert_xml(frame.xml, f"""<StartApplicationSessionPosResponse xmlns="{ACSE}">
                                <sessionID>{sid}</sessionID>
                                <actualProtocolVersion>{version}</actualProtocolVersion>
                                <actualSessionDuration>60</actualSessionDuration>
                              </StartApplicationSessionPosResponse>""")
    assert_xml(client.ask(2, "<RequestSystemStatus/>").xml,
               f'<RequestSystemStatusResponse xmlns="{edition}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')
    # A document in the private variant's namespace is answered in the edition's.
    assert_xml(client.ask(3, f'<RequestSystemStatus xmlns="{version}"/>').xml,
               f'<RequestSystemStatusResponse xmlns="{edition}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')


@pytest.mark.parametrize("version", [
    "http://www.ecma-international.org/standards/ecma-323/csta/ed2/priv1",  # an edition not served
    f"{ED3}/private5", f"{ED3}/priv", f"{ED3}/priv5/x", f"{ED3}priv5", "3.0"])
def test_start_application_session_unknown_private_forms(front, client, version):
    frame = client.ask(1, start_session(version))
    assert_xml(frame.xml, f"""<StartApplicationSessionNegResponse xmlns="{ACSE}">
                                <errorCode><definedError>requestedProtocolVersionNotSupported</definedError></errorCode>
                              </StartApplicationSessionNegResponse>""")


def test_start_application_session_unsupported_version(front, client):
    frame = client.ask(1, start_session("http://www.ecma-international.org/standards/ecma-323/csta/ed2"))
    assert_xml(frame.xml, f"""<StartApplicationSessionNegResponse xmlns="{ACSE}">
                                <errorCode><definedError>requestedProtocolVersionNotSupported</definedError></errorCode>
                              </StartApplicationSessionNegResponse>""")
    assert client.closes == 0
    assert client.session.app_session is None


@pytest.mark.parametrize("app", [None, ""])
def test_start_application_session_without_application_id(front, client, app):
    frame = client.ask(1, start_session(ED4, app=app))
    assert_xml(frame.xml, f"""<StartApplicationSessionNegResponse xmlns="{ACSE}">
                                <errorCode><definedError>invalidApplicationInfo</definedError></errorCode>
                              </StartApplicationSessionNegResponse>""")
    assert client.session.app_session is None


def test_reset_application_session_timer(front, client):
    sid = session_id_of(client.ask(1, start_session(ED4, duration="60")))
    front.advance(50)
    frame = client.ask(2, f'<ResetApplicationSessionTimer xmlns="{ACSE}"><sessionID>{sid}</sessionID>'
                          f'<requestedSessionDuration>120</requestedSessionDuration></ResetApplicationSessionTimer>')
    assert_xml(frame.xml, f"""<ResetApplicationSessionTimerPosResponse xmlns="{ACSE}">
                                <actualSessionDuration>120</actualSessionDuration>
                              </ResetApplicationSessionTimerPosResponse>""")
    front.advance(119)  # past the first deadline, not the new one
    assert client.closes == 0
    front.advance(1)
    assert client.closes == 1


def test_reset_application_session_timer_keeps_the_duration(front, client):
    """Without requestedSessionDuration the session keeps the duration it has (ECMA-354), also one
    set by an earlier reset."""
    sid = session_id_of(client.ask(1, start_session(ED4, duration="60")))
    reset = f'<ResetApplicationSessionTimer xmlns="{ACSE}"><sessionID>{sid}</sessionID>{{}}</ResetApplicationSessionTimer>'
    front.advance(50)
    assert_xml(client.ask(2, reset.format("")).xml,
               f"""<ResetApplicationSessionTimerPosResponse xmlns="{ACSE}">
                     <actualSessionDuration>60</actualSessionDuration>
                   </ResetApplicationSessionTimerPosResponse>""")
    front.advance(50)  # past the first deadline
    assert client.closes == 0
    assert_xml(client.ask(3, reset.format("<requestedSessionDuration>90</requestedSessionDuration>")).xml,
               f'<ResetApplicationSessionTimerPosResponse xmlns="{ACSE}"><actualSessionDuration>90'
               f'</actualSessionDuration></ResetApplicationSessionTimerPosResponse>')
    assert_xml(client.ask(4, reset.format("")).xml,
               f'<ResetApplicationSessionTimerPosResponse xmlns="{ACSE}"><actualSessionDuration>90'
               f'</actualSessionDuration></ResetApplicationSessionTimerPosResponse>')
    front.advance(89)
    assert client.closes == 0
    front.advance(1)
    assert client.closes == 1


@pytest.mark.parametrize("name", ["ResetApplicationSessionTimer", "StopApplicationSession"])
def test_application_session_requests_with_a_wrong_session_id(front, client, name):
    client.ask(1, start_session(ED4))
    frame = client.ask(2, f'<{name} xmlns="{ACSE}"><sessionID>not-mine</sessionID></{name}>')
    assert_xml(frame.xml, f"""<{name}NegResponse xmlns="{ACSE}">
                                <errorCode><definedError>invalidSessionID</definedError></errorCode>
                              </{name}NegResponse>""")
    assert client.closes == 0


def test_stop_application_session_closes(front, client):
    sid = session_id_of(client.ask(1, start_session(ED4)))
    front.bus.default = {"ok": True, "device": "1000", "calls": []}
    client.ask(2, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                  f'</monitorObject></MonitorStart>')
    frame = client.ask(3, f'<StopApplicationSession xmlns="{ACSE}"><sessionID>{sid}</sessionID>'
                          f'<sessionEndReason><definedEndReason>normal</definedEndReason></sessionEndReason>'
                          f'</StopApplicationSession>')
    assert_xml(frame.xml, f'<StopApplicationSessionPosResponse xmlns="{ACSE}"/>')
    assert client.closes == 1
    assert front.monitors.by_xref == {}
    assert client.send(4, f'<RequestSystemStatus xmlns="{ED4}"/>') == []
    front.publish_device("1000", device_event("OutOfService", "1000"))
    assert len(client.frames) == 3


def test_session_timer_runs_out(front, client):
    sid = session_id_of(client.ask(1, start_session(ED4, duration="30")))
    front.bus.default = {"ok": True, "device": "1000", "calls": []}
    client.ask(2, f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>1000</deviceObject>'
                  f'</monitorObject></MonitorStart>')
    front.advance(29.5)
    assert client.closes == 0
    front.advance(0.5)
    assert client.closes == 1
    assert client.session.closed
    # The monitor ends first (ECMA-269 Monitor Stop, invoked by the switching function) ...
    assert client.frames[2].invoke_id == 9000
    assert_xml(client.frames[2].xml, f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID></MonitorStop>')
    # ... then ECMA-354: ApplicationSessionTerminated (sessionID, sessionTermReason/definedTermReason), the close.
    assert client.frames[3].invoke_id == EVENT_INVOKE_ID
    assert_xml(client.frames[3].xml, f"""<ApplicationSessionTerminated xmlns="{ACSE}">
                                           <sessionID>{sid}</sessionID>
                                           <sessionTermReason><definedTermReason>sessionTimerExpired</definedTermReason>
                                           </sessionTermReason>
                                         </ApplicationSessionTerminated>""")
    assert front.monitors.by_xref == {}
    assert front.bus.unsubscribed == ["d:1000|"]
    front.publish_device("1000", device_event("OutOfService", "1000"))
    assert len(client.frames) == 4  # nothing after the two responses, the monitor's end and the termination
    front.advance(86_400)
    assert client.closes == 1


def test_session_without_application_session_has_no_timer(front, client):
    front.advance(10 * 86_400)
    assert client.closes == 0


# =================================================================================================
# 7. SystemStatus greeting, SystemRegister
# =================================================================================================
def test_system_status_on_connect():
    front = FakeFront(CstaSettings(system_status_on_connect=True))
    client = FakeClient(front)
    client.session.connection_made()
    # The server's own requests count from 9000, away from the invoke IDs clients start with.
    assert [f.invoke_id for f in client.frames] == [9000]
    assert_xml(client.frames[0].xml,
               f'<SystemStatus xmlns="{ED4}"><systemStatus>normal</systemStatus></SystemStatus>')
    # The client's answer gets no answer.
    assert client.send(9000, f'<SystemStatusResponse xmlns="{ED4}"/>') == []
    # SystemRegisterAbort goes from server to client: a client sending it is not served.
    frame = client.ask(2, f'<SystemRegisterAbort xmlns="{ED4}"/>')
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}"><operation>serviceNotSupported</operation></CSTAErrorCode>')
    frame = client.ask(3, f'<SystemRegister xmlns="{ED4}"><requestTypes><systemStatus>true</systemStatus>'
                          f'</requestTypes></SystemRegister>')
    assert_xml(frame.xml, f"""<SystemRegisterResponse xmlns="{ED4}">
                                <sysStatRegisterID>{client.session.id}-1</sysStatRegisterID>
                              </SystemRegisterResponse>""")
    frame = client.ask(4, f'<SystemRegister xmlns="{ED4}"/>')
    assert_xml(frame.xml, f'<SystemRegisterResponse xmlns="{ED4}"><sysStatRegisterID>{client.session.id}-2'
                          f'</sysStatRegisterID></SystemRegisterResponse>')
    assert front.bus.requests == []


def test_no_greeting_unless_configured(front, client):
    client.session.connection_made()
    assert client.frames == []


# =================================================================================================
# 8. Monitors
# =================================================================================================
DEVICE_GET_OK = {"ok": True, "device": "1000", "type": "ip", "logged_on": True, "lim": 1, "features": FEATURES,
                 "calls": []}


def monitor_start(number: str, monitor_filter: str = "") -> str:
    return (f'<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject>{number}</deviceObject></monitorObject>'
            f'{monitor_filter}</MonitorStart>')


DELIVERED = call_event("Delivered", "2000", "newCall", [["1000", "connected"], ["2000", "alerting"]],
                       alerting="2000")
ESTABLISHED = call_event("Established", "2000", "newCall", [["1000", "connected"], ["2000", "connected"]],
                         answering="2000")


def test_monitor_start_and_events(front, client):
    front.bus.default = DEVICE_GET_OK
    frame = client.ask(5, monitor_start("1000"))
    assert_xml(frame.xml, f'<MonitorStartResponse xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>'
                          f'</MonitorStartResponse>')
    assert front.bus.subscribed == ["d:1000|"]
    front.publish_device("1000", DELIVERED)
    front.publish_device("2000", ESTABLISHED)  # not watched
    event = client.frames[-1]
    assert event.invoke_id == EVENT_INVOKE_ID == 9999
    assert len(client.frames) == 2
    assert_xml(event.xml, f"""<DeliveredEvent xmlns="{ED4}">
                                <monitorCrossRefID>1</monitorCrossRefID>
                                <connection>{conn("2000")}</connection>
                                <alertingDevice>{dev("2000")}</alertingDevice>
                                <callingDevice>{dev("1000")}</callingDevice>
                                <calledDevice>{dev("2000")}</calledDevice>
                                <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
                                <localConnectionInfo>connected</localConnectionInfo>
                                <cause>newCall</cause>
                              </DeliveredEvent>""")


def test_call_monitor_events_have_no_local_connection_info(front, client):
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": C1, "controller": 1, "calling": "1000",
                                           "called": "2000", "cleared": False, "parties": []})
    client.ask(5, f'<MonitorStart xmlns="{ED4}"><monitorObject><callObject><callID>{C1}</callID></callObject>'
                  f'</monitorObject></MonitorStart>')
    front.publish_call(C1, ESTABLISHED)
    assert_xml(client.frames[-1].xml, f"""<EstablishedEvent xmlns="{ED4}">
                                            <monitorCrossRefID>1</monitorCrossRefID>
                                            <establishedConnection>{conn("2000")}</establishedConnection>
                                            <answeringDevice>{dev("2000")}</answeringDevice>
                                            <callingDevice>{dev("1000")}</callingDevice>
                                            <calledDevice>{dev("2000")}</calledDevice>
                                            <lastRedirectionDevice>{NOT_REQUIRED}</lastRedirectionDevice>
                                            <cause>newCall</cause>
                                          </EstablishedEvent>""")


def test_monitor_filter(front, client):
    front.bus.default = DEVICE_GET_OK
    client.ask(5, monitor_start("1000", """<requestedMonitorFilter>
                                              <callcontrol><delivered>true</delivered><held>false</held></callcontrol>
                                              <logicalDeviceFeature><doNotDisturb>true</doNotDisturb></logicalDeviceFeature>
                                            </requestedMonitorFilter>"""))
    front.publish_device("1000", DELIVERED)
    front.publish_device("1000", device_event("DoNotDisturb", "1000", do_not_disturb=True))
    assert len(client.frames) == 1  # the response only
    front.publish_device("1000", ESTABLISHED)
    front.publish_device("1000", call_event("Held", "1000", "keyOperation", [["1000", "hold"]], holding="1000"))
    names = [etree.QName(etree.fromstring(f.xml)).localname for f in client.frames[1:]]
    assert names == ["EstablishedEvent", "HeldEvent"]


def test_two_sessions_watching_one_device(front):
    a, b = FakeClient(front, "a"), FakeClient(front, "b")
    front.bus.default = DEVICE_GET_OK
    client_ns = {a: ED4, b: ED5}
    a.ask(1, monitor_start("1000"))
    b.ask(1, monitor_start("1000").replace(ED4, ED5))
    assert front.bus.subscribed == ["d:1000|"]  # one subscription for both
    front.publish_device("1000", device_event("MessageWaiting", "1000", message_waiting=False))
    for xref, c in (("1", a), ("2", b)):
        assert_xml(c.frames[-1].xml, f'<MessageWaitingEvent xmlns="{client_ns[c]}"><monitorCrossRefID>{xref}'
                                     f'</monitorCrossRefID><targetDevice>{dev("1000")}</targetDevice>'
                                     f'<messageWaitingOn>false</messageWaitingOn></MessageWaitingEvent>')
    a.session.close()
    assert front.bus.unsubscribed == []  # b still watches
    front.publish_device("1000", device_event("OutOfService", "1000"))
    assert len(a.frames) == 2 and len(b.frames) == 3


def test_monitor_limit():
    front = FakeFront(CstaSettings(max_monitors=2))
    client = FakeClient(front)
    front.bus.default = DEVICE_GET_OK
    client.ask(1, monitor_start("1000"))
    client.ask(2, monitor_start("1001"))
    frame = client.ask(3, monitor_start("1002"))
    assert_xml(frame.xml, f"""<CSTAErrorCode xmlns="{ED4}">
                                <systemResourceAvailibility>overallMonitorLimitExceeded</systemResourceAvailibility>
                              </CSTAErrorCode>""")
    assert len(front.bus.requests) == 3
    # A stopped monitor frees its place.
    client.ask(4, f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID></MonitorStop>')
    assert_xml(client.ask(5, monitor_start("1002")).xml,
               f'<MonitorStartResponse xmlns="{ED4}"><monitorCrossRefID>3</monitorCrossRefID>'
               f'</MonitorStartResponse>')


def test_monitor_stop_of_another_sessions_monitor(front):
    a, b = FakeClient(front, "a"), FakeClient(front, "b")
    front.bus.default = DEVICE_GET_OK
    a.ask(1, monitor_start("1000"))
    frame = b.ask(2, f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID></MonitorStop>')
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCrossRefID</operation>'
                          f'</CSTAErrorCode>')
    assert "1" in front.monitors.by_xref
    front.publish_device("1000", device_event("OutOfService", "1000"))
    assert len(a.frames) == 2


def test_monitor_stop(front, client):
    front.bus.default = DEVICE_GET_OK
    client.ask(1, monitor_start("1000"))
    assert_xml(client.ask(2, f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>'
                             f'</MonitorStop>').xml, f'<MonitorStopResponse xmlns="{ED4}"/>')
    assert front.bus.unsubscribed == ["d:1000|"]
    front.publish_device("1000", DELIVERED)
    assert len(client.frames) == 2
    # Stopping it again: the cross-reference ID is no longer valid.
    assert_xml(client.ask(3, f'<MonitorStop xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>'
                             f'</MonitorStop>').xml,
               f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCrossRefID</operation></CSTAErrorCode>')


def test_closing_a_session_stops_its_monitors(front, client):
    front.bus.default = DEVICE_GET_OK
    client.ask(1, monitor_start("1000"))
    client.ask(2, monitor_start("1001"))
    other = FakeClient(front, "other")
    other.ask(1, monitor_start("1002"))
    client.session.close()
    assert client.closes == 1
    assert sorted(m.target for m in front.monitors.by_xref.values()) == ["1002"]
    assert sorted(front.bus.unsubscribed) == ["d:1000|", "d:1001|"]
    client.session.close()  # twice is harmless
    assert client.closes == 1


def test_monitor_start_on_an_unknown_device(front, client):
    front.bus.answer("dev:1999", "device.get", {"ok": False, "error": "unknown_number",
                                                "message": "number 1999 is not allocated"})
    frame = client.ask(1, monitor_start("1999"))
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidMonitorObject</operation>'
                          f'</CSTAErrorCode>')
    assert front.monitors.by_xref == {}
    assert front.bus.subscribed == []


# =================================================================================================
# ECMA-269 / ECMA-323 forms the product once deviated from (each was a strict xfail until fixed)
# =================================================================================================
def test_agent_event_acd_group_per_ecma_323():
    """ECMA-269 agent events carry acdGroup as a DeviceID, not a SubjectDeviceID wrapper."""
    body = device_event("AgentReady", "1000", agent_id="42", group="5000", agent_state="agentReady")
    assert_xml(event_xml(ED4, body, "7", "1000"),
               f"""<AgentReadyEvent xmlns="{ED4}">
                     <monitorCrossRefID>7</monitorCrossRefID>
                     <agentDevice>{dev("1000")}</agentDevice>
                     <agentID>42</agentID>
                     <acdGroup>5000</acdGroup>
                   </AgentReadyEvent>""")


def test_get_agent_state_response_per_ecma_323(front, client):
    """ECMA-323 agentStateEntry: agentID?, loggedOnState, agentInfo/agentInfoItem(acdGroup as DeviceID, agentState)."""
    golden = BY_NAME["GetAgentState"]
    frame = run_golden(front, client, golden)
    assert_xml(frame.xml, f"""<GetAgentStateResponse xmlns="{ED4}">
                                <agentStateList>
                                  <agentStateEntry>
                                    <agentID>42</agentID>
                                    <loggedOnState>true</loggedOnState>
                                    <agentInfo>
                                      <agentInfoItem>
                                        <acdGroup>5000</acdGroup>
                                        <agentState>agentReady</agentState>
                                      </agentInfoItem>
                                    </agentInfo>
                                  </agentStateEntry>
                                </agentStateList>
                              </GetAgentStateResponse>""")


def test_get_agent_state_of_a_device_with_no_agent(front, client):
    """No agent logged on: loggedOnState false, no agentID and no acdGroup."""
    front.bus.answer("dev:1000", "feature.get", {"ok": True, "device": "1000", **FEATURES})
    frame = client.ask(3, f'<GetAgentState xmlns="{ED4}"><device>1000</device></GetAgentState>')
    assert_xml(frame.xml, f"""<GetAgentStateResponse xmlns="{ED4}">
                                <agentStateList>
                                  <agentStateEntry>
                                    <loggedOnState>false</loggedOnState>
                                    <agentInfo>
                                      <agentInfoItem><agentState>agentNull</agentState></agentInfoItem>
                                    </agentInfo>
                                  </agentStateEntry>
                                </agentStateList>
                              </GetAgentStateResponse>""")


def test_last_redirection_device_of_a_direct_call_per_ecma_269():
    """ECMA-269 RedirectionDeviceID: notRequired when no redirection happened (notKnown would claim one
    by an unknown device)."""
    body = call_event("Delivered", "2000", "newCall", [["1000", "connected"], ["2000", "alerting"]], alerting="2000")
    root = etree.fromstring(event_xml(ED4, body, "7", "1000"))
    assert canon(etree.tostring(root.find(f"{{{ED4}}}lastRedirectionDevice"))) == canon(
        f'<lastRedirectionDevice xmlns="{ED4}"><notRequired/></lastRedirectionDevice>')


def test_get_switching_function_devices_of_a_large_exchange():
    """ECMA-269 delivers the device list in SwitchingFunctionDevices segments, so any exchange fits the
    J.2 frame limit (65527 bytes of XML); the union of the segments lists every device once."""
    numbers = [str(10000 + i) for i in range(2 * DEVICES_PER_SEGMENT + 1)] + [str(20000 + i) for i in range(800)]
    topology = SimpleNamespace(extensions=Extensions.of(Extension(n, "ip", 1, True) for n in numbers), acd_groups=[],
                               hunt_groups=[], trunks=[], ddi=(), group_owners=dict)
    front = FakeFront(topology=topology)
    client = FakeClient(front)
    frames = client.send(1, f'<GetSwitchingFunctionDevices xmlns="{ED4}"/>')
    assert not client.session.closed
    assert all(len(f.xml) <= 65527 for f in frames)
    response, segments = frames[0], frames[1:]
    xref = f"{client.session.id}-1"
    assert response.invoke_id == 1
    assert_xml(response.xml, f'<GetSwitchingFunctionDevicesResponse xmlns="{ED4}"><serviceCrossRefID>{xref}'
                             f'</serviceCrossRefID></GetSwitchingFunctionDevicesResponse>')
    count = -(-len(numbers) // DEVICES_PER_SEGMENT)
    assert count == 7 and len(segments) == count
    listed = []
    for index, frame in enumerate(segments, 1):
        assert frame.invoke_id == EVENT_INVOKE_ID
        root = etree.fromstring(frame.xml)
        assert etree.QName(root).localname == "SwitchingFunctionDevices"
        assert [etree.QName(el).localname for el in root] == ["serviceCrossRefID", "segmentID", "lastSegment",
                                                             "deviceList"]
        assert root.findtext(f"{{{ED4}}}serviceCrossRefID") == xref
        assert root.findtext(f"{{{ED4}}}segmentID") == str(index)
        assert root.findtext(f"{{{ED4}}}lastSegment") == ("true" if index == count else "false")
        items = root.findall(f"{{{ED4}}}deviceList/{{{ED4}}}device")
        assert 0 < len(items) <= DEVICES_PER_SEGMENT
        assert {item.findtext(f"{{{ED4}}}deviceCategory") for item in items} == {"station"}
        listed += [item.findtext(f"{{{ED4}}}deviceID") for item in items]
    assert listed == numbers
    # The session goes on.
    assert_xml(client.ask(2, f'<RequestSystemStatus xmlns="{ED4}"/>').xml,
               f'<RequestSystemStatusResponse xmlns="{ED4}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')


def test_get_switching_function_devices_of_an_empty_exchange():
    """No device at all: still one (last) segment, with an empty list."""
    topology = SimpleNamespace(extensions=Extensions(), acd_groups=[], hunt_groups=[], trunks=[], ddi=(), group_owners=dict)
    client = FakeClient(FakeFront(topology=topology))
    frames = client.send(1, f'<GetSwitchingFunctionDevices xmlns="{ED4}"/>')
    assert [f.invoke_id for f in frames] == [1, EVENT_INVOKE_ID]
    xref = f"{client.session.id}-1"
    assert_xml(frames[1].xml, f"""<SwitchingFunctionDevices xmlns="{ED4}">
                                    <serviceCrossRefID>{xref}</serviceCrossRefID>
                                    <segmentID>1</segmentID>
                                    <lastSegment>true</lastSegment>
                                    <deviceList/>
                                  </SwitchingFunctionDevices>""")


# =================================================================================================
# Faults of the server's own: one request fails with operation/generic, the session goes on
# =================================================================================================
def test_a_failing_service_handler_answers_generic(front, client, monkeypatch):
    def broken(call):
        raise RuntimeError("a bug in a handler")
    monkeypatch.setitem(SERVICES, "SystemRegister", broken)
    frame = client.ask(5, f'<SystemRegister xmlns="{ED4}"/>')
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}"><operation>generic</operation></CSTAErrorCode>')
    assert client.closes == 0 and not client.session.closed
    assert_xml(client.ask(6, f'<RequestSystemStatus xmlns="{ED4}"/>').xml,
               f'<RequestSystemStatusResponse xmlns="{ED4}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')


@pytest.mark.parametrize("service, reply", [
    pytest.param("MakeCall", {"ok": True, "device": "1000", "state": "connected"}, id="MakeCall-no-call_id"),
    pytest.param("GetAgentState", {"ok": True, "device": "1000"}, id="GetAgentState-no-agent_state"),
    pytest.param("GetAgentState", {"ok": True, "device": "1000", **FEATURES, "agent_state": "agentLost"},
                 id="GetAgentState-unknown-state"),
    pytest.param("SnapshotDevice", {"ok": True, "device": "1000", "calls": [{"call_id": C1}]},
                 id="SnapshotDevice-call-without-connections"),
])
def test_an_unusable_lim_answer_gives_generic(front, client, caplog, service, reply):
    """Caught where the answer is used (ServiceCall.ask), not only by the session: a real bus
    delivers the answer later, outside the handler."""
    golden = BY_NAME[service]
    front.bus.default = reply
    frame = client.ask(7, golden.request)
    assert front.bus.requests == golden.bus
    assert any("unusable answer" in r.getMessage() for r in caplog.records), caplog.text
    assert_xml(frame.xml, f'<CSTAErrorCode xmlns="{ED4}"><operation>generic</operation></CSTAErrorCode>')
    assert client.closes == 0
    assert_xml(client.ask(8, f'<RequestSystemStatus xmlns="{ED4}"/>').xml,
               f'<RequestSystemStatusResponse xmlns="{ED4}"><systemStatus>normal</systemStatus>'
               f'</RequestSystemStatusResponse>')
