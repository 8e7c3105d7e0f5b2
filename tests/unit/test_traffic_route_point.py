"""`mxone traffic --route-point`: the call-centre profile's callers dial a route point instead of
the ACD group (tools/traffic.py), played against the LIMs' real logic on the fake bus with a fake
clock. With no routeing application registered, the route point's LIM sends each call to the
route point's default destination (the ACD group) at once, where the agents answer."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tests.traffic_harness import Harness, login_agents, small_topology
from topology.loader import load_default_topology
from topology.model import RoutePoint
from tools.traffic import make_options, resources_for


def with_route_point(default: str = "5000"):
    return replace(small_topology(), route_points=(RoutePoint("7000", 2, default=default, timeout_s=5.0),))


def test_callers_dial_the_route_point_and_the_default_groups_agents_answer():
    options = make_options("callcentre", calls=12, rate=1, talk="fixed:2", ring="fixed:1", wrapup="fixed:0.5",
                           abandon_share=0, seed=4, route_point="7000")
    h = Harness(options, with_route_point())
    login_agents(h)
    summary = h.run()
    assert summary["route_point"] == "7000"
    assert summary["attempted"] == summary["answered"] == summary["completed"] == 12
    assert summary["failed"] == 0 and summary["in_progress"] == 0 and h.idle()
    # Every call waited at the route point, then went on to the group (its default) with cause
    # redirected, and was answered by an agent of the group.
    calls = {e["call_id"] for e in h.events("Queued") if e.get("queued") == "7000"}
    assert len(calls) == 12
    diverted = [e for e in h.events("Diverted") if e["device"] == "7000"]
    assert {e["call_id"] for e in diverted} == calls
    assert {e["diverted_to"] for e in diverted} == {"5000"} and {e["cause"] for e in diverted} == {"redirected"}
    answered = [e for e in h.events("Established") if e["call_id"] in calls]
    assert {e["answering"] for e in answered} <= {"1001", "2001"} and len(answered) == 12
    assert {e["called"] for e in answered} == {"7000"}  # the number the callers dialled


def test_the_default_built_in_route_point_serves_the_profile():
    res = resources_for(load_default_topology(), make_options("callcentre", seed=1, route_point="7000"))
    assert (res.dial, res.group) == ("7000", "5000")
    assert res.agents  # the group's agents


@pytest.mark.parametrize("kwargs, topology, problem", [
    ({"route_point": "7100"}, with_route_point(), "--route-point: 7100 is not a route point of topology 't' "
                                                  "(route points: 7000)"),
    ({"route_point": "7000"}, with_route_point(default="1003"),
     "--route-point: the default destination of 7000 is 1003, not an ACD group"),
    ({"route_point": "7000", "group": "5100"}, with_route_point(),
     "--route-point 7000 sends its calls to ACD group 5000, not --group 5100"),
])
def test_a_route_point_the_profile_cannot_use_is_one_line(kwargs, topology, problem):
    with pytest.raises(ValueError) as info:
        resources_for(topology, make_options("callcentre", seed=1, **kwargs))
    assert str(info.value).startswith(problem) and "\n" not in str(info.value)


def test_route_point_is_for_the_callcentre_profile():
    with pytest.raises(ValueError, match="--route-point is for the callcentre profile"):
        make_options("office", route_point="7000")
