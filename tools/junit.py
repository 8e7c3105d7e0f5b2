"""JUnit XML, the report format CI servers (Jenkins, GitLab, GitHub actions' reporters) read. Pure.

One <testsuite> in a <testsuites> root; a <testcase> per expectation, with a <failure> when it was
not met; times in seconds. Attributes as the de facto schema (Jenkins' junit plugin, Ant) has them."""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree


@dataclass(frozen=True)
class Case:
    name: str
    classname: str
    seconds: float
    failure: str | None = None  # None: passed


def junit_xml(suite: str, cases: list[Case], seconds: float) -> bytes:
    failures = sum(c.failure is not None for c in cases)
    root = etree.Element("testsuites", name=suite, tests=str(len(cases)), failures=str(failures), errors="0",
                         time=f"{seconds:.3f}")
    node = etree.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                            errors="0", skipped="0", time=f"{seconds:.3f}")
    for case in cases:
        element = etree.SubElement(node, "testcase", name=case.name, classname=case.classname,
                                   time=f"{case.seconds:.3f}")
        if case.failure is not None:
            etree.SubElement(element, "failure", message=case.failure).text = case.failure
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
