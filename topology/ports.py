"""Free ports, and a topology moved onto them: what the tests, the pytest plugin and `mxone bench`
need so that an exchange they start never collides with `make run` or with another one."""
from __future__ import annotations

import socket
from typing import Any


def free_ports(n: int, address: str = "127.0.0.1") -> list[int]:
    """`n` distinct ports free on `address` now (all held while choosing, so no two are the same)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(family)
            sock.bind((address, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def move_to_free_ports(data: dict[str, Any]) -> dict[str, Any]:
    """A topology (as loaded from YAML) with the broker's (both brokers' of a pair), every CSTA
    server's and the live view's ports free."""
    csta = [lim["csta"] for lim in data.get("lims", []) if lim.get("csta")]
    brokers = [data["broker"]] + ([data["broker"]["backup"]] if data["broker"].get("backup") else [])
    pair = len(brokers) == 2
    view = data.get("live_view") or {}
    view_on = isinstance(view, dict) and view.get("enabled", True) is not False
    needed = len(brokers) * (4 if pair else 3) + len(csta) + sum(1 for c in csta if c.get("tls_port")) + view_on
    ports = iter(free_ports(needed))
    for broker in brokers:
        broker.update(router_port=next(ports), pub_port=next(ports), sub_port=next(ports))
        if pair:
            broker["peer_port"] = next(ports)
    for server in csta:
        server["port"] = next(ports)
        if server.get("tls_port"):
            server["tls_port"] = next(ports)
    if view_on:
        data["live_view"] = {**view, "port": next(ports)}
    return data
