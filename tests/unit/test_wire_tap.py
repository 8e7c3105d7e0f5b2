"""The wire tap (csta_front/wiretap.py) and the suite's hook on it (tests/conftest.py).

The hook is proven the way it is used: a small test file run by pytest in a subprocess, with the
suite's conftest as a plugin, whose tests make a real CstaSession send documents.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from csta_front import wiretap
from tests.csta_fakes import FakeClient, FakeFront
from tests.ecma323_validator import validate

ROOT = Path(__file__).resolve().parents[2]
ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"


def test_the_tap_writes_each_document_sent_with_its_session(tmp_path, monkeypatch):
    monkeypatch.setattr(wiretap, "TAP", wiretap.WireTap(tmp_path / "wire"))
    client = FakeClient(FakeFront(), peer="10.0.0.9:4711")
    frame = client.ask(7, f'<RequestSystemStatus xmlns="{ED4}"/>')
    lines = (tmp_path / "wire" / f"wire-{os.getpid()}.log").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["xml"].encode() == frame.xml and record["invoke_id"] == 7
    assert record["session"] == client.session.id and record["peer"] == "10.0.0.9:4711"
    assert record["pid"] == os.getpid() and validate(record["xml"]) == []


def test_no_tap_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(wiretap, "TAP", None)
    monkeypatch.setenv(wiretap.ENV, str(tmp_path))
    frame = FakeClient(FakeFront()).ask(7, f'<RequestSystemStatus xmlns="{ED4}"/>')
    assert validate(frame.xml) == [] and list(tmp_path.iterdir()) == []


def test_an_unwritable_directory_costs_the_tap_not_the_document(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(wiretap, "TAP", wiretap.WireTap(tmp_path / "file" / "wire"))
    frame = FakeClient(FakeFront()).ask(7, f'<RequestSystemStatus xmlns="{ED4}"/>')
    assert validate(frame.xml) == [] and wiretap.TAP is None


TINY = f'''
import pytest
from csta_front.codec import maker
from tests.csta_fakes import FakeClient, FakeFront

E = maker("{ED4}")


def test_sends_an_invalid_event():
    FakeClient(FakeFront()).session.unsolicited(E.TransferredEvent(E.monitorCrossRefID("1")))


def test_sends_a_valid_one():
    FakeClient(FakeFront()).session.unsolicited(E.SystemStatus(E.systemStatus("normal")))


@pytest.fixture(scope="module")
def late():
    yield
    # after the module's last test is over: caught only by the check at the end of the run
    FakeClient(FakeFront(), peer="late").session.unsolicited(E.CSTAErrorCode(E.systemResourceAvailability("resourceBusy")))


def test_module_fixture(late):
    pass
'''


def test_the_hook_fails_the_test_that_sent_an_invalid_document_and_the_run(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != wiretap.ENV}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_tiny.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "ERROR at teardown of test_sends_an_invalid_event" in out, out
    assert "/TransferredEvent: not a root element of the ed3 schema" in out, out
    assert "3 passed, 1 error" in out, out  # the invalid one passed its call and errs at teardown
    assert "wire: invalid documents sent outside any test (the run fails):" in out, out
    assert "session" in out and "(late)" in out and \
        "/CSTAErrorCode/systemResourceAvailability: unknown child of UniversalFailure" in out, out
    assert "wire: 3 documents sent checked against ECMA-323/ECMA-354, 2 invalid (1 processes)" in out, out
