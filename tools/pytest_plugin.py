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

from pathlib import Path

import pytest

from cluster.exchange import RunningExchange, running_exchange

__all__ = ["RunningExchange", "mxone_exchange", "mxone_exchange_module"]


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
    with running_exchange(_topology_for(request), tmp_path / "mxone", free_ports=True) as exchange:
        yield exchange


@pytest.fixture(scope="module")
def mxone_exchange_module(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    with running_exchange(_topology_for(request), tmp_path_factory.mktemp("mxone"), free_ports=True) as exchange:
        yield exchange
