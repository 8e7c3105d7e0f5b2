"""Supplementary services, features, hunt groups and ACD queues across LIMs (fake bus and clock)."""
from __future__ import annotations

import pytest

from lim.store import Store
from tests.fakes import FakeNetwork
from topology.model import (AcdGroup, BrokerSettings, Extension, HuntGroup, Lim, Timers, Topology,
                            TrunkRoute)


def make_topology() -> Topology:
    exts = []
    for lim in (1, 2, 3):
        exts += [Extension(str(lim * 1000 + n), "ip", lim, True) for n in range(10)]
    exts.append(Extension("1040", "virtual", 1, False))
    return Topology(
        name="t", broker=BrokerSettings(), lims=(Lim(1, "a"), Lim(2, "b"), Lim(3, "c")),
        extensions=tuple(exts),
        acd_groups=(AcdGroup("5000", 1, ("1005", "2005", "3005"), queue_timeout_s=60, overflow_to="1009",
                             wrapup_s=5),),
        hunt_groups=(HuntGroup("6000", 2, "linear", ("1006", "2006", "3006")),
                     HuntGroup("6001", 2, "circular", ("1007", "2007")),
                     HuntGroup("6002", 3, "parallel", ("1008", "2008", "3008")),
                     HuntGroup("6100", 1, "cascade", steps=(("2004",), ("3004", "1004")), step_timeout_s=10)),
        trunks=(TrunkRoute("pstn", "0", 1),),
        timers=Timers(no_answer_s=30))


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def states(event: dict) -> dict[str, str]:
    return {d: s for d, s in event["connections"]}


def last(net, device) -> dict:
    return net.events(device)[-1]


def connect(net, a: str, b: str) -> str:
    call_id = net.phone(a, "dial", digits=b)["call_id"]
    assert net.phone(b, "answer")["ok"]
    return call_id


def idle_everywhere(net) -> bool:
    return all(not core.calls and not core.calls_of for core in net.cores.values())


# -- hold, consultation, transfer, conference ------------------------------------------------------

def test_hold_and_retrieve_across_lims(net):
    call_id = connect(net, "1000", "2000")
    assert net.phone("1000", "hold")["state"] == "hold"
    held = last(net, "2000")
    assert held["event"] == "Held" and held["holding"] == "1000" and held["call_id"] == call_id
    assert states(held) == {"1000": "hold", "2000": "connected"}
    assert net.cores[2].calls[call_id].state_of("1000") == "hold"  # the mirror follows
    assert net.phone("1000", "hold")["error"] == "no_active_call"
    assert net.phone("1000", "retrieve")["state"] == "connected"
    assert last(net, "2000")["event"] == "Retrieved"
    assert net.phone("1000", "retrieve")["error"] == "busy"  # a call in hand, nothing held
    assert net.phone("1001", "retrieve")["error"] == "no_held_call"
    assert net.phone("1001", "hold")["error"] == "no_active_call"


def test_consultation_and_transfer_with_three_lims_and_two_controllers(net):
    first = connect(net, "2000", "1000")       # controlled by LIM 2
    consult = net.phone("1000", "consult", digits="3000")["call_id"]  # controlled by LIM 1
    assert consult != first
    assert net.event_names("2000")[-1] == "Held"
    assert net.event_names("1000")[-4:] == ["Held", "ServiceInitiated", "Originated", "Delivered"]
    assert net.events("1000")[-3]["cause"] == "consultation"
    net.phone("3000", "answer")
    assert net.phone("1000", "transfer")["ok"]

    transferred = last(net, "2000")
    assert transferred["event"] == "Transferred"
    assert transferred["transferring"] == "1000" and transferred["transferred_to"] == "3000"
    assert transferred["primary_old_call"] == first and transferred["secondary_old_call"] == consult
    assert states(transferred) == {"2000": "connected", "3000": "connected"}
    for device in ("1000", "3000"):
        assert last(net, device)["event"] == "Transferred" and last(net, device)["call_id"] == first
    assert "1000" not in net.cores[1].calls_of
    assert net.cores[3].calls_of["3000"] == [first]
    assert consult not in net.cores[1].calls and consult not in net.cores[3].calls
    # The joined call behaves as one call.
    net.phone("3000", "hangup")
    assert net.event_names("2000")[-2:] == ["ConnectionCleared", "ConnectionCleared"]
    assert idle_everywhere(net)


