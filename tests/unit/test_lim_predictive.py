"""MakePredictiveCall on the LIMs and the scriptable public network (fake bus and clock).

The expected event flows follow ECMA-269's Make Predictive Call (the called device is reached
first, the calling device's connection stays null until it is allocated; causes from ECMA-269's
EventCause list: makePredictiveCall, enteringDistribution, distributed, busy, numberUnallocated,
callNotAnswered, destDetected) and the public predictive call model of a contact-centre server
(Genesys "Predictive Dialing": dialling, queued at the group, diverted, ringing at the agent,
established).
"""
from __future__ import annotations

import pytest

from broker.protocol import Kind, device_address, lim_node
from lim.pstn import Behaviour, NetworkScript
from lim.errors import Refused
from tests.fakes import FakeNetwork
from topology.model import AcdGroup, BrokerSettings, Extension, Lim, Timers, Topology, TrunkRoute

CUSTOMER = "0701234567"


def make_topology() -> Topology:
    exts = [Extension(str(lim * 1000 + n), "ip", lim, True) for lim in (1, 2) for n in range(10)]
    exts.append(Extension("1012", "ip", 1, False))
    return Topology(name="t", broker=BrokerSettings(), lims=(Lim(1, "a"), Lim(2, "b")), extensions=tuple(exts),
                    acd_groups=(AcdGroup("5000", 1, ("1005", "2005"), queue_timeout_s=60, wrapup_s=5),),
                    trunks=(TrunkRoute("pstn", "0", 1),), timers=Timers(no_answer_s=30))


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def predictive(net, calling: str, called: str, **body) -> dict:
    return net.request(device_address(calling), Kind.CALL_PREDICTIVE, called=called, **body)


def script(net, number: str, behaviour: str, after_s: float | None = None) -> dict:
    return net.request(device_address(number), Kind.NETWORK, action="script", behaviour=behaviour, after_s=after_s)


def names(net, device: str) -> list[str]:
    return [e["event"] for e in net.events(device) if not e["event"].startswith("Agent")]


def idle(net) -> bool:
    return all(not core.calls and not core.calls_of for core in net.cores.values()) and \
        not any(d.type == "external" for core in net.cores.values() for d in core.devices.values())


def agents_ready(net):
    net.agent("1005", "login", agent_id="15", group="5000")
    net.agent("2005", "login", agent_id="25", group="5000")
    net.run()


def test_from_the_acd_group_the_agent_is_connected_only_after_the_answer(net):
    agents_ready(net)
    script(net, CUSTOMER, "answer", 1)
    reply = predictive(net, "5000", CUSTOMER)
    assert reply["ok"] and reply["state"] == "null"
    call_id = reply["call_id"]
    # Dialled, ringing at the customer; the group follows the call with no connection of its own.
    assert names(net, "5000") == ["NetworkReached", "Delivered"]
    delivered = net.events("5000")[-1]
    assert delivered["cause"] == "makePredictiveCall" and delivered["calling"] == "5000"
    assert delivered["connections"] == [[CUSTOMER, "alerting"]]
    assert names(net, "1005") == [] and names(net, "2005") == []
    net.advance(0.9)
    assert names(net, "1005") == [] and names(net, "2005") == []  # nobody answered yet: no agent
    net.advance(0.2)
    group = names(net, "5000")
    assert group[:5] == ["NetworkReached", "Delivered", "Established", "Queued", "Diverted"]
    # The agent ready longest (1005, logged on first) rings, then answers.
    agent = [e for e in net.events("1005") if e["call_id"] == call_id]
    assert [e["event"] for e in agent] == ["Delivered"]
    assert agent[0]["last_redirection"] == "5000" and agent[0]["calling"] == "5000"
    net.phone("1005", "answer")
    assert names(net, "1005")[-1] == "Established"
    assert dict(net.events("1005")[-1]["connections"]) == {CUSTOMER: "connected", "1005": "connected"}
    assert names(net, "5000")[-1] == "Established"  # the group's monitor sees its call answered
    net.phone(CUSTOMER, "hangup")
    assert names(net, "5000")[-2:] == ["ConnectionCleared", "ConnectionCleared"]
    assert idle(net)


def test_from_an_extension_on_another_lim_it_rings_after_the_answer(net):
    script(net, CUSTOMER, "answer", 2)
    reply = predictive(net, "2003", CUSTOMER)
    assert reply["ok"]
    assert names(net, "2003") == ["NetworkReached", "Delivered"]
    net.advance(2.1)
    assert names(net, "2003")[-2:] == ["Established", "Delivered"]
    assert net.events("2003")[-1]["alerting"] == "2003"
    net.phone("2003", "answer")
    assert names(net, CUSTOMER)[-1] == "Established"
    net.phone("2003", "hangup")
    assert idle(net)


def test_allocation_on_delivery_offers_the_caller_while_the_called_party_rings(net):
    agents_ready(net)
    predictive(net, "5000", CUSTOMER, allocation="delivered")
    net.advance(0)
    assert names(net, "5000")[:4] == ["NetworkReached", "Delivered", "Queued", "Diverted"]


@pytest.mark.parametrize("behaviour, cause", [("busy", "busy"), ("invalid", "numberUnallocated")])
def test_a_busy_or_invalid_number_fails_and_leaves_no_call(net, behaviour, cause):
    agents_ready(net)
    script(net, CUSTOMER, behaviour)
    reply = predictive(net, "5000", CUSTOMER)
    assert reply["ok"]
    events = [e for e in net.events("5000") if not e["event"].startswith("Agent")]
    assert [e["event"] for e in events] == ["Failed", "ConnectionCleared"]
    failed = events[0]
    assert failed["cause"] == cause and failed["failing"] == CUSTOMER
    assert failed["connections"] == [[CUSTOMER, "fail"]]
    assert any(e["event"] == "CallCleared" for _, e in net.published if e["call_id"] == reply["call_id"])
    assert names(net, "1005") == [] and idle(net)


