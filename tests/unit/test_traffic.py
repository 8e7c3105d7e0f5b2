"""The traffic generator's pure part (tools/traffic.py): options, distributions, the seeded plan,
and the engine playing it against the LIMs' real call logic on the fake bus with a fake clock."""
from __future__ import annotations

import random
import statistics

import pytest

from lim.calls import ConnState
from tests.traffic_harness import Harness, login_agents
from topology.loader import load_default_topology
from tools.traffic import Dist, make_options, plan_calls, rate_from, resources_for


# -- options and distributions ---------------------------------------------------------------------------
def test_rate_and_bhca():
    assert rate_from(2.5, None) == 2.5
    assert rate_from(None, 3600) == 1.0
    assert rate_from(None, 1800) == 0.5
    assert rate_from(None, None) is None
    assert make_options("callcentre", bhca=7200, seed=1).rate == 2.0
    assert make_options("office", seed=1).rate == 2.0  # the profile's default


@pytest.mark.parametrize("kwargs, problem", [
    ({"rate": 1, "bhca": 3600}, "give --rate or --bhca, not both"),
    ({"rate": 0}, "--rate must be above 0"),
    ({"rate": -2}, "--rate must be above 0"),
    ({"bhca": 0}, "--bhca must be above 0"),
    ({"duration": 10, "calls": 5}, "give --duration or --calls, not both"),
    ({"duration": 0}, "--duration must be above 0"),
    ({"calls": 0}, "--calls must be at least 1"),
    ({"abandon_share": 1.5}, "--abandon-share must be a share from 0 to 1"),
    ({"cross_lim": -0.1}, "--cross-lim must be a share"),
    ({"transfer_share": 2}, "--transfer-share must be a share"),
    ({"talk": "long"}, "--talk-time: 'long' is not a duration"),
    ({"ring": "uniform:5-2"}, "--ring-time: 'uniform:5-2' is not a duration"),
    ({"ring": "fixed:40"}, "--ring-time: at most 25 s"),
    ({"wrapup": "exp:-1"}, "--wrapup: 'exp:-1' is not a duration"),
    ({"arrivals": "bursty"}, "--arrivals must be poisson or even"),
    ({"drain": -1}, "--drain must be 0 or more"),
])
def test_bad_options_are_one_line_errors(kwargs, problem):
    with pytest.raises(ValueError) as info:
        make_options("callcentre", **kwargs)
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_unknown_profile():
    with pytest.raises(ValueError, match="--profile must be one of callcentre, office"):
        make_options("hotel")


def test_distributions():
    rng = random.Random(7)
    assert Dist.parse("8", "x") == Dist("exp", 8.0) == Dist.parse("exp:8", "x")
    assert Dist.parse("fixed:2.5", "x").draw(rng) == 2.5
    uniform = Dist.parse("uniform:1-3", "x")
    draws = [uniform.draw(rng) for _ in range(5000)]
    assert 1 <= min(draws) and max(draws) <= 3
    assert statistics.mean(draws) == pytest.approx(2.0, abs=0.05)
    exp = Dist.parse("exp:4", "x")
    draws = [exp.draw(rng) for _ in range(20000)]
    assert max(draws) <= 20  # capped at 5x the mean
    assert statistics.mean(draws) == pytest.approx(exp.mean, rel=0.03)
    assert Dist.parse("uniform:0.5-2", "x") == Dist("uniform", 0.5, 2.0)


# -- the plan ---------------------------------------------------------------------------------------------
def test_same_seed_same_plan_other_seed_other_plan():
    a = list(plan_calls(make_options("office", calls=50, seed=42)))
    b = list(plan_calls(make_options("office", calls=50, seed=42)))
    c = list(plan_calls(make_options("office", calls=50, seed=43)))
    assert a == b and a != c
    assert len(a) == 51  # one more: where the arrival phase ends
    assert [p.index for p in a] == list(range(1, 52))


def test_poisson_arrivals_at_the_asked_rate():
    plan = list(plan_calls(make_options("callcentre", rate=5, calls=4000, seed=3)))
    gaps = [b.at - a.at for a, b in zip(plan, plan[1:])]
    assert statistics.mean(gaps) == pytest.approx(0.2, rel=0.05)
    assert statistics.pstdev(gaps) == pytest.approx(0.2, rel=0.1)  # exponential: sd = mean
    even = list(plan_calls(make_options("callcentre", rate=4, calls=8, seed=3, arrivals="even")))
    assert [p.at for p in even] == [i * 0.25 for i in range(9)]


def test_duration_ends_the_plan():
    plan = list(plan_calls(make_options("office", rate=10, duration=5, seed=9)))
    assert all(p.at < 5 for p in plan[:-1]) and plan[-1].at >= 5


def test_shares_and_patience():
    cc = list(plan_calls(make_options("callcentre", calls=5000, seed=5, abandon_share=0.2)))
    impatient = [p for p in cc if p.abandon_after_s is not None]
    assert len(impatient) / len(cc) == pytest.approx(0.2, abs=0.02)
    assert all(p.abandon_after_s < p.ring_s for p in impatient)  # gone before the agent picks up
    assert not any(p.transfer or p.cross_lim for p in cc)
    office = list(plan_calls(make_options("office", calls=5000, seed=5, cross_lim=0.3, transfer_share=0.25)))
    assert sum(p.cross_lim for p in office) / len(office) == pytest.approx(0.3, abs=0.02)
    assert sum(p.transfer for p in office) / len(office) == pytest.approx(0.25, abs=0.02)
    assert all(p.abandon_after_s is None for p in office)
    assert all(0 < p.consult_s < p.talk_s for p in office if p.transfer and p.talk_s > 0)


