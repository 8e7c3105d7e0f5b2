"""Every document the CSTA server sends in any test is checked against the ECMA-323 schema facts.

MXONE_WIRE_LOG is set to a fresh directory before any test starts a process, so every process
(started directly, through supervisord, or the test process itself with its in-process sessions)
appends what its sessions send to wire-<pid>.log there (csta_front/wiretap.py). After each test,
`_wire_documents_valid` checks what was written while it ran and fails the test naming each invalid
document. What arrives between tests (a module-scoped exchange's late events) is checked at the
end of the run, which then fails if any is invalid.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from csta_front import wiretap
from tests.ecma323_validator import describe, validate

_WIRE_DIR = Path(tempfile.mkdtemp(prefix="mxone-wire-"))
os.environ[wiretap.ENV] = str(_WIRE_DIR)  # inherited by every process the tests start
wiretap.configure(_WIRE_DIR)              # and this one's, even if csta_front was imported already


class WireCheck:
    """Reads the wire logs on from where it stopped, validating each document once."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.offsets: dict[Path, int] = {}
        self.verdicts: dict[str, list[str]] = {}  # the same document is checked once
        self.checked = 0
        self.pids: set[int] = set()
        self.invalid = 0
        self.stray: list[str] = []  # invalid documents written outside any test

    def new_documents(self) -> list[dict]:
        documents = []
        for path in sorted(self.directory.glob("wire-*.log")):
            with open(path, "rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for next time
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            documents.extend(json.loads(line) for line in complete.splitlines() if line.strip())
        return documents

    def failures(self) -> list[str]:
        """The invalid documents among those written since the last call, each with its problems."""
        failures = []
        for doc in self.new_documents():
            xml = doc["xml"]
            problems = self.verdicts.get(xml)
            if problems is None:
                problems = self.verdicts[xml] = validate(xml)
            self.checked += 1
            self.pids.add(doc["pid"])
            if problems:
                self.invalid += 1
                failures.append(f"pid {doc['pid']} session {doc['session']} ({doc['peer']}) invoke ID "
                                f"{doc['invoke_id']}:\n{describe(xml, problems)}")
        return failures


WIRE = WireCheck(_WIRE_DIR)


@pytest.fixture(autouse=True)
def _wire_documents_valid():
    """Set up first, torn down last: every document sent while the test ran must be valid."""
    WIRE.stray.extend(WIRE.failures())  # written between tests: reported at the end of the run
    yield
    failures = WIRE.failures()
    if failures:
        pytest.fail(f"{len(failures)} document(s) sent are not valid ECMA-323/ECMA-354:\n" + "\n".join(failures),
                    pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    WIRE.stray.extend(WIRE.failures())
    if WIRE.stray and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"wire: {WIRE.checked} documents sent checked against ECMA-323/ECMA-354, "
                                f"{WIRE.invalid} invalid ({len(WIRE.pids)} processes)")
    if WIRE.stray:
        terminalreporter.write_line("wire: invalid documents sent outside any test (the run fails):", red=True)
        for failure in WIRE.stray:
            terminalreporter.write_line(failure)


def pytest_unconfigure(config):
    shutil.rmtree(_WIRE_DIR, ignore_errors=True)
