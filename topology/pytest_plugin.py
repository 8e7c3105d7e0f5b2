"""pytest plugin: an exchange for your own test suite (installed with mxone-sim, entry point `pytest11`).

    def test_screen_pop(mxone_exchange):
        host, port = mxone_exchange.csta_endpoint(1)          # LIM 1's CSTA server
        mxone_exchange.phone("1000").dial("2000")             # the physical side
        ...

`mxone_exchange` starts the exchange under supervisord, as `mxone up --detach` does, in the test's
temporary directory, on free ports (broker and CSTA servers), and stops it after the test. The
topology is the built-in one, or the file named by the `mxone_topology` ini option, or by a
marker on the test: `@pytest.mark.mxone_topology("tests/lab.yaml")`. `mxone_exchange_module` is
the same for a whole test module (one exchange, shared: faster, but tests must leave it idle).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from topology.cluster import Cluster
from topology.ports import move_to_free_ports


def topology_on_free_ports(source: Path, target: Path) -> Path:
    """Copy a topology file with the broker's and the CSTA servers' ports moved to free ones."""
    data = move_to_free_ports(yaml.safe_load(Path(source).read_text()))
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


class RunningExchange:
    """An exchange started for tests: where to reach it, and its phones."""

    def __init__(self, cluster: Cluster):
        from lim.phone import Exchange
        self.cluster = cluster
        self.run_dir = cluster.run_dir
        self.topology = cluster.topology()
        self.exchange = Exchange(self.topology)

    def csta_endpoint(self, lim: int) -> tuple[str, int]:
        """(address, port) of the CSTA server installed on LIM `lim`."""
        server = self.cluster.csta_servers(self.topology).get(lim)
        if server is None:
            raise LookupError(f"no CSTA server is initiated on LIM {lim}")
        return self.topology.lim(lim).address, server.port

    def phone(self, number: str):
        return self.exchange.phone(str(number))

    def calls(self) -> list[dict]:
        return self.exchange.calls()

    def stop(self) -> None:
        self.exchange.close()
        self.cluster.shutdown()


def start_exchange(directory: Path, topology: Path | None = None) -> RunningExchange:
    """`mxone up --detach` in `directory` (run directory `directory/run`), on free ports."""
    from topology.loader import default_topology_path
    directory.mkdir(parents=True, exist_ok=True)
    source = topology_on_free_ports(Path(topology) if topology else default_topology_path(),
                                    directory / "exchange.yaml")
    run_dir = directory / "run"
    up = subprocess.run([sys.executable, "-m", "topology.cli", "up", str(source), "--detach",
                         "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=120)
    if up.returncode != 0:
        raise RuntimeError(f"the exchange did not start: {up.stderr.strip()}")
    return RunningExchange(Cluster(run_dir))


def _topology_for(request: pytest.FixtureRequest) -> Path | None:
    marker = request.node.get_closest_marker("mxone_topology")
    if marker is not None:
        return Path(marker.args[0])
    configured = request.config.getini("mxone_topology")
    return Path(request.config.rootpath, configured) if configured else None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("mxone_topology", "topology YAML for the mxone_exchange fixture (default: the built-in one)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mxone_topology(path): the topology the mxone_exchange fixture starts")


@pytest.fixture
def mxone_exchange(request: pytest.FixtureRequest, tmp_path: Path):
    exchange = start_exchange(tmp_path / "mxone", _topology_for(request))
    try:
        yield exchange
    finally:
        exchange.stop()


@pytest.fixture(scope="module")
def mxone_exchange_module(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    exchange = start_exchange(tmp_path_factory.mktemp("mxone"), _topology_for(request))
    try:
        yield exchange
    finally:
        exchange.stop()
