"""SOAP 1.1 envelopes and faults for the CSTA Web Service (pure: bytes in, bytes out).

Parsing an envelope (safely: the body is untrusted), wrapping a document in one, a Fault from a
CSTAErrorCode, and the small parsers of this service's own elements (xs:duration). Kept apart
from the HTTP side so the wire format can be tested and reused without connections or threads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from lxml.builder import ElementMaker

from csta_front.safexml import XmlError, local_name, parse_xml

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WS_NS = "urn:mxone-sim:csta:ws"  # Subscribe, Renew, Unsubscribe, GetEvents and the SubscriptionID header
SUBSCRIPTION_HEADER = f"{{{WS_NS}}}SubscriptionID"
MAX_BODY = 65536  # the largest SOAP message read: a request's body (413 above it), a listener's answer


class SoapFault(Exception):
    """A SOAP 1.1 Fault. `code` is the local part of the faultcode: Client, Server, VersionMismatch
    or MustUnderstand; `detail` an element to put in <detail>, or None."""

    def __init__(self, code: str, string: str, detail: etree._Element | None = None):
        super().__init__(string)
        self.code = code
        self.string = string
        self.detail = detail


@dataclass
class Envelope:
    headers: list[etree._Element]   # the Header's entries
    body: etree._Element            # the one element in the Body


def parse_envelope(data: bytes, understood: frozenset[str] = frozenset({SUBSCRIPTION_HEADER})) -> Envelope:
    """A SOAP 1.1 envelope, or SoapFault (Client, VersionMismatch, MustUnderstand)."""
    try:
        root = parse_xml(data, max_bytes=MAX_BODY)
    except XmlError as exc:
        raise SoapFault("Client", f"not a SOAP envelope: {exc.message}") from None
    qname = etree.QName(root)
    if qname.localname == "Envelope" and qname.namespace == SOAP12_NS:
        raise SoapFault("VersionMismatch", "a SOAP 1.2 envelope: this service speaks SOAP 1.1")
    if qname.localname != "Envelope" or qname.namespace != SOAP_NS:
        raise SoapFault("Client", f"not a SOAP 1.1 envelope: the document is <{qname.localname}>"
                                  f"{' in ' + qname.namespace if qname.namespace else ''}")
    header = body = None
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{SOAP_NS}}}Header" and header is None and body is None:
            header = child
        elif child.tag == f"{{{SOAP_NS}}}Body" and body is None:
            body = child
        elif body is None:
            raise SoapFault("Client", f"unexpected <{local_name(child)}> in the envelope")
        # SOAP 1.1 allows further elements after the Body: ignored.
    if body is None:
        raise SoapFault("Client", "the envelope has no Body")
    entries = [h for h in (header if header is not None else []) if isinstance(h.tag, str)]
    for entry in entries:
        tag = str(entry.tag)  # a str already (the filter above): lxml types a tag as str, bytes or QName
        if entry.get(f"{{{SOAP_NS}}}mustUnderstand", "0").strip() in ("1", "true") and tag not in understood:
            raise SoapFault("MustUnderstand", f"header {tag} is not understood")
    items = [c for c in body if isinstance(c.tag, str)]
    if len(items) != 1:
        raise SoapFault("Client", f"the Body must hold exactly one request element, it holds {len(items)}")
    return Envelope(entries, items[0])


_DECLARATION = re.compile(rb"\A\s*<\?xml[^>]*\?>\s*")
_ENVELOPE_START = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                   b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">')


def envelope(body_xml: bytes, header_xml: bytes = b"") -> bytes:
    """A SOAP 1.1 envelope around one document (its XML declaration dropped) and header entries."""
    header = b"<soap:Header>" + _DECLARATION.sub(b"", header_xml) + b"</soap:Header>" if header_xml else b""
    return (_ENVELOPE_START + header + b"<soap:Body>" + _DECLARATION.sub(b"", body_xml)
            + b"</soap:Body></soap:Envelope>")


_S = ElementMaker(namespace=SOAP_NS, nsmap={"soap": SOAP_NS})
_PLAIN = ElementMaker()


def fault_envelope(fault: SoapFault) -> bytes:
    parts = [_PLAIN.faultcode(f"soap:{fault.code}"), _PLAIN.faultstring(fault.string)]
    if fault.detail is not None:
        parts.append(_PLAIN.detail(fault.detail))
    return etree.tostring(_S.Envelope(_S.Body(_S.Fault(*parts))), xml_declaration=True, encoding="UTF-8")


# CSTAErrorCode categories that are the exchange's trouble rather than the request's.
SERVER_CATEGORIES = frozenset({"systemResourceAvailibility", "subscribedResourceAvailability",
                               "performanceManagement", "unspecified", "privateData"})


def csta_error_fault(error: etree._Element, what: str = "") -> SoapFault:
    category_el = next((c for c in error if isinstance(c.tag, str)), None)
    category = local_name(category_el) if category_el is not None else "unspecified"
    value = (category_el.text or "").strip() if category_el is not None else ""
    server = category in SERVER_CATEGORIES or (category == "operation" and value == "generic")
    string = f"CSTA error: {category} {value}".rstrip()
    return SoapFault("Server" if server else "Client", f"{what}: {string}" if what else string, error)


def ws_fault(reason: str, string: str, code: str = "Client") -> SoapFault:
    """A Fault of this service's own operations: detail SubscriptionFault(Reason)."""
    W = ws_maker()
    return SoapFault(code, string, W.SubscriptionFault(W.Reason(reason)))


def ws_maker() -> ElementMaker:
    return ElementMaker(namespace=WS_NS, nsmap={"mx": WS_NS})


_DURATION = re.compile(r"\AP(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?\Z")


def parse_duration(raw: str | None) -> float | None:
    """Seconds of an xs:duration without years or months (P1DT2H, PT10M, PT1.5S), or of a plain
    number of seconds; None when it is neither (or negative)."""
    if raw is None:
        return None
    raw = raw.strip()
    if re.fullmatch(r"\d+(?:\.\d*)?", raw):
        return float(raw)
    match = _DURATION.match(raw)
    if not match or raw in ("P", "PT") or raw.endswith("T"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    return f"PT{int(seconds)}S"


def document_name(xml: bytes) -> str:
    """The local name of a document's root element, read without parsing it."""
    match = re.search(rb"<(?:[\w.-]+:)?([\w.-]+)", _DECLARATION.sub(b"", xml))
    return match.group(1).decode() if match else "Event"


def own_document(xml: bytes) -> etree._Element:
    """Our own session's output: trusted, parsed without safexml's limits."""
    return etree.fromstring(xml)
