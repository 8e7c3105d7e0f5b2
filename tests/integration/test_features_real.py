"""Supplementary services, forwarding, hunt groups and ACD with real processes: a broker and three
LIM processes on free ports, every party of each scenario on a different LIM where it matters.

The same scenarios run on the in-process fake bus in tests/unit/test_lim_features.py; here they
go through ZeroMQ, the broker's routing and each LIM's own loop and timers, and every party's
events are checked in full, in order, as a monitor of its topic sees them.
"""
from __future__ import annotations

import time

import pytest

from broker.client import BusError
from lim.phone import Exchange
from cluster.children import Children
from tests.procs import EventLog, lim_states, wait_for, write_topology
from topology.loader import load_topology

QUEUE_TIMEOUT_S = 2.0
WRAPUP_S = 1.0
STEP_TIMEOUT_S = 1.0


def three_lims(data: dict) -> None:
    """The built-in topology plus a LIM 3, with groups whose members live on several LIMs."""
    data.setdefault("timers", {})["no_answer_s"] = 30  # never fires during a test
    data["lims"].append({"number": 3, "address": "127.0.1.3",
                         "extensions": [{"numbers": "3000-3009", "type": "ip"}]})
    data["groups"] = {
        "acd": [{"number": "5000", "lim": 1, "agents": ["1005", "2005", "3005"],
                 "queue_timeout_s": QUEUE_TIMEOUT_S, "overflow_to": "1009", "wrapup_s": WRAPUP_S}],
        "hunt": [{"number": "6000", "lim": 1, "mode": "linear", "members": ["1002", "2002", "3002"]},
                 {"number": "6100", "lim": 2, "mode": "cascade", "steps": [["2004"], ["1004", "3004"]],
                  "step_timeout_s": STEP_TIMEOUT_S}],
    }


@pytest.fixture
def exchange(tmp_path):
    topo_file = write_topology(tmp_path / "topology.yaml", edit=three_lims)
    topology = load_topology(topo_file)  # the loader's validation accepts it
    assert [lim.number for lim in topology.lims] == [1, 2, 3]
    procs = Children(topo_file, tmp_path / "data", tmp_path)
    procs.start_broker()
    for n in (1, 2, 3):
        procs.start_lim(n)
    ex = Exchange(topology)
    try:
        wait_for(lambda: (states := lim_states(ex.client)) and len(states) == 3
                 and {s for s, _ in states.values()} == {"up"}, 15, "three LIMs to register")
        yield ex
        dead = {name: proc.returncode for name, proc in procs.procs.items() if proc.poll() is not None}
        assert not dead, f"processes died during the test: {dead} (logs in {tmp_path})"
    finally:
        ex.close()
        procs.stop_all()
        for log_file in sorted(tmp_path.glob("*.log")):
            text = log_file.read_text(errors="replace")
            assert "Traceback" not in text, f"{log_file.name}:\n{text}"


class Script:
    """What each watched device has seen so far. `expect` adds the events a step should bring and
    waits until every device named has seen exactly its whole list (EventLog.wait)."""

    def __init__(self, ex: Exchange, devices: list[str]):
        self.log = EventLog(ex.client, devices)
        self.expected: dict[str, list[str]] = {d: [] for d in devices}

    def expect(self, new: dict[str, list[str]], timeout: float = 10.0) -> dict[str, list[dict]]:
        """Returns, per device named, the bodies of the events this step brought."""
        got = {}
        for device, names in new.items():
            self.expected[device] += names
            events = self.log.wait(device, self.expected[device], timeout)
            got[device] = events[len(events) - len(names):]
        return got

    def nothing_more(self) -> None:
        """No device saw anything beyond what the steps expected."""
        self.log.pump(0.2)
        for device, names in self.expected.items():
            assert self.log.names(device) == names, f"{device}: {self.log.names(device)} != {names}"


