"""The servers' network I/O, written once: a poll loop with its connections (`Loop`, `Connection`)
and the h11 driving loop of an HTTP server connection (`netio.http.HttpDriver`).

A bottom layer beside `broker` and `topology`: it imports only zmq, h11 and the standard library,
and holds no server's policy (limits, logging, which protocol a connection speaks); the CSTA server
(csta_front/server.py, csta_front/soap_http.py) and the live view (liveview/server.py,
liveview/http.py) pass theirs in.
"""
from netio.connection import Connection
from netio.loop import Loop

__all__ = ["Connection", "Loop"]
