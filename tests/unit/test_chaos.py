"""`mxone chaos`'s pure parts (tools/chaos.py): options, the kill plan, which broker is active,
when the exchange is whole again, and the analysis of lost events (on a traffic run played on the
LIMs' real logic with the fake bus)."""
from __future__ import annotations

import pytest

from tests.traffic_harness import Harness
from tools.chaos import (Kill, MonitorLog, active_broker_program, analyse, exchange_whole,
                            make_chaos_options, plan_kills)
from tools.traffic import make_options


def test_active_broker_single_and_pair():
    assert active_broker_program({"broker": {"ok": True, "members": []}}) == "broker"
    assert active_broker_program({"broker": None}) == "broker"  # restarting: still the only one
    pair = {"broker": {"state": "active", "mode": "primary"}, "broker-backup": {"state": "passive", "mode": "backup"}}
    assert active_broker_program(pair) == "broker"
    failed_over = {"broker": None, "broker-backup": {"state": "active", "mode": "backup"}}
    assert active_broker_program(failed_over) == "broker-backup"
    both_passive = {"broker": {"state": "passive"}, "broker-backup": {"state": "passive"}}
    assert active_broker_program(both_passive) is None
    assert active_broker_program({"broker": None, "broker-backup": None}) is None


def test_kill_plan_is_seeded_and_hits_every_kind():
    options = make_chaos_options(duration=40, kills=5, seed=9)
    plan = plan_kills(options)
    assert plan == plan_kills(make_chaos_options(duration=40, kills=5, seed=9))
    assert plan != plan_kills(make_chaos_options(duration=40, kills=5, seed=10))
    times = [t for t, _ in plan]
    assert times == sorted(times) and all(6 <= t <= 30 for t in times)
    assert {k for _, k in plan} == {"lim", "csta", "broker"} and len(plan) == 5
    one = plan_kills(make_chaos_options(duration=40, kills=1, targets="lim", seed=1))
    assert [k for _, k in one] == ["lim"]
    assert plan_kills(make_chaos_options(kills=0, seed=1)) == []


@pytest.mark.parametrize("kwargs, problem", [
    ({"duration": 1}, "--duration must be at least 5 seconds"),
    ({"kills": -1}, "--kills must be 0 to 100"),
    ({"targets": "lim,disk"}, "--targets: disk: choose from lim,csta,broker"),
    ({"targets": ","}, "--targets: (none)"),
    ({"rate": 0}, "--rate must be above 0"),
    ({"cross_lim": 3}, "--cross-lim must be a share"),
    ({"recover_timeout": 0}, "--recover-timeout must be 1 to 600"),
])
def test_bad_options(kwargs, problem):
    with pytest.raises(ValueError) as info:
        make_chaos_options(**kwargs)
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_exchange_whole():
    members = [{"node": "lim-1", "role": "lim", "lim": 1, "incarnation": 7, "state": "up"},
               {"node": "lim-2", "role": "lim", "lim": 2, "incarnation": 3, "state": "up"},
               {"node": "csta-1", "role": "front", "lim": 1, "incarnation": 5, "state": "up"}]
    wanted = {("lim", 1), ("lim", 2), ("front", 1)}
    assert exchange_whole(members, wanted)
    assert exchange_whole(members, wanted, "lim-1", old_incarnation=6)
    assert not exchange_whole(members, wanted, "lim-1", old_incarnation=7)  # still the killed one
    members[1]["state"] = "dead"
    assert not exchange_whole(members, wanted)


def monitored(h: Harness) -> MonitorLog:
    """What CSTA monitors on every phone would have got: each device's bus events, whole run long."""
    log = MonitorLog()
    for topic, body in h.net.published:
        if topic.startswith("d:") and body.get("call_id"):
            log.events.setdefault((body["call_id"], topic[2:-1]), []).append(body["event"])
    for device in {e.number for e in h.net.topology.extensions}:
        log.windows[device] = [[0.0, float("inf")]]
    return log