def test_transfer_while_the_consulted_party_still_rings(net):
    connect(net, "1000", "2000")
    net.phone("1000", "consult", digits="3000")
    net.phone("1000", "transfer")
    assert states(last(net, "3000")) == {"2000": "connected", "3000": "alerting"}
    net.phone("3000", "answer")
    assert last(net, "2000")["event"] == "Established"
    net.phone("2000", "hangup")
    assert idle_everywhere(net)


def test_conference_of_three_lims_and_parties_leaving(net):
    first = connect(net, "1000", "2000")
    net.phone("1000", "consult", digits="3000")
    net.phone("3000", "answer")
    assert net.phone("1000", "conference")["state"] == "connected"
    conf = last(net, "3000")
    assert conf["event"] == "Conferenced" and conf["conferencing"] == "1000" and conf["added"] == ["3000"]
    assert states(conf) == {"1000": "connected", "2000": "connected", "3000": "connected"}
    assert conf["call_id"] == first
    net.phone("2000", "hangup")
    assert last(net, "3000")["event"] == "ConnectionCleared" and last(net, "3000")["dropped"] == "2000"
    assert states(last(net, "3000")) == {"1000": "connected", "3000": "connected"}
    net.phone("1000", "digits", digits="12#")
    assert last(net, "3000")["event"] == "DigitsGenerated" and last(net, "3000")["digits"] == "12#"
    net.phone("3000", "hangup")
    assert idle_everywhere(net)


def test_conference_size_is_limited(net):
    connect(net, "1000", "2000")
    net.phone("1000", "consult", digits="3000")
    net.phone("3000", "answer")
    net.phone("1000", "conference")
    for n in ("2001", "3001", "2002", "3002", "2003"):
        net.phone("1000", "consult", digits=n)
        net.phone(n, "answer")
        assert net.phone("1000", "conference")["ok"]
    net.phone("1000", "consult", digits="3003")
    net.phone("3003", "answer")
    refused = net.phone("1000", "conference")
    assert refused["error"] == "conference_full"
    assert net.phone("1000", "reconnect")["ok"]


def test_alternate_and_reconnect(net):
    first = connect(net, "1000", "2000")
    second = net.phone("1000", "consult", digits="3000")["call_id"]
    net.phone("3000", "answer")
    assert net.phone("1000", "alternate")["call_id"] == first
    assert last(net, "3000")["event"] == "Held" and last(net, "2000")["event"] == "Retrieved"
    net.phone("1000", "alternate")
    assert last(net, "2000")["event"] == "Held"
    assert net.phone("1000", "reconnect")["call_id"] == first
    assert net.event_names("3000")[-2:] == ["ConnectionCleared", "ConnectionCleared"]
    assert last(net, "2000")["event"] == "Retrieved"
    assert second not in net.cores[1].calls


def test_transfer_needs_a_held_call(net):
    connect(net, "1000", "2000")
    assert net.phone("1000", "transfer")["error"] == "no_held_call"
    assert net.phone("1000", "conference")["error"] == "no_held_call"
    net.phone("1000", "hold")
    assert net.phone("1000", "transfer")["error"] == "no_active_call"


def test_deflect_a_ringing_call(net):
    net.phone("1000", "dial", digits="2000")
    assert net.phone("2000", "deflect", digits="3000")["ok"]
    diverted = last(net, "2000")
    assert diverted["event"] == "Diverted" and diverted["diverted_to"] == "3000" and diverted["cause"] == "redirected"
    delivered = last(net, "3000")
    assert delivered["event"] == "Delivered" and delivered["last_redirection"] == "2000"
    assert delivered["calling"] == "1000"
    assert "2000" not in net.cores[2].calls_of
    net.phone("3000", "answer")
    assert last(net, "1000")["event"] == "Established"
    assert net.phone("3000", "deflect", digits="2000")["error"] == "not_alerting"


def test_single_step_transfer(net):
    connect(net, "1000", "2000")
    assert net.phone("1000", "sst", digits="3000")["ok"]
    transferred, delivered_too = net.events("2000")[-2:]
    assert transferred["event"] == "Transferred" and transferred["cause"] == "singleStepTransfer"
    assert delivered_too["event"] == "Delivered"  # 2000 is in the call that now rings at 3000
    assert transferred["transferring"] == "1000" and transferred["transferred_to"] == "3000"
    delivered = last(net, "3000")
    assert delivered["event"] == "Delivered" and delivered["calling"] == "2000"
    assert "1000" not in net.cores[1].calls_of
    net.phone("3000", "answer")
    net.phone("2000", "hangup")
    assert idle_everywhere(net)


