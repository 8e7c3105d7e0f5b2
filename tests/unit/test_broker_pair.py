"""The broker pair's pure cores: Binary Star with a LIM quorum, the replay window and the tracker."""
from __future__ import annotations

from broker.binary_star import ACTIVE, BACKUP, PASSIVE, PRIMARY, BinaryStar, has_quorum
from broker.envelope import Envelope
from broker.replay import EventTracker, ReplayWindow

EXPIRY = 1.2


def pair(now: float = 0.0, lims: int = 2) -> tuple[BinaryStar, BinaryStar]:
    return BinaryStar(True, EXPIRY, lims, now), BinaryStar(False, EXPIRY, lims, now)


def exchange(a: BinaryStar, b: BinaryStar, now: float) -> None:
    a.peer_heard(b.state, now)
    b.peer_heard(a.state, now)


def test_quorum_is_a_majority_and_the_primary_wins_a_tie():
    assert has_quorum(2, 3, primary=False) and not has_quorum(1, 3, primary=True)
    assert has_quorum(1, 2, primary=True) and not has_quorum(1, 2, primary=False)
    assert has_quorum(0, 0, primary=False)


def test_at_start_the_primary_becomes_active_and_the_backup_passive():
    primary, backup = pair()
    assert (primary.state, backup.state) == (PRIMARY, BACKUP)
    exchange(primary, backup, 0.1)
    exchange(primary, backup, 0.2)
    assert (primary.state, backup.state) == (ACTIVE, PASSIVE)


def test_the_backup_refuses_nodes_while_the_primary_is_heard():
    primary, backup = pair()
    exchange(primary, backup, 0.1)
    exchange(primary, backup, 0.2)
    verdict = backup.client_request(0.3, visible_lims=2)
    assert not verdict.accepted and verdict.peer_alive
    assert backup.state == PASSIVE


def test_failover_needs_a_node_asking_after_the_peer_expired():
    primary, backup = pair()
    exchange(primary, backup, 0.1)
    exchange(primary, backup, 0.2)
    # The primary dies at 0.2: the backup does not take over by itself ...
    assert backup.state == PASSIVE
    waiting = backup.client_request(0.9, visible_lims=2)
    assert not waiting.accepted and not waiting.peer_alive and "waiting" in waiting.reason
    # ... only when a node asks once the peer has been silent for the expiry.
    assert backup.client_request(0.2 + EXPIRY, visible_lims=2).accepted
    assert backup.state == ACTIVE


def test_a_restarted_primary_finds_the_backup_active_and_stays_passive():
    _, backup = pair()
    backup.peer_heard(ACTIVE, 0.1)
    backup.client_request(0.1 + EXPIRY + 0.1, visible_lims=2)
    assert backup.state == ACTIVE  # it became active: the old primary is gone
    restarted = BinaryStar(True, EXPIRY, 2, 5.0)
    exchange(restarted, backup, 5.1)
    assert (restarted.state, backup.state) == (PASSIVE, ACTIVE)
    refused = restarted.client_request(5.2, visible_lims=2)
    assert not refused.accepted and refused.peer_alive


def test_the_backup_without_a_quorum_of_lims_does_not_take_over():
    primary, backup = pair(lims=3)
    exchange(primary, backup, 0.1)
    exchange(primary, backup, 0.2)
    refused = backup.client_request(2.0, visible_lims=1)
    assert not refused.accepted and "1 of 3" in refused.reason
    assert backup.client_request(2.1, visible_lims=2).accepted