def states(event: dict) -> dict[str, str]:
    return {d: s for d, s in event["connections"]}


def idle(ex: Exchange, *devices: str) -> None:
    """No call anywhere, and each device's LIM has forgotten every call of it."""
    wait_for(lambda: ex.calls() == [], 5, "every call to end")
    for device in devices:
        wait_for(lambda: ex.phone(device).state()["calls"] == [], 5, f"{device} to be idle")


def refused(code: str, action, *args) -> BusError:
    with pytest.raises(BusError) as info:
        action(*args)
    assert info.value.code == code, f"{info.value.code}: {info.value.message}"
    assert info.value.message and "\n" not in info.value.message
    return info.value


SI, ORIG, DELIV, EST = "ServiceInitiated", "Originated", "Delivered", "Established"
CC, HELD, RETR = "ConnectionCleared", "Held", "Retrieved"


# -- consultation, transfer, conference ------------------------------------------------------------

def test_consultation_and_transfer_across_three_lims_and_two_controllers(exchange):
    ex = exchange
    s = Script(ex, ["1000", "2000", "3000"])
    first = ex.phone("2000").dial("1000")["call_id"]          # controlled by LIM 2
    s.expect({"2000": [SI, ORIG, DELIV], "1000": [DELIV]})
    ex.phone("1000").answer()
    s.expect({"2000": [EST], "1000": [EST]})

    consult = ex.phone("1000").consult("3000")["call_id"]     # controlled by LIM 1
    assert first.startswith("002") and consult.startswith("001")
    got = s.expect({"2000": [HELD], "1000": [HELD, SI, ORIG, DELIV], "3000": [DELIV]})
    for held in (got["2000"][0], got["1000"][0]):
        assert held["call_id"] == first and held["holding"] == "1000" and held["cause"] == "consultation"
        assert states(held) == {"2000": "connected", "1000": "hold"}
    service, originated, delivered = got["1000"][1:]
    assert service["call_id"] == originated["call_id"] == delivered["call_id"] == consult
    assert originated["cause"] == "consultation" and originated["called"] == "3000"
    assert got["3000"][0] == delivered
    assert delivered["calling"] == "1000" and delivered["alerting"] == "3000"
    assert states(delivered) == {"1000": "connected", "3000": "alerting"}
    assert {c["call_id"]: c["state"] for c in ex.phone("1000").state()["calls"]} == \
        {first: "hold", consult: "connected"}

    ex.phone("3000").answer()
    s.expect({"1000": [EST], "3000": [EST]})
    reply = ex.phone("1000").transfer()
    assert reply["call_id"] == first
    got = s.expect({"1000": ["Transferred"], "2000": ["Transferred"], "3000": ["Transferred"]})
    for transferred in (got["1000"][0], got["2000"][0], got["3000"][0]):
        assert transferred["call_id"] == first and transferred["cause"] == "transfer"
        assert transferred["transferring"] == "1000" and transferred["transferred"] == "2000"
        assert transferred["transferred_to"] == "3000"
        assert transferred["primary_old_call"] == first and transferred["secondary_old_call"] == consult
        assert transferred["connections"] == [["2000", "connected"], ["3000", "connected"]]

    # 2000 and 3000 are in one call (the held one's), controlled by LIM 2; 1000 is out of it.
    wait_for(lambda: ex.phone("1000").state()["calls"] == [], 5, "1000 to be idle")
    calls = ex.calls()
    assert [c["call_id"] for c in calls] == [first] and calls[0]["controller"] == 2
    assert {c["device"]: (c["state"], c["lim"]) for c in calls[0]["connections"]} == \
        {"2000": ("connected", 2), "3000": ("connected", 3)}
    for device in ("2000", "3000"):
        wait_for(lambda: [(c["call_id"], c["state"]) for c in ex.phone(device).state()["calls"]]
                 == [(first, "connected")], 5, f"{device} to be in the joined call")

    ex.phone("3000").hangup()
    got = s.expect({"2000": [CC, CC], "3000": [CC, CC], "1000": []})
    for events in got.values():
        if events:
            assert [e["dropped"] for e in events] == ["3000", "2000"]
            assert {e["call_id"] for e in events} == {first}
            assert {e["cause"] for e in events} == {"normalClearing"}
    idle(ex, "1000", "2000", "3000")
    s.nothing_more()