def test_digits_only_on_a_connected_call(net):
    net.phone("1000", "dial", digits="2000")
    assert net.phone("1000", "digits", digits="123")["ok"]  # the caller is connected while it rings
    assert net.phone("2000", "digits", digits="1")["error"] == "no_active_call"
    net.phone("2000", "answer")
    assert net.phone("2000", "digits", digits="x1")["error"] == "bad_digits"


# -- features ----------------------------------------------------------------------------------

def test_do_not_disturb(net):
    assert net.feature("2000", "dnd", on=True)["dnd"] is True
    assert last(net, "2000")["event"] == "DoNotDisturb" and last(net, "2000")["do_not_disturb"] is True
    net.phone("1000", "dial", digits="2000")
    assert last(net, "1000")["event"] == "Failed" and last(net, "1000")["cause"] == "doNotDisturb"
    assert net.feature("2000", "dnd", on="yes")["error"] == "bad_request"


def test_forward_all_across_lims(net):
    assert net.feature("2000", "forward", type="all", to="3000")["ok"]
    assert last(net, "2000")["event"] == "Forwarding"
    net.phone("1000", "dial", digits="2000")
    assert last(net, "2000")["event"] == "Diverted" and last(net, "2000")["cause"] == "callForwardImmediate"
    delivered = last(net, "3000")
    assert delivered["event"] == "Delivered" and delivered["last_redirection"] == "2000"
    assert delivered["called"] == "2000" and delivered["calling"] == "1000"


def test_virtual_extension_forwards(net):
    net.feature("1040", "forward", type="all", to="2001")
    net.phone("3000", "dial", digits="1040")
    assert last(net, "2001")["event"] == "Delivered"


def test_forward_on_busy_and_to_an_external_number(net):
    net.feature("2000", "forward", type="busy", to="0701234")
    net.phone("2000", "offhook")
    net.phone("1000", "dial", digits="2000")
    names = net.event_names("1000")
    assert names[-3:] == ["Diverted", "NetworkReached", "Delivered"]
    assert last(net, "1000")["device"] == "0701234"


def test_forward_on_no_answer_after_its_timer(net):
    net.feature("2000", "forward", type="noanswer", to="3000", after_s=5)
    net.phone("1000", "dial", digits="2000")
    net.advance(4.9)
    assert last(net, "2000")["event"] == "Delivered"
    net.advance(0.2)
    assert last(net, "2000")["event"] == "Diverted" and last(net, "2000")["cause"] == "callForwardNoAnswer"
    assert last(net, "3000")["event"] == "Delivered"
    assert "2000" not in net.cores[2].calls_of


def test_forwarding_chain_and_loops(net):
    assert net.feature("2000", "forward", type="all", to="2000")["error"] == "forward_to_self"
    assert net.feature("2000", "forward", type="all", to="4444")["error"] == "unknown_number"
    net.feature("2000", "forward", type="all", to="3000")
    net.feature("3000", "forward", type="all", to="1001")
    refused = net.feature("1001", "forward", type="all", to="2000")
    assert refused["error"] == "forward_loop"
    assert net.cores[1].features["1001"].forward_all is None  # nothing changed
    net.phone("1000", "dial", digits="2000")
    assert last(net, "1001")["event"] == "Delivered" and last(net, "1001")["last_redirection"] == "3000"


def test_a_forwarded_call_that_fails_names_the_device_that_refused(net):
    net.feature("2000", "forward", type="all", to="3000")
    net.feature("3000", "dnd", on=True)
    net.phone("1000", "dial", digits="2000")
    failed = last(net, "1000")
    assert failed["event"] == "Failed" and failed["cause"] == "doNotDisturb" and failed["failing"] == "3000"


def test_busy_forwarding_loop_stops_at_the_exchange(net):
    net.feature("2000", "forward", type="busy", to="3000")
    net.feature("3000", "forward", type="busy", to="2000")
    net.phone("2000", "offhook")
    net.phone("3000", "offhook")
    net.phone("1000", "dial", digits="2000")
    assert last(net, "1000")["event"] == "Failed" and last(net, "1000")["cause"] == "busy"


