"""The documentation runs: docs/examples/screen_pop.py against a real exchange (`mxone up` under
supervisord, LIM 1's CSTA server), and docs/conformance.md names every service and event the code
has, with the exchange's refusals as they are mapped, shows well-formed XML, and holds no Python to
run (the example file is the runnable code)."""
from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from lxml import etree

from csta_front.events import EVENT_NAMES
from csta_front.service_table import SERVICES
from csta_front.services import LIM_ERRORS
from lim.phone import Exchange
from tests.ecma323_validator import describe, validate
from tests.procs import write_topology

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "screen_pop.py"
CONFORMANCE = ROOT / "docs" / "conformance.md"


def mxone(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


class Lines:
    """A subprocess's stdout, read line by line on a thread, so the test can wait with a timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # end of output

    def next(self, timeout: float) -> str | None:
        """The next line, or None at the end of the output."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout:.1f}s; so far: {self.seen}") from None
        if line is not None:
            self.seen.append(line)
        return line

    def rest(self, timeout: float) -> list[str]:
        """Every line, once the output has ended."""
        deadline = time.monotonic() + timeout
        while self.next(max(0.01, deadline - time.monotonic())) is not None:
            pass
        return self.seen


@pytest.mark.cluster
def test_screen_pop_example_against_a_running_exchange(tmp_path):
    topology_file = write_topology(tmp_path / "exchange.yaml")
    lim1 = yaml.safe_load(topology_file.read_text())["lims"][0]
    assert lim1["address"] == "127.0.1.1"  # the example's default host, as under `make run`
    run_dir = tmp_path / "run"
    up = mxone("up", str(topology_file), "--detach", "--run-dir", str(run_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--port", str(lim1["csta"]["port"]),
                                 "--device", "2000", "--count", "2", "--timeout", "60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        out = Lines(proc)
        first = out.next(timeout=30)
        assert first is not None and first.startswith("Monitoring 2000 on 127.0.1.1:"), \
            (first, proc.stderr.read() if first is None else "")
        with Exchange.from_run_dir(run_dir) as exchange:
            call_id = exchange.phone("1000").dial("2000")["call_id"]
            exchange.phone("2000").answer()
            lines = out.rest(timeout=30)
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
            exchange.phone("1000").hangup()
        assert len(lines) == 3, lines
        assert lines[1] == f"SCREEN POP  caller 1000  called 2000  call {call_id}"
        assert lines[2].startswith("Established") and "answered by 2000" in lines[2] and call_id in lines[2]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        down = mxone("down", "--run-dir", str(run_dir))
        assert down.returncode == 0, down.stderr


# -- docs/conformance.md ---------------------------------------------------------------------------
def conformance() -> str:
    return CONFORMANCE.read_text()


def test_conformance_has_no_python_to_run():
    assert not re.search(r"^```(python|py)\b", conformance(), re.MULTILINE), \
        "runnable code belongs in docs/examples/ (tested here), not in conformance.md"


def test_conformance_lists_every_supported_service_and_event():
    text = conformance()
    supported = set(re.findall(r"^\| `(\w+)` \| yes \|", text, re.MULTILINE))
    assert supported == set(SERVICES), "services table and csta_front/services.py differ"
    not_supported = set(re.findall(r"^\| `(\w+)` \| no \|", text, re.MULTILINE))
    assert not supported & not_supported
    events = set(re.findall(r"^\| `(\w+Event)` \|", text, re.MULTILINE))
    assert events == set(EVENT_NAMES.values()), "events table and csta_front/events.py differ"


def test_conformance_xml_examples_are_well_formed_and_valid():
    blocks = re.findall(r"^```xml\n(.*?)^```", conformance(), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 10
    for block in blocks:
        etree.fromstring(block.encode())  # one document per block
        problems = validate(block)  # and one the standard defines
        assert not problems, describe(block, problems)


def test_conformance_error_table_matches_lim_errors():
    """Section 6's table of the exchange's refusals is LIM_ERRORS, code for code."""
    text = conformance()
    table = text[text.index("### Refusals by the exchange"):text.index("Overrides for particular services")]
    documented = {}
    for line in table.splitlines():
        row = re.match(r"\| (`[^|]+`) \| ([^|]+) \|", line)
        if row is None:
            continue
        codes = re.findall(r"`(\w+)`", row.group(1))
        errors = re.findall(r"`(\w+)` / `(\w+)`", row.group(2))
        for n, code in enumerate(codes):
            documented[code] = errors[min(n, len(errors) - 1)]
    assert documented == LIM_ERRORS