def test_conference_across_three_lims_then_a_party_leaves(exchange):
    ex = exchange
    s = Script(ex, ["1000", "2000", "3000"])
    first = ex.phone("2000").dial("1000")["call_id"]          # controlled by LIM 2
    ex.phone("1000").answer()
    s.expect({"2000": [SI, ORIG, DELIV, EST], "1000": [DELIV, EST]})
    consult = ex.phone("1000").consult("3000")["call_id"]     # controlled by LIM 1
    s.expect({"2000": [HELD], "1000": [HELD, SI, ORIG, DELIV], "3000": [DELIV]})
    ex.phone("3000").answer()
    s.expect({"1000": [EST], "3000": [EST]})

    reply = ex.phone("1000").conference()
    assert reply["call_id"] == first and reply["state"] == "connected"
    got = s.expect({"1000": ["Conferenced"], "2000": ["Conferenced"], "3000": ["Conferenced"]})
    for conferenced in (got["1000"][0], got["2000"][0], got["3000"][0]):
        assert conferenced["call_id"] == first and conferenced["cause"] == "conference"
        assert conferenced["conferencing"] == "1000" and conferenced["added"] == ["3000"]
        assert conferenced["primary_old_call"] == first and conferenced["secondary_old_call"] == consult
        assert states(conferenced) == {"1000": "connected", "2000": "connected", "3000": "connected"}
    calls = ex.calls()
    assert [c["call_id"] for c in calls] == [first]
    assert {c["device"]: c["lim"] for c in calls[0]["connections"]} == {"1000": 1, "2000": 2, "3000": 3}
    for device in ("1000", "2000", "3000"):
        wait_for(lambda: [(c["call_id"], c["state"]) for c in ex.phone(device).state()["calls"]]
                 == [(first, "connected")], 5, f"{device} to be in the conference")

    # The party who set it up leaves: the other two stay connected.
    ex.phone("1000").hangup()
    got = s.expect({"1000": [CC], "2000": [CC], "3000": [CC]})
    for left in (got["1000"][0], got["2000"][0], got["3000"][0]):
        assert left["dropped"] == "1000" and left["call_id"] == first
        assert states(left) == {"2000": "connected", "3000": "connected"}
    wait_for(lambda: ex.phone("1000").state()["calls"] == [], 5, "1000 to be idle")
    ex.phone("3000").digits("5")  # they still talk to each other
    got = s.expect({"2000": ["DigitsGenerated"], "3000": ["DigitsGenerated"], "1000": []})
    assert got["2000"][0]["digits"] == "5" and got["2000"][0]["device"] == "3000"

    ex.phone("2000").hangup()
    got = s.expect({"2000": [CC, CC], "3000": [CC, CC], "1000": []})
    assert [e["dropped"] for e in got["3000"]] == ["2000", "3000"]
    idle(ex, "1000", "2000", "3000")
    s.nothing_more()


