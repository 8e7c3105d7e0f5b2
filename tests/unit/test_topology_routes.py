"""Route points in the topology file: loaded, and refused with the line of the problem."""
from __future__ import annotations

import pytest
import yaml

from topology.loader import TopologyError, default_topology_path, load_default_topology, parse_topology


def with_routes(routes: list[dict]) -> str:
    data = yaml.safe_load(default_topology_path().read_text())
    data["groups"]["route"] = routes
    return yaml.safe_dump(data, sort_keys=False)


def test_the_built_in_topology_has_route_point_7000_on_lim_2():
    topology = load_default_topology()
    (point,) = topology.route_points
    assert (point.number, point.lim, point.default) == ("7000", 2, "5000")
    assert topology.directory()["7000"] == 2


@pytest.mark.parametrize("route, problem", [
    ({"number": "7001", "lim": 2, "default": "9999"}, "default 9999 is neither an internal number"),
    ({"number": "7001", "lim": 2, "default": "7000"}, "default 7000 is a route point"),
    ({"number": "7001", "lim": 9, "default": "1000"}, "9"),
    ({"number": "1000", "lim": 1, "default": "2000"}, "1000"),
    ({"number": "7001", "lim": 2, "default": "1000", "timeout_s": 0}, "timeout_s"),
    ({"number": "7001", "lim": 2, "default": "1000", "timout_s": 3}, "timout_s"),
])
def test_a_bad_route_point_is_refused_with_its_line(route, problem):
    text = with_routes([{"number": "7000", "lim": 2, "default": "5000"}, route])
    with pytest.raises(TopologyError) as error:
        parse_topology(text, "t.yaml")
    assert problem in str(error.value)
    assert error.value.line is not None and "t.yaml:" in str(error.value)
