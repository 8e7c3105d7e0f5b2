"""The ECMA-323 validator (tests/ecma323_validator.py) against documents written from the standard.

The valid documents follow ECMA-323's schema and ECMA-354's (and, for MakeCallResponse, what a real
MX-ONE was seen answering, /work/shared/REFERENCE.md); each invalid one has one fault of a kind the
validator must catch, including every deviation the server once had.
"""
from __future__ import annotations

import pytest

from tests.ecma323_validator import validate

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED5 = "http://www.ecma-international.org/standards/ecma-323/csta/ed5"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
ACSE = "http://www.ecma-international.org/standards/ecma-354/appl_session"
CALL = "000000000032214180010035"  # a call ID as the MX-ONE trace shows them

DELIVERED = f"""<DeliveredEvent xmlns="{{ns}}">
  <monitorCrossRefID>12</monitorCrossRefID>
  <connection><callID>{CALL}</callID><deviceID>2000</deviceID></connection>
  <alertingDevice><deviceIdentifier>2000</deviceIdentifier></alertingDevice>
  <callingDevice><deviceIdentifier>1000</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>2000</deviceIdentifier></calledDevice>
  <lastRedirectionDevice>{{redirection}}</lastRedirectionDevice>
  <localConnectionInfo>alerting</localConnectionInfo>
  <cause>newCall</cause>
</DeliveredEvent>"""

VALID = {
    "MakeCallResponse, as the MX-ONE answers": f"""<MakeCallResponse xmlns="{ED4}">
        <callingDevice><callID>{CALL}</callID><deviceID>200</deviceID></callingDevice></MakeCallResponse>""",
    "DeliveredEvent, never redirected": DELIVERED.format(ns=ED4, redirection="<notRequired/>"),
    "DeliveredEvent through a hunt group": DELIVERED.format(ns=ED6, redirection="<numberDialed>6000</numberDialed>"),
    "DeliveredEvent in ed3": DELIVERED.format(ns=ED3, redirection="<notKnown/>"),
    "DeliveredEvent in ed5": DELIVERED.format(ns=ED5, redirection="<restricted/>"),
    "TransferedEvent": f"""<TransferedEvent xmlns="{ED4}">
        <monitorCrossRefID>3</monitorCrossRefID>
        <primaryOldCall><callID>1</callID><deviceID>1000</deviceID></primaryOldCall>
        <secondaryOldCall><callID>2</callID><deviceID>1000</deviceID></secondaryOldCall>
        <transferringDevice><deviceIdentifier>1000</deviceIdentifier></transferringDevice>
        <transferredToDevice><deviceIdentifier>3000</deviceIdentifier></transferredToDevice>
        <transferredConnections>
          <connectionListItem><newConnection><callID>1</callID><deviceID>2000</deviceID></newConnection></connectionListItem>
          <connectionListItem><newConnection><callID>1</callID><deviceID>3000</deviceID></newConnection>
            <oldConnection><callID>2</callID><deviceID>3000</deviceID></oldConnection></connectionListItem>
        </transferredConnections>
        <localConnectionInfo>null</localConnectionInfo>
        <cause>transfer</cause>
      </TransferedEvent>""",
    "CSTAErrorCode systemResourceAvailibility": f"""<CSTAErrorCode xmlns="{ED4}">
        <systemResourceAvailibility>resourceBusy</systemResourceAvailibility></CSTAErrorCode>""",
    "CSTAErrorCode invalidCalledDeviceID": f"""<CSTAErrorCode xmlns="{ED6}">
        <operation>invalidCalledDeviceID</operation></CSTAErrorCode>""",
    "CSTAErrorCode unspecified": f'<CSTAErrorCode xmlns="{ED3}"><unspecified/></CSTAErrorCode>',
    "SnapshotCallResponse": f"""<SnapshotCallResponse xmlns="{ED4}"><crossRefIDorSnapshotData><snapshotData>
        <snapshotCallResponseInfo><deviceOnCall><deviceIdentifier>1000</deviceIdentifier></deviceOnCall>
          <callIdentifier><callID>1</callID><deviceID>1000</deviceID></callIdentifier>
          <localConnectionInfo>connected</localConnectionInfo></snapshotCallResponseInfo>
        </snapshotData></crossRefIDorSnapshotData></SnapshotCallResponse>""",
    "SwitchingFunctionDevices": f"""<SwitchingFunctionDevices xmlns="{ED4}">
        <serviceCrossRefID>1-1</serviceCrossRefID><segmentID>1</segmentID><lastSegment>true</lastSegment>
        <deviceList><device><deviceID>1000</deviceID><deviceCategory>station</deviceCategory></device>
          <device><deviceID>5000</deviceID><deviceCategory>acd</deviceCategory></device></deviceList>
      </SwitchingFunctionDevices>""",
    "GetCSTAFeaturesResponse": f"""<GetCSTAFeaturesResponse xmlns="{ED4}">
        <supportedServices>
          <systemStatServList><systemRegister/><requestSystemStatus/></systemStatServList>
          <callControlServList><makeCall/><singleStepTransfer/></callControlServList>
          <physDevServList><getMessageWaitingIndicator/></physDevServList>
          <logicalServList><getAgentState/></logicalServList>
        </supportedServices>
        <supportedEvents>
          <callControlEvtsList><netwReached/><transferred/></callControlEvtsList>
          <physDevEvtsList><messageWaiting/></physDevEvtsList>
          <logicalEvtsList><agentReady/></logicalEvtsList>
          <deviceMaintEvtsList><outOfService/></deviceMaintEvtsList>
        </supportedEvents>
      </GetCSTAFeaturesResponse>""",
    "MonitorStart with a prefix and a device ID attribute": f"""<c:MonitorStart xmlns:c="{ED5}"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="{ED5} csta.xsd">
        <c:monitorObject><c:deviceObject typeOfNumber="dialingNumber">1000</c:deviceObject></c:monitorObject>
        <c:monitorType>device</c:monitorType></c:MonitorStart>""",
    "StartApplicationSessionPosResponse": f"""<StartApplicationSessionPosResponse xmlns="{ACSE}">
        <sessionID>abc</sessionID><actualProtocolVersion>{ED4}</actualProtocolVersion>
        <actualSessionDuration>60</actualSessionDuration></StartApplicationSessionPosResponse>""",
    "StartApplicationSession with vendor credentials": f"""<StartApplicationSession xmlns="{ACSE}">
        <applicationInfo><applicationID>app</applicationID><applicationSpecificInfo>
          <SessionLoginInfo xmlns="urn:vendor"><userName>u</userName><password>p</password></SessionLoginInfo>
        </applicationSpecificInfo></applicationInfo>
        <requestedProtocolVersions><protocolVersion>{ED4}</protocolVersion></requestedProtocolVersions>
      </StartApplicationSession>""",
}


