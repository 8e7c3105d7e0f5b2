"""`generate_topology`'s addresses and ports: what the loader then reads back, and the refusals."""
from __future__ import annotations

import pytest

from topology.generate import generate_topology
from topology.loader import parse_topology


def test_addresses_and_ports_as_asked():
    topo = parse_topology(generate_topology(3, 10, lim_addresses="127.5", broker_address="127.0.0.9",
                                            broker_ports=(9100, 9101, 9102), csta_port=9882, live_view_port=9890))
    assert [lim.address for lim in topo.lims] == ["127.5.1.1", "127.5.1.2", "127.5.1.3"]
    assert {lim.csta.port for lim in topo.lims} == {9882}
    ep = topo.broker.primary
    assert (ep.address, ep.router_port, ep.pub_port, ep.sub_port) == ("127.0.0.9", 9100, 9101, 9102)
    assert (topo.live_view.address, topo.live_view.port) == ("127.0.0.9", 9890)
    assert parse_topology(generate_topology(2, 10, live_view_port=None)).live_view is None
    assert parse_topology(generate_topology(251, 1)).lims[250].address == "127.0.2.1"  # never .0 or .255


@pytest.mark.parametrize("kwargs, problem", [
    ({"lim_addresses": "127"}, "lim_addresses"), ({"lim_addresses": "127.256"}, "lim_addresses"),
    ({"lim_addresses": "a.b"}, "lim_addresses"), ({"csta_port": 0}, "csta_port"),
    ({"live_view_port": 70000}, "live_view_port"), ({"live_view_port": 7801}, "broker's ports"),
])
def test_refusals_name_the_option(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        generate_topology(2, 10, **kwargs)
