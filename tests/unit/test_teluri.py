"""Device IDs as Lync / Office Communicator write them (csta_front/teluri.py), read onto the number
plan and written back, and the events of a TR87 dialog that name devices that way.

The forms come from the public record, not from our output: RFC 3966 (tel: URIs: global numbers
start with +, local ones carry a phone-context, ext= names an extension, visual separators),
pidgin-sipe's src/core/sip-csta.c (line URIs such as `tel:73124;phone-context=dialstring;
partition=BE_BRS_INT`, called numbers such as `tel:+3222220220`; it matches MakeCallResponse's
callingDevice/deviceID against its line URI as strings and sends the deviceID of its events back
in ClearConnection) and the Lync line URIs of deployment guides (`tel:+14257771234;ext=1234`).
"""
from __future__ import annotations

import pytest
from lxml import etree

from csta_front import teluri
from csta_front.codec import CodecError, device_number
from csta_front.events import event_xml, event_xml_lxml
from csta_front.teluri import DeviceIdError, TelNaming, parse, resolve, tel_uri
from tests.csta_fakes import FakeClient, FakeFront
from topology.loader import parse_topology

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
C1 = "001000001000000000000001"
INTERNAL = {"1000", "2000", "2001", "12222", "5000"}


# =================================================================================================
# Reading
# =================================================================================================
@pytest.mark.parametrize("raw, ddi, number", [
    ("2000", (), "2000"),
    ("tel:2000", (), "2000"),
    ("tel:2000;phone-context=dialstring", (), "2000"),
    ("tel:73124;phone-context=dialstring;partition=BE_BRS_INT", (), "73124"),  # sip-csta.c's line URI
    ("tel:2000;phone-context=example.com", (), "2000"),
    ("tel:2000;phone-context=+46-8-757", (), "2000"),            # a context of global digits
    ("TEL:2000;Phone-Context=DialString", (), "2000"),           # schemes and parameter names: any case
    ("tel:+1421112222;ext=12222", (), "12222"),                  # the line URI
    ("tel:+1-421-111-2222;ext=12222", (), "12222"),              # visual separators (RFC 3966)
    ("tel:+14257771234;ext=1234;ad-rdn=telephoneNumber", (), "001425777123" "4"),  # ext not ours: the number
    ("tel:+3222220220", (), "003222220220"),                     # sip-csta.c's called number: external
    ("+46 8 123-456", (), "00468123456"),
    ("tel:+4687572000", ("+468757",), "2000"),                   # a DDI number of the exchange
    ("tel:+4687572000", ("+46",), "004687572000"),               # the rest is no internal number
    ("tel:+4687572000", ("+4687", "+468757"), "2000"),           # the longest prefix first
    ("tel:+4687579999", ("+468757",), "004687579999"),
    ("sip:2000@mx-one.example;user=phone", (), "2000"),
    ("sip:+1421112222;ext=12222@lync.example;user=phone", (), "12222"),
    ("tel:*21#;phone-context=dialstring", (), "*21#"),
])
def test_device_ids_read_onto_the_number_plan(raw, ddi, number):
    assert teluri.device_number(raw, INTERNAL, ddi) == number


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_nothing_to_read(raw):
    assert teluri.device_number(raw, INTERNAL) is None


@pytest.mark.parametrize("raw, why", [
    ("tel:", "without a number"),
    ("tel:;ext=12222", "without a number"),
    ("tel:+", "not a telephone number"),
    ("tel:12ab34", "not a telephone number"),
    ("alice", "not a telephone number"),
    ("sip:alice@example.com", "not a telephone number"),
    ("tel:+14211+12222", "not a telephone number"),
    ("tel:1000;ext=12a", "not an extension"),
    ("tel:+1421112222;ext=", "not an extension"),
    ("tel:1000;ext=1;ext=2", "given twice"),
    ("tel:1000;;phone-context=dialstring", "empty parameter"),
    ("tel:1000;phone-context=", "neither"),
    ("tel:1000;phone-context=exa_mple.com", "neither"),
    ("tel:1000;phone-context=+", "neither"),
    ("tel:+3222220220;phone-context=dialstring", "takes no phone-context"),
    ("mailto:2000@example.com", "not a device ID here"),
    ("tel:" + "1" * 33, "more than 32 digits"),
    ("tel:1000;x=" + "y" * 300, "characters"),
    ("tel:1000\x00", "control"),
    ("tel:1000\u00e9", "non-ASCII"),
])
def test_hostile_device_ids_are_refused_with_a_reason(raw, why):
    with pytest.raises(DeviceIdError, match=why):
        teluri.device_number(raw, INTERNAL)