@pytest.mark.parametrize("xml", VALID.values(), ids=VALID.keys())
def test_valid_documents(xml):
    assert validate(xml) == []


INVALID = [
    # (name, document, a piece of the one problem it must report)
    ("wrong root", f'<MakeCallAnswer xmlns="{ED4}"/>', "/MakeCallAnswer: not a root element of the ed3 schema"),
    ("wrong namespace", '<MakeCallResponse xmlns="urn:csta"/>', "namespace 'urn:csta' is not"),
    ("no namespace", "<MakeCallResponse/>", "namespace None is not"),
    ("unknown edition", f'<MakeCallResponse xmlns="{ED6[:-1]}7"/>', "is not an ECMA-323 edition"),
    ("child in another namespace", f"""<MakeCallResponse xmlns="{ED4}"><callingDevice>
        <callID xmlns="{ED6}">1</callID></callingDevice></MakeCallResponse>""",
     "/MakeCallResponse/callingDevice/callID: element in namespace"),
    ("unknown child", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        <heldDevice><deviceIdentifier>1</deviceIdentifier></heldDevice><cause>keyOperation</cause></HeldEvent>""",
     "/HeldEvent/heldDevice: unknown child of HeldEvent"),
    ("wrong order", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID><cause>keyOperation</cause>
        <holdingDevice><deviceIdentifier>1</deviceIdentifier></holdingDevice></HeldEvent>""",
     "/HeldEvent/holdingDevice: out of order in HeldEvent"),
    ("bad enumeration", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        <cause>onHold</cause></HeldEvent>""", "/HeldEvent/cause: 'onHold' is not a EventCause"),
    ("required element missing", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        </HeldEvent>""", "/HeldEvent: required <cause> is missing"),
    ("bad boolean", f"""<DoNotDisturbEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        <device><deviceIdentifier>1000</deviceIdentifier></device><doNotDisturbOn>on</doNotDisturbOn>
        </DoNotDisturbEvent>""", "/DoNotDisturbEvent/doNotDisturbOn: 'on' is not a boolean"),
    ("bad integer", f"""<SwitchingFunctionDevices xmlns="{ED4}"><serviceCrossRefID>1</serviceCrossRefID>
        <segmentID>first</segmentID><lastSegment>true</lastSegment></SwitchingFunctionDevices>""",
     "/SwitchingFunctionDevices/segmentID: 'first' is not an integer (xs:long)"),
    ("integer out of range", f"""<ResetApplicationSessionTimerPosResponse xmlns="{ACSE}">
        <actualSessionDuration>1.5</actualSessionDuration></ResetApplicationSessionTimerPosResponse>""",
     "actualSessionDuration: '1.5' is not an integer"),
    ("too many occurrences", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        <monitorCrossRefID>2</monitorCrossRefID><cause>keyOperation</cause></HeldEvent>""",
     "/HeldEvent/monitorCrossRefID[2]: <monitorCrossRefID> occurs more often than HeldEvent allows"),
    ("two alternatives of a choice", f"""<CSTAErrorCode xmlns="{ED4}"><operation>generic</operation>
        <unspecified/></CSTAErrorCode>""", "/CSTAErrorCode/unspecified: out of order in UniversalFailure"),
    ("text in an Empty element", f'<CSTAErrorCode xmlns="{ED4}"><unspecified>why</unspecified></CSTAErrorCode>',
     "/CSTAErrorCode/unspecified: is Empty: no text allowed, found 'why'"),
    ("child in an Empty element", f"""<CSTAErrorCode xmlns="{ED4}"><unspecified><operation>generic</operation>
        </unspecified></CSTAErrorCode>""", "/CSTAErrorCode/unspecified/operation: unknown child of Empty"),
    ("child in a simple value", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID><id>1</id></monitorCrossRefID>
        <cause>keyOperation</cause></HeldEvent>""", "/HeldEvent/monitorCrossRefID: a xs:string value has no child"),
    ("child in an enumerated value", f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        <cause><hold/></cause></HeldEvent>""", "/HeldEvent/cause: a EventCause value has no child elements"),
    ("text in a structure", f"""<MakeCallResponse xmlns="{ED4}">1000<callingDevice><callID>1</callID>
        </callingDevice></MakeCallResponse>""", "/MakeCallResponse: (MakeCallResponse) allows no text, found '1000'"),
    ("child in a device ID", f"""<MakeCallResponse xmlns="{ED4}"><callingDevice><deviceID><n>1</n></deviceID>
        </callingDevice></MakeCallResponse>""", "/MakeCallResponse/callingDevice/deviceID: LocalDeviceID holds text only"),
    ("bad attribute value", f"""<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject typeOfNumber="short">1
        </deviceObject></monitorObject></MonitorStart>""",
     "/MonitorStart/monitorObject/deviceObject/@typeOfNumber: 'short' is not a DeviceIDTypeOfNumber"),
    ("unknown attribute", f"""<MonitorStart xmlns="{ED4}"><monitorObject><deviceObject kind="phone">1
        </deviceObject></monitorObject></MonitorStart>""", "deviceObject: unknown attribute 'kind'"),
    ("unknown item of a list", f"""<SwitchingFunctionDevices xmlns="{ED4}"><serviceCrossRefID>1</serviceCrossRefID>
        <lastSegment>true</lastSegment><deviceList><entry/></deviceList></SwitchingFunctionDevices>""",
     "/SwitchingFunctionDevices/deviceList/entry: unknown item of <deviceList> (allowed: device)"),
    ("not XML", f'<MakeCallResponse xmlns="{ED4}">', "not well-formed XML"),
    # The server's former deviations, each as it was sent.
    ("TransferredEvent", f'<TransferredEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID></TransferredEvent>',
     "/TransferredEvent: not a root element of the ed3 schema"),
    ("systemResourceAvailability", f"""<CSTAErrorCode xmlns="{ED4}">
        <systemResourceAvailability>resourceBusy</systemResourceAvailability></CSTAErrorCode>""",
     "/CSTAErrorCode/systemResourceAvailability: unknown child of UniversalFailure"),
    ("invalidCalledDevice", f'<CSTAErrorCode xmlns="{ED4}"><operation>invalidCalledDevice</operation></CSTAErrorCode>',
     "/CSTAErrorCode/operation: 'invalidCalledDevice' is not a OperationErrors"),
    ("invalidCallingDevice", f'<CSTAErrorCode xmlns="{ED6}"><operation>invalidCallingDevice</operation></CSTAErrorCode>',
     "/CSTAErrorCode/operation: 'invalidCallingDevice' is not a OperationErrors"),
    ("lastRedirectionDevice with a deviceIdentifier",
     DELIVERED.format(ns=ED4, redirection="<deviceIdentifier>6000</deviceIdentifier>"),
     "/DeliveredEvent/lastRedirectionDevice/deviceIdentifier: unknown child of RedirectionDeviceID"),
    ("SnapshotCall localConnectionState", f"""<SnapshotCallResponse xmlns="{ED4}"><crossRefIDorSnapshotData>
        <snapshotData><snapshotCallResponseInfo><deviceOnCall><deviceIdentifier>1</deviceIdentifier></deviceOnCall>
        <localConnectionState>connected</localConnectionState></snapshotCallResponseInfo></snapshotData>
        </crossRefIDorSnapshotData></SnapshotCallResponse>""",
     "snapshotCallResponseInfo/localConnectionState: unknown child of SnapshotCallResponseInfo"),
    ("deviceListItem", f"""<SwitchingFunctionDevices xmlns="{ED4}"><serviceCrossRefID>1</serviceCrossRefID>
        <lastSegment>true</lastSegment><deviceList><deviceListItem><deviceID>1</deviceID></deviceListItem>
        </deviceList></SwitchingFunctionDevices>""", "/deviceList/deviceListItem: unknown item of <deviceList>"),
]
FEATURE_DEVIATIONS = [
    ("supportedServices", "<systemStatusServList><requestSystemStatus/></systemStatusServList>",
     "systemStatusServList: unknown child"),
    ("supportedServices", "<physicalServList><setMessageWaitingIndicator/></physicalServList>",
     "physicalServList: unknown child"),
    ("supportedServices", "<callControlServList><singleStepTransferCall/></callControlServList>",
     "singleStepTransferCall: unknown child of CallControlServList"),
    ("supportedServices", "<systemStatServList><requestSystemStatus/><systemRegister/></systemStatServList>",
     "systemRegister: out of order in SystemStatusServList"),
    ("supportedServices", "<logicalServList><getAgentState/></logicalServList>"
                          "<physDevServList><getMessageWaitingIndicator/></physDevServList>",
     "physDevServList: out of order in GetCSTAFeaturesResponseSupportedServices"),
    ("supportedEvents", "<callControlEvtsList><networkReached/></callControlEvtsList>",
     "networkReached: unknown child of CallControlEvtsList"),
    ("supportedEvents", "<logicalDeviceEvtsList><agentReady/></logicalDeviceEvtsList>", "logicalDeviceEvtsList: unknown"),
    ("supportedEvents", "<physicalDeviceEvtsList><messageWaiting/></physicalDeviceEvtsList>",
     "physicalDeviceEvtsList: unknown"),
    ("supportedEvents", "<maintenanceEvtsList><outOfService/></maintenanceEvtsList>", "maintenanceEvtsList: unknown"),
    ("supportedEvents", "<logicalEvtsList><agentReady/></logicalEvtsList><physDevEvtsList><messageWaiting/>"
                        "</physDevEvtsList>", "physDevEvtsList: out of order"),
]
INVALID += [(f"GetCSTAFeatures {problem.split(':')[0]}", f"""<GetCSTAFeaturesResponse xmlns="{ED4}">
    <{group}>{lists}</{group}></GetCSTAFeaturesResponse>""", problem) for group, lists, problem in FEATURE_DEVIATIONS]


@pytest.mark.parametrize("xml, problem", [(x, p) for _, x, p in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_documents(xml, problem):
    problems = validate(xml)
    assert len(problems) == 1 and problem in problems[0], problems


def test_each_problem_is_reported_with_its_path():
    problems = validate(f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1</monitorCrossRefID>
        <heldConnection><callID>1</callID><deviceID>1000</deviceID></heldConnection>
        <localConnectionInfo>onHold</localConnectionInfo><cause>keyOperation</cause><extra/></HeldEvent>""")
    assert problems == [
        "/HeldEvent/localConnectionInfo: 'onHold' is not a LocalConnectionState (one of: null, initiated, "
        "alerting, connected, hold, queued, fail)",
        "/HeldEvent/extra: unknown child of HeldEvent (allowed, in order: " + problems[1].split("in order: ")[1]]


def test_editions_choose_their_data():
    """ed3 has no ed6-only services: ed6's GetMonitors capability is refused in ed3 and ed4."""
    features = '<GetCSTAFeaturesResponse xmlns="{}"><supportedServices><monitoringServList><getMonitors/>' \
               '</monitoringServList></supportedServices></GetCSTAFeaturesResponse>'
    assert validate(features.format(ED6)) == validate(features.format(ED5)) == []
    assert validate(features.format(ED3)) and validate(features.format(ED4))
