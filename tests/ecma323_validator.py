"""Check an ECMA-323 / ECMA-354 document against the schema facts in tests/ecma323/schema.json.

    problems = validate(xml_bytes)      # [] when the document is one the standard defines
    problems = validate(xml_bytes, allow_additions=False)   # without the ed4/ed5 allowances below

Each problem is one line: the element's path, then what is wrong. The edition comes from the root's
namespace (ed3/ed4 -> the ed3 data, ed5/ed6 -> the ed6 data, ECMA-354 -> acse); any other namespace
is a problem. tests/ecma323/README.md says where the data comes from and what it cannot tell: a
missing string or structure, a list's length and facets pass unseen.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from lxml import etree

SCHEMA_PATH = Path(__file__).parent / "ecma323" / "schema.json"
CSTA_NS_PREFIX = "http://www.ecma-international.org/standards/ecma-323/csta/"
ACSE_NS = "http://www.ecma-international.org/standards/ecma-354/appl_session"

# Elements ECMA-323 ed4/ed5 added that the ed3/ed6 data (taken from classes generated from the ed3
# and ed6 XSDs) lacks, keyed (data, type) -> {child: (type, the particle it follows)}. Only an
# entry with a stated source belongs here; everything else the data lacks is rejected.
ADDITIONS: dict[tuple[str, str], dict[str, tuple[str, str | None]]] = {}

_INTEGER = re.compile(r"[+-]?\d+\Z")
_RANGES = {"xs:short": (-2**15, 2**15 - 1), "xs:int": (-2**31, 2**31 - 1), "xs:long": (-2**63, 2**63 - 1),
           "xs:nonNegativeInteger": (0, None), "xs:integer": (None, None)}
_FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z|[+-]?INF\Z|NaN\Z")


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def data_for(namespace: str | None) -> tuple[str, dict] | None:
    """(data name, schema data) for a root namespace, or None for one the standards do not define."""
    facts = schema()
    if namespace == ACSE_NS:
        return "acse", facts["schemas"]["acse"]
    if namespace and namespace.startswith(CSTA_NS_PREFIX):
        edition = facts["editions"].get(namespace[len(CSTA_NS_PREFIX):])
        if edition:
            return edition, facts["schemas"][edition]
    return None


def validate(xml: bytes | str, allow_additions: bool = True) -> list[str]:
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    qname = etree.QName(root)
    found = data_for(qname.namespace)
    if found is None:
        return [f"/{qname.localname}: namespace {qname.namespace!r} is not an ECMA-323 edition or ECMA-354"]
    name, data = found
    type_name = data["roots"].get(qname.localname)
    if type_name is None:
        return [f"/{qname.localname}: not a root element of the {name} schema"]
    checker = _Checker(name, data, qname.namespace, allow_additions)
    checker.element(root, type_name, f"/{qname.localname}")
    return checker.problems


class _Checker:
    def __init__(self, name: str, data: dict, namespace: str, allow_additions: bool):
        self.name, self.data, self.ns = name, data, namespace
        self.allow_additions = allow_additions
        self.problems: list[str] = []

    def problem(self, path: str, what: str) -> None:
        self.problems.append(f"{path}: {what}")

    # -- one element against its type -------------------------------------------------------------
    def element(self, el: etree._Element, type_name: str, path: str) -> None:
        children = [c for c in el if isinstance(c.tag, str)]
        text = (el.text or "") + "".join(c.tail or "" for c in el)
        types, enums = self.data["types"], self.data["enums"]
        if type_name.startswith("xs:") or type_name in enums:
            if children:
                self.problem(path, f"a {type_name} value has no child elements, found <{_local(children[0])}>")
                return
            self.simple(el.text or "", type_name, path)
            return
        spec = types.get(type_name)
        if spec is None:
            self.problem(path, f"type {type_name} is missing from the {self.name} data")
            return
        self.attributes(el, spec, path)
        if spec["text"]:
            if children:
                self.problem(path, f"{type_name} holds text only, found <{_local(children[0])}>")
                return
            self.simple(el.text or "", spec["text"]["type"], path)
            return
        if text.strip():
            what = "is Empty: no text allowed" if type_name == "Empty" else f"({type_name}) allows no text"
            self.problem(path, f"{what}, found {text.strip()[:40]!r}")
        self.sequence(children, self.particles(type_name), path, type_name)

    def particles(self, type_name: str) -> list[dict]:
        spec = self.data["types"][type_name]
        own = list(spec["particles"])
        additions = ADDITIONS.get((self.name, type_name), {}) if self.allow_additions else {}
        for child, (child_type, after) in additions.items():
            at = next((i + 1 for i, p in enumerate(own) if p.get("name") == after), 0)
            own.insert(at, {"kind": "element", "name": child, "type": child_type, "min": None, "max": 1})
        return (self.particles(spec["base"]) if spec["base"] else []) + own

    def attributes(self, el: etree._Element, spec: dict, path: str) -> None:
        known = {a["name"]: a for a in spec["attributes"]}
        for name, value in el.attrib.items():
            qn = etree.QName(name)
            if qn.namespace:  # xsi:schemaLocation and the like
                continue
            attribute = known.get(qn.localname)
            if attribute is None:
                if not spec["any_attribute"]:
                    self.problem(path, f"unknown attribute {qn.localname!r}")
                continue
            values = value.split() if attribute["list"] else [value]
            for v in values:
                self.simple(v, attribute["type"], f"{path}/@{qn.localname}")

    # -- children against particles, in order -----------------------------------------------------
    def sequence(self, children: list, particles: list[dict], path: str, type_name: str) -> None:
        i = 0
        for n, particle in enumerate(particles):
            kind = particle["kind"]
            if kind == "element":
                limit = particle["max"]
                count = 0
                while i < len(children) and self.named(children[i], particle["name"]) and \
                        (limit == "unbounded" or count < limit):
                    self.element(children[i], particle["type"], self.child_path(path, children, i))
                    i, count = i + 1, count + 1
                if count == 0 and particle["min"] == 1 and \
                        not any(self.named(c, particle["name"]) for c in children[i:]):  # misplaced, said below
                    self.problem(path, f"required <{particle['name']}> is missing")
            elif kind == "wrapper":
                if i < len(children) and self.named(children[i], particle["name"]):
                    self.wrapper(children[i], particle, self.child_path(path, children, i))
                    i += 1
            elif kind == "choice":
                options = {e["name"]: e["type"] for e in particle["elements"]}
                taken = 0
                while i < len(children) and _local(children[i]) in options and self.in_ns(children[i]) \
                        and (particle["repeat"] or taken == 0):
                    self.element(children[i], options[_local(children[i])], self.child_path(path, children, i))
                    i, taken = i + 1, taken + 1
            elif kind == "any":
                later = {p.get("name") for p in particles[n + 1:]}
                while i < len(children) and not (self.in_ns(children[i]) and _local(children[i]) in later):
                    i += 1
            else:
                self.problem(path, f"particle kind {kind!r} unknown to the validator")
        if i < len(children):
            self.leftover(children[i], particles, path, type_name, self.child_path(path, children, i))

    def wrapper(self, el: etree._Element, particle: dict, path: str) -> None:
        items = {item["name"]: item["type"] for item in particle["items"]}
        if (el.text or "").strip():
            self.problem(path, f"a list allows no text, found {el.text.strip()[:40]!r}")
        children = [c for c in el if isinstance(c.tag, str)]
        for i, child in enumerate(children):
            if self.in_ns(child) and _local(child) in items:
                self.element(child, items[_local(child)], self.child_path(path, children, i))
            else:
                self.problem(self.child_path(path, children, i),
                             f"unknown item of <{particle['name']}> (allowed: {', '.join(sorted(items))})")

    def leftover(self, child, particles: list[dict], path: str, type_name: str, child_path: str) -> None:
        name = _local(child)
        if not self.in_ns(child):
            self.problem(child_path, f"element in namespace {etree.QName(child).namespace!r}, "
                                     f"not the document's {self.ns!r}")
            return
        names = []
        for particle in particles:
            if particle["kind"] == "choice":
                names.extend(e["name"] for e in particle["elements"])
            elif "name" in particle:
                names.append(particle["name"])
        if name not in names:
            self.problem(child_path, f"unknown child of {type_name} (allowed, in order: {', '.join(names) or 'none'})")
            return
        previous = child.getprevious()
        while previous is not None and not isinstance(previous.tag, str):
            previous = previous.getprevious()
        if previous is not None and _local(previous) == name:
            self.problem(child_path, f"<{name}> occurs more often than {type_name} allows")
        else:
            self.problem(child_path, f"out of order in {type_name} (order: {', '.join(names)})")

    # -- values -----------------------------------------------------------------------------------
    def simple(self, value: str, type_name: str, path: str) -> None:
        enum = self.data["enums"].get(type_name)
        if enum is not None:
            values = value.split() if enum["flags"] else [value.strip()]
            for v in values:
                if v not in enum["values"]:
                    self.problem(path, f"{v!r} is not a {type_name} (one of: {', '.join(enum['values'][:12])}"
                                       f"{', ...' if len(enum['values']) > 12 else ''})")
            return
        v = value.strip()
        if type_name == "xs:boolean":
            if v not in ("true", "false", "1", "0"):
                self.problem(path, f"{v!r} is not a boolean (true, false, 1, 0)")
        elif type_name in _RANGES:
            low, high = _RANGES[type_name]
            if not _INTEGER.match(v):
                self.problem(path, f"{v!r} is not an integer ({type_name})")
            elif (low is not None and int(v) < low) or (high is not None and int(v) > high):
                self.problem(path, f"{v} is out of range for {type_name}")
        elif type_name in ("xs:float", "xs:double"):
            if not _FLOAT.match(v):
                self.problem(path, f"{v!r} is not a number ({type_name})")
        elif type_name == "xs:hexBinary":
            if len(v) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", v):
                self.problem(path, f"{v!r} is not hexBinary")
        elif type_name == "xs:language":
            if not re.fullmatch(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*", v):
                self.problem(path, f"{v!r} is not a language tag")
        elif type_name not in ("xs:string", "xs:anyElement"):
            self.problem(path, f"value type {type_name} unknown to the validator")

    # -- helpers ----------------------------------------------------------------------------------
    def in_ns(self, el) -> bool:
        return etree.QName(el).namespace == self.ns

    def named(self, el, name: str) -> bool:
        return self.in_ns(el) and _local(el) == name

    @staticmethod
    def child_path(path: str, children: list, i: int) -> str:
        name = _local(children[i])
        same = [c for c in children if _local(c) == name]
        return f"{path}/{name}" + (f"[{same.index(children[i]) + 1}]" if len(same) > 1 else "")


def _local(el) -> str:
    return etree.QName(el).localname


def describe(xml: bytes | str, problems: list[str], limit: int = 600) -> str:
    """A failure message: the problems, then the document (cut at `limit` characters)."""
    text = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else xml
    return "\n".join(["  " + p for p in problems] + ["  in: " + text[:limit] + ("..." if len(text) > limit else "")])
