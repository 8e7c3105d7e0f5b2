"""Scenarios: a YAML script of phone actions at set times, and the CSTA events monitors must see.

    name: basic call
    monitors:
      - device: 1000
    steps:
      - {at: 0, device: 1000, action: dial, number: 2000}
      - {after: 1, device: 2000, action: answer}
      - {after: 1, device: 1000, action: hangup}
    expect:
      1000: [ServiceInitiated, Originated, Delivered, Established, ConnectionCleared]

`run_scenario_file(path, run_dir=None, speed=1.0)` runs one against a running exchange (run_dir)
or one it starts and stops itself; True when every step was accepted (or refused as the step
said) and every monitored device saw its expected events in order (others may come between).
Each step and each device's expectation is also an `Outcome` (for `--junit`). Pass or fail, what
the scenario started is undone at the end: its calls cleared, the features and agent log-ons it
changed put back, so the next scenario or `mxone traffic` finds the exchange as it was.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, Callable

import yaml

from broker.client import BusError
from cluster.control import Cluster
from cluster.exchange import RunningExchange, running_exchange
from csta_front.client import CstaClient, event_name
from topology.numberplan import NumberPlan

__all__ = ["Outcome", "Scenario", "Step", "load_scenario", "run_scenario", "run_scenario_file"]

# action -> what it needs: "number" (a number argument), "digits", "args" or nothing
PHONE_ACTIONS = {
    "offhook": None, "onhook": None, "answer": None, "hangup": None, "hold": None, "retrieve": None,
    "transfer": None, "conference": None, "alternate": None, "reconnect": None, "logon": None,
    "logoff": None,
    "dial": "number", "consult": "number", "deflect": "number", "sst": "number", "digits": "number",
}
SPECIAL_ACTIONS = ("agent", "forward", "dnd")
AGENT_ACTIONS = {"login": 3, "ready": 1, "notready": 1, "logout": 1, "wrapup": 1}
FORWARD_KINDS = ("all", "busy", "noanswer")
EXPECT_WAIT_S = 5.0  # how long (scaled, at least MIN_WAIT_S) to wait for expected events at the end
MIN_WAIT_S = 2.0


@dataclass
class Step:
    index: int           # 1-based, for messages
    time: float          # seconds from the start, unscaled
    device: str
    action: str
    number: str | None = None
    args: list[Any] = dc_field(default_factory=list)
    expect_refusal: bool = False

    def describe(self) -> str:
        extra = [self.number] if self.number is not None else [
            "off" if a is None else str(a).lower() if isinstance(a, bool) else str(a) for a in self.args]
        return " ".join([self.device, self.action, *extra])


@dataclass(frozen=True)
class Outcome:
    """One expectation of a run: a step done (or refused as expected), or a device's events seen."""
    name: str
    seconds: float
    failure: str | None = None


@dataclass
class Scenario:
    name: str
    topology: str | None
    monitors: list[str]
    steps: list[Step]
    expect: dict[str, list[str]]
    source: str = "<scenario>"


