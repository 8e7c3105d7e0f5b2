"""Every command README.md and docs/ show runs, in order, against a real exchange (issue 17).

One exchange is started the README's way (`mxone up --detach`, on free ports from
tests/procs.write_topology) with MXONE_RUN_DIR at its run directory and `./run` as that directory,
so the commands run exactly as written. Python blocks run with the built-in topology's CSTA port
(8882) mapped to the test exchange's free one: the only text the test changes. A block that stops
the exchange (`mxone down`) is followed by a fresh `mxone up --detach`, as a reader would do.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.docs_commands import Block, all_blocks, commands
from tests.procs import write_topology

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = all_blocks(ROOT)
RUN = [block for block in BLOCKS if block.not_run is None]

# The key line each command promises (from the docs' own words and the command's --help), as a
# regular expression its output must contain; a command not listed must only exit 0.
KEY_LINES = {
    "mxone status": r"(?m)^1 +\S+ +up ",
    "mxone group 5000": r"5000",
    "mxone phone 1000 dial 2000": r"\S",
    "mxone record --lim 1": r"csta-1\.record\.log",
    "mxone record --lim 1 --stop": r"\d+ document",
    "mxone traffic --profile office --rate 5 --calls 20": r"attempted +20\b",
    "mxone network show": r"0701234567",
}
# Background commands: the first line each prints says it is ready.
READY_LINES = {"mxone watch": r"^Monitoring 2000", "mxone events": r"^Watching"}
# What a python block must print (its comments say so), by a line of the block.
PYTHON_PRINTS = {"print(describe_event(": r"Delivered.*1000.*2000", "print(exchange.calls())": r"1000.*2000"}

# Every block the docs mark `not run`: adding one must be a visible change here, never silent.
NOT_RUN = {
    "README.md": 4, "docs/benchmarks.md": 4, "docs/examples/README.md": 3, "docs/failover.md": 1,
    "docs/operations.md": 6, "docs/tr87_soap.md": 3,
}


def test_blocks_not_run_are_listed_with_their_reasons():
    marked: dict[str, int] = {}
    for block in BLOCKS:
        if block.not_run is not None:
            assert len(block.not_run) > 10, f"{block.where}: say why the block is not run"
            marked[block.file] = marked.get(block.file, 0) + 1
    assert marked == NOT_RUN, "\n".join(
        f"not run: {b.where}: {b.not_run}" for b in BLOCKS if b.not_run)
    assert len(RUN) >= 8
    shown = {command.text for block in RUN if block.language == "sh" for command in commands(block)}
    assert set(KEY_LINES) <= shown, set(KEY_LINES) - shown
    for line in PYTHON_PRINTS:  # an expectation that no longer meets its block would check nothing
        assert any(line in block.text for block in RUN if block.language == "python"), line


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """An exchange started as the README says, in DIR/run, and the environment its commands see."""
    directory = tmp_path_factory.mktemp("docs")
    topology = write_topology(directory / "topology.yaml", no_answer_s=120)
    run_dir = directory / "run"
    env = {**os.environ, "MXONE_RUN_DIR": str(run_dir),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    data = yaml.safe_load(topology.read_text())
    state = {"directory": directory, "env": env, "topology": topology,
             "csta_port": next(lim["csta"]["port"] for lim in data["lims"] if lim["number"] == 1)}
    up(state)
    try:
        yield state
    finally:
        subprocess.run(["mxone", "down"], cwd=directory, env=env, capture_output=True, timeout=60)


def up(state: dict) -> None:
    done = subprocess.run(["mxone", "up", str(state["topology"]), "--detach"], cwd=state["directory"],
                          env=state["env"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def running(state: dict) -> bool:
    return subprocess.run(["mxone", "status"], cwd=state["directory"], env=state["env"],
                          capture_output=True, timeout=60).returncode == 0


def run_sh(block: Block, state: dict) -> None:
    background: list[tuple[str, subprocess.Popen]] = []
    try:
        for command in commands(block):
            where = f"{block.file}:{command.line}: {command.text}"
            if command.background:
                proc = subprocess.Popen(["bash", "-c", command.text], cwd=state["directory"], env=state["env"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                ready = next(pattern for prefix, pattern in READY_LINES.items() if command.text.startswith(prefix))
                first = proc.stdout.readline()  # blocks until its ready line (the process's timeout bounds it)
                assert re.search(ready, first), f"{where}: not ready: {first!r}"
                background.append((where, proc))
                continue
            done = subprocess.run(["bash", "-c", command.text], cwd=state["directory"], env=state["env"],
                                  capture_output=True, text=True, timeout=240)
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"{where}: exit {done.returncode}\n{output}"
            if command.text in KEY_LINES:
                assert re.search(KEY_LINES[command.text], output), f"{where}: no {KEY_LINES[command.text]!r} in\n{output}"
        for where, proc in background:
            rest, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{rest}"
    finally:
        for _, proc in background:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_python(block: Block, state: dict) -> None:
    text = block.text.replace("8882", str(state["csta_port"]))
    done = subprocess.run([sys.executable, "-c", text], cwd=state["directory"], env=state["env"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{block.where}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    for line, printed in PYTHON_PRINTS.items():
        if line in block.text:
            assert re.search(printed, done.stdout), f"{block.where}: printed {done.stdout!r}"


@pytest.mark.parametrize("block", RUN, ids=[block.where for block in RUN])
def test_the_block_works_as_written(block, exchange):
    if not running(exchange):
        up(exchange)  # the block before ended with `mxone down`
    started = time.monotonic()
    (run_sh if block.language == "sh" else run_python)(block, exchange)
    assert time.monotonic() - started < 120, f"{block.where} is too slow for the docs test"