def test_transfer_without_a_held_call_is_refused(exchange):
    ex = exchange
    s = Script(ex, ["2000", "3000"])
    call_id = ex.phone("2000").dial("3000")["call_id"]
    ex.phone("3000").answer()
    s.expect({"2000": [SI, ORIG, DELIV, EST], "3000": [DELIV, EST]})
    refused("no_held_call", ex.phone("2000").transfer)
    refused("no_held_call", ex.phone("2000").conference)
    refused("no_held_call", ex.phone("3000").transfer)   # the other side, on another LIM
    refused("no_held_call", ex.phone("1000").transfer)   # an idle phone
    s.expect({"2000": [], "3000": []})                   # nothing changed
    assert [c["call_id"] for c in ex.calls()] == [call_id]

    ex.phone("2000").hold()
    s.expect({"2000": [HELD], "3000": [HELD]})
    refused("no_active_call", ex.phone("2000").transfer)  # a held call but nothing in hand
    ex.phone("2000").retrieve()
    s.expect({"2000": [RETR], "3000": [RETR]})
    ex.phone("2000").hangup()
    s.expect({"2000": [CC, CC], "3000": [CC, CC]})
    idle(ex, "2000", "3000")
    s.nothing_more()


# -- hold, retrieve, DTMF --------------------------------------------------------------------------

def test_hold_retrieve_and_dtmf_across_lims(exchange):
    ex = exchange
    s = Script(ex, ["1000", "3000"])
    call_id = ex.phone("1000").dial("3000")["call_id"]   # controlled by LIM 1
    ex.phone("3000").answer()
    s.expect({"1000": [SI, ORIG, DELIV, EST], "3000": [DELIV, EST]})

    # The far party (LIM 3) holds and retrieves: checked on LIM 3, done by LIM 1.
    assert ex.phone("3000").hold()["state"] == "hold"
    got = s.expect({"1000": [HELD], "3000": [HELD]})
    for held in (got["1000"][0], got["3000"][0]):
        assert held["call_id"] == call_id and held["holding"] == "3000" and held["cause"] == "keyOperation"
        assert states(held) == {"1000": "connected", "3000": "hold"}
    assert ex.phone("3000").state()["calls"][0]["state"] == "hold"
    refused("no_active_call", ex.phone("3000").digits, "1")  # no DTMF on a held call
    refused("no_active_call", ex.phone("3000").hold)
    assert ex.phone("3000").retrieve()["state"] == "connected"
    got = s.expect({"1000": [RETR], "3000": [RETR]})
    for retrieved in (got["1000"][0], got["3000"][0]):
        assert retrieved["retrieving"] == "3000" and states(retrieved) == {"1000": "connected", "3000": "connected"}
    refused("busy", ex.phone("3000").retrieve)  # a call in hand, nothing held

    ex.phone("3000").digits("12#")
    got = s.expect({"1000": ["DigitsGenerated"], "3000": ["DigitsGenerated"]})
    for dtmf in (got["1000"][0], got["3000"][0]):
        assert dtmf["digits"] == "12#" and dtmf["device"] == "3000" and dtmf["cause"] == "dTMFDigitDetected"
        assert dtmf["call_id"] == call_id
    ex.phone("1000").digits("*9A")
    got = s.expect({"1000": ["DigitsGenerated"], "3000": ["DigitsGenerated"]})
    assert got["3000"][0]["digits"] == "*9A" and got["3000"][0]["device"] == "1000"
    refused("bad_digits", ex.phone("1000").digits, "x1")

    # And the controller's own party.
    ex.phone("1000").hold()
    got = s.expect({"1000": [HELD], "3000": [HELD]})
    assert got["3000"][0]["holding"] == "1000"
    ex.phone("1000").retrieve()
    s.expect({"1000": [RETR], "3000": [RETR]})
    ex.phone("1000").hangup()
    got = s.expect({"1000": [CC, CC], "3000": [CC, CC]})
    assert [e["dropped"] for e in got["3000"]] == ["1000", "3000"]
    idle(ex, "1000", "3000")
    s.nothing_more()


# -- forwarding ------------------------------------------------------------------------------------

