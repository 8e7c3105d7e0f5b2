"""Parse untrusted XML (whatever a CSTA client sends) without trusting it.

Refused before the parser sees a byte:
  * more than `max_bytes`                                   -> "too_large"
  * nothing but whitespace                                   -> "empty"
  * not UTF-8, or an XML declaration naming another encoding -> "not_utf8"  (ASCII is UTF-8)
  * `<!DOCTYPE` or `<!ENTITY` anywhere, any case             -> "doctype"
    (DTDs, external entities, billion laughs: never parsed, never expanded)
Then lxml parses with entity resolution, network, DTD loading and huge trees all off, comments and
processing instructions dropped; a syntax error is "malformed" with lxml's line/column message.

Nothing is ever read from disk or network.
"""
from __future__ import annotations

import re
import threading

from lxml import etree

__all__ = ["XmlError", "parse_xml", "local_name", "namespace", "MAX_XML_BYTES", "REASONS"]

MAX_XML_BYTES = 65535
REASONS = ("too_large", "empty", "not_utf8", "doctype", "malformed")

_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# The XML declaration, after an optional UTF-8 byte order mark.
_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml\s[^>]*?\bencoding\s*=\s*([\"'])([^\"']*)\1")
_ACCEPTED_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class XmlError(Exception):
    """Unacceptable XML. `reason` is one of REASONS; the message is one line."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"XmlError({self.reason!r}, {self.message!r})"


_local = threading.local()  # lxml parsers must not be shared between threads


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True)
    return parser


def parse_xml(data: bytes, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """The root element of `data`, or XmlError."""
    if isinstance(data, str):
        raise TypeError("parse_xml takes bytes, not str")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlError("too_large", f"XML document of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data.strip():
        raise XmlError("empty", "XML document is empty")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlError("not_utf8", f"XML is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset "
                                   f"{exc.start}") from None
    declared = _DECLARATION.match(data)
    if declared is not None:
        encoding = declared.group(2).decode("ascii", "replace")
        if encoding.strip().lower() not in _ACCEPTED_ENCODINGS:
            raise XmlError("not_utf8", f"XML declares encoding {encoding!r}: only UTF-8 is accepted")
    forbidden = _FORBIDDEN.search(data)
    if forbidden is not None:
        raise XmlError("doctype", f"XML contains <!{forbidden.group(1).decode().upper()} at offset "
                                  f"{forbidden.start()}: DTDs and entity declarations are refused")
    return _parse(data)


def _parse(data: bytes) -> etree._Element:
    """lxml with the safe parser, no pre-checks (tests use it to prove the parser itself is safe)."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        message = " ".join(str(exc).split())  # one line
        raise XmlError("malformed", f"malformed XML: {message}") from None
    if root is None:  # lxml returns None for some recoverable non-documents
        raise XmlError("malformed", "malformed XML: no root element")
    return root


def local_name(el: etree._Element | str) -> str:
    """Element name without its namespace: `MakeCall` for `{...ed5}MakeCall` or `ns3:MakeCall`."""
    tag = el if isinstance(el, str) else el.tag
    if not isinstance(tag, str):  # comment, processing instruction, entity
        return ""
    return tag.rpartition("}")[2] if tag.startswith("{") else tag


def namespace(el: etree._Element | str) -> str | None:
    """The element's namespace URI, or None when it has none."""
    tag = el if isinstance(el, str) else el.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None
    return tag[1:tag.index("}")]
