"""Scenario files (tools/scenario.py): the shipped examples pass against the built-in topology,
a wrong expectation is reported as MISSED, a malformed file is refused before anything starts."""
from __future__ import annotations

from pathlib import Path

import pytest

import tools.scenario as scenario_module
from tools.scenario import load_scenario, run_scenario_file
from cluster.exchange import running_exchange

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "tools" / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(run_dir=tmp_path_factory.mktemp("mxone"), free_ports=True) as exchange:
        yield exchange


def test_examples_are_shipped():
    assert len(SCENARIOS) >= 3
    for path in SCENARIOS:
        assert load_scenario(path).expect


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_example_passes(running, path):
    lines: list[str] = []
    ok = run_scenario_file(path, run_dir=running.run_dir, speed=10, out=lines.append)
    assert ok, "\n".join(lines)
    assert any(line.endswith(": met") for line in lines)
    assert not running.calls(), "the scenario left calls behind"


def test_wrong_expectation_is_missed(running, tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("""
name: wrong expectation
monitors: [{device: 1004}]
steps:
  - {at: 0, device: 1004, action: dial, number: 2004}
  - {after: 1, device: 2004, action: answer}
  - {after: 1, device: 1004, action: hangup}
expect:
  1004: [Originated, Delivered, Transfered, ConnectionCleared]
""")
    lines: list[str] = []
    assert run_scenario_file(wrong, run_dir=running.run_dir, speed=10, out=lines.append) is False
    missed = [line for line in lines if "MISSED" in line]
    assert missed and missed[0].startswith("1004: MISSED: expected Transfered after Delivered, got [")
    assert not running.calls()


def test_refused_step_fails_unless_expected(running, tmp_path):
    scenario = tmp_path / "refused.yaml"
    scenario.write_text("""
steps:
  - {at: 0, device: 1004, action: answer, expect_refusal: REFUSAL}
""")
    lines: list[str] = []
    scenario.write_text(scenario.read_text().replace("REFUSAL", "false"))
    assert run_scenario_file(scenario, run_dir=running.run_dir, speed=10, out=lines.append) is False
    assert "1004 answer: refused: " in lines[-1] and lines[-1].endswith("(not_alerting)")
    scenario.write_text(scenario.read_text().replace("false", "true"))
    assert run_scenario_file(scenario, run_dir=running.run_dir, speed=10, out=lines.append) is True


@pytest.mark.parametrize("step, problem", [
    ("{at: 1, device: 1000, action: jump}", "step 2 (jump): unknown action 'jump'"),
    ("{at: 1, device: 1000, action: consult}", "step 2 (consult): missing number"),
    ("{at: soon, device: 1000, action: hangup}", "step 2 (hangup): bad time at: 'soon'"),
    ("{at: 0.5, device: 1000, action: hangup}", "step 2 (hangup): bad time at: 0.5 is before"),
    ("{after: 1, action: hangup}", "step 2 (hangup): missing device"),
    ("{after: 1, device: 1000, action: agent, args: [login]}", "step 2 (agent): agent login takes"),
])
def test_malformed_file_is_refused_before_starting(tmp_path, monkeypatch, step, problem):
    def must_not_start(*args, **kwargs):
        raise AssertionError("an exchange was started for a malformed scenario")
    monkeypatch.setattr(scenario_module, "running_exchange", must_not_start)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"steps:\n  - {{at: 1, device: 1000, action: dial, number: 2000}}\n  - {step}\n")
    with pytest.raises(ValueError) as info:
        run_scenario_file(bad)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_mxone_scenario_run_command(tmp_path):
    """The command a QA engineer types: exit 0 when every expectation is met, 2 for a broken file."""
    import subprocess
    import sys
    from pathlib import Path
    example = Path(__file__).resolve().parents[2] / "tools" / "scenarios" / "basic_call.yaml"
    ok = subprocess.run([sys.executable, "-m", "cli.main", "scenario", "run", str(example), "--speed", "10",
                         "--run-dir", str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ": met" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsteps:\n  - {at: 0, device: 1000, action: juggle}\n")
    bad = subprocess.run([sys.executable, "-m", "cli.main", "scenario", "run", str(broken)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("mxone: scenario: ") and "juggle" in bad.stderr


def test_a_failed_scenario_leaves_nothing_behind(running, tmp_path):
    """A caller queued at an ACD group with no agent, forwarding and an agent log-on changed, then a
    missed expectation: the run fails, and the exchange is as it was before it."""
    before = {d: running.exchange.phone(d).features() for d in ("1006", "2006")}
    left = tmp_path / "left.yaml"
    left.write_text("""
name: leaves things behind
monitors: [{device: 1006}]
steps:
  - {at: 0, device: 1006, action: forward, args: [busy, "1007"]}
  - {at: 0, device: 2006, action: agent, args: [login, "46", "5000"]}
  - {after: 0.5, device: 2006, action: agent, args: [notready]}
  - {after: 0.5, device: "0709999999", action: dial, number: "5000"}
  - {after: 0.5, device: 1006, action: dial, number: "2005"}
expect:
  1006: [Transferred]
""")
    lines: list[str] = []
    assert run_scenario_file(left, run_dir=running.run_dir, speed=10, out=lines.append) is False
    assert any(line.startswith("clean-up: 2 call(s) cleared") for line in lines), lines
    assert not running.calls(), "the scenario left calls behind"
    assert {d: running.exchange.phone(d).features() for d in ("1006", "2006")} == before


def test_junit_report_of_each_expectation(running, tmp_path):
    """`--junit`: read back with junitparser, as a CI server reads it: one case per step and per device."""
    import subprocess
    import sys
    from junitparser import Failure, JUnitXml

    scenario = tmp_path / "half.yaml"
    scenario.write_text("""
name: one met, one missed
monitors: [{device: 1004}, {device: 2004}]
steps:
  - {at: 0, device: 1004, action: dial, number: 2004}
  - {after: 1, device: 2004, action: answer}
  - {after: 1, device: 1004, action: hangup}
expect:
  1004: [Originated, Delivered, Established, ConnectionCleared]
  2004: [Delivered, Conferenced]
""")
    report = tmp_path / "report.xml"
    run = subprocess.run([sys.executable, "-m", "cli.main", "scenario", "run", str(scenario), "--speed", "10",
                          "--junit", str(report), "--run-dir", str(running.run_dir)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert (suite.name, suite.tests, suite.failures, suite.errors) == ("half", 5, 1, 0)
    cases = {case.name: case for case in suite}
    assert list(cases) == ["step 1: 1004 dial 2004", "step 2: 2004 answer", "step 3: 1004 hangup",
                           "events at 1004", "events at 2004"]
    assert all(case.is_passed for name, case in cases.items() if name != "events at 2004")
    (failure,) = cases["events at 2004"].result
    assert isinstance(failure, Failure) and failure.message.startswith("expected Conferenced after Delivered")
    assert not running.calls()