def test_forward_all_across_lims_loops_refused_and_switched_off(exchange):
    ex = exchange
    s = Script(ex, ["1001", "2001", "3001", "1003"])
    assert ex.phone("2001").forward("all", "3001")["forwarding"]["all"] == "3001"
    forwarding = s.expect({"2001": ["Forwarding"]})["2001"][0]
    assert forwarding["forwarding_type"] == "all" and forwarding["forward_to"] == "3001"
    assert forwarding["forwarding_on"] is True

    call_id = ex.phone("1001").dial("2001")["call_id"]
    got = s.expect({"1001": [SI, ORIG, "Diverted", DELIV], "2001": ["Diverted"], "3001": [DELIV]})
    diverted = got["2001"][0]
    assert got["1001"][2] == diverted
    assert diverted["call_id"] == call_id and diverted["device"] == "2001"
    assert diverted["diverted_to"] == "3001" and diverted["cause"] == "callForwardImmediate"
    assert states(diverted) == {"1001": "connected"}
    delivered = got["3001"][0]
    assert got["1001"][3] == delivered
    assert delivered["last_redirection"] == "2001" and delivered["alerting"] == "3001"
    assert delivered["calling"] == "1001" and delivered["called"] == "2001"
    assert delivered["cause"] == "callForwardImmediate"
    assert states(delivered) == {"1001": "connected", "3001": "alerting"}
    assert ex.phone("2001").state()["calls"] == []  # 2001 never rang
    ex.phone("3001").answer()
    s.expect({"1001": [EST], "3001": [EST]})
    ex.phone("1001").hangup()
    s.expect({"1001": [CC, CC], "3001": [CC, CC], "2001": []})

    # Loops are refused whichever LIMs the chain crosses, and nothing changes.
    refused("forward_loop", ex.phone("3001").forward, "all", "2001")      # 3001 -> 2001 -> 3001
    assert ex.phone("3001").features()["forward_all"] is None
    ex.phone("3001").forward("all", "1003")                               # 2001 -> 3001 -> 1003
    s.expect({"3001": ["Forwarding"]})
    refused("forward_loop", ex.phone("1003").forward, "all", "2001")      # ... -> 1003 -> 2001
    assert ex.phone("1003").features()["forward_all"] is None
    s.expect({"1003": []})

    # Switched off again: calls ring at 2001 itself.
    assert ex.phone("2001").forward("all", None)["forwarding"]["all"] is None
    off = s.expect({"2001": ["Forwarding"]})["2001"][0]
    assert off["forwarding_on"] is False and off["forward_to"] is None
    ex.phone("3001").forward("all", None)
    s.expect({"3001": ["Forwarding"]})
    ex.phone("1001").dial("2001")
    got = s.expect({"1001": [SI, ORIG, DELIV], "2001": [DELIV], "3001": []})
    assert got["2001"][0]["alerting"] == "2001" and "last_redirection" not in got["2001"][0]
    ex.phone("1001").hangup()
    s.expect({"1001": [CC, CC], "2001": [CC, CC]})
    idle(ex, "1001", "2001", "3001")
    s.nothing_more()


# -- hunt groups -----------------------------------------------------------------------------------

def test_linear_hunt_group_across_lims_skips_a_busy_member(exchange):
    ex = exchange
    s = Script(ex, ["3000", "1002", "2002", "3002", "6000", "2000"])
    ex.phone("1002").offhook()  # the first member is busy
    s.expect({"1002": [SI]})

    call_id = ex.phone("3000").dial("6000")["call_id"]   # caller on LIM 3, group on LIM 1
    got = s.expect({"3000": [SI, ORIG, DELIV], "2002": [DELIV], "6000": [DELIV], "1002": [], "3002": []})
    delivered = got["2002"][0]
    assert got["3000"][2] == got["6000"][0] == delivered
    assert delivered["call_id"] == call_id and delivered["alerting"] == "2002"
    assert delivered["called"] == "6000" and delivered["last_redirection"] == "6000"
    assert delivered["calling"] == "3000" and delivered["cause"] == "distributed"
    assert states(delivered) == {"3000": "connected", "2002": "alerting"}
    ex.phone("2002").answer()
    got = s.expect({"3000": [EST], "2002": [EST], "6000": []})
    assert got["3000"][0]["answering"] == "2002"
    ex.phone("2002").hangup()
    s.expect({"3000": [CC, CC], "2002": [CC, CC]})
    ex.phone("1002").hangup()
    s.expect({"1002": [CC]})

    # 1002 free again: the next call rings the first member.
    ex.phone("2000").dial("6000")
    got = s.expect({"2000": [SI, ORIG, DELIV], "1002": [DELIV], "6000": [DELIV], "2002": [], "3002": []})
    assert got["1002"][0]["alerting"] == "1002" and got["1002"][0]["last_redirection"] == "6000"
    ex.phone("2000").hangup()
    s.expect({"2000": [CC, CC], "1002": [CC, CC]})
    idle(ex, "3000", "1002", "2002", "3002", "2000")
    s.nothing_more()


