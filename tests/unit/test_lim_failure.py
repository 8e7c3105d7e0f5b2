"""What a LIM's death leaves behind on the surviving LIMs, through a fake bus and a fake clock.

Whichever LIM controlled a call, every monitor of a surviving party must see one ordered account
(docs/failover.md): the dead LIM's parties cleared with cause networkNotObtainable, then the
survivors, then CallCleared; no party shown still connected in the last event."""
from __future__ import annotations

import pytest

from broker.envelope import RELEASED_TOPIC
from lim.store import Store
from tests.fakes import FakeNetwork
from tests.unit.test_lim_calls import make_topology

LOST = "networkNotObtainable"


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def account(net: FakeNetwork, topic: str, since: int) -> list[tuple[str, str | None, list]]:
    """The events published on `topic` after the first `since` publications: name, device, parties."""
    return [(b["event"], b["device"], b["connections"]) for t, b in net.published[since:] if t == topic]


def lost(net: FakeNetwork, since: int) -> list[dict]:
    """The call events published after the first `since` publications."""
    return [b for t, b in net.published[since:] if t != RELEASED_TOPIC]


def test_a_call_whose_controller_dies_is_cleared_party_by_party_for_the_survivor(net):
    call_id = net.phone("2000", "dial", digits="1000")["call_id"]   # LIM 2 controls the call
    net.phone("1000", "answer")
    mark = len(net.published)
    net.kill_lim(2)
    net.run()
    expected = [("ConnectionCleared", "2000", [["1000", "connected"]]),
                ("ConnectionCleared", "1000", [])]
    assert account(net, "d:1000|", mark) == expected
    # 2000's monitors (kept by the CSTA servers of surviving LIMs) hear the same account.
    assert account(net, "d:2000|", mark) == expected
    assert account(net, f"c:{call_id}|", mark) == [*expected, ("CallCleared", None, [])]
    assert {b["cause"] for b in lost(net, mark)} == {LOST}
    assert [b.get("dropped") for t, b in net.published[mark:] if t == f"c:{call_id}|"] == ["2000", "1000", None]
    assert "1000" not in net.cores[1].calls_of and call_id not in net.cores[1].calls
    # 1000 is free again.
    assert net.phone("1000", "dial", digits="1001")["ok"]


def test_a_trunk_call_whose_controller_dies_frees_the_channel(net):
    net.phone("2000", "dial", digits="0555")    # LIM 2 controls; the trunk and its channel are LIM 1's
    net.phone("0555", "answer")
    mark = len(net.published)
    net.kill_lim(2)
    net.run()
    assert account(net, "d:0555|", mark) == [("ConnectionCleared", "2000", [["0555", "connected"]]),
                                              ("ConnectionCleared", "0555", [])]
    assert "0555" not in net.cores[1].devices  # the channel is free


def test_with_two_survivors_one_of_them_gives_the_whole_account_once(net):
    call_id = net.phone("2000", "dial", digits="1000")["call_id"]
    net.phone("1000", "answer")
    net.phone("2000", "consult", digits="3000")
    net.phone("3000", "answer")
    assert net.phone("2000", "conference")["ok"]       # 1000, 2000 and 3000 in LIM 2's call
    mark = len(net.published)
    net.kill_lim(2)
    net.run()
    for topic in ("d:1000|", "d:3000|", f"c:{call_id}|"):
        names = [(e, d) for e, d, _ in account(net, topic, mark)]
        assert names[:3] == [("ConnectionCleared", "2000"), ("ConnectionCleared", "1000"),
                             ("ConnectionCleared", "3000")], topic
    assert {b["lim"] for b in lost(net, mark)} == {1}   # the lowest surviving LIM, alone
    assert not net.cores[1].calls_of.get("1000") and not net.cores[3].calls_of.get("3000")
    assert call_id not in net.cores[1].calls and call_id not in net.cores[3].calls


def test_the_surviving_controller_gives_the_same_account(net):
    """The account the fix matches: a call controlled by the survivor (unchanged behaviour)."""
    net.phone("1000", "dial", digits="2000")
    net.phone("2000", "answer")
    mark = len(net.published)
    net.kill_lim(2)
    net.run()
    assert account(net, "d:1000|", mark) == [("ConnectionCleared", "2000", [["1000", "connected"]]),
                                              ("ConnectionCleared", "1000", [])]


def test_each_survivor_says_it_released_the_dead_lims_calls_after_the_events(net):
    net.phone("2000", "dial", digits="1000")
    net.phone("1000", "answer")
    mark = len(net.published)
    net.kill_lim(2)
    net.run()
    topics = [t for t, _ in net.published[mark:]]
    word = [b for t, b in net.published[mark:] if t == RELEASED_TOPIC]
    assert sorted((b["lim"], b["by"]) for b in word) == [(2, 1), (2, 3)]
    assert topics.index(RELEASED_TOPIC) > max(i for i, t in enumerate(topics) if t == "d:1000|")


def test_a_call_of_a_restarted_lim_survives_the_late_word_of_its_old_incarnations_death(tmp_path):
    """Membership and requests come on different sockets: a call the new incarnation places may
    reach the other LIM before the broker's word that the old incarnation died. That late word
    must not clear the new call (seen as a flaky real-process test: "2000 is not ringing")."""
    net = FakeNetwork(make_topology())
    net.start_lim(1, Store(tmp_path / "lim-1.db"))
    old = net.cores[1].incarnation
    for core in net.cores.values():
        core.on_member({"role": "lim", "lim": 1, "state": "up", "node": "lim-1", "incarnation": old})
    net.start_lim(1, Store(tmp_path / "lim-1.db"))      # kill -9 and a quick restart
    new = net.cores[1].incarnation
    assert new > old
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    net.run()
    for change in ({"state": "dead", "incarnation": old}, {"state": "up", "incarnation": new}):
        net.cores[2].on_member({"role": "lim", "lim": 1, "node": "lim-1", **change})
    net.run()
    assert net.phone("2000", "answer")["ok"]
    assert net.cores[1].calls[call_id].state_of("2000") == "connected"