def test_features_survive_a_restart(net, tmp_path):
    net.start_lim(2, Store(tmp_path / "lim-2.db"))
    net.feature("2000", "dnd", on=True)
    net.feature("2001", "forward", type="noanswer", to="1000", after_s=7)
    net.feature("2002", "mwi", on=True)
    assert last(net, "2002")["event"] == "MessageWaiting"
    net.agent("2005", "login", agent_id="42", group="5000")
    restarted = net.start_lim(2, Store(tmp_path / "lim-2.db"))
    assert restarted.features["2000"].dnd
    assert restarted.features["2001"].forward_noanswer == "1000"
    assert restarted.features["2001"].forward_noanswer_s == 7
    assert restarted.features["2002"].mwi
    assert restarted.features["2005"].agent_id == "42"
    assert net.request("dev:2002", "feature.get")["mwi"] is True


# -- hunt groups -----------------------------------------------------------------------------------

def test_linear_hunting_skips_busy_members(net):
    net.phone("1006", "offhook")
    net.phone("1000", "dial", digits="6000")
    delivered = last(net, "2006")
    assert delivered["event"] == "Delivered" and delivered["called"] == "6000"
    assert delivered["last_redirection"] == "6000"
    assert net.events("6000")[-1]["event"] == "Delivered"  # the group's monitor sees it too
    net.phone("2006", "answer")
    assert last(net, "1000")["event"] == "Established"


def test_linear_hunting_with_every_member_busy_fails(net):
    for member in ("1006", "2006", "3006"):
        net.phone(member, "offhook")
    net.phone("1000", "dial", digits="6000")
    assert last(net, "1000")["event"] == "Failed" and last(net, "1000")["cause"] == "busy"


def test_circular_hunting_moves_on(net):
    net.phone("1000", "dial", digits="6001")
    net.phone("1001", "dial", digits="6001")
    assert last(net, "1007")["calling"] == "1000"
    assert last(net, "2007")["calling"] == "1001"


def test_parallel_ringing_first_answer_wins(net):
    net.phone("1000", "dial", digits="6002")
    for member in ("1008", "2008", "3008"):
        assert last(net, member)["event"] == "Delivered"
    net.phone("2008", "answer")
    assert last(net, "1008")["event"] == "ConnectionCleared" and last(net, "3008")["event"] == "ConnectionCleared"
    assert states(last(net, "1000")) == {"1000": "connected", "2008": "connected"}
    assert "1008" not in net.cores[1].calls_of and "3008" not in net.cores[3].calls_of


def test_cascade_ring_group_adds_steps(net):
    net.phone("1000", "dial", digits="6100")
    assert last(net, "2004")["event"] == "Delivered"
    assert net.events("3004") == []
    net.advance(10.1)
    assert last(net, "3004")["event"] == "Delivered" and last(net, "1004")["event"] == "Delivered"
    assert last(net, "2004")["event"] == "Delivered"  # the first step still rings
    net.phone("1004", "answer")
    assert last(net, "2004")["event"] == "ConnectionCleared"
    assert last(net, "3004")["event"] == "ConnectionCleared"


def test_cascade_skips_a_step_where_nobody_can_ring(net):
    net.phone("2004", "offhook")
    net.phone("1000", "dial", digits="6100")
    assert last(net, "3004")["event"] == "Delivered"


# -- ACD -------------------------------------------------------------------------------------------

def test_agent_login_rules(net):
    assert net.agent("1000", "login", agent_id="7", group="5000")["error"] == "not_a_member"
    assert net.agent("1005", "login", agent_id="7", group="5999")["error"] == "unknown_group"
    assert net.agent("1005", "login", agent_id="no way", group="5000")["error"] == "bad_agent_id"
    assert net.agent("1005", "ready")["error"] == "not_logged_on"
    reply = net.agent("1005", "login", agent_id="7", group="5000")
    assert reply["agent_state"] == "agentReady"
    assert net.event_names("1005") == ["AgentLoggedOn", "AgentReady"]
    assert net.event_names("5000") == ["AgentLoggedOn", "AgentReady"]
    assert net.agent("1005", "login", agent_id="7", group="5000")["error"] == "already_logged_on"
    assert net.agent("1005", "dance")["error"] == "unknown_action"