# -- resources ---------------------------------------------------------------------------------------------
def test_default_topology_has_what_both_profiles_need():
    topology = load_default_topology()
    res = resources_for(topology, make_options("callcentre", seed=1))
    assert res.group == "5000" and res.trunk_prefix == "0"
    assert set(res.agents) == {"1005", "1006", "1007", "2005", "2006", "2007"}
    office = resources_for(topology, make_options("office", seed=1))
    assert set(office.phones) == {1, 2} and "1000" in office.phones[1] and "1040" not in office.phones[1]


def test_missing_trunk_or_group_is_one_line():
    topology = load_default_topology()
    from dataclasses import replace
    with pytest.raises(ValueError) as info:
        resources_for(replace(topology, trunks=(), acd_groups=()), make_options("callcentre", seed=1))
    message = str(info.value)
    assert "needs a trunk" in message and "an ACD group" in message and "\n" not in message


# -- the engine on the LIMs' real logic, fake bus and fake clock (tests/traffic_harness.py) ----------------
def test_callcentre_run_answers_abandons_and_matches_the_exchange():
    options = make_options("callcentre", rate=0.15, calls=40, seed=11, talk="exp:4", ring="uniform:1-2",
                           wrapup="uniform:0.5-2", abandon_share=0.2)
    h = Harness(options)
    login_agents(h)
    summary = h.run()
    impatient = sum(1 for p in list(plan_calls(options))[:40] if p.abandon_after_s is not None)
    assert summary["attempted"] == 40 and summary["in_progress"] == 0
    assert summary["abandoned"] >= impatient  # every impatient caller gave up; a patient one may too ...
    assert summary["answered"] + summary["abandoned"] + summary["failed"] == 40
    assert summary["failed"] == 0, summary["failure_reasons"]
    # ... what the exchange reports
    established = [b for b in h.events("Established") if b["answering"] in ("1001", "2001")]
    assert summary["answered"] == len(established)
    assert len(h.events("CallCleared")) == 40
    assert h.idle()
    # Both agents worked, and wrap-ups shorter than the group's 3 s were ended by the agents.
    assert {b["answering"] for b in established} == {"1001", "2001"}
    ready = [b for t, b in h.net.published if t == "d:1001|" and b["event"] == "AgentReady"]
    assert len(ready) > 1


def test_callcentre_same_seed_same_outcome():
    def run():
        options = make_options("callcentre", rate=0.2, calls=25, seed=5, talk="exp:3", abandon_share=0.3)
        h = Harness(options)
        login_agents(h)
        s = h.run()
        return {k: s[k] for k in ("attempted", "answered", "abandoned", "failed", "answer_delay_p50_s")}
    assert run() == run()


def test_callcentre_with_no_agent_logged_on_is_cut_off_at_the_end():
    options = make_options("callcentre", rate=1, calls=3, seed=1, abandon_share=0, drain=5)
    h = Harness(options)
    summary = h.run()
    assert summary["attempted"] == 3 and summary["answered"] == 0 and summary["failed"] == 3
    assert summary["failure_reasons"] == {"cut off at the end of the run": 3}
    assert h.idle()


def test_office_run_with_transfers_and_cross_lim_calls():
    options = make_options("office", rate=0.5, calls=30, seed=8, talk="exp:4", ring="uniform:0.5-1.5",
                           cross_lim=0.5, transfer_share=0.3)
    h = Harness(options)
    summary = h.run()
    assert summary["failed"] == 0, summary
    assert summary["attempted"] + sum(summary["skipped"].values()) == 30
    assert summary["answered"] == summary["attempted"] == summary["completed"]
    planned = [p for p in list(plan_calls(options))[:30]]
    assert summary["transferred"] == len(h.events("Transferred")) == sum(p.transfer for p in planned) > 0
    cleared = h.events("CallCleared")
    assert len(cleared) == summary["attempted"]
    assert h.idle()
    # A share of calls crossed LIMs, and some stayed on one.
    lims = {e.number: e.lim for e in h.net.topology.extensions}
    delivered = [b for b in h.events("Delivered") if b["calling"] in lims and b["alerting"] in lims]
    crossing = {lims[b["calling"]] != lims[b["alerting"]] for b in delivered}
    assert crossing == {True, False}


def test_office_busy_callee_is_a_failure_with_its_cause():
    options = make_options("office", rate=1, calls=1, seed=2, cross_lim=1, transfer_share=0)
    h = Harness(options)
    for number in [e.number for e in h.net.topology.extensions]:
        h.net.feature(number, "dnd", on=True)  # every callee refuses (callers can still dial)
    summary = h.run()
    assert summary["failed"] == 1 and summary["failure_reasons"] == {"failed: doNotDisturb": 1}
    assert h.idle()


def test_a_lim_failure_is_counted_as_released_by_failure():
    options = make_options("office", rate=2, calls=4, seed=3, cross_lim=1, transfer_share=0, talk="fixed:20",
                           ring="fixed:0.5")
    h = Harness(options)
    h.engine.start()
    for _ in range(80):  # 4 s: every call is answered and talking
        h.net.clock.advance(0.05, h.net.timers)
        h.pump()
    assert len(h.engine.active) == 4
    h.net.kill_lim(2)
    h.pump()
    while not h.engine.finished():
        h.net.clock.advance(0.05, h.net.timers)
        h.pump()
    summary = h.engine.summary()
    assert summary["released_by_failure"] == 4 and summary["answered"] == 4
    assert summary["completed"] == 0
    for core in (h.net.cores[1],):
        assert not any(c.state_of(d) == ConnState.CONNECTED for c in core.calls.values() for d in c.parties)