def test_a_cut_off_primary_without_quorum_steps_down_before_the_backup_may_take_over():
    primary, backup = pair(lims=3)
    exchange(primary, backup, 0.1)
    exchange(primary, backup, 0.2)
    # The link between the brokers is cut; two of three LIMs are on the backup's side.
    primary.check(0.2 + EXPIRY / 2 - 0.01, visible_lims=1)
    assert primary.state == ACTIVE
    primary.check(0.2 + EXPIRY / 2, visible_lims=1)
    assert primary.state == PASSIVE
    assert not backup.client_request(0.2 + EXPIRY / 2, visible_lims=2).accepted
    assert backup.client_request(0.2 + EXPIRY, visible_lims=2).accepted
    # Never both active; and on healing the primary, now passive, stays so.
    exchange(primary, backup, 3.0)
    assert (primary.state, backup.state) == (PASSIVE, ACTIVE)


def test_dual_actives_on_healing_leave_the_primary_active():
    primary, backup = pair()
    primary.peer_heard(BACKUP, 0.1)
    backup.peer_heard(PRIMARY, 0.1)
    assert primary.state == ACTIVE
    backup.client_request(0.1 + EXPIRY, visible_lims=1)  # a tie: the backup may not
    assert backup.state == BACKUP
    backup.state = ACTIVE  # as if it had (e.g. after the primary stepped down and came back)
    exchange(primary, backup, 5.0)
    assert (primary.state, backup.state) == (ACTIVE, PASSIVE)


def test_both_passive_the_primary_takes_the_exchange():
    primary, backup = pair()
    primary.state, backup.state = PASSIVE, PASSIVE
    primary.peer_heard(PASSIVE, 1.0)
    backup.peer_heard(PASSIVE, 1.0)
    assert (primary.state, backup.state) == (ACTIVE, PASSIVE)


def test_unknown_peer_states_are_ignored():
    primary, _ = pair()
    primary.peer_heard("bogus", 0.1)
    assert primary.state == PRIMARY and primary.peer_state is None


# -- replay window and tracker ----------------------------------------------------------------------

def event(seq: int, src: str = "lim-1", incarnation: int = 1) -> Envelope:
    return Envelope("event", src, seq=seq, incarnation=incarnation, body={"n": seq})


def test_window_chains_events_per_topic_and_replays_after_a_sequence_number():
    window = ReplayWindow(keep_s=5.0)
    assert window.add(0.0, "d:1|", 1, b"h1", b"p1") == 0
    assert window.add(0.1, "d:2|", 2, b"h2", b"p2") == 0
    assert window.add(0.2, "d:1|", 3, b"h3", b"p3") == 1
    assert window.replay(["d:1|"], {"d:1|": 1}, None) == [["d:1|", b"h3", b"p3", 1]]
    # A topic never seen by the subscriber: by time only.
    assert window.replay(["d:2|"], {}, 0.05) == [["d:2|", b"h2", b"p2", 0]]
    assert window.replay(["d:2|"], {}, None) == []
    # A prefix subscription (not ending with the separator) matches every device topic.
    assert [e[0] for e in window.replay(["d:"], {}, 0.0)] == ["d:1|", "d:2|", "d:1|"]


def test_window_forgets_old_events_and_a_quiet_topic_starts_afresh():
    window = ReplayWindow(keep_s=1.0)
    window.add(0.0, "d:1|", 1, b"", b"")
    assert window.add(2.0, "d:1|", 2, b"", b"") == 0  # the first left the window before
    assert len(window) == 1
    capped = ReplayWindow(keep_s=100.0, max_events=3)
    for seq in range(1, 6):
        capped.add(seq, "d:1|", seq, b"", b"")
    assert len(capped) == 3


def test_window_ignores_hostile_since_values():
    window = ReplayWindow()
    window.add(0.0, "d:1|", 1, b"", b"")
    assert window.replay(["d:1|"], {"d:1|": "x", 5: 1}, 0.0) == [["d:1|", b"", b"", 0]]


def test_tracker_drops_duplicates_and_delivers_in_order():
    tracker = EventTracker()
    assert tracker.received("d:1|", event(1), 0, 0.0) == [("d:1|", event(1))]
    assert tracker.received("d:1|", event(1), 0, 0.0) == []
    assert tracker.duplicates == 1