def test_codec_turns_a_refusal_into_the_csta_error_the_caller_names():
    with pytest.raises(CodecError) as raised:
        device_number("tel:12ab", None, "invalidMonitorObject")
    assert raised.value.value == "invalidMonitorObject" and "12ab" in raised.value.message


def test_parse_keeps_what_the_rule_needs():
    assert parse("tel:+1-421-111-2222;ext=12222;partition=X") == teluri.TelAddress("+14211112222", "12222", None)
    assert parse("tel:2000;phone-context=Example.COM") == teluri.TelAddress("2000", None, "example.com")
    assert resolve(parse("tel:2000;ext=12222;phone-context=dialstring"), INTERNAL) == "12222"


def test_topology_ddi_prefixes():
    text = """
name: t
lims:
  - number: 1
    address: 127.0.1.1
    extensions: [{numbers: 1000-1001, type: ip}]
ddi: ["+468757", "+1-425"]
"""
    with pytest.raises(Exception, match="ddi: give an E.164 prefix"):
        parse_topology(text)
    topology = parse_topology(text.replace('"+1-425"', '"+1425"'))
    assert topology.ddi == ("+468757", "+1425")
    for bad in ('"468757"', '"+0468"', '"+46a"', "[1]"):
        with pytest.raises(Exception, match="ddi"):
            parse_topology(text.replace('"+1-425"', bad))


# =================================================================================================
# Writing
# =================================================================================================
def test_tel_uris_of_exchange_numbers():
    assert tel_uri("2000") == "tel:2000;phone-context=dialstring"  # RFC 3966: a local number has a context
    assert tel_uri("2000", "example.com") == "tel:2000;phone-context=example.com"
    assert tel_uri("003222220220") == "tel:+3222220220"              # a global number has none
    assert tel_uri("0701234567") == "tel:0701234567;phone-context=dialstring"


def naming() -> TelNaming:
    return TelNaming(lambda raw: teluri.device_number(raw, INTERNAL))


def test_a_dialog_names_its_own_line_as_it_wrote_it():
    names = naming()
    names.learn_line("tel:+1421112222;ext=12222")
    assert names.name("12222") == "tel:+1421112222;ext=12222"
    assert names.name("2000") == "tel:2000;phone-context=dialstring"
    assert names.name("003222220220") == "tel:+3222220220"


def test_a_dialog_takes_the_phone_context_of_its_line():
    names = naming()
    names.learn_line("tel:2001;phone-context=example.com;partition=BE_BRS_INT")
    names.learn("2001", "tel:2001;phone-context=example.com")  # the MonitorStart's form wins
    assert names.name("2001") == "tel:2001;phone-context=example.com"
    assert names.name("1000") == "tel:1000;phone-context=example.com"


def test_an_unreadable_line_is_left_alone():
    names = naming()
    names.learn_line("tel:12ab")
    names.learn_line(None)
    assert not names.forms and names.name("1000") == "tel:1000;phone-context=dialstring"


def test_a_dialog_remembers_a_bounded_number_of_forms():
    names = naming()
    for n in range(teluri.MAX_FORMS + 10):
        names.learn(str(3000 + n), f"tel:{3000 + n};phone-context=x.example")
    assert len(names.forms) == teluri.MAX_FORMS and "3000" not in names.forms


# =================================================================================================
# Events
# =================================================================================================
def delivered() -> dict:
    """A call from 1000 (LIM 1) to 12222, ringing: the bus event lim/state.py's emit publishes."""
    return {"event": "Delivered", "call_id": C1, "device": "12222", "cause": "newCall", "calling": "1000",
            "called": "12222", "alerting": "12222", "connections": [["1000", "connected"], ["12222", "alerting"]],
            "lim": 1, "time": 1.0}


def test_tr87_events_name_the_line_as_monitored_and_others_with_phone_context():
    names = naming()
    names.learn("12222", "tel:+1421112222;ext=12222")
    shared: dict = {}
    xml = event_xml(ED3, delivered(), "7", "12222", shared, names)
    root = etree.fromstring(xml)
    get = lambda *path: root.findtext("/".join(f"{{{ED3}}}{p}" for p in path))
    assert get("connection", "deviceID") == "tel:+1421112222;ext=12222"  # sip-csta.c keeps it for ClearConnection
    assert get("alertingDevice", "deviceIdentifier") == "tel:+1421112222;ext=12222"
    assert get("callingDevice", "deviceIdentifier") == "tel:1000;phone-context=dialstring"  # the screen pop
    assert get("calledDevice", "deviceIdentifier") == "tel:+1421112222;ext=12222"
    assert get("localConnectionInfo") == "alerting"  # the monitored device's state, found by its number
    assert xml == event_xml_lxml(ED3, delivered(), "7", "12222", names)
    # A plain XML session's monitor of the same bus event: plain numbers, its own shared markup.
    plain = etree.fromstring(event_xml(ED3, delivered(), "8", "12222", shared))
    assert plain.findtext(f"{{{ED3}}}callingDevice/{{{ED3}}}deviceIdentifier") == "1000"
    assert len(shared) == 2


