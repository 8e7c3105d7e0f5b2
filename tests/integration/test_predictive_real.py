"""MakePredictiveCall on a real exchange: broker, two LIMs and their CSTA servers as processes, the
public network scripted over the bus (lim/phone.py's `behave`). The client talks to LIM 2's CSTA
server; the group 5000 and the trunk live on LIM 1; agents are ready on both LIMs.

Expected flows: ECMA-269 Make Predictive Call (the called party is reached first; the calling
device, here an ACD group, is connected only on answer: queued, distributed to an agent), with
the causes of ECMA-269's EventCause (makePredictiveCall, enteringDistribution, distributed, busy,
numberUnallocated, callNotAnswered, destDetected).
"""
from __future__ import annotations

import asyncio
import time

import pytest

from csta_front.client import CstaClient, device_field, event_name, field
from tests.procs import mxone, running_exchange, wait_for

CUSTOMER = "0701234567"


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("predictive"), lims=(1, 2), cstas=(1, 2)) as running:
        ex = running.exchange
        ex.phone("2005").agent("login", "25", "5000")  # ready longest: takes the first call
        ex.phone("1005").agent("login", "15", "5000")
        yield ex, running.topology, running.directory
        for agent in ("1005", "2005"):
            ex.phone(agent).agent("logout")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


class Monitors:
    """Call events per monitored device (agent state events left out)."""

    def __init__(self, client: CstaClient):
        self.client = client
        self.xrefs: dict[str, str] = {}
        self.got: dict[str, list] = {}

    async def start(self, *devices: str) -> None:
        for device in devices:
            self.xrefs[await self.client.monitor_start(device)] = device
            self.got[device] = []

    async def until(self, device: str, name: str, timeout: float = 10.0) -> list:
        """The events at `device` up to and including the first `name` (Event suffix left out)."""
        deadline = time.monotonic() + timeout
        while not any(event_name(e) == f"{name}Event" for e in self.got[device]):
            left = deadline - time.monotonic()
            assert left > 0, f"{device}: no {name}; got {[event_name(e) for e in self.got[device]]}"
            event = await self.client.next_event(timeout=left)
            if not event_name(event).startswith("Agent"):
                self.got[self.xrefs[field(event, "monitorCrossRefID")]].append(event)
        events = self.got[device]
        cut = next(i for i, e in enumerate(events) if event_name(e) == f"{name}Event") + 1
        self.got[device] = events[cut:]
        return events[:cut]


def names(events) -> list[str]:
    return [event_name(e).removesuffix("Event") for e in events]


def no_call(ex, call_id: str) -> bool:
    return all(call["call_id"] != call_id for call in ex.calls())


def test_the_agent_is_connected_only_after_the_customer_answers(exchange):
    ex, topology, _ = exchange
    ex.phone(CUSTOMER).behave("answer", 1)

    async def scenario():
        lim2 = topology.lim(2)
        async with await CstaClient.connect(lim2.address, lim2.csta.port) as csta:
            mon = Monitors(csta)
            await mon.start("5000", "2005", "1005")
            started = time.monotonic()
            call_id = await csta.make_predictive_call("5000", CUSTOMER)
            dialled = await mon.until("5000", "Delivered")
            assert names(dialled) == ["NetworkReached", "Delivered"]
            assert device_field(dialled[1], "alertingDevice") == CUSTOMER
            assert device_field(dialled[1], "callingDevice") == "5000"
            assert field(dialled[1], "localConnectionInfo") == "null"  # the group is not in the call yet
            assert field(dialled[1], "cause") == "makePredictiveCall"
            answered = await mon.until("5000", "Diverted")
            assert names(answered) == ["Established", "Queued", "Diverted"]
            assert device_field(answered[0], "answeringDevice") == CUSTOMER
            assert field(answered[1], "localConnectionInfo") == "queued"
            assert device_field(answered[2], "newDestination") == "2005"
            ringing = await mon.until("2005", "Delivered")
            assert time.monotonic() - started >= 0.9  # not before the customer answered, 1 s in
            assert field(ringing[-1], "connection", "callID") == call_id
            assert device_field(ringing[-1], "lastRedirectionDevice") == "5000"
            assert mon.got["1005"] == []
            await csta.answer_call(call_id, "2005")
            established = (await mon.until("2005", "Established"))[-1]
            assert device_field(established, "answeringDevice") == "2005"
            await csta.clear_connection(call_id, "2005")
            await mon.until("2005", "ConnectionCleared")
            return call_id
    call_id = run(scenario())
    assert wait_for(lambda: no_call(ex, call_id), 5)



@pytest.mark.parametrize("behaviour, after, detection, flow, cause", [
    ("busy", None, None, ["Failed", "ConnectionCleared"], "busy"),
    ("invalid", None, None, ["Failed", "ConnectionCleared"], "numberUnallocated"),
    ("noanswer", None, None, ["NetworkReached", "Delivered", "ConnectionCleared"], "callNotAnswered"),
    ("machine", 0.5, {"answeringMachine": "clearCalledConnection"},
     ["NetworkReached", "Delivered", "Established", "ConnectionCleared"], "destDetected"),
])
def test_outcomes_without_an_answer_leave_no_call(exchange, behaviour, after, detection, flow, cause):
    ex, topology, _ = exchange
    number = {"busy": "0709001", "invalid": "0709002", "noanswer": "0709003", "machine": "0709004"}[behaviour]
    ex.phone(number).behave(behaviour, after)

    async def scenario():
        lim2 = topology.lim(2)
        async with await CstaClient.connect(lim2.address, lim2.csta.port) as csta:
            mon = Monitors(csta)
            await mon.start("5000", "2005", "1005")
            call_id = await csta.make_predictive_call("5000", number, detection=detection, alert_time=1)
            events = await mon.until("5000", "ConnectionCleared")
            assert names(events) == flow
            assert field(events[-1], "cause") == cause
            if flow[0] == "Failed":
                assert field(events[0], "cause") == cause
                assert device_field(events[0], "failingDevice") == number
            assert mon.got["2005"] == [] and mon.got["1005"] == []  # no agent was offered the call
            return call_id
    call_id = run(scenario())
    assert wait_for(lambda: no_call(ex, call_id), 5)


def test_the_network_from_the_command_line(exchange):
    ex, _, directory = exchange
    run_dir = ["--run-dir", str(directory)]
    done = mxone("network", "behave", "0709555", "machine", "--after", "2", *run_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0709555: machine after 2 s"
    done = mxone("network", "mix", "answer=3,busy=1", "--seed", "5", *run_dir)
    assert done.returncode == 0 and "answer 75%, busy 25% (seed 5" in done.stdout, done.stderr
    assert ex.network()[0]["numbers"]["0709555"] == {"behaviour": "machine", "after_s": 2.0}
    bad = mxone("network", "behave", "0709555", "sing", *run_dir)
    assert bad.returncode != 0 and "unknown behaviour" in bad.stderr
    assert mxone("network", "clear", *run_dir).returncode == 0
    assert ex.network()[0]["numbers"] == {} and ex.network()[0]["mix"] == {}