def test_tracker_notices_a_hole_holds_back_and_fills_it_from_the_replay():
    tracker = EventTracker()
    tracker.received("d:1|", event(1), 0, 0.0)
    # Event 2 on d:1| was lost; 3 says its predecessor was 2.
    assert tracker.received("d:1|", event(3), 2, 0.1) == []
    assert tracker.take_gaps() == [("lim-1", {"d:1|": 1})]
    assert tracker.received("d:2|", event(4), 0, 0.2) == []  # same publisher: held back
    ready = tracker.replayed("lim-1", [("d:1|", event(2), 1), ("d:1|", event(3), 2)], 0.3)
    assert [(t, e.seq) for t, e in ready] == [("d:1|", 2), ("d:1|", 3), ("d:2|", 4)]
    assert tracker.holes == 1 and tracker.held_sources() == set()


def test_tracker_other_publishers_are_not_held_back():
    tracker = EventTracker()
    tracker.hold("lim-1", 0.0)
    assert tracker.received("d:1|", event(1, src="lim-2"), 0, 0.1) == [("d:1|", event(1, src="lim-2"))]
    assert tracker.received("d:1|", event(5), 0, 0.1) == []


def test_tracker_gives_up_holding_when_no_replay_comes():
    tracker = EventTracker(hold_limit_s=1.0)
    tracker.hold("lim-1", 0.0)
    assert tracker.received("d:1|", event(1), 0, 0.5) == []
    ready = tracker.received("d:1|", event(2), 1, 1.5)
    assert [e.seq for _, e in ready] == [1, 2]


def test_tracker_since_reports_the_current_incarnation_only():
    tracker = EventTracker()
    tracker.received("d:1|", event(7, incarnation=1), 0, 0.0)
    tracker.received("d:2|", event(9, incarnation=2), 0, 0.0)
    assert tracker.since("lim-1", 2, ["d:1|", "d:2|"]) == {"d:2|": 9}


def test_a_restarted_backup_waits_for_the_passive_primary_to_take_the_exchange():
    primary, backup = pair()
    primary.state = PASSIVE  # the backup was active, and was killed
    backup.peer_heard(PASSIVE, 1.0)
    assert backup.state == BACKUP
    primary.peer_heard(BACKUP, 1.0)
    backup.peer_heard(primary.state, 1.1)
    assert (primary.state, backup.state) == (ACTIVE, PASSIVE)


def test_tracker_forgets_a_topic_on_a_new_subscription():
    """Events published while nobody here subscribed are not a hole to fill: after unsubscribing and
    subscribing again, the next event starts afresh (no replay of what we did not want)."""
    tracker = EventTracker()
    tracker.received("d:1|", event(1), 0, 0.0)
    tracker.forget_topic("d:1|")
    assert tracker.received("d:1|", event(5), 3, 1.0) == [("d:1|", event(5))]
    assert tracker.take_gaps() == []


def test_a_register_answer_for_an_incarnation_already_left_is_ignored():
    """After a partition heals, a `rejoin` message can overtake the answer to the old incarnation's
    registration: that answer ("rejoin" too) must not make the node rejoin a second time."""
    from broker.node import BusNode
    from broker.timers import FakeClock, TimerQueue
    from topology.model import BrokerSettings
    node = BusNode("lim-2", BrokerSettings(), TimerQueue(FakeClock()), incarnation=1, role="lim", lim=2)
    rejoins = []
    node.on_rejoin = lambda: rejoins.append(node.incarnation) or node.incarnation + 1
    node._rejoin()                      # the rejoin message for incarnation 1
    assert node.incarnation == 2
    node._on_register_reply({"ok": False, "error": "rejoin"}, 1)  # the late answer to incarnation 1
    assert node.incarnation == 2 and rejoins == [1]
    node._on_register_reply({"ok": False, "error": "rejoin"}, 2)  # one about the current incarnation
    assert node.incarnation == 3 and rejoins == [1, 2]
