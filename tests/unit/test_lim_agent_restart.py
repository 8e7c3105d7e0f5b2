"""ACD agents across a restart of their LIM (kill -9: no call of that LIM survives), through a fake
bus and a fake clock: the persisted agent state is made consistent with that, and the wrap-up timer
is armed again (lim/agents.py `restore`)."""
from __future__ import annotations

import pytest

from lim.store import Store
from tests.fakes import FakeNetwork
from tests.unit.test_lim_features import make_topology  # group 5000 on LIM 1, wrap-up 5 s

WRAPUP_S = 5


@pytest.fixture
def net(tmp_path) -> FakeNetwork:
    net = FakeNetwork(make_topology())
    net.start_lim(2, Store(tmp_path / "lim-2.db"))
    announce_up(net, 2)
    return net


def announce_up(net: FakeNetwork, number: int) -> None:
    """What the broker says when a LIM registers: to every LIM, itself included."""
    incarnation = net.cores[number].incarnation
    for core in net.cores.values():
        core.on_member({"role": "lim", "lim": number, "state": "up", "node": f"lim-{number}",
                        "incarnation": incarnation})
    net.run()


def restart_lim_2(net: FakeNetwork, tmp_path) -> None:
    old = net.cores[2]
    net.kill_lim(2)
    net.run()
    # kill -9: the old process's timers die with it (they share the fake clock's queue here).
    for timer in old.state.agent_timers.values():
        timer.cancel()
    for call in old.calls.values():
        call.cancel_timers()
    net.start_lim(2, Store(tmp_path / "lim-2.db"))
    announce_up(net, 2)


def agent_events(net: FakeNetwork, device: str, since: int = 0) -> list[str]:
    return [n for n in net.event_names(device)[since:] if n.startswith("Agent")]


def state_at_group(net: FakeNetwork, device: str) -> str | None:
    agent = net.cores[1].queues["5000"].agents.get(device)
    return agent.state if agent else None


def busy_agent(net: FakeNetwork) -> None:
    """2005 logs on to 5000 and answers a call from 1000 distributed to it."""
    net.agent("2005", "login", agent_id="45", group="5000")
    net.phone("1000", "dial", digits="5000")
    net.advance(0)
    net.phone("2005", "answer")
    assert net.cores[2].features["2005"].agent_state == "agentBusy"


def test_an_agent_working_after_call_is_ready_after_the_wrapup_time_though_its_lim_restarted(net, tmp_path):
    net.agent("2005", "login", agent_id="45", group="5000")
    net.agent("2005", "wrapup")
    assert net.cores[2].features["2005"].agent_state == "agentWorkingAfterCall"
    restart_lim_2(net, tmp_path)
    mark = len(net.event_names("2005"))
    net.advance(WRAPUP_S - 0.1)
    assert net.cores[2].features["2005"].agent_state == "agentWorkingAfterCall"
    net.advance(0.2)
    assert net.cores[2].features["2005"].agent_state == "agentReady"
    assert agent_events(net, "2005", mark) == ["AgentReady"]
    assert state_at_group(net, "2005") == "agentReady"
    # And it takes the next call.
    net.phone("1001", "dial", digits="5000")
    net.advance(0)
    assert net.events("2005")[-1]["event"] == "Delivered"


def test_an_agent_busy_in_a_call_lost_with_its_lim_works_after_call_then_is_ready(net, tmp_path):
    busy_agent(net)
    restart_lim_2(net, tmp_path)
    mark = len(net.event_names("2005"))
    assert net.cores[2].features["2005"].agent_state == "agentWorkingAfterCall"
    assert state_at_group(net, "2005") == "agentWorkingAfterCall"
    net.advance(WRAPUP_S + 0.1)
    assert agent_events(net, "2005", mark) == ["AgentReady"]
    assert state_at_group(net, "2005") == "agentReady"


@pytest.mark.parametrize("asked, after, event", [("notready", "agentNotReady", "AgentNotReady"),
                                                 ("logout", "agentNull", "AgentLoggedOff")])
def test_a_pending_state_is_taken_when_the_restart_ends_the_call(net, tmp_path, asked, after, event):
    busy_agent(net)
    assert net.agent("2005", asked)["pending_agent_state"] == after
    restart_lim_2(net, tmp_path)
    features = net.cores[2].features["2005"]
    assert (features.agent_state, features.agent_pending) == (after, None)
    assert net.events("2005")[-1]["event"] == event
    net.advance(WRAPUP_S + 0.1)
    assert features.agent_state == after  # no wrap-up after a pending state


def test_an_agent_with_no_call_lost_keeps_its_state(net, tmp_path):
    net.agent("2005", "login", agent_id="45", group="5000")
    net.agent("2005", "notready")
    restart_lim_2(net, tmp_path)
    assert net.cores[2].features["2005"].agent_state == "agentNotReady"
    assert state_at_group(net, "2005") == "agentNotReady"


def test_the_agents_a_restarted_lim_reports_survive_the_late_word_of_its_old_incarnations_death(net, tmp_path):
    """Membership and requests come on different sockets: the new incarnation's agent report may
    reach the group's LIM before the broker's word that the old one died. That late word must not
    take the freshly reported agents out of the group (seen as a flaky real-process test)."""
    net.agent("2005", "login", agent_id="45", group="5000")
    net.agent("2005", "notready")
    old = net.cores[2]
    net.down.add("lim-2")                      # kill -9; nobody has heard of it yet
    net.run()
    for timer in old.state.agent_timers.values():
        timer.cancel()
    net.start_lim(2, Store(tmp_path / "lim-2.db"))
    new = net.cores[2].incarnation
    net.cores[2].on_member({"role": "lim", "lim": 2, "state": "up", "node": "lim-2", "incarnation": new})
    net.run()                                  # its agent report reaches LIM 1 first
    assert state_at_group(net, "2005") == "agentNotReady"
    for change in ({"state": "dead", "incarnation": old.incarnation}, {"state": "up", "incarnation": new}):
        net.cores[1].on_member({"role": "lim", "lim": 2, "node": "lim-2", **change})
    net.run()
    assert state_at_group(net, "2005") == "agentNotReady"