def test_cascade_group_adds_the_next_step_on_other_lims(exchange):
    ex = exchange
    s = Script(ex, ["1000", "2004", "1004", "3004", "6100"])
    started = time.monotonic()
    call_id = ex.phone("1000").dial("6100")["call_id"]  # caller on LIM 1, group on LIM 2
    got = s.expect({"1000": [SI, ORIG, DELIV], "2004": [DELIV], "6100": [DELIV], "1004": [], "3004": []})
    first_step = got["2004"][0]
    assert time.monotonic() - started < STEP_TIMEOUT_S, "too slow to see the first step alone"
    assert first_step["alerting"] == "2004" and first_step["called"] == "6100"
    assert first_step["last_redirection"] == "6100" and first_step["cause"] == "distributed"

    # After the step timeout the second step (LIMs 1 and 3) rings as well; the first rings on.
    got = s.expect({"1000": [DELIV, DELIV], "2004": [DELIV, DELIV], "1004": [DELIV, DELIV],
                    "3004": [DELIV], "6100": [DELIV, DELIV]}, timeout=5 + STEP_TIMEOUT_S)
    assert time.monotonic() - started >= STEP_TIMEOUT_S * 0.9
    assert [e["alerting"] for e in got["1000"]] == ["1004", "3004"]
    assert got["3004"][0]["last_redirection"] == "6100" and got["3004"][0]["call_id"] == call_id
    assert states(got["3004"][0]) == {"1000": "connected", "2004": "alerting", "1004": "alerting",
                                      "3004": "alerting"}

    # An answer in the second step stops every other member ringing.
    ex.phone("3004").answer()
    got = s.expect({"1000": [CC, CC, EST], "2004": [CC], "1004": [CC, CC], "3004": [CC, CC, EST], "6100": []})
    assert [e["dropped"] for e in got["1000"][:2]] == ["2004", "1004"]
    assert got["2004"][0]["dropped"] == "2004"
    established = got["3004"][2]
    assert established["answering"] == "3004" and states(established) == {"1000": "connected", "3004": "connected"}
    for device in ("2004", "1004"):
        wait_for(lambda: ex.phone(device).state()["calls"] == [], 5, f"{device} to stop ringing")
    ex.phone("1000").hangup()
    s.expect({"1000": [CC, CC], "3004": [CC, CC]})
    idle(ex, "1000", "2004", "1004", "3004")
    s.nothing_more()


# -- ACD -------------------------------------------------------------------------------------------

def queue_of(ex: Exchange) -> list[str]:
    return ex.phone("5000").state()["queue"]


def agents_of(ex: Exchange) -> dict[str, str]:
    return {a["device"]: a["state"] for a in ex.phone("5000").state()["agents"]}


