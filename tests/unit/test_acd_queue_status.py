"""ACD queue positions and pending agent states on the fake bus and clock.

Expected values come from ECMA-269: a Queued event's numberQueued counts the calls queued at the
device including this one, callsInFront those ahead of it; a state asked for while the agent is
busy on a call is its pending agent state, taken when the call ends."""
from __future__ import annotations

import pytest

from broker.protocol import Kind, device_address
from lim.acd import AcdQueue
from tests.fakes import FakeNetwork
from tests.unit.test_lim_features import last, make_topology
from topology.model import AcdGroup


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def queued_events(net, device="5000") -> list[dict]:
    return [e for e in net.events(device) if e["event"] == "Queued"]


def snapshot(net, group="5000") -> dict:
    return net.request(device_address(group), Kind.DEVICE_GET)


# -- the queue alone -------------------------------------------------------------------------------

def test_counts_follow_calls_joining_and_leaving():
    queue = AcdQueue(AcdGroup("5000", 1, ("1005",)))
    assert queue.enqueue("a", 10.0) == 1
    assert queue.enqueue("b", 11.0) == 2
    assert queue.enqueue("c", 12.0) == 3
    assert queue.counts("c") == {"number_queued": 3, "calls_in_front": 2}
    assert queue.counts("a") == {"number_queued": 3, "calls_in_front": 0}
    queue.remove("a")                                    # the first caller gives up
    assert [(w.call_id, w.position, w.since) for w in queue.waiting()] == [("b", 1, 11.0), ("c", 2, 12.0)]
    assert queue.counts("c") == {"number_queued": 2, "calls_in_front": 1}
    queue.requeue_first("a", 20.0)                       # back at the head (its agent did not answer)
    assert queue.counts("a") == {"number_queued": 3, "calls_in_front": 0}
    assert queue.position("c") == 3 and queue.position("zz") is None


def test_an_assigned_call_leaves_the_waiting_list():
    queue = AcdQueue(AcdGroup("5000", 1, ("1005",)))
    queue.enqueue("a", 1.0)
    queue.enqueue("b", 2.0)
    queue.agent_update("1005", 1, "7", "agentReady", 0.0)
    assert queue.next_assignment() == ("a", "1005")
    assert [w.call_id for w in queue.waiting()] == ["b"] and "a" not in queue.entered


# -- on the exchange (three fake LIMs) ---------------------------------------------------------------

def test_queued_events_count_the_queue_as_calls_join_and_leave(net):
    net.phone("0701", "dial", digits="5000")         # external callers over the trunk
    net.advance(2)
    net.phone("0702", "dial", digits="5000")
    net.advance(3)
    net.phone("0703", "dial", digits="5000")
    counts = [(e["number_queued"], e["calls_in_front"]) for e in queued_events(net)]
    assert counts == [(1, 0), (2, 1), (3, 2)]
    net.phone("0701", "hangup")                       # the first caller gives up
    net.phone("2000", "dial", digits="5000")          # a caller on another LIM joins behind two
    assert (last(net, "5000")["number_queued"], last(net, "5000")["calls_in_front"]) == (3, 2)


def test_device_get_of_a_group_lists_its_queue_in_order_with_callers_and_waiting_time(net):
    ids = []
    for caller in ("0701", "2000", "3000"):
        ids.append(net.phone(caller, "dial", digits="5000")["call_id"])
        net.advance(5)
    got = snapshot(net)
    assert [c["call_id"] for c in got["calls"]] == ids
    assert [c["position"] for c in got["calls"]] == [1, 2, 3]
    assert [c["calling"] for c in got["calls"]] == ["0701", "2000", "3000"]
    assert [c["state"] for c in got["calls"]] == ["queued"] * 3
    assert [c["waiting_s"] for c in got["calls"]] == [15.0, 10.0, 5.0]
    # An agent takes the first call: the other two move up.
    net.agent("2005", "login", agent_id="25", group="5000")
    net.advance(0)
    got = snapshot(net)
    assert [(c["call_id"], c["position"]) for c in got["calls"]] == [(ids[1], 1), (ids[2], 2)]
    assert [a["device"] for a in got["agents"]] == ["2005"]


def test_not_ready_during_a_call_is_pending_until_the_call_ends(net):
    net.agent("2005", "login", agent_id="25", group="5000")
    net.phone("0701", "dial", digits="5000")
    net.advance(0)
    net.phone("2005", "answer")
    assert net.cores[2].features["2005"].agent_state == "agentBusy"
    reply = net.agent("2005", "notready")
    assert reply["agent_state"] == "agentBusy" and reply["pending_agent_state"] == "agentNotReady"
    busy = last(net, "2005")
    assert busy["event"] == "AgentBusy" and busy["pending_agent_state"] == "agentNotReady"
    assert busy["agent_id"] == "25" and busy["group"] == "5000"
    assert last(net, "5000")["event"] == "AgentBusy"     # the group hears it too
    agent = snapshot(net)["agents"][0]
    assert agent["state"] == "agentBusy" and agent["pending"] == "agentNotReady"
    net.phone("0701", "hangup")
    features = net.cores[2].features["2005"]
    assert features.agent_state == "agentNotReady" and features.agent_pending is None
    not_ready = last(net, "2005")
    assert not_ready["event"] == "AgentNotReady" and not_ready["agent_id"] == "25" and not_ready["group"] == "5000"
    names = [n for n in net.event_names("2005") if n.startswith("Agent")]
    assert names == ["AgentLoggedOn", "AgentReady", "AgentBusy", "AgentBusy", "AgentNotReady"]
    net.advance(10)                                      # no wrap-up timer runs behind it
    assert features.agent_state == "agentNotReady"
    assert snapshot(net)["agents"][0]["state"] == "agentNotReady"


def test_logout_during_a_call_is_pending_too(net):
    net.agent("1005", "login", agent_id="15", group="5000")
    net.phone("1000", "dial", digits="5000")
    net.advance(0)
    net.phone("1005", "answer")
    assert net.agent("1005", "logout")["pending_agent_state"] == "agentNull"
    assert net.cores[1].features["1005"].agent_state == "agentBusy"
    net.phone("1005", "hangup")
    assert net.cores[1].features["1005"].agent_state == "agentNull"
    logged_off = last(net, "1005")
    assert logged_off["event"] == "AgentLoggedOff" and logged_off["agent_id"] == "15" and logged_off["group"] == "5000"
    assert snapshot(net)["agents"] == []


def test_without_a_pending_state_the_agent_wraps_up_as_before(net):
    net.agent("3005", "login", agent_id="35", group="5000")
    net.phone("1000", "dial", digits="5000")
    net.advance(0)
    net.phone("3005", "answer")
    net.phone("1000", "hangup")
    assert net.cores[3].features["3005"].agent_state == "agentWorkingAfterCall"
    net.advance(5.1)
    assert net.cores[3].features["3005"].agent_state == "agentReady"
