"""MakePredictiveCall at the CSTA front end (fake bus): the request read as ECMA-269 and the
ECMA-323 schema define it (callingDevice, calledDirectoryNumber, signallingDetection with
signallingCondition callDelivered|callEstablished and signallingConditionsAction,
destinationDetection/detectionItem with destinationCondition and detectionAction, defaultAction,
alertTime), the response (initiatedCall, a ConnectionID), errors, the capability list in the
schema's order, the WSDL, and the events a group that placed the call sees while its own
connection is null."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from broker.protocol import Kind, Refusal
from csta_front import soap
from csta_front.events import event_xml, event_xml_lxml
from csta_front.services import SERVICE_GROUPS
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.svc_schema_check import assert_valid

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
CALL_ID = "001000001000000000000007"
CUSTOMER = "0701234567"


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(FakeFront())


def placed(client: FakeClient, device: str = "5000") -> None:
    client.front.bus.answer(f"dev:{device}", Kind.CALL_PREDICTIVE,
                            lambda dst, kind, body: {"ok": True, "call_id": CALL_ID, "device": device, "state": "null"})


@pytest.mark.parametrize("ns", [ED3, ED4, ED6])
def test_golden_make_predictive_call(client, ns):
    placed(client)
    frame = client.ask(7, f'<MakePredictiveCall xmlns="{ns}"><callingDevice>5000</callingDevice>'
                          f'<calledDirectoryNumber>{CUSTOMER}</calledDirectoryNumber></MakePredictiveCall>')
    assert_valid(frame.xml)
    assert canon(frame.xml) == canon(
        f'<MakePredictiveCallResponse xmlns="{ns}"><initiatedCall><callID>{CALL_ID}</callID>'
        f'<deviceID>5000</deviceID></initiatedCall></MakePredictiveCallResponse>')
    dst, kind, body = client.front.bus.requests[-1]
    assert (dst, kind) == ("dev:5000", Kind.CALL_PREDICTIVE)
    assert body == {"called": CUSTOMER, "allocation": "established", "detect": False, "detection": {},
                    "default_action": None, "alert_s": None}


def test_signalling_detection_and_alert_time_are_read(client):
    placed(client, "1003")
    client.ask(1, f'<MakePredictiveCall xmlns="{ED6}"><callingDevice>1003</callingDevice>'
                  f'<calledDirectoryNumber>{CUSTOMER}</calledDirectoryNumber>'
                  '<signallingDetection><signallingCondition>callDelivered</signallingCondition>'
                  '<signallingConditionsAction>destinationDetection</signallingConditionsAction></signallingDetection>'
                  '<destinationDetection><detectionItem><destinationCondition>answeringMachine</destinationCondition>'
                  '<detectionAction>clearCalledConnection</detectionAction></detectionItem></destinationDetection>'
                  '<defaultAction>remainConnected</defaultAction><alertTime>20</alertTime></MakePredictiveCall>')
    body = client.front.bus.requests[-1][2]
    assert body == {"called": CUSTOMER, "allocation": "delivered", "detect": True,
                    "detection": {"answeringMachine": "clearCalledConnection"},
                    "default_action": "remainConnected", "alert_s": 20}


@pytest.mark.parametrize("xml, value", [
    ("<callingDevice>1003</callingDevice><calledDirectoryNumber>0701</calledDirectoryNumber>"
     "<signallingDetection><signallingCondition>soon</signallingCondition>"
     "<signallingConditionsAction>remainConnected</signallingConditionsAction></signallingDetection>",
     "invalidParameterValue"),
    ("<callingDevice>1003</callingDevice><calledDirectoryNumber>0701</calledDirectoryNumber>"
     "<alertTime>long</alertTime>", "invalidParameterValue"),
    ("<callingDevice>7777</callingDevice><calledDirectoryNumber>0701</calledDirectoryNumber>",
     "invalidCallingDeviceID"),
])
def test_bad_requests_are_refused_before_the_bus(client, xml, value):
    frame = client.ask(1, f'<MakePredictiveCall xmlns="{ED4}">{xml}</MakePredictiveCall>')
    assert_valid(frame.xml)
    assert value in frame.xml.decode() and client.front.bus.requests == []


@pytest.mark.parametrize("error, value", [(Refusal.UNKNOWN_NUMBER, "invalidCalledDeviceID"),
                                          (Refusal.OUT_OF_SERVICE, "resourceOutOfService")])
def test_lim_refusals_become_csta_errors(client, error, value):
    client.front.bus.answer("dev:1003", Kind.CALL_PREDICTIVE, {"ok": False, "error": error, "message": "no"})
    frame = client.ask(1, f'<MakePredictiveCall xmlns="{ED4}"><callingDevice>1003</callingDevice>'
                          '<calledDirectoryNumber>9999</calledDirectoryNumber></MakePredictiveCall>')
    assert_valid(frame.xml)
    assert f"<{value}" in frame.xml.decode() or f">{value}<" in frame.xml.decode()


def test_capability_list_in_the_schema_order():
    # ECMA-323's CallControlServList: ... makeCall, (makeConnection,) makePredictiveCall, parkCall, reconnectCall ...
    names = list(SERVICE_GROUPS["callControlServList"])
    assert names.index("makePredictiveCall") == names.index("makeCall") + 1
    assert names.index("reconnectCall") == names.index("makePredictiveCall") + 1


def test_the_wsdl_offers_it():
    root = etree.parse(str(Path(soap.__file__).parent / "wsdl" / "csta.wsdl")).getroot()
    ops = [el.get("name") for el in root.iter("{http://schemas.xmlsoap.org/wsdl/}operation")]
    assert ops.count("MakePredictiveCall") == 2  # the port type's and the binding's


@pytest.mark.parametrize("ns", [ED3, ED6])
def test_events_at_the_group_before_it_has_a_connection(ns):
    body = {"event": "Delivered", "call_id": CALL_ID, "device": CUSTOMER, "cause": "makePredictiveCall",
            "calling": "5000", "called": CUSTOMER, "alerting": CUSTOMER,
            "connections": [[CUSTOMER, "alerting"]], "lim": 1, "time": 1.0}
    xml = event_xml(ns, body, "12", "5000")
    assert xml == event_xml_lxml(ns, body, "12", "5000")
    assert_valid(xml)
    assert b"<localConnectionInfo>null</localConnectionInfo>" in xml and b"makePredictiveCall" in xml
    failed = {**body, "event": "Failed", "cause": "numberUnallocated", "failing": CUSTOMER,
              "connections": [[CUSTOMER, "fail"]]}
    assert_valid(event_xml(ns, failed, "12", "5000"))