def test_acd_queue_longest_ready_agent_and_wrapup_across_lims(exchange):
    ex = exchange
    s = Script(ex, ["3000", "2000", "1005", "2005", "3005", "5000"])
    first = ex.phone("3000").dial("5000")["call_id"]     # caller on LIM 3, group on LIM 1
    got = s.expect({"3000": [SI, ORIG, "Queued"], "5000": ["Queued"]})
    queued = got["5000"][0]
    assert got["3000"][2] == queued
    assert queued["call_id"] == first and queued["queue_position"] == 1
    assert queued["cause"] == "enteringDistribution" and queued["device"] == "5000"
    assert states(queued) == {"3000": "connected", "5000": "queued"}
    wait_for(lambda: queue_of(ex) == [first], 2, "the call in the queue")

    # An agent logs on (LIM 2): the waiting call goes to it.
    assert ex.phone("2005").agent("login", "25", "5000")["agent_state"] == "agentReady"
    got = s.expect({"2005": ["AgentLoggedOn", "AgentReady", "AgentBusy", DELIV],
                    "5000": ["AgentLoggedOn", "AgentReady", "Diverted", "AgentBusy", DELIV],
                    "3000": ["Diverted", DELIV]})
    logged_on = got["2005"][0]
    assert logged_on["agent_id"] == "25" and logged_on["group"] == "5000"
    diverted = got["5000"][2]
    assert got["3000"][0] == diverted
    assert diverted["cause"] == "distributed" and diverted["diverted_to"] == "2005"
    assert diverted["device"] == "5000" and states(diverted) == {"3000": "connected"}
    delivered = got["2005"][3]
    assert got["3000"][1] == got["5000"][4] == delivered
    assert delivered["alerting"] == "2005" and delivered["last_redirection"] == "5000"
    assert delivered["calling"] == "3000" and delivered["called"] == "5000"
    wait_for(lambda: queue_of(ex) == [], 2, "the queue to empty")
    ex.phone("2005").answer()
    s.expect({"3000": [EST], "2005": [EST], "5000": []})

    # Two more agents, on LIMs 3 and 1, log on one after the other.
    ex.phone("3005").agent("login", "35", "5000")
    s.expect({"3005": ["AgentLoggedOn", "AgentReady"], "5000": ["AgentLoggedOn", "AgentReady"]})
    ex.phone("1005").agent("login", "15", "5000")
    s.expect({"1005": ["AgentLoggedOn", "AgentReady"], "5000": ["AgentLoggedOn", "AgentReady"]})
    wait_for(lambda: agents_of(ex) == {"2005": "agentBusy", "3005": "agentReady", "1005": "agentReady"},
             2, "the group to know its agents")

    # The next call goes to the agent ready longest: 3005.
    second = ex.phone("2000").dial("5000")["call_id"]    # caller on LIM 2
    got = s.expect({"2000": [SI, ORIG, "Queued", "Diverted", DELIV],
                    "5000": ["Queued", "Diverted", "AgentBusy", DELIV],
                    "3005": ["AgentBusy", DELIV], "1005": []})
    assert got["2000"][2]["queue_position"] == 1
    assert got["2000"][3]["diverted_to"] == "3005" and got["2000"][3]["cause"] == "distributed"
    assert got["3005"][1]["call_id"] == second and got["3005"][1]["calling"] == "2000"

    # The first call ends: its agent works after the call for wrapup_s, then is ready again.
    ex.phone("3000").hangup()
    ended = time.monotonic()
    got = s.expect({"3000": [CC, CC], "2005": [CC, CC, "AgentWorkingAfterCall"],
                    "5000": ["AgentWorkingAfterCall"]})
    got = s.expect({"2005": ["AgentReady"], "5000": ["AgentReady"]}, timeout=5 + WRAPUP_S)
    assert time.monotonic() - ended >= WRAPUP_S * 0.9
    assert got["2005"][0]["agent_state"] == "agentReady" and got["5000"][0]["device"] == "2005"

    ex.phone("3005").answer()
    s.expect({"2000": [EST], "3005": [EST]})
    ex.phone("3005").hangup()
    s.expect({"2000": [CC, CC], "3005": [CC, CC, "AgentWorkingAfterCall"], "5000": ["AgentWorkingAfterCall"]})
    s.expect({"3005": ["AgentReady"], "5000": ["AgentReady"]}, timeout=5 + WRAPUP_S)
    agent_names = [e["event"] for e in s.log.by_device["2005"] if e["event"].startswith("Agent")]
    assert agent_names == ["AgentLoggedOn", "AgentReady", "AgentBusy", "AgentWorkingAfterCall", "AgentReady"]

    for agent in ("1005", "2005", "3005"):
        assert ex.phone(agent).agent("logout")["agent_state"] == "agentNull"
        s.expect({agent: ["AgentLoggedOff"], "5000": ["AgentLoggedOff"]})
    wait_for(lambda: agents_of(ex) == {}, 2, "the group to have no agents")
    idle(ex, "3000", "2000", "1005", "2005", "3005")
    s.nothing_more()


