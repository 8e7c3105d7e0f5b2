"""ECMA-323 XML in and out: read a request whatever its edition and prefixes, build responses,
errors and events in the namespace the client uses. Pure: no I/O.

Clients differ: Lync uses ed3, OpenScape and the MX-ONE trace ed4, others ed5/ed6; some use a
default namespace, some a prefix (`ns3:MakeCall`), some add `xsi:schemaLocation`. Reading ignores
namespaces (local names only); writing uses the session's namespace as the default namespace.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lxml import etree
from lxml.builder import ElementMaker

from csta_front import teluri
from csta_front.safexml import XmlError, local_name, parse_xml
from csta_front.xmlout import Maker

CSTA_NS_PREFIX = "http://www.ecma-international.org/standards/ecma-323/csta/"
EDITIONS = ("ed3", "ed4", "ed5", "ed6")
DEFAULT_NS = CSTA_NS_PREFIX + "ed4"  # what the MX-ONE itself was seen answering in
ACSE_NS = "http://www.ecma-international.org/standards/ecma-354/appl_session"


class CodecError(Exception):
    """A request that cannot be read: answered with a CSTA error on its invoke ID."""

    def __init__(self, value: str, message: str, category: str = "operation"):
        super().__init__(message)
        self.category = category
        self.value = value
        self.message = message


@dataclass
class Request:
    name: str                  # local name of the root element, e.g. "MakeCall"
    namespace: str | None      # its namespace URI
    root: etree._Element

    def find(self, *path: str) -> etree._Element | None:
        return find(self.root, *path)

    def text(self, *path: str) -> str | None:
        return text(self.root, *path)

    def require(self, *path: str) -> str:
        value = self.text(*path)
        if not value:
            raise CodecError("invalidParameterValue", f"{self.name}: {'/'.join(path)} is missing")
        return value


def parse_request(xml: bytes) -> Request:
    try:
        root = parse_xml(xml)
    except XmlError as exc:
        raise CodecError("invalidParameterValue", f"unreadable XML: {exc}") from None
    ns = etree.QName(root).namespace
    return Request(local_name(root), ns, root)


def find(el: etree._Element | None, *path: str) -> etree._Element | None:
    """Follow child elements by local name, whatever their namespace."""
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if isinstance(c.tag, str) and local_name(c) == name), None)
    return el


def text(el: etree._Element | None, *path: str) -> str | None:
    found = find(el, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def children(el: etree._Element | None, name: str) -> list[etree._Element]:
    if el is None:
        return []
    return [c for c in el if isinstance(c.tag, str) and local_name(c) == name]


def csta_namespace(ns: str | None) -> str:
    """The namespace to answer in: the client's own CSTA edition, else the default."""
    if ns and ns.startswith(CSTA_NS_PREFIX) and ns[len(CSTA_NS_PREFIX):] in EDITIONS:
        return ns
    return DEFAULT_NS


def device_number(raw: str | None, plan=None, error: str = "invalidDeviceID") -> str | None:
    """A device ID as the exchange numbers it: `1000`, `tel:1000;phone-context=dialstring`,
    `tel:+3222220220` (an E.164 number goes out with the international prefix 00), `sip:1000@host`,
    and with a number plan (`plan.internal`, `plan.ddi`: the front end's directory) a Lync line
    `tel:+1421112222;ext=12222` as its extension (csta_front/teluri.py has the rule). None when
    absent; a device ID that cannot be read is a CodecError with the value `error`."""
    try:
        if plan is None:
            return teluri.device_number(raw)
        return teluri.device_number(raw, plan.internal, plan.ddi)
    except teluri.DeviceIdError as exc:
        raise CodecError(error, f"device ID {(raw or '').strip()[:60]!r}: {exc}") from None


@lru_cache(maxsize=16)
def maker(ns: str) -> ElementMaker:
    return ElementMaker(namespace=ns, nsmap={None: ns})


def to_bytes(el: etree._Element) -> bytes:
    return etree.tostring(el, xml_declaration=True, encoding="UTF-8")


def error_response(ns: str, category: str, value: str) -> bytes:
    E = maker(ns)
    return to_bytes(E.CSTAErrorCode(E(category, value)))


def device_el(E: Maker, name: str, number: str | None, type_of_number: str | None = None):
    """<name><deviceIdentifier>1000</deviceIdentifier></name>, or <name><notKnown/></name>.
    `type_of_number`: the DeviceID's typeOfNumber attribute (ECMA-323's DeviceIDTypeOfNumber)."""
    if number:
        if type_of_number:
            return E(name, E.deviceIdentifier(str(number), typeOfNumber=type_of_number))
        return E(name, E.deviceIdentifier(str(number)))
    return E(name, E.notKnown())


def connection_el(E: Maker, name: str, call_id: str | None, number: str | None):
    parts = []
    if call_id:
        parts.append(E.callID(call_id))
    if number:
        parts.append(E.deviceID(str(number)))
    return E(name, *parts)
