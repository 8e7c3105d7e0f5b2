"""Events written as text (csta_front/xmlout.py) are byte for byte what the lxml tree gave.

`event_xml_lxml` is the path the server used before: the same builders on lxml's ElementMaker,
serialised by lxml. Every golden event, every edition, device and call monitors, and hostile
values (markup characters, quotes, carriage returns, non-ASCII, characters XML cannot carry)
must give the same bytes, or the same exception.
"""
from __future__ import annotations

import pytest
from lxml import etree
from lxml.builder import ElementMaker

from csta_front import events
from csta_front.codec import CSTA_NS_PREFIX, EDITIONS, connection_el, device_el, to_bytes
from csta_front.events import BUILDERS, EVENT_NAMES, event_xml, event_xml_lxml
from csta_front.xmlout import MAKER, Markup, document, escape_text
from tests.unit.test_csta_golden import EVENTS

NAMESPACES = [CSTA_NS_PREFIX + e for e in EDITIONS]
C1 = "001000001000000000000001"
HOSTILE = ["<1000>", "a&b", "&amp;", "x\"y'z", "]]>", "<!--x-->", "1000\r\n\t2000", "tél:+33 1 23",
           "\u20ac\U0001f600", "\x7f\x85\u2028", "<![CDATA[x]]>", "&#60;", "   ", ""]
NOT_XML = ["\x00", "10\x01", "\x08", "\x0b", "\x1f", "a\ufffe", "\uffff"]


def _both(ns, body, xref, monitored):
    """(wire bytes, reference bytes), or the exception types each raised."""
    out = []
    for build in (event_xml, event_xml_lxml):
        try:
            out.append(build(ns, body, xref, monitored))
        except Exception as exc:  # compared by type below
            out.append(type(exc))
    return out


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("body, monitored, expected", EVENTS)
def test_every_golden_event_is_byte_identical(ns, body, monitored, expected):
    for who in (monitored, None, "9999"):
        wire, reference = _both(ns, body, "7", who)
        assert isinstance(wire, bytes) and wire == reference


def _call_body(event: str, value: str) -> dict:
    """A bus event with a hostile value in every text field a builder reads."""
    return {"event": event, "call_id": value or C1, "device": value, "cause": value, "calling": value,
            "called": value, "alerting": value, "answering": value, "dropped": value, "holding": value,
            "retrieving": value, "failing": value, "transferring": value, "transferred_to": value,
            "conferencing": value, "added": [value], "diverted_to": value, "queued": value,
            "queue_position": value, "last_redirection": value, "digits": value, "forward_to": value,
            "forwarding_type": value, "agent_id": value, "group": value, "primary_old_call": value,
            "secondary_old_call": value, "moved": [value], "connections": [[value, "connected"], ["2000", value]]}


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("event", sorted(EVENT_NAMES))
def test_hostile_values_are_escaped_as_lxml_escapes_them(event, value):
    body = _call_body(event, value)
    for monitored in (value, "2000", None):
        wire, reference = _both(NAMESPACES[1], body, value or "7", monitored)
        assert wire == reference
        if isinstance(wire, bytes):
            etree.fromstring(wire)  # well-formed


def test_hostile_device_id_round_trips():
    body = _call_body("Delivered", 'a<b&c"d\'e>\r')
    root = etree.fromstring(event_xml(NAMESPACES[1], body, "7", 'a<b&c"d\'e>\r'))
    ns = NAMESPACES[1]
    assert root.findtext(f"{{{ns}}}alertingDevice/{{{ns}}}deviceIdentifier") == 'a<b&c"d\'e>\r'
    assert b"a&lt;b&amp;c\"d'e&gt;&#13;" in event_xml(ns, body, "7", None)


@pytest.mark.parametrize("value", NOT_XML)
def test_characters_xml_cannot_carry_fail_as_with_lxml(value):
    body = _call_body("Established", value)
    wire, reference = _both(NAMESPACES[0], body, "7", "2000")
    assert wire is reference is ValueError


def test_lone_surrogates_and_non_text_fail_as_with_lxml():
    wire, reference = _both(NAMESPACES[0], _call_body("Held", "10\ud800"), "7", None)
    assert wire is reference is UnicodeEncodeError
    wire, reference = _both(NAMESPACES[0], {"event": "Held", "call_id": C1, "device": "1000", "cause": 5,
                                            "holding": "1000", "connections": []}, "7", None)
    assert wire is reference is TypeError


def test_every_character_escapes_as_lxml_escapes_it():
    E = ElementMaker(namespace=NAMESPACES[0], nsmap={None: NAMESPACES[0]})
    for cp in list(range(0, 0x3000)) + list(range(0xD7F0, 0xE010)) + list(range(0xFFF0, 0x10010)) + [0x10FFFF]:
        ch = f"x{chr(cp)}y"
        try:
            expected = to_bytes(E.a(ch))
        except Exception as exc:
            with pytest.raises(type(exc)):
                document(NAMESPACES[0], "a", ch)
            continue
        assert document(NAMESPACES[0], "a", ch) == expected, hex(cp)


def test_maker_matches_element_maker_shapes():
    E = ElementMaker(namespace=NAMESPACES[2], nsmap={None: NAMESPACES[2]})
    cases = [lambda M: (M.a(),), lambda M: (M.a(""),), lambda M: (M.a("t", M.b(), "u", M.c("v")),),
             lambda M: (device_el(M, "d", None), device_el(M, "d", "12"), connection_el(M, "c", None, None),
                        connection_el(M, "c", C1, "1000"), connection_el(M, "c", "", "5"))]
    for case in cases:
        assert document(NAMESPACES[2], "Root", *case(MAKER)) == to_bytes(E.Root(*case(E)))
    assert document(NAMESPACES[2], "Empty") == to_bytes(E.Empty())
    assert isinstance(MAKER.x("1"), Markup) and escape_text("<") == "&lt;"


def test_common_part_is_written_once_per_bus_event(monkeypatch):
    calls = []
    build = BUILDERS["Delivered"]
    monkeypatch.setitem(BUILDERS, "Delivered", lambda E, b, m: calls.append(1) or build(E, b, m))
    body = _call_body("Delivered", "1000")
    shared: dict = {}
    docs = [event_xml(ns, body, xref, who, shared) for ns, xref, who in
            [(NAMESPACES[1], "1", "1000"), (NAMESPACES[3], "2", "2000"), (NAMESPACES[1], "3", None)]]
    assert len(calls) == 1
    event_xml(NAMESPACES[1], body, "4", "1000")  # no shared dict: built afresh
    assert len(calls) == 2
    assert docs == [event_xml_lxml(NAMESPACES[1], body, "1", "1000"), event_xml_lxml(NAMESPACES[3], body, "2", "2000"),
                    event_xml_lxml(NAMESPACES[1], body, "3", None)]
    assert events.event_xml(NAMESPACES[1], {"event": "Offered"}, "1", None, shared) is None