def test_acd_queue_longest_idle_agent_and_wrapup(net):
    net.phone("0701", "dial", digits="5000")  # an external caller over the trunk
    queued = last(net, "5000")
    assert queued["event"] == "Queued" and queued["queue_position"] == 1
    assert net.cores[1].queues["5000"].queue
    net.agent("2005", "login", agent_id="20", group="5000")
    net.advance(1)
    net.agent("3005", "login", agent_id="30", group="5000")
    net.run()
    net.advance(0)
    # 2005 has been ready longest: it gets the call.
    diverted = next(e for e in net.events("5000") if e["event"] == "Diverted")
    assert diverted["cause"] == "distributed" and diverted["diverted_to"] == "2005"
    delivered = last(net, "2005")
    assert delivered["event"] == "Delivered" and delivered["calling"] == "0701"
    assert delivered["last_redirection"] == "5000"
    net.phone("2005", "answer")
    assert net.cores[1].queues["5000"].agents["2005"].state == "agentBusy"
    net.phone("0701", "hangup")
    assert net.cores[2].features["2005"].agent_state == "agentWorkingAfterCall"
    net.advance(5.1)
    assert net.cores[2].features["2005"].agent_state == "agentReady"
    agent_events = [n for n in net.event_names("2005") if n.startswith("Agent")]
    assert agent_events == ["AgentLoggedOn", "AgentReady", "AgentBusy", "AgentWorkingAfterCall", "AgentReady"]
    # The next call goes to 3005, ready longer than 2005 now.
    net.phone("1000", "dial", digits="5000")
    net.advance(0)
    assert last(net, "3005")["event"] == "Delivered"


def test_acd_overflow_and_abandon(net):
    net.phone("1000", "dial", digits="5000")
    net.phone("1001", "dial", digits="5000")
    assert net.events("5000")[-1]["queue_position"] == 2
    net.phone("1001", "hangup")  # abandons
    assert net.cores[1].queues["5000"].queue == [net.events("1000")[0]["call_id"]]
    net.advance(60.1)
    assert last(net, "1009")["event"] == "Delivered"
    assert any(e["event"] == "Diverted" and e["cause"] == "overflow" for e in net.events("5000"))
    assert net.cores[1].queues["5000"].queue == []


def test_agent_who_does_not_answer_sends_the_call_back_to_the_queue(net):
    net.agent("2005", "login", agent_id="20", group="5000")
    net.phone("1000", "dial", digits="5000")
    net.advance(0)
    assert last(net, "2005")["event"] == "Delivered"
    net.agent("3005", "login", agent_id="30", group="5000")
    net.advance(30.1)
    assert last(net, "3005")["event"] == "Delivered"
    # The agent who let it ring is made not ready: no more calls to an empty seat.
    assert net.cores[2].features["2005"].agent_state == "agentNotReady"
    assert "AgentNotReady" in net.event_names("2005")


# -- requests that name their call (as CSTA requests do) --------------------------------------------

def test_actions_on_a_named_call(net):
    first = connect(net, "1000", "2000")
    second = net.phone("1000", "consult", digits="3000")["call_id"]
    net.phone("3000", "answer")
    assert net.phone("1000", "retrieve", call_id=second)["error"] == "busy"
    assert net.phone("1000", "hold", call_id=first)["error"] == "no_active_call"  # already held
    assert net.phone("1000", "hold", call_id="999")["error"] == "no_such_connection"
    reply = net.phone("1000", "transfer", call_id=first, other_call_id=second)
    assert reply["ok"] and reply["call_id"] == first
    assert net.phone("2000", "hangup", call_id=second)["error"] == "idle"
    assert net.phone("2000", "hangup", call_id=first)["ok"]


def test_clear_call_and_call_get(net):
    first = connect(net, "1000", "2000")
    net.phone("1000", "consult", digits="3000")
    net.phone("3000", "answer")
    net.phone("1000", "conference")
    snapshot = net.request("lim-1", "call.get", call_id=first)
    assert [p[0] for p in snapshot["parties"]] == ["1000", "2000", "3000"]
    assert net.request("dev:3000", "call.clear", call_id=first)["ok"]  # asked through any party's LIM
    assert net.event_names("3000")[-3:] == ["ConnectionCleared"] * 3
    assert idle_everywhere(net)
    assert net.request("lim-1", "call.get", call_id=first)["error"] == "no_such_call"
