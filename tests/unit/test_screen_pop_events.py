"""The screen pop's caller, typed (issue 15): a caller on the public network is named in
callingDevice with ECMA-323's DeviceID attribute `typeOfNumber="implicitPublic"` (ECMA-269: a
public number whose type of number is implied by its prefix digits, here the trunk prefix), an
extension of the exchange stays a plain deviceIdentifier.

Golden documents are written from the ECMA-323 schema facts (element names and order, the
DeviceIDTypeOfNumber enumeration) and validated in every edition; the LIM side is driven through
the fake bus (tests/fakes.py): the LIM marks an external caller's events, the CSTA server writes the
attribute from that mark, a TR87 dialog (which names numbers as tel: URIs) drops it, and the text
writer (csta_front/xmlout.py) writes attributes byte for byte as lxml does."""
from __future__ import annotations

import pytest
from lxml import etree
from lxml.builder import ElementMaker

from csta_front.events import BUILDERS, event_xml, event_xml_lxml
from csta_front.teluri import TelNaming
from csta_front.xmlout import MAKER
from tests.csta_fakes import default_topology
from tests.fakes import FakeNetwork
from tests.unit.test_csta_golden import ED3, ED4, ED6, assert_xml, conn, dev

C1 = "001000001000000000000001"
PUBLIC = "0701234567"


def delivered(calling: str, public: bool, **fields) -> dict:
    """The Delivered an ACD group's agent gets: as lim/state.py `emit` publishes it."""
    body = {"event": "Delivered", "call_id": C1, "device": "2005", "cause": "distributed", "calling": calling,
            "called": "5000", "connections": [[calling, "connected"], ["2005", "alerting"]], "lim": 1,
            "time": 17.0, "alerting": "2005", "last_redirection": "5000", **fields}
    if public:
        body["calling_public"] = True
    return body


def expected_delivered(calling_device: str) -> str:
    return f"""<DeliveredEvent xmlns="{ED4}">
                 <monitorCrossRefID>7</monitorCrossRefID>
                 <connection>{conn("2005")}</connection>
                 <alertingDevice>{dev("2005")}</alertingDevice>
                 <callingDevice>{calling_device}</callingDevice>
                 <calledDevice>{dev("5000")}</calledDevice>
                 <lastRedirectionDevice><numberDialed>5000</numberDialed></lastRedirectionDevice>
                 <localConnectionInfo>alerting</localConnectionInfo>
                 <cause>distributed</cause>
               </DeliveredEvent>"""


def test_a_caller_from_the_public_network_is_typed_implicit_public():
    assert_xml(event_xml(ED4, delivered(PUBLIC, True), "7", "2005"),
               expected_delivered(f'<deviceIdentifier typeOfNumber="implicitPublic">{PUBLIC}</deviceIdentifier>'))


def test_an_extension_calling_stays_a_plain_device_identifier():
    assert_xml(event_xml(ED4, delivered("1001", False), "7", "2005"), expected_delivered(dev("1001")))


# Every event whose schema type has a callingDevice carries the caller's type wherever it appears.
CALLING_EVENTS = ["Originated", "Delivered", "Established", "Failed", "NetworkReached", "Diverted", "Queued",
                  "CallInformation"]


@pytest.mark.parametrize("ns", [ED3, ED4, ED6])
@pytest.mark.parametrize("event", CALLING_EVENTS)
def test_every_event_with_a_calling_device_types_a_public_caller(event, ns):
    body = {**delivered(PUBLIC, True), "event": event, "device": "2005", "answering": "2005", "failing": "2005",
            "queued": "5000", "diverted_to": "2005"}
    if event == "CallInformation":
        body["cause"] = None  # the LIM sends it without one: the schema's type has no cause
    wire = event_xml(ns, body, "7", "2005")
    assert wire == event_xml_lxml(ns, body, "7", "2005")  # the text writer and lxml agree
    assert_xml(wire, wire.decode())  # valid in every edition
    calling = etree.fromstring(wire).find("{*}callingDevice/{*}deviceIdentifier")
    assert calling.text == PUBLIC and calling.get("typeOfNumber") == "implicitPublic"


def test_a_tr87_dialog_names_the_caller_by_uri_and_drops_the_type():
    naming = TelNaming(lambda raw: None)
    body = delivered("00468123456", True)
    wire = event_xml(ED3, body, "7", "2005", naming=naming)
    assert wire == event_xml_lxml(ED3, body, "7", "2005", naming=naming)
    calling = etree.fromstring(wire).find("{*}callingDevice/{*}deviceIdentifier")
    assert calling.text == "tel:+468123456" and calling.get("typeOfNumber") is None