def _number(value: Any) -> str:
    return str(value)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; ValueError (one line, naming the step) if it is wrong."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_scenario(data, str(path))


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    def fail(message: str) -> None:
        raise ValueError(f"{source}: {message}")

    if not isinstance(data, dict):
        fail("a scenario is a mapping with name, monitors, steps and expect")
    unknown = set(data) - {"name", "topology", "monitors", "steps", "expect"}
    if unknown:
        fail(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    name = str(data.get("name") or Path(source).stem)
    topology = data.get("topology")
    if topology is not None and not isinstance(topology, str):
        fail("topology must be a file name or null")
    if topology is not None and source != "<scenario>" and not Path(topology).is_absolute():
        topology = str(Path(source).parent / topology)

    monitors = []
    for i, mon in enumerate(data.get("monitors") or [], 1):
        device = mon.get("device") if isinstance(mon, dict) else mon
        if device is None or isinstance(device, (dict, list, bool)):
            fail(f"monitor {i}: needs a device")
        monitors.append(_number(device))

    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        fail("steps: a list of at least one step is needed")
    steps: list[Step] = []
    previous = 0.0
    for i, raw in enumerate(raw_steps, 1):
        label = f"step {i}"
        if not isinstance(raw, dict):
            fail(f"{label}: a step is a mapping (at/after, device, action, ...)")
        action = raw.get("action")
        if action is not None:
            label = f"step {i} ({action})"
        bad_keys = set(raw) - {"at", "after", "device", "action", "number", "args", "expect_refusal"}
        if bad_keys:
            fail(f"{label}: unknown key(s): {', '.join(sorted(map(str, bad_keys)))}")
        if "at" in raw and "after" in raw:
            fail(f"{label}: give either at or after, not both")
        when_key = "at" if "at" in raw else "after" if "after" in raw else None
        when = raw.get(when_key, 0) if when_key else 0
        if isinstance(when, bool) or not isinstance(when, (int, float)) or when < 0:
            fail(f"{label}: bad time {when_key}: {when!r} (a number of seconds, 0 or more)")
        at = float(when) if when_key == "at" else previous + float(when)
        if at < previous:
            fail(f"{label}: bad time at: {when} is before the previous step ({previous:g}s)")
        previous = at
        device = raw.get("device")
        if device is None or isinstance(device, (dict, list, bool)):
            fail(f"{label}: missing device")
        if not isinstance(action, str):
            fail(f"{label}: missing action")
        number = raw.get("number")
        args = raw.get("args")
        if args is not None and not isinstance(args, list):
            fail(f"{label}: args must be a list")
        args = list(args or [])
        if action in PHONE_ACTIONS:
            if PHONE_ACTIONS[action] == "number":
                if number is None and len(args) == 1:
                    number = args[0]
                if number is None or isinstance(number, (dict, list, bool)) or str(number) == "":
                    fail(f"{label}: missing number")
                number = _number(number)
            elif number is not None or args:
                fail(f"{label}: {action} takes no number or args")
        elif action == "agent":
            if not args or args[0] not in AGENT_ACTIONS:
                fail(f"{label}: args must start with one of {', '.join(AGENT_ACTIONS)}")
            if len(args) != AGENT_ACTIONS[args[0]]:
                fail(f"{label}: agent {args[0]} takes "
                     + ("an agent ID and a group" if args[0] == "login" else "no further args"))
            args = [str(a) for a in args]
        elif action == "forward":
            if len(args) != 2 or args[0] not in FORWARD_KINDS:
                fail(f"{label}: args must be [all|busy|noanswer, NUMBER|null]")
            args = [args[0], None if args[1] in (None, "off") else _number(args[1])]
        elif action == "dnd":
            if len(args) != 1 or not isinstance(args[0], bool):
                fail(f"{label}: args must be [true] or [false]")
        else:
            fail(f"{label}: unknown action {action!r}")
        if number is not None and action not in PHONE_ACTIONS:
            fail(f"{label}: {action} takes args, not a number")
        refusal = raw.get("expect_refusal", False)
        if not isinstance(refusal, bool):
            fail(f"{label}: expect_refusal must be true or false")
        steps.append(Step(i, at, _number(device), action, number, args, refusal))

    expect_raw = data.get("expect") or {}
    if not isinstance(expect_raw, dict):
        fail("expect: a mapping of device to a list of event names")
    expect: dict[str, list[str]] = {}
    for device, events in expect_raw.items():
        device = _number(device)
        if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
            fail(f"expect {device}: a list of event names")
        expect[device] = [e.removesuffix("Event") for e in events]
        if device not in monitors:
            monitors.append(device)  # an expectation needs a monitor
    return Scenario(name, topology, monitors, steps, expect, source)


# -- running -----------------------------------------------------------------------------------------
def _perform(phone, step: Step) -> dict[str, Any]:
    if step.action == "agent":
        return phone.agent(*step.args)
    if step.action == "forward":
        return phone.forward(step.args[0], step.args[1])
    if step.action == "dnd":
        return phone.do_not_disturb(step.args[0])
    if step.action == "sst":
        return phone.single_step_transfer(step.number)
    method = getattr(phone, step.action)
    return method(step.number) if step.number is not None else method()


def _match(expected: list[str], got: list[str]) -> tuple[int, bool]:
    """How many of `expected` were seen in order in `got` (a subsequence); and whether all were."""
    i = 0
    for name in got:
        if i < len(expected) and name == expected[i]:
            i += 1
    return i, i == len(expected)


class _Undo:
    """What a scenario changed, put back when it ends: calls that were not there before are cleared
    (every party still in them hangs up, the public network's too), the features (dnd, forwarding)
    and agent log-on of each device a step changed return to what they were before its first step."""

    def __init__(self, exchange):
        self.exchange = exchange
        self.calls_before = {c["call_id"] for c in exchange.calls()}
        self.features: dict[str, dict[str, Any]] = {}

    def before(self, step: Step) -> None:
        if step.action in SPECIAL_ACTIONS and step.device not in self.features:
            try:
                self.features[step.device] = self.exchange.phone(step.device).features()
            except BusError:
                pass  # not a device with features: the step itself will be refused

    def undo(self, out: Callable[[str], None]) -> None:
        cleared = 0
        for _ in range(3):  # a hangup can leave a call to clear by the next party (a conference)
            left = [c for c in self.exchange.calls() if c["call_id"] not in self.calls_before]
            if not left:
                break
            for call in left:
                for connection in call["connections"]:
                    if connection["state"] != "null":
                        self._quietly(connection["device"], "hangup")
            cleared += len(left)
        left = [c["call_id"] for c in self.exchange.calls() if c["call_id"] not in self.calls_before]
        for device, saved in self.features.items():
            self._restore(device, saved)
        if cleared or self.features:
            out(f"clean-up: {cleared} call(s) cleared, features of {', '.join(self.features) or 'no device'} "
                f"restored{'; calls left: ' + ', '.join(left) if left else ''}")

    def _restore(self, device: str, saved: dict[str, Any]) -> None:
        phone = self.exchange.phone(device)
        try:
            now = phone.features()
        except BusError:
            return
        if now.get("dnd") != saved.get("dnd"):
            self._quietly(device, "do_not_disturb", bool(saved.get("dnd")))
        for kind in FORWARD_KINDS:
            key = f"forward_{kind}"
            if now.get(key) != saved.get(key) or (kind == "noanswer" and now.get("forward_noanswer_s") !=
                                                   saved.get("forward_noanswer_s")):
                self._quietly(device, "forward", kind, saved.get(key),
                              saved.get("forward_noanswer_s") if kind == "noanswer" and saved.get(key) else None)
        was_on, is_on = saved.get("agent_id") is not None, now.get("agent_id") is not None
        if is_on and (not was_on or now.get("agent_group") != saved.get("agent_group")):
            self._quietly(device, "agent", "logout")
        if was_on and (not is_on or now.get("agent_group") != saved.get("agent_group")):
            self._quietly(device, "agent", "login", saved["agent_id"], saved["agent_group"])

    def _quietly(self, device: str, method: str, *args: Any) -> None:
        try:
            getattr(self.exchange.phone(device), method)(*args)
        except BusError:
            pass  # gone meanwhile (the call cleared by another party's hangup): nothing to undo


async def _run(scenario: Scenario, running, speed: float, out: Callable[[str], None],
               outcomes: list[Outcome]) -> bool:

    topology = running.topology
    plan = NumberPlan(topology)
    clients: list[CstaClient] = []
    seen: dict[str, list[str]] = {d: [] for d in scenario.monitors}
    readers: list[asyncio.Task] = []
    undo = _Undo(running.exchange)

    async def collect(client: CstaClient, device: str) -> None:
        while True:
            event = await client.events.get()
            if event is None:
                return
            seen[device].append(event_name(event).removesuffix("Event"))

    try:
        for device in scenario.monitors:
            lim = plan.owner(device)
            if lim is None:
                out(f"monitor {device}: not a number of this exchange")
                outcomes.append(Outcome(f"monitor {device}", 0.0, "not a number of this exchange"))
                return False
            host, port = running.csta_endpoint(lim)
            client = await CstaClient.connect(host, port)
            clients.append(client)
            await client.monitor_start(device)
            readers.append(asyncio.create_task(collect(client, device)))
        out(f"scenario {scenario.name!r}: {len(scenario.steps)} steps, monitors "
            f"{', '.join(scenario.monitors) or '(none)'}, speed {speed:g}")

        start = time.monotonic()
        for step in scenario.steps:
            delay = start + step.time / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stamp = f"{step.time:6.2f}s {step.describe()}"
            name = f"step {step.index}: {step.describe()}"
            began = time.monotonic()
            failure = None
            undo.before(step)
            try:
                _perform(running.exchange.phone(step.device), step)
            except BusError as exc:
                if step.expect_refusal:
                    out(f"{stamp}: refused as expected: {exc.message} ({exc.code})")
                else:
                    failure = f"refused: {exc.message} ({exc.code})"
                    out(f"{stamp}: {failure}")
            else:
                if step.expect_refusal:
                    failure = "ok, but a refusal was expected"
                    out(f"{stamp}: {failure}")
                else:
                    out(f"{stamp}: ok")
            outcomes.append(Outcome(name, time.monotonic() - began, failure))
            await asyncio.sleep(0)  # let the readers take what has arrived

        waited = time.monotonic()
        deadline = waited + max(EXPECT_WAIT_S / speed, MIN_WAIT_S)
        while time.monotonic() < deadline and not all(
                _match(names, seen[d])[1] for d, names in scenario.expect.items()):
            await asyncio.sleep(0.05)
        for device, names in scenario.expect.items():
            count, met = _match(names, seen[device])
            name = f"events at {device}"
            if met:
                out(f"{device}: met")
                outcomes.append(Outcome(name, time.monotonic() - waited))
            else:
                after = names[count - 1] if count else "the start"
                failure = f"expected {names[count]} after {after}, got [{', '.join(seen[device])}]"
                out(f"{device}: MISSED: {failure}")
                outcomes.append(Outcome(name, time.monotonic() - waited, failure))
        return all(o.failure is None for o in outcomes)
    finally:
        for task in readers:
            task.cancel()
        for client in clients:
            await client.close()
        undo.undo(out)


def run_scenario(scenario: Scenario, run_dir: str | Path | None = None, speed: float = 1.0,
                 out: Callable[[str], None] = print, outcomes: list[Outcome] | None = None) -> bool:
    """True when every expectation was met. `outcomes`: a list to append each expectation's Outcome to."""
    if not speed > 0:
        raise ValueError(f"speed must be above 0, not {speed}")
    outcomes = [] if outcomes is None else outcomes
    if run_dir is not None:
        running = RunningExchange(Cluster(Path(run_dir)))
        try:
            return asyncio.run(_run(scenario, running, speed, out, outcomes))
        finally:
            running.close_client()
    out("starting an exchange ...")
    with running_exchange(Path(scenario.topology) if scenario.topology else None, prefix="mxone-scenario-",
                          free_ports=True, log=out) as running:
        return asyncio.run(_run(scenario, running, speed, out, outcomes))


def run_scenario_file(path: str | Path, run_dir: str | Path | None = None, speed: float = 1.0,
                      out: Callable[[str], None] = print, outcomes: list[Outcome] | None = None) -> bool:
    """Load, validate (ValueError before anything starts) and run a scenario file."""
    return run_scenario(load_scenario(path), run_dir, speed, out, outcomes)
