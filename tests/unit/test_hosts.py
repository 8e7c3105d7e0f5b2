"""`mxone up --host NAME`: which programs run on which host, the rendered supervisord config of one
host's share, and the one-line refusals."""
from __future__ import annotations

import configparser
import socket

import pytest

from cli.main import main
from cluster.control import Cluster, check_ports_free, render_supervisord_conf
from topology.hosts import HostError, addresses_on, check_host, host_names, programs_on
from topology.loader import parse_topology
from topology.ports import free_ports

PLACED = """\
name: spread
live_view: {{address: 127.0.0.1, port: {p4}}}
broker: {{address: 127.0.0.1, router_port: {p0}, pub_port: {p1}, sub_port: {p2}, host: Alpha}}
lims:
  - {{number: 1, address: 127.0.1.1, host: alpha, csta: {{port: {p3}}},
     extensions: [{{numbers: 1000-1009, type: ip}}]}}
  - {{number: 2, address: 127.0.1.2, host: beta, csta: {{port: {p3}}},
     extensions: [{{numbers: 2000-2009, type: ip}}]}}
  - {{number: 3, address: 127.0.1.3, host: 10.0.0.3,
     extensions: [{{numbers: 3000-3009, type: ip}}]}}
"""


def placed_text() -> str:
    ports = free_ports(5)
    return PLACED.format(**{f"p{i}": port for i, port in enumerate(ports)})


@pytest.fixture
def topology():
    return parse_topology(placed_text(), "spread.yaml")


def programs_in(conf: str) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(conf)
    return [s.removeprefix("program:") for s in parser.sections() if s.startswith("program:")]


def test_placement(topology):
    assert host_names(topology) == ["10.0.0.3", "alpha", "beta"]  # names kept as the loader keeps them
    assert programs_on(topology, "alpha") == ["broker", "lim-1", "csta-1", "view"]  # the view beside the broker
    assert programs_on(topology, "beta") == ["lim-2", "csta-2"]
    assert programs_on(topology, "10.0.0.3") == ["lim-3", "csta-3"]
    assert len(programs_on(topology, None)) == 8
    assert addresses_on(topology, "alpha") == {"127.0.0.1", "127.0.1.1"}
    assert addresses_on(topology, "beta") == {"127.0.1.2"}


def test_check_host_normalises_and_refuses(topology):
    assert check_host(topology, "ALPHA") == "alpha"
    assert check_host(topology, " 10.0.0.3") == "10.0.0.3"
    with pytest.raises(HostError) as info:
        check_host(topology, "gamma")
    assert str(info.value) == "no host 'gamma' in the topology; its hosts are 10.0.0.3, alpha, beta"
    nowhere = parse_topology(placed_text().replace("host: Alpha", "host: null"), "t.yaml")
    with pytest.raises(HostError, match="broker has none"):
        check_host(nowhere, "alpha")
    unplaced = parse_topology(placed_text().replace(", host: Alpha", "").replace("host: alpha, ", "")
                              .replace("host: beta, ", "").replace("host: 10.0.0.3,", ""), "t.yaml")
    with pytest.raises(HostError, match="places nothing on hosts"):
        check_host(unplaced, "alpha")


def test_rendered_share_of_one_host(topology, tmp_path):
    assert programs_in(render_supervisord_conf(topology, tmp_path)) == [
        "broker", "lim-1", "lim-2", "lim-3", "csta-1", "csta-2", "csta-3", "view"]
    assert programs_in(render_supervisord_conf(topology, tmp_path, host="alpha")) == [
        "broker", "lim-1", "csta-1", "view"]
    beta = render_supervisord_conf(topology, tmp_path, host="beta")
    assert programs_in(beta) == ["lim-2", "csta-2"]
    assert "--lim 2" in beta and "unix_http_server" in beta


def test_ports_checked_only_for_this_hosts_addresses(topology):
    csta = {1: topology.lim(1).csta, 2: topology.lim(2).csta}
    taken = socket.socket()
    taken.bind(("127.0.1.2", topology.lim(2).csta.port))  # LIM 2's port, on beta
    try:
        check_ports_free(topology, csta, host="alpha")  # not alpha's business
        with pytest.raises(Exception, match="LIM 2's CSTA port"):
            check_ports_free(topology, csta, host="beta")
    finally:
        taken.close()


def test_up_with_an_unknown_host_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "spread.yaml"
    path.write_text(placed_text())
    assert main(["up", str(path), "--host", "gamma", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == "mxone: up: no host 'gamma' in the topology; its hosts are 10.0.0.3, alpha, beta\n"
    assert not (tmp_path / "run").exists()  # refused before touching anything


def test_prepare_records_the_host(tmp_path):
    path = tmp_path / "spread.yaml"
    path.write_text(placed_text())
    cluster = Cluster(tmp_path / "run")
    cluster.prepare(path, host="Beta")
    assert cluster.host() == "beta"
    assert programs_in(cluster.conf.read_text()) == ["lim-2", "csta-2"]
    cluster.prepare(path)  # the whole exchange again in the same run directory
    assert cluster.host() is None
    assert len(programs_in(cluster.conf.read_text())) == 8
