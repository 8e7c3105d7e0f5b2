"""One poll loop for a server: its ZeroMQ sockets, TCP listeners, datagram sockets and connections.

One zmq.Poller watches them all, so a client's request, the bus request it causes, the answer and
the events that follow run on one thread without locks. Each round serves what is ready, runs the
timers that are due, then sends what the round wrote (`flush`). The server subclasses `Loop` and
keeps the policy: what to do with an accepted socket, which protocol a connection speaks, its limits.

The bus and the timers are duck-typed, so this package imports nothing of the project's others:
`bus` has keep_polled(poller) (its sockets may be replaced on reconnect) and drain(zmq_socket);
`timers` has poll_timeout_ms(max_wait) -> whole milliseconds (rounded up) and run_due().
"""
from __future__ import annotations

import logging
import socket
from typing import Any, Callable

import zmq

from netio.connection import Connection

ACCEPTS_PER_ROUND = 64      # a burst of connections does not hold up the ones already open
DATAGRAMS_PER_ROUND = 256


class Loop:
    def __init__(self, bus: Any, timers: Any, log: logging.Logger):
        self.bus = bus
        self.timers = timers
        self.log = log
        self.poller = zmq.Poller()
        self.running = False
        self.connections: dict[int, Connection] = {}
        self.to_flush: list[Connection] = []  # written to in this loop round
        # fd -> (listening socket, on_accept(socket, address)); the accepted socket is non-blocking.
        self.listeners: dict[int, tuple[socket.socket, Callable[[socket.socket, Any], None]]] = {}
        # fd -> (socket, on_datagram(data, address)).
        self.datagram_sockets: dict[int, tuple[socket.socket, Callable[[bytes, Any], None]]] = {}

    # -- sockets ---------------------------------------------------------------------------------
    def listen_tcp(self, address: str, port: int, backlog: int,
               on_accept: Callable[[socket.socket, Any], None]) -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(backlog)
        listener.setblocking(False)
        self.poller.register(listener, zmq.POLLIN)
        self.listeners[listener.fileno()] = (listener, on_accept)
        return listener

    def accept_failed(self, exc: OSError) -> None:
        """accept() failed (out of file descriptors, mostly): the server says so its own way."""

    def _accept(self, listener: socket.socket, on_accept: Callable[[socket.socket, Any], None]) -> None:
        for _ in range(ACCEPTS_PER_ROUND):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.accept_failed(exc)
                return
            sock.setblocking(False)
            on_accept(sock, addr)

    def add(self, conn: Connection) -> None:
        self.connections[conn.fd] = conn
        self.poller.register(conn.fd, zmq.POLLIN)

    def add_datagram_socket(self, sock: socket.socket, on_datagram: Callable[[bytes, Any], None]) -> None:
        sock.setblocking(False)
        self.datagram_sockets[sock.fileno()] = (sock, on_datagram)
        self.poller.register(sock.fileno(), zmq.POLLIN)

    def _read_datagrams(self, sock: socket.socket, on_datagram: Callable[[bytes, Any], None]) -> None:
        for _ in range(DATAGRAMS_PER_ROUND):
            try:
                data, address = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                on_datagram(data, address)
            except Exception:  # one bad datagram must not stop the server
                self.log.exception("datagram from %s", address)

    # -- what connections ask for ----------------------------------------------------------------
    def want_write(self, conn: Connection, on: bool) -> None:
        if not conn.closed:
            self.poller.modify(conn.fd, zmq.POLLIN | (zmq.POLLOUT if on else 0))

    def forget(self, conn: Connection) -> None:
        try:
            self.poller.unregister(conn.fd)
        except (KeyError, ValueError):
            pass
        self.connections.pop(conn.fd, None)

    # -- the loop --------------------------------------------------------------------------------
    def serve(self, max_wait: float) -> None:
        """Rounds until `running` is false, then close every socket."""
        while self.running:
            self.poll_once(max_wait)
        self.stopping()
        self.flush()  # the last words leave before the sockets close (as far as each socket takes them)
        for conn in list(self.connections.values()):
            conn.close()
        for listener, _ in self.listeners.values():
            listener.close()
        for sock, _ in self.datagram_sockets.values():
            sock.close()

    def stopping(self) -> None:
        """Hook: the server's last words to its connections, sent before every socket closes."""

    def poll_once(self, max_wait: float) -> None:
        self.bus.keep_polled(self.poller)
        timeout_ms = self.timers.poll_timeout_ms(max_wait)
        for sock, flags in self.poller.poll(timeout_ms):
            if not isinstance(sock, int):  # zmq sockets come back as themselves, plain ones as fds
                self.bus.drain(sock)
            elif sock in self.listeners:
                self._accept(*self.listeners[sock])
            elif sock in self.datagram_sockets:
                self._read_datagrams(*self.datagram_sockets[sock])
            else:
                conn = self.connections.get(sock)
                if conn is None:
                    continue
                try:
                    if flags & zmq.POLLOUT:
                        conn.writable()
                    if flags & zmq.POLLIN and not conn.closed:
                        conn.readable()
                except Exception:  # one connection's fault closes that connection, not the server
                    conn.log.exception("%s: closing after an internal error", conn.peer)
                    conn.close()
        self.timers.run_due()
        self.flush()

    def flush(self) -> None:
        """Send what this round wrote: one send() per connection, however many writes."""
        while self.to_flush:
            pending, self.to_flush = self.to_flush, []
            for conn in pending:
                try:
                    conn.flush()
                except Exception:
                    conn.log.exception("%s: closing after an internal error", conn.peer)
                    conn.close()
