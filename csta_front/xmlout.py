"""ECMA-323 documents written straight to text, byte for byte what lxml writes for the same tree.

The event builders (csta_front/events.py) and codec.device_el/connection_el are written against
the `ElementMaker` interface: `E.name(*children)` / `E(name, *children)`, a str child being text.
`StringMaker` offers the same interface but returns the element's markup instead of a tree, so
the hot path (every event, to every monitor) skips building lxml elements and serialising them:
about ten times cheaper. The tests build each event both ways and compare the bytes
(tests/unit/test_csta_xmlout.py).

What lxml does, and so what this does:
  - text escapes `&`, `<`, `>` and carriage return (`&#13;`); quotes stay as they are;
  - an element with no children and no text is `<name/>`, with empty text `<name></name>`;
  - characters XML cannot carry (NUL and the other C0 controls but tab, newline and carriage
    return; U+FFFE, U+FFFF) raise ValueError, lone surrogates raise UnicodeEncodeError when
    the document is encoded, a child that is neither text nor an element raises TypeError;
  - attributes (keyword arguments, as ElementMaker takes them) are written in the order given,
    `name="value"`, the value escaping `&`, `<`, `>`, `"`, tab, newline and carriage return;
  - the document starts `<?xml version='1.0' encoding='UTF-8'?>` and a newline, and its root
    element declares the namespace as the default one (taken from lxml itself, once per name
    and namespace).
"""
from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree
from lxml.builder import ElementMaker

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ESCAPE_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;",
                                   "\n": "&#10;", "\t": "&#9;"})
_SPLIT = "@@split@@"


class Markup(str):
    """An element already written out (as opposed to a str, which is text to escape)."""
    __slots__ = ()


def escape_text(text: str) -> str:
    """Text content as lxml writes it; ValueError for characters XML cannot carry."""
    if text.isalnum() and text.isascii():  # digits and names: most of what an event carries
        return text
    if _NOT_XML.search(text):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    return text.translate(_ESCAPE)


def _content(children: tuple) -> str:
    parts: list[str] = []
    for child in children:
        if type(child) is Markup:
            parts.append(child)
        elif isinstance(child, str):
            parts.append(escape_text(child))
        else:  # lxml's ElementMaker refuses these too
            raise TypeError(f"bad argument type: {type(child).__name__}({child!r})")
    return "".join(parts)


class StringMaker:
    """`ElementMaker`'s calling convention, markup out. Namespace-free: the namespace is the
    document's default one, declared on the root by `document()`."""

    def __call__(self, name: str, *children) -> Markup:
        return getattr(self, name)(*children)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        start, end, empty = f"<{name}>", f"</{name}>", Markup(f"<{name}/>")

        def make(*children, **attributes: str) -> Markup:
            if attributes:  # rare (a DeviceID's typeOfNumber): the plain path stays as it was
                return _with_attributes(name, children, attributes)
            if not children:
                return empty
            if len(children) == 1 and type(children[0]) is str:  # the common case: one text
                return Markup(start + escape_text(children[0]) + end)
            return Markup(start + _content(children) + end)
        setattr(self, name, make)  # made once per element name
        return make


def _with_attributes(name: str, children: tuple, attributes: dict[str, str]) -> Markup:
    for value in attributes.values():
        if _NOT_XML.search(value):
            raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    start = f"<{name}" + "".join(f' {key}="{value.translate(_ESCAPE_ATTRIBUTE)}"' for key, value in attributes.items())
    if not children:
        return Markup(start + "/>")
    return Markup(f"{start}>{_content(children)}</{name}>")


MAKER = StringMaker()
# What the event builders take: lxml's ElementMaker (trees, the reference) or a StringMaker (markup).
Maker = ElementMaker | StringMaker


@lru_cache(maxsize=512)
def _root(name: str, ns: str) -> tuple[str, str]:
    """The document's text before and after the root's content, as lxml writes them."""
    E = ElementMaker(namespace=ns, nsmap={None: ns})
    text = etree.tostring(E(name, _SPLIT), xml_declaration=True, encoding="UTF-8").decode()
    head, tail = text.split(_SPLIT)
    return head, tail


def document(ns: str, name: str, *children) -> bytes:
    """The whole document, UTF-8: root `name` in namespace `ns` (the default namespace)."""
    if not children:  # `<name xmlns="..."/>`: lxml's own, no hot path writes it
        return etree.tostring(ElementMaker(namespace=ns, nsmap={None: ns})(name), xml_declaration=True,
                              encoding="UTF-8")
    head, tail = _root(name, ns)
    return (head + _content(children) + tail).encode()