@pytest.mark.parametrize("value", ["implicitPublic", 'a&b<c>"d\'e', "t\tn\nr\r", "\u20ac"])
def test_attributes_are_written_as_lxml_writes_them(value):
    E = ElementMaker()
    for children in ((), ("0701",), (MAKER.x("1"),)):
        lxml_children = [etree.fromstring(c) if c.startswith("<") else c for c in children]
        assert MAKER.deviceIdentifier(*children, typeOfNumber=value) == \
            etree.tostring(E.deviceIdentifier(*lxml_children, typeOfNumber=value), encoding="unicode")


def test_an_attribute_xml_cannot_carry_is_refused_as_lxml_refuses_it():
    with pytest.raises(ValueError):
        MAKER.deviceIdentifier("0701", typeOfNumber="a\x00b")
    with pytest.raises(ValueError):
        ElementMaker().deviceIdentifier("0701", typeOfNumber="a\x00b")


def test_calling_device_is_written_by_the_builders_that_have_one():
    """CALLING_EVENTS is every builder that writes a callingDevice: none is left untyped."""
    body = {**delivered(PUBLIC, True), "answering": "2005", "failing": "2005", "queued": "5000", "diverted_to": "2005"}
    writes = {name for name, build in BUILDERS.items()
              if "callingDevice" in "".join(build(MAKER, {**body, "event": name}, "2005"))}
    assert writes == set(CALLING_EVENTS)


# -- the LIM marks the caller --------------------------------------------------------------------------
@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(default_topology())


def test_the_lim_marks_every_event_of_a_call_from_the_public_network(net):
    net.agent("2005", "login", agent_id="25", group="5000")
    net.phone(PUBLIC, "dial", digits="5000")
    net.advance(0.1)  # the group hands the queued call to its ready agent on its next turn
    delivered_at_agent = [e for e in net.events("2005") if e["event"] == "Delivered"]
    assert len(delivered_at_agent) == 1
    event = delivered_at_agent[0]
    assert (event["calling"], event["called"], event["alerting"], event["last_redirection"], event["cause"]) == \
        (PUBLIC, "5000", "2005", "5000", "distributed")
    call_events = [e for e in net.events(PUBLIC) if e.get("call_id")]
    assert call_events and all(e.get("calling_public") is True for e in call_events)


@pytest.mark.parametrize("caller", ["1001", "2001"])
def test_the_lim_leaves_an_extension_unmarked(net, caller):
    net.phone(caller, "dial", digits="6000")
    net.run()
    assert any(e["event"] == "Delivered" for e in net.events("1002"))
    assert not any("calling_public" in e for e in net.events(caller) + net.events("1002"))


# -- the answered call still says where it came from (ECMA-269 Established's lastRedirectionDevice) --
def test_an_answered_group_call_names_the_group_it_came_through(net):
    call_id = net.phone("2001", "dial", digits="6000")["call_id"]
    net.phone("1002", "answer")
    established = [e for e in net.events("1002") if e["event"] == "Established"]
    assert len(established) == 1 and established[0]["call_id"] == call_id
    assert (established[0]["answering"], established[0]["called"], established[0]["last_redirection"]) == \
        ("1002", "6000", "6000")
    assert_xml(event_xml(ED4, established[0], "7", "1002"),
               f"""<EstablishedEvent xmlns="{ED4}">
                     <monitorCrossRefID>7</monitorCrossRefID>
                     <establishedConnection>{conn("1002", call_id)}</establishedConnection>
                     <answeringDevice>{dev("1002")}</answeringDevice>
                     <callingDevice>{dev("2001")}</callingDevice>
                     <calledDevice>{dev("6000")}</calledDevice>
                     <lastRedirectionDevice><numberDialed>6000</numberDialed></lastRedirectionDevice>
                     <localConnectionInfo>connected</localConnectionInfo>
                     <cause>newCall</cause>
                   </EstablishedEvent>""")


def test_an_answered_direct_call_was_never_redirected(net):
    net.phone("2001", "dial", digits="1002")
    net.phone("1002", "answer")
    established = next(e for e in net.events("1002") if e["event"] == "Established")
    assert "last_redirection" not in established
    wire = etree.fromstring(event_xml(ED4, established, "7", "1002"))
    assert wire.find("{*}lastRedirectionDevice/{*}notRequired") is not None
