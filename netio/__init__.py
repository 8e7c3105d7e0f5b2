"""The servers' network I/O, written once: a poll loop with its connections (`Loop`, `Connection`)
and the h11 driving loop of an HTTP server connection (`netio.http.HttpDriver`).

A bottom layer beside `broker` and `topology`: it imports only zmq, h11 and the standard library,
and holds no server's policy (limits, logging, which protocol a connection speaks); the CSTA server
(csta_front/server.py, csta_front/soap_http.py) and the live view (liveview/server.py,
liveview/http.py) pass theirs in.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Connection", "Loop"]


def __getattr__(name: str) -> Any:
    # Imported when first asked for, so `netio.logs` (every process) does not bring in the
    # sockets and ssl that only the servers with connections need (issue 16: start-up).
    if name == "Connection":
        from netio.connection import Connection
        return Connection
    if name == "Loop":
        from netio.loop import Loop
        return Loop
    raise AttributeError(f"module 'netio' has no attribute {name!r}")
