"""Call data (AssociateData, an IVR): kept by the call's controller, carried by every later event of
the call, through consultation, transfer, conference and hand-over between LIMs. LIMs through the
fake bus; the ECMA-323 side through `event_xml` and a real session on fakes.

Expected values: what the call holds is what the test attached; where each event carries it comes
from the schema facts (tests/ecma323/schema.json), not from csta_front/events.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from broker.protocol import Kind, device_address
from csta_front.events import DATA_PLACES, EVENT_NAMES, event_xml, event_xml_lxml
from tests.csta_fakes import FakeClient, FakeFront
from tests.ecma323_validator import validate
from tests.fakes import FakeNetwork
from tests.unit.test_lim_calls import make_topology

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
SCHEMA = json.loads((Path(__file__).parents[1] / "ecma323" / "schema.json").read_text())
CUSTOMER = {"correlator": "C0FFEE01", "account": "4711"}


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def attach(net: FakeNetwork, device: str, call_id: str | None = None, **data: str) -> dict:
    return net.request(device_address(device), Kind.CALL_DATA, call_id=call_id, data=data)


def call_events(net: FakeNetwork, call_id: str) -> list[dict]:
    return [b for t, b in net.published if t == f"c:{call_id}|"]


def test_data_attached_through_a_device_of_another_lim_rides_on_every_later_event(net):
    """1000 (LIM 1) calls 2000 (LIM 2); data attached through 2000 reaches the controller (LIM 1)."""
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    before = len(net.published)
    reply = attach(net, "2000", call_id, correlator="c0ffee01", user="48656c6c6f")
    assert reply["ok"] and reply["call_id"] == call_id
    info = net.events("2000")[-1]
    assert info["event"] == "CallInformation" and info["device"] == "2000"
    assert info["data"] == {"correlator": "C0FFEE01", "user": "48656C6C6F"}  # hexBinary's canonical case
    assert net.cores[2].calls[call_id].data == info["data"]  # LIM 2's mirror knows it too
    net.phone("2000", "answer")
    net.phone("1000", "hangup")
    later = [b for _, b in net.published[before:]]
    assert {b["event"] for b in later} >= {"CallInformation", "Established", "ConnectionCleared", "CallCleared"}
    assert all(b["data"] == info["data"] for b in later)


def test_a_call_without_data_carries_none(net):
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    net.phone("2000", "answer")
    assert all("data" not in b for b in call_events(net, call_id))


def test_later_data_replaces_the_items_it_names_and_keeps_the_rest(net):
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    attach(net, "1000", call_id, correlator="01", account="02")
    attach(net, "2000", call_id, correlator="03")
    assert net.cores[1].calls[call_id].data == {"correlator": "03", "account": "02"}


@pytest.mark.parametrize("data, words", [
    ({"correlator": "ABC"}, "octet string"),            # odd length
    ({"correlator": "zz"}, "octet string"),
    ({"colour": "01"}, "not call data"),
    ({"correlator": "00" * 33}, "at most 32 octets"),
    ({}, "at least one"),
])
def test_bad_data_is_refused_and_changes_nothing(net, data, words):
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    attach(net, "1000", call_id, correlator="01")
    reply = net.request(device_address("2000"), Kind.CALL_DATA, call_id=call_id, data=data)
    assert not reply["ok"] and reply["error"] == "bad_request" and words in reply["message"]
    assert net.cores[1].calls[call_id].data == {"correlator": "01"}


def test_data_for_a_device_not_in_the_call_is_refused(net):
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    reply = attach(net, "2001", call_id, correlator="01")
    assert not reply["ok"] and reply["error"] == "no_such_connection"


def test_the_customers_data_follows_consultation_and_transfer_across_lims(net):
    """An external caller (trunk on LIM 1) reaches 2000 (LIM 2), the IVR attaches data, 2000
    consults 3000 (LIM 3, a call LIM 2 controls) and transfers: the customer's call (controlled by
    LIM 1) takes 3000 over from LIM 2, and 3000's events carry the customer's data throughout."""
    customer = net.phone("0701234567", "dial", digits="2000")["call_id"]
    net.phone("2000", "answer")
    attach(net, "0701234567", customer, **CUSTOMER)
    consult = net.phone("2000", "consult", digits="3000")["call_id"]
    assert consult[:3] == "002"  # the consultation call is LIM 2's; the customer's is LIM 1's
    net.phone("3000", "answer")
    assert net.phone("2000", "transfer")["ok"]
    names = [b["event"] for b in net.events("3000")]
    assert names == ["Delivered", "Established", "Transferred"]
    expected = {"correlator": "C0FFEE01", "account": "4711"}
    assert all(b["data"] == expected for b in net.events("3000"))
    assert net.events("3000")[-1]["call_id"] == customer
    net.phone("3000", "hangup")
    assert net.events("0701234567")[-1]["event"] == "ConnectionCleared"
    assert net.events("0701234567")[-1]["data"] == expected


def test_when_both_calls_have_data_the_held_calls_items_win_and_the_other_fills_gaps(net):
    customer = net.phone("0701234567", "dial", digits="2000")["call_id"]
    net.phone("2000", "answer")
    attach(net, "2000", customer, correlator="AA")
    consult = net.phone("2000", "consult", digits="3000")["call_id"]
    attach(net, "3000", consult, correlator="BB", user="CC")  # the consultation call's own data
    net.phone("3000", "answer")
    net.phone("2000", "transfer")
    assert net.cores[1].calls[customer].data == {"correlator": "AA", "user": "CC"}
    assert net.events("3000")[-1]["data"] == {"correlator": "AA", "user": "CC"}


def test_conference_on_one_lim_keeps_the_held_calls_data(net):
    held = net.phone("1000", "dial", digits="1001")["call_id"]
    net.phone("1001", "answer")
    attach(net, "1000", held, user="0102")
    net.phone("1000", "consult", digits="1002")
    net.phone("1002", "answer")
    assert net.phone("1000", "conference")["ok"]
    conferenced = net.events("1002")[-1]
    assert conferenced["event"] == "Conferenced" and conferenced["data"] == {"user": "0102"}


def test_data_survives_when_the_held_call_is_on_another_lim_than_the_consultation(net):
    """2000 (LIM 2) calls 1000 (LIM 1); 1000 consults 3000 over LIM 1; the consultation call's data
    is handed over to LIM 2 with its parties and merged into the held call."""
    held = net.phone("2000", "dial", digits="1000")["call_id"]
    net.phone("1000", "answer")
    consult = net.phone("1000", "consult", digits="3000")["call_id"]
    attach(net, "3000", consult, account="99")
    net.phone("3000", "answer")
    net.phone("1000", "transfer")
    assert net.cores[2].calls[held].data == {"account": "99"}
    assert net.cores[3].calls[held].data == {"account": "99"}  # the mirrors were told


# -- ECMA-323 -------------------------------------------------------------------------------------------
def _particles(ed: str, root: str) -> list[str]:
    sc = SCHEMA["schemas"][ed]
    return [p.get("name") for p in sc["types"][sc["roots"][root]]["particles"]]


def test_data_places_are_the_schemas():
    for event, element in EVENT_NAMES.items():
        if event == "CallInformation":
            continue
        for ed in ("ed3", "ed6"):
            names = _particles(ed, element)
            expected = ("correlatorData" in names, "userData" in names)
            assert DATA_PLACES.get(event, (False, False)) == expected, (event, ed)


BODIES = {
    "ServiceInitiated": {}, "Originated": {}, "Held": {"holding": "1000"}, "Retrieved": {"retrieving": "1000"},
    "Delivered": {"alerting": "2000"}, "Established": {"answering": "2000"}, "Failed": {"failing": "2000"},
    "ConnectionCleared": {"dropped": "1000"}, "CallCleared": {}, "NetworkReached": {},
    "Diverted": {"diverted_to": "2001"}, "Queued": {"queued": "5000", "queue_position": 1},
    "Transferred": {"transferring": "1000", "transferred_to": "2001", "primary_old_call": "1",
                    "secondary_old_call": "2", "moved": ["2001"]},
    "Conferenced": {"conferencing": "1000", "added": ["2001"], "primary_old_call": "1", "secondary_old_call": "2",
                    "moved": ["2001"]},
    "CallInformation": {},
}


@pytest.mark.parametrize("ns", [ED3, ED4, ED6])
@pytest.mark.parametrize("event", sorted(BODIES))
def test_every_call_event_places_the_data_as_the_schema_orders_it(event, ns):
    body = {"event": event, "call_id": "001000001000000000000001", "device": "1000", "cause": "newCall",
            "calling": "1000", "called": "2000", "connections": [["1000", "connected"], ["2000", "alerting"]],
            "data": {"correlator": "C0FFEE01", "user": "0A0B", "account": "4711", "auth": "0042"},
            **BODIES[event]}
    if event == "CallInformation":
        body["cause"] = None
    xml = event_xml(ns, body, "7", "1000", {})
    assert xml == event_xml_lxml(ns, body, "7", "1000")
    assert validate(xml) == []
    root = etree.fromstring(xml)
    names = [etree.QName(c).localname for c in root]
    ed = "ed3" if ns != ED6 else "ed6"
    schema_names = _particles(ed, EVENT_NAMES[event])
    for name, value in (("correlatorData", "C0FFEE01"), ("userData", "0A0B")):
        assert (name in names) == (name in schema_names)
        if name in names:
            assert root.find(f"{{{ns}}}{name}/{{{ns}}}string").text == value
    if event == "CallInformation":
        assert root.find(f"{{{ns}}}accountInfo").text == "4711"
        assert root.find(f"{{{ns}}}authCode").text == "0042"


def test_the_markup_without_data_is_unchanged():
    body = {"event": "Delivered", "call_id": "1", "device": "2000", "cause": "newCall", "calling": "1000",
            "called": "2000", "alerting": "2000", "connections": [["2000", "alerting"]]}
    assert b"correlatorData" not in event_xml(ED4, body, "7", "2000", {})


# -- the service ----------------------------------------------------------------------------------------
def associate(client: FakeClient, body: str, ns: str = ED4) -> etree._Element:
    frame = client.ask(3, f'<AssociateData xmlns="{ns}"><existingCall><callID>001000001000000000000001</callID>'
                          f'<deviceID>2005</deviceID></existingCall>{body}</AssociateData>')
    assert validate(frame.xml) == []
    return etree.fromstring(frame.xml)


@pytest.mark.parametrize("ns", [ED3, ED4, ED6])
def test_associate_data_asks_the_devices_lim_and_answers_empty(ns):
    front = FakeFront()
    front.bus.answer("dev:2005", "call.data", {"ok": True, "call_id": "001000001000000000000001"})
    root = associate(FakeClient(front), "<accountCode>4711</accountCode><correlatorData><string>c0ffee"
                                        "</string></correlatorData><subjectOfCall>ignored</subjectOfCall>", ns)
    assert etree.QName(root).localname == "AssociateDataResponse"
    assert front.bus.requests == [("dev:2005", "call.data", {"call_id": "001000001000000000000001",
                                                             "data": {"account": "4711", "correlator": "c0ffee"}})]


@pytest.mark.parametrize("body, error", [
    ("", "atLeastOneConditionalParameterNotProvided"),
    ("<correlatorData><string>abc</string></correlatorData>", "invalidCorrelatorData"),
    ("<correlatorData><string>" + "00" * 33 + "</string></correlatorData>", "invalidCorrelatorData"),
    ("<accountCode>xy</accountCode>", "invalidAccountCode"),
    ("<authCode>1</authCode>", "invalidAuthCode"),
    ("<correlatorData><private><x/></private></correlatorData>", "privateDataNotSupported"),
])
def test_associate_data_refuses_what_it_cannot_keep(body, error):
    front = FakeFront()
    root = associate(FakeClient(front), body)
    assert root.find(f".//{{{ED4}}}{error}") is not None or error in etree.tostring(root).decode()
    assert front.bus.requests == []


def test_associate_data_on_a_call_the_device_is_not_in():
    front = FakeFront()
    front.bus.answer("dev:2005", "call.data", {"ok": False, "error": "no_such_connection", "message": "no"})
    root = associate(FakeClient(front), "<authCode>01</authCode>")
    assert "invalidConnectionID" in etree.tostring(root).decode()


@pytest.mark.parametrize("ns", [ED3, ED4, ED6])
def test_snapshot_call_reports_the_correlator_data(ns):
    call_id = "001000001000000000000001"
    front = FakeFront()
    front.bus.answer("lim-1", "call.get", {"ok": True, "call_id": call_id, "controller": 1, "calling": "1000",
                                           "called": "2000", "cleared": False,
                                           "parties": [["1000", "connected", 1, None], ["2000", "alerting", 2, None]],
                                           "data": {"correlator": "C0FFEE01", "user": "0A"}})
    frame = FakeClient(front).ask(4, f'<SnapshotCall xmlns="{ns}"><snapshotObject><callID>{call_id}</callID>'
                                     '</snapshotObject></SnapshotCall>')
    assert validate(frame.xml) == []
    root = etree.fromstring(frame.xml)
    assert root.find(f"{{{ns}}}correlatorData/{{{ns}}}string").text == "C0FFEE01"
    assert b"userData" not in frame.xml  # SnapshotCallResponse has no place for it