def test_analysis_counts_lost_events_and_blames_the_overlapping_kill():
    options = make_options("office", rate=1, calls=10, seed=4, talk="fixed:1", ring="fixed:0.5", transfer_share=0)
    h = Harness(options)
    h.run()
    lim_of = {e.number: e.lim for e in h.net.topology.extensions}
    log = monitored(h)
    clean = analyse(h.engine, log, [], lim_of, timeout=30)
    assert clean["calls_completed"] == 10 and clean["events_lost"] == 0 and clean["events_duplicated"] == 0
    assert clean["monitored_call_sides_checked"] == 20
    # One Established lost at the third call's callee, while the broker was down.
    third = h.engine.records[2]
    log.events[(third.main_call, third.callee)].remove("Established")
    broker = Kill("broker", 0.0, program="broker", at=third.dialled_at, recovered_s=0.5)
    lossy = analyse(h.engine, log, [broker], lim_of, timeout=30)
    assert lossy["events_lost"] == 1 and lossy["events_lost_by_kill"] == {"broker": 1}
    assert lossy["events_lost_outside_broker_outages"] == 0
    unexplained = analyse(h.engine, log, [], lim_of, timeout=30)
    assert unexplained["events_lost_by_kill"] == {"no kill": 1}
    assert unexplained["events_lost_outside_broker_outages"] == 1
    assert lossy["events_lost_detail"] == [f"call {third.main_call} {third.callee}: missing Established"]
    # A monitor that was closed during the call: that side is not checked.
    log.windows[third.callee] = [[0.0, third.dialled_at + 0.1]]
    skipped = analyse(h.engine, log, [broker], lim_of, timeout=30)
    later = sum(1 for r in h.engine.records if third.callee in (r.caller, r.callee) and r.dialled_at >= third.dialled_at)
    assert skipped["events_lost"] == 0 and skipped["monitored_call_sides_not_checked"] == later >= 1
    # A duplicate is counted too.
    log.events[(third.main_call, third.caller)].append("Delivered")
    assert analyse(h.engine, log, [], lim_of, timeout=30)["events_duplicated"] == 1


def test_calls_of_a_killed_lim_are_not_surviving_devices():
    options = make_options("office", rate=2, calls=4, seed=3, cross_lim=1, transfer_share=0, talk="fixed:20",
                           ring="fixed:0.5")
    h = Harness(options)
    h.engine.start()
    for _ in range(80):
        h.net.clock.advance(0.05, h.net.timers)
        h.pump()
    killed_at = h.net.clock()
    h.net.kill_lim(2)
    h.pump()
    while not h.engine.finished():
        h.net.clock.advance(0.05, h.net.timers)
        h.pump()
    lim_of = {e.number: e.lim for e in h.net.topology.extensions}
    kill = Kill("lim", 1.0, program="lim-2", at=killed_at, recovered_s=1.0)
    report = analyse(h.engine, monitored(h), [kill], lim_of, timeout=30)
    assert report["calls_released_by_failure"] == 4 and report["calls_completed"] == 0
    assert report["events_lost"] == 0 and report["monitored_call_sides_checked"] == 0


def test_a_stall_is_explained_by_a_broker_outage_or_the_generators_move_only():
    options = make_options("office", rate=1, calls=3, seed=4, talk="fixed:1", ring="fixed:0.5", transfer_share=0)
    h = Harness(options)
    h.run()
    lim_of = {e.number: e.lim for e in h.net.topology.extensions}
    stalled = h.engine.records[1]
    stalled.failure = "stalled: events missing"  # as if its Established never reached the generator
    stalled.event_due_at = stalled.dialled_at + 1
    alone = analyse(h.engine, monitored(h), [], lim_of, timeout=30)
    assert alone["calls_stalled"] == 1 and alone["calls_stalled_unexplained"] == 1
    moved = analyse(h.engine, monitored(h), [], lim_of, timeout=30, client_moves=[stalled.dialled_at + 0.5])
    assert moved["calls_stalled"] == 1 and moved["calls_stalled_unexplained"] == 0
    assert moved["calls_stalled_by_kill"] == {"the generator's move to the other broker": 1}
    broker = Kill("broker", 0.0, program="broker-backup", at=stalled.dialled_at, recovered_s=1.0)
    assert analyse(h.engine, monitored(h), [broker], lim_of, timeout=30)["calls_stalled_unexplained"] == 0
    lim = Kill("lim", 0.0, program=f"lim-{lim_of[stalled.caller]}", at=stalled.dialled_at, recovered_s=1.0)
    explained = analyse(h.engine, monitored(h), [lim], lim_of, timeout=30)
    assert explained["calls_stalled"] == 0 and explained["calls_stalled_explained_by_lim_death"] == 1