def test_acd_abandon_and_overflow(exchange):
    ex = exchange
    s = Script(ex, ["3000", "2000", "1009", "5000"])
    first = ex.phone("3000").dial("5000")["call_id"]     # nobody logged on: it waits
    queued_at = time.monotonic()
    s.expect({"3000": [SI, ORIG, "Queued"], "5000": ["Queued"]})
    second = ex.phone("2000").dial("5000")["call_id"]
    got = s.expect({"2000": [SI, ORIG, "Queued"], "5000": ["Queued"]})
    assert got["5000"][0]["queue_position"] == 2
    wait_for(lambda: queue_of(ex) == [first, second], 1, "two calls in the queue")

    # The second caller gives up: its call leaves the queue.
    ex.phone("2000").hangup()
    got = s.expect({"2000": [CC, CC], "5000": [CC, CC]})
    assert [e["dropped"] for e in got["5000"]] == ["2000", "5000"]
    assert {e["call_id"] for e in got["5000"]} == {second}
    wait_for(lambda: queue_of(ex) == [first], 1, "the abandoned call to leave the queue")
    assert time.monotonic() - queued_at < QUEUE_TIMEOUT_S, "too slow to see the queue before overflow"

    # The first waits longer than queue_timeout_s: it overflows to 1009.
    got = s.expect({"3000": ["Diverted", DELIV], "5000": ["Diverted"], "1009": [DELIV]},
                   timeout=5 + QUEUE_TIMEOUT_S)
    assert time.monotonic() - queued_at >= QUEUE_TIMEOUT_S * 0.9
    diverted = got["5000"][0]
    assert got["3000"][0] == diverted
    assert diverted["cause"] == "overflow" and diverted["diverted_to"] == "1009" and diverted["call_id"] == first
    delivered = got["1009"][0]
    assert got["3000"][1] == delivered
    assert delivered["alerting"] == "1009" and delivered["last_redirection"] == "5000"
    assert delivered["cause"] == "overflow" and delivered["calling"] == "3000"
    assert states(delivered) == {"3000": "connected", "1009": "alerting"}
    wait_for(lambda: queue_of(ex) == [], 1, "the queue to empty")
    ex.phone("1009").answer()
    s.expect({"3000": [EST], "1009": [EST]})
    ex.phone("1009").hangup()
    s.expect({"3000": [CC, CC], "1009": [CC, CC]})

    # A lone caller who hangs up leaves the queue empty.
    third = ex.phone("2000").dial("5000")["call_id"]
    s.expect({"2000": [SI, ORIG, "Queued"], "5000": ["Queued"]})
    wait_for(lambda: queue_of(ex) == [third], 1, "the call in the queue")
    ex.phone("2000").hangup()
    s.expect({"2000": [CC, CC], "5000": [CC, CC]})
    wait_for(lambda: queue_of(ex) == [], 1, "the queue to empty")
    idle(ex, "3000", "2000", "1009")
    s.nothing_more()
