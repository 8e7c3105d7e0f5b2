"""Schema check for the monitor-edge and capability tests: the suite's validator
(tests/ecma323_validator.py) when it is there, else a small walk over the same schema facts
(ECMA-323 ed3/ed6 element names, order, enumerations, booleans and numbers).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lxml import etree

CSTA_NS_PREFIX = "http://www.ecma-international.org/standards/ecma-323/csta/"
SCHEMA_PATHS = (Path(__file__).parent / "ecma323" / "schema.json", Path("/work/shared/ecma323/schema.json"))

try:  # the suite's own validator, once merged
    from tests.ecma323_validator import validate as _suite_validate
except ImportError:
    _suite_validate = None


@lru_cache(maxsize=1)
def _facts() -> dict:
    for path in SCHEMA_PATHS:
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
    raise FileNotFoundError("no ECMA-323 schema facts (tests/ecma323/schema.json)")


def problems(xml: bytes) -> list[str]:
    if _suite_validate is not None:
        return _suite_validate(xml)
    root = etree.fromstring(xml)
    qname = etree.QName(root)
    if not (qname.namespace or "").startswith(CSTA_NS_PREFIX):
        return [f"namespace {qname.namespace} is not ECMA-323's"]
    data = _facts()["schemas"][_facts()["editions"][qname.namespace[len(CSTA_NS_PREFIX):]]]
    type_name = data["roots"].get(qname.localname)
    if type_name is None:
        return [f"{qname.localname} is no root element of the schema"]
    out: list[str] = []
    _check(data, root, type_name, qname.localname, out)
    return out


def _particles(data: dict, type_name: str) -> list[dict]:
    t = data["types"][type_name]
    return (_particles(data, t["base"]) if t.get("base") else []) + t["particles"]


def _check(data: dict, el, type_name: str, path: str, out: list[str]) -> None:
    value = (el.text or "").strip()
    if type_name in data["enums"]:
        if value not in data["enums"][type_name]["values"]:
            out.append(f"{path}: {value!r} is not one of {type_name}")
        return
    if type_name == "xs:boolean":
        if value not in ("true", "false", "1", "0"):
            out.append(f"{path}: {value!r} is not a boolean")
        return
    if type_name in ("xs:long", "xs:int", "xs:short"):
        if not value.lstrip("-").isdigit():
            out.append(f"{path}: {value!r} is not a number")
        return
    if type_name.startswith("xs:") or type_name not in data["types"]:
        return
    if value and not data["types"][type_name].get("text"):
        out.append(f"{path}: text {value!r} in {type_name}, a structure")
    children = [c for c in el if isinstance(c.tag, str)]
    particles = _particles(data, type_name)
    position = 0
    for child in children:
        name = etree.QName(child).localname
        for index in range(position, len(particles)):
            p = particles[index]
            if p["kind"] == "element" and p["name"] == name:
                _check(data, child, p["type"], f"{path}/{name}", out)
                position = index if p.get("max") != 1 else index + 1
                break
            if p["kind"] == "wrapper" and p["name"] == name:
                for item in child:
                    match = [i for i in p["items"] if i["name"] == etree.QName(item).localname]
                    if not match:
                        out.append(f"{path}/{name}: {etree.QName(item).localname} is not an item of it")
                    else:
                        _check(data, item, match[0]["type"], f"{path}/{name}/{match[0]['name']}", out)
                position = index + 1
                break
            if p["kind"] == "choice" and name in [e["name"] for e in p["elements"]]:
                chosen = next(e for e in p["elements"] if e["name"] == name)
                _check(data, child, chosen["type"], f"{path}/{name}", out)
                position = index if p.get("repeat") else index + 1
                break
        else:
            out.append(f"{path}: {name} is not allowed here (after {[etree.QName(c).localname for c in children]})")
            return


def assert_valid(xml: bytes) -> None:
    found = problems(xml)
    assert not found, f"{xml.decode()}\n" + "\n".join(found)