def test_no_answer_is_cleared_after_the_alert_time(net):
    agents_ready(net)
    script(net, CUSTOMER, "noanswer")
    predictive(net, "5000", CUSTOMER, alert_s=5)
    net.advance(4.9)
    assert names(net, "5000") == ["NetworkReached", "Delivered"]
    net.advance(0.2)
    cleared = [e for e in net.events("5000") if e["event"] == "ConnectionCleared"]
    assert cleared and cleared[0]["cause"] == "callNotAnswered" and cleared[0]["dropped"] == CUSTOMER
    assert names(net, "1005") == [] and idle(net)


def test_no_answer_without_alert_time_uses_the_exchange_timer(net):
    script(net, CUSTOMER, "noanswer")
    predictive(net, "1003", CUSTOMER)
    net.advance(29)
    assert idle(net) is False
    net.advance(1.1)
    assert idle(net)


def test_an_answering_machine_is_cleared_when_detection_says_so(net):
    agents_ready(net)
    script(net, CUSTOMER, "machine", 1)
    predictive(net, "5000", CUSTOMER, detect=True, detection={"answeringMachine": "clearCalledConnection"})
    net.advance(1.1)
    events = [e for e in net.events("5000") if not e["event"].startswith("Agent")]
    assert [e["event"] for e in events] == ["NetworkReached", "Delivered", "Established", "ConnectionCleared"]
    assert events[2]["cause"] == "destDetected" and events[3]["cause"] == "destDetected"
    assert names(net, "1005") == [] and idle(net)


def test_an_answering_machine_is_connected_without_detection(net):
    agents_ready(net)
    script(net, CUSTOMER, "machine", 1)
    predictive(net, "5000", CUSTOMER)
    net.advance(1.1)
    assert "Queued" in names(net, "5000") and names(net, "1005") == ["Delivered"]


def test_a_busy_caller_lets_the_answered_party_go(net):
    net.phone("1003", "dial", digits="1004")
    script(net, CUSTOMER, "answer", 0)
    predictive(net, "1003", CUSTOMER)
    net.advance(0.1)
    cleared = [e for e in net.events(CUSTOMER) if e["event"] == "ConnectionCleared"]
    assert cleared and cleared[0]["cause"] == "busy"
    assert [c for c in net.cores[1].calls.values() if CUSTOMER in c.parties] == []


def test_refusals_change_nothing(net):
    assert predictive(net, "1003", "9999")["error"] == "unknown_number"
    assert predictive(net, "1003", "1003")["error"] == "bad_request"
    assert predictive(net, "1012", CUSTOMER)["error"] == "out_of_service"
    assert predictive(net, "1003", CUSTOMER, allocation="soon")["error"] == "bad_request"
    assert predictive(net, "1003", CUSTOMER, alert_s=-1)["error"] == "bad_request"
    assert predictive(net, "1003", CUSTOMER, detection={"cat": "remainConnected"})["error"] == "bad_request"
    assert idle(net)


def test_unscripted_numbers_behave_as_before(net):
    predictive(net, "1003", CUSTOMER)
    net.advance(10)
    assert names(net, CUSTOMER) == ["NetworkReached", "Delivered"]  # rings until played or timed out
    net.phone(CUSTOMER, "answer")
    assert names(net, "1003")[-1] == "Delivered"


def test_the_network_script_over_the_bus(net):
    assert script(net, CUSTOMER, "sing")["error"] == "bad_request"
    assert script(net, "1003", "busy")["error"] == "unknown_number"
    assert script(net, CUSTOMER, "answer", 2)["after_s"] == 2
    reply = net.request(lim_node(1), Kind.NETWORK, action="mix", shares={"answer": 3, "busy": 1}, seed=7)
    assert reply["mix"] == {"answer": 0.75, "busy": 0.25} and reply["numbers"][CUSTOMER]["behaviour"] == "answer"
    assert net.request(lim_node(2), Kind.NETWORK, action="show")["error"] == "bad_request"  # no trunk there
    assert net.request(lim_node(1), Kind.NETWORK, action="clear")["numbers"] == {}


def test_a_seeded_mix_repeats_and_keeps_its_shares():
    def draws(seed):
        script = NetworkScript()
        script.set_mix({"answer": 60, "busy": 20, "noanswer": 10, "invalid": 5, "machine": 5}, seed, 2)
        return [script.behaviour(f"07{n}").kind for n in range(2000)]
    first = draws(3)
    assert first == draws(3) and first != draws(4)
    assert 0.55 < first.count("answer") / 2000 < 0.65 and 0.17 < first.count("busy") / 2000 < 0.23
    with pytest.raises(Refused):
        NetworkScript().set_mix({"answer": 0}, 1)
    with pytest.raises(Refused):
        Behaviour.parse("answer", "soon")


def test_a_mix_decides_each_call_to_an_unscripted_number(net):
    net.request(lim_node(1), Kind.NETWORK, action="mix", shares={"busy": 1}, seed=1)
    predictive(net, "1003", "0709")
    assert net.events("1003")[0]["event"] == "Failed" and net.events("1003")[0]["cause"] == "busy"
    assert idle(net)
