"""Event notifications POSTed to a subscription's NotifyTo URL, by one worker thread.

A worker thread with http.client rather than non-blocking sockets in the poll loop: the loop has no
hook for client sockets, name resolution blocks anyway, and one thread keeps each subscription's
events in order. It is fed by a bounded queue; failures go back to the loop through the Waker.
"""
from __future__ import annotations

import http.client
import queue
import threading
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from csta_front.soap_envelope import MAX_BODY, WS_NS
from csta_front.waker import Waker

NOTIFY_QUEUE = 1000            # events waiting for the notification thread, all subscriptions
NOTIFY_TIMEOUT_S = 3.0


class Notifier:
    """One worker thread POSTing notifications, fed by a bounded queue; failures go back to the
    loop through the waker."""

    def __init__(self, waker: Waker, maxsize: int = NOTIFY_QUEUE, timeout: float = NOTIFY_TIMEOUT_S):
        self.waker = waker
        self.timeout = timeout
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, host: str, port: int, path: str, action: str, body: bytes,
               on_failure: Callable[[str], None]) -> bool:
        """False when the queue is full (the caller keeps the event)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="soap-notify", daemon=True)
            self.thread.start()
        try:
            self.queue.put_nowait((host, port, path, action, body, on_failure))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        if self.thread is not None:
            try:
                self.queue.put_nowait(None)
            except queue.Full:
                pass

    def _run(self) -> None:
        connections: dict[tuple[str, int], http.client.HTTPConnection] = {}
        while True:
            item = self.queue.get()
            if item is None:
                break
            host, port, path, action, body, on_failure = item
            try:
                error = self._post(connections, host, port, path, action, body)
            except Exception as exc:  # never let the thread die
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                self.sent += 1
            else:
                self.failed += 1
                self.waker.call_soon(lambda on_failure=on_failure, error=error: on_failure(error))
        for conn in connections.values():
            conn.close()

    def _post(self, connections: dict, host: str, port: int, path: str, action: str, body: bytes) -> str | None:
        for _ in range(2):
            conn = connections.pop((host, port), None)
            fresh = conn is None
            if fresh:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            try:
                conn.request("POST", path, body=body, headers={
                    "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{WS_NS}#{action}"',
                    "User-Agent": "mxone-sim CSTA"})
                response = conn.getresponse()
                response.read(MAX_BODY)
                complete = response.isclosed()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if fresh:
                    return f"{type(exc).__name__}: {exc}"
                continue  # a kept-alive connection the listener had closed: once more on a new one
            if complete and not response.will_close:
                if len(connections) >= 32:
                    connections.pop(next(iter(connections))).close()
                connections[(host, port)] = conn
            else:
                conn.close()
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        return "the connection failed twice"


@dataclass
class NotifyTarget:
    url: str
    host: str
    port: int
    path: str


def notify_target(raw: str | None) -> NotifyTarget | None:
    """An http:// NotifyTo URL, or None when it is not one."""
    if not raw:
        return None
    raw = raw.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port or 80
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or not parts.hostname or parts.username or parts.password:
        return None
    if any(c in raw for c in "\r\n\t "):
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return NotifyTarget(raw, parts.hostname, port, path)
