"""Where a node reaches the broker's sockets: over `ipc://` when the broker is on this host's
loopback, else over TCP. Pure (the path depends only on the endpoint).

A broker on a loopback address can only be reached from its own host, so both ends are here and
a Unix domain socket serves the same sockets for less CPU than loopback TCP (ZeroMQ's I/O threads
and the kernel are a third of the broker's CPU per call: docs/benchmarks.md). The broker binds TCP
as well, for anything that connects by address (tools, tests, other languages).
"""
from __future__ import annotations

import ipaddress
import tempfile

from topology.model import BrokerEndpoint


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: resolved by ZeroMQ, maybe another host


def ipc_url(endpoint: BrokerEndpoint, which: str) -> str | None:
    """The Unix domain socket of one of the broker's sockets (router, pub, sub), or None when the
    broker is not on loopback. Named by address and port: what makes a TCP endpoint unique."""
    if not is_loopback(endpoint.address):
        return None
    port = {"router": endpoint.router_port, "pub": endpoint.pub_port, "sub": endpoint.sub_port}[which]
    return f"ipc://{tempfile.gettempdir()}/mxone-bus-{endpoint.address}-{port}"


def node_url(endpoint: BrokerEndpoint, which: str) -> str:
    """What a node connects to."""
    return ipc_url(endpoint, which) or endpoint.url(which)
