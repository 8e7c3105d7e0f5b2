"""The results of worker threads (the SOAP service's PAM checks and notifications) run on the
poll loop, which owns every session and connection, so no other thread touches them."""
from __future__ import annotations

import logging
import queue
import socket
from typing import Any, Callable

log = logging.getLogger("csta")


class Waker:
    """Hands work from other threads to the poll loop: a queue of callables, and a datagram on a
    socket pair registered with the front end's poller so the loop wakes up and runs them."""

    def __init__(self, front: Any):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._recv, self._send = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._send.setblocking(False)
        front.add_datagram_socket(self._recv, lambda _data, _address: self.drain())

    def call_soon(self, fn: Callable[[], None]) -> None:
        """From any thread."""
        self._queue.put(fn)
        try:
            self._send.send(b"!")
        except OSError:
            pass  # the socket's buffer is full of wake-ups already: the loop will drain the queue

    def close(self) -> None:
        for sock in (self._recv, self._send):
            sock.close()

    def drain(self) -> None:
        """On the loop."""
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:  # one completion's fault must not stop the others
                log.exception("soap: a completion failed")