def test_every_device_field_is_renamed():
    names = naming()
    body = {"event": "Transferred", "call_id": C1, "device": "2000", "cause": "transfer",
            "transferring": "2000", "transferred_to": "2001", "primary_old_call": C1,
            "secondary_old_call": "001000001000000000000002", "moved": ["2001"],
            "connections": [["1000", "connected"], ["2001", "connected"]]}
    xml = event_xml(ED3, body, "1", "1000", {}, names).decode()
    assert ">2000<" not in xml and ">2001<" not in xml and ">1000<" not in xml
    assert xml.count("tel:2001;phone-context=dialstring") == 3  # transferredTo, its new and old connection
    assert xml == event_xml_lxml(ED3, body, "1", "1000", names).decode()


def test_tr87_events_are_documents_the_schema_defines():
    from tests import ecma323_validator as validator
    names = naming()
    names.learn("12222", "tel:+1421112222;ext=12222")
    assert validator.validate(event_xml(ED3, delivered(), "7", "12222", {}, names)) == []


# =================================================================================================
# Services: what an XML session and a TR87 session get back
# =================================================================================================
def tr87_client() -> FakeClient:
    client = FakeClient(FakeFront())
    client.session.naming = TelNaming(lambda raw: teluri.device_number(raw, client.front.directory.internal))
    return client


def ask(client: FakeClient, xml: str):
    return etree.fromstring(client.ask(1, xml).xml)


def test_monitor_start_of_a_lync_line_with_ext():
    client = FakeClient(FakeFront())
    client.front.bus.answer("dev:2000", "device.get", {"ok": True, "device": "2000", "calls": []})
    resp = ask(client, f'<MonitorStart xmlns="{ED3}"><monitorObject><deviceObject>tel:+4687572000;ext=2000'
                       "</deviceObject></monitorObject></MonitorStart>")
    assert etree.QName(resp).localname == "MonitorStartResponse"
    assert client.front.bus.requests[-1] == ("dev:2000", "device.get", {})


@pytest.mark.parametrize("device", ["tel:12ab", "tel:2000;ext=2000;ext=2001", "mailto:x@y"])
def test_monitor_start_of_an_unreadable_device(device):
    client = FakeClient(FakeFront())
    resp = ask(client, f'<MonitorStart xmlns="{ED3}"><monitorObject><deviceObject>{device}'
                       "</deviceObject></monitorObject></MonitorStart>")
    assert etree.QName(resp).localname == "CSTAErrorCode"
    assert resp.findtext(f"{{{ED3}}}operation") == "invalidMonitorObject"
    assert not client.front.bus.requests  # nothing asked of the exchange


def test_make_call_response_echoes_the_line_uri_in_a_tr87_dialog():
    line = "tel:+4687572000;ext=2000"
    for client, expected in ((FakeClient(FakeFront()), "2000"), (tr87_client(), line)):
        client.front.bus.answer("dev:2000", "phone", {"ok": True, "device": "2000", "call_id": C1,
                                                      "state": "connected"})
        resp = ask(client, f'<MakeCall xmlns="{ED3}"><callingDevice>{line}</callingDevice>'
                           "<calledDirectoryNumber>tel:+3222220220</calledDirectoryNumber>"
                           "<autoOriginate>doNotPrompt</autoOriginate></MakeCall>")
        assert client.front.bus.requests[-1] == ("dev:2000", "phone", {"action": "dial", "digits": "003222220220"})
        assert resp.findtext(f"{{{ED3}}}callingDevice/{{{ED3}}}deviceID") == expected


def test_clear_connection_with_the_device_id_of_an_event():
    client = tr87_client()
    client.front.bus.answer("dev:1000", "phone", {"ok": True})
    resp = ask(client, f'<ClearConnection xmlns="{ED3}"><connectionToBeCleared><callID>{C1}</callID>'
                       "<deviceID>tel:1000;phone-context=dialstring</deviceID></connectionToBeCleared>"
                       "</ClearConnection>")
    assert etree.QName(resp).localname == "ClearConnectionResponse"
    assert client.front.bus.requests[-1] == ("dev:1000", "phone", {"action": "hangup", "call_id": C1})
    bad = ask(client, f'<ClearConnection xmlns="{ED3}"><connectionToBeCleared><callID>{C1}</callID>'
                      "<deviceID>tel:1000;ext=x</deviceID></connectionToBeCleared></ClearConnection>")
    assert bad.findtext(f"{{{ED3}}}operation") == "invalidConnectionID"
