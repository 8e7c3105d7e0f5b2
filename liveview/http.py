"""HTTP/1.1 for the live view: one client connection, parsed by h11 through netio's HttpDriver
(sans-IO: bytes in, bytes out through a `write` callback), so it runs in the server's poll loop
beside the bus.

A request is read whole (headers and a body of at most MAX_BODY bytes) and handed to the
application as a `Request`; the application answers at once or later (an action waits for the
LIM's answer) with `respond`, or turns the response into a server-sent event stream
(`start_stream`, then `send_event`). One request at a time per connection: pipelined requests
wait in h11's buffer. Malformed HTTP gets h11's status (400 mostly) and the connection closes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import unquote

import h11

from netio.http import HttpDriver

MAX_HEADERS = 16 * 1024   # request line and headers (h11 answers 431 above it)
MAX_BODY = 16 * 1024      # an action is a few dozen bytes of JSON
MAX_PIPELINED = 64 * 1024  # bytes a client may send ahead of the answers


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]   # lower-case names; a repeated header keeps its last value
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


class HttpConnection(HttpDriver):
    def __init__(self, write: Callable[[bytes], None], close: Callable[[], None],
                 on_request: Callable[["HttpConnection", Request], None], peer: str = "?"):
        super().__init__(MAX_HEADERS, MAX_PIPELINED + MAX_HEADERS)
        self.write = write
        self._close_transport = close
        self.on_request = on_request
        self.peer = peer
        self.streaming = False   # the response is an event stream: it ends with the connection
        self.request_started = False  # bytes of a request have arrived and it is not complete yet
        self._head: h11.Request | None = None
        self._body = bytearray()

    # -- input -------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.streaming:
            return  # an event stream's client has nothing more to say; ignore what it sends
        self.feed(data)

    def eof_received(self) -> None:
        if not self.closed and not self.streaming:
            try:
                self.h.receive_data(b"")
            except RuntimeError:
                pass
            self.process()

    # The driver's hooks (netio.http.HttpDriver).
    def waiting(self) -> bool:
        return self.busy or self.streaming

    def overrun(self) -> None:
        self.close()

    def must_close(self) -> None:
        self.close()

    def bad_request(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint or 400
        if self.h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self.respond_text(status, f"{HTTPStatus(status).phrase}: {exc}", close=True)
        self.close()

    def need_data(self, started: bool) -> None:
        self.request_started = started

    def request_head(self, head: h11.Request) -> None:
        self._head = head
        self._body = bytearray()
        self.request_started = True
        length = self._header(head, b"content-length")
        if length.isdigit() and int(length) > MAX_BODY:
            self.respond_text(413, f"the body is larger than {MAX_BODY} bytes", close=True)

    def request_data(self, data: bytes) -> None:
        self._body += data
        if len(self._body) > MAX_BODY:
            self.respond_text(413, f"the body is larger than {MAX_BODY} bytes", close=True)

    def request_end(self) -> None:
        self.request_started = False
        self.busy = True
        self.on_request(self, self._request())

    def peer_closed(self) -> None:
        self.close()

    @staticmethod
    def _header(head: h11.Request, name: bytes) -> str:
        value = b""
        for key, v in head.headers:
            if key == name:
                value = v
        return value.decode("latin-1")

    def _request(self) -> Request:
        head = self._head
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers}
        return Request(head.method.decode("latin-1"), unquote(path), query, headers, bytes(self._body))

    # -- output ------------------------------------------------------------------------------------
    def respond(self, status: int, body: bytes, content_type: str,
                headers: list[tuple[str, str]] = (), close: bool = False) -> None:
        if self.closed or self.streaming:
            return
        fields = [("content-type", content_type), ("content-length", str(len(body))),
                  ("cache-control", "no-store"), ("x-content-type-options", "nosniff"),
                  ("server", "mxone-sim live view"), *headers]
        if close:
            fields.append(("connection", "close"))
        head_only = self._head is not None and self._head.method == b"HEAD"
        try:
            data = self.encode_response(status, [(k.encode(), v.encode()) for k, v in fields], body, head_only)
        except h11.LocalProtocolError:
            self.close()
            return
        self.write(data)
        self.busy = False
        if self.h.our_state is h11.MUST_CLOSE or close:
            self.close()
            return
        self.process()  # the next pipelined request, if any

    def respond_text(self, status: int, text: str, **kw: Any) -> None:
        self.respond(status, (text + "\n").encode(), "text/plain; charset=utf-8", **kw)

    def respond_json(self, status: int, value: Any, **kw: Any) -> None:
        self.respond(status, json.dumps(value, separators=(",", ":")).encode(), "application/json", **kw)

    def start_stream(self) -> None:
        """Answer with a server-sent event stream (text/event-stream), open until either side closes."""
        if self.closed:
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"),
                   (b"x-content-type-options", b"nosniff"), (b"server", b"mxone-sim live view")]
        try:
            data = self.h.send(h11.Response(status_code=200, reason=b"OK", headers=headers))
        except h11.LocalProtocolError:
            self.close()
            return
        self.streaming = True
        self.write(data)

    def send_event(self, name: str, data: str) -> None:
        """One server-sent event; `data` must not contain a newline (JSON from json.dumps has none)."""
        self._stream(f"event: {name}\ndata: {data}\n\n".encode())

    def send_retry(self, ms: int) -> None:
        """How long the client waits before reconnecting a dropped stream."""
        self._stream(f"retry: {int(ms)}\n\n".encode())

    def send_comment(self, text: str = "") -> None:
        """A comment line: keeps proxies and the client from thinking the stream died."""
        self._stream(f": {text}\n\n".encode())

    def _stream(self, payload: bytes) -> None:
        if self.closed or not self.streaming:
            return
        try:
            self.write(self.h.send(h11.Data(data=payload)))
        except h11.LocalProtocolError:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close_transport()
