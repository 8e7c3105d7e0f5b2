"""The server side of HTTP/1.1 with h11, sans-IO: bytes in through `feed`, response bytes out.

`HttpDriver` runs the loop both of the project's HTTP servers need: feed what the socket read to
the h11.Connection, take its events one by one and hand them to the subclass's hooks (a request's
head, its body, its end), one request at a time (pipelined requests wait in h11's buffer until the
subclass is ready again), and encode responses. What a request means, how large it may be, what
an error answers and how the connection closes are the subclass's.
"""
from __future__ import annotations

from http import HTTPStatus

import h11


class HttpDriver:
    def __init__(self, max_headers: int, max_buffered: int):
        self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=max_headers)
        self.max_buffered = max_buffered  # bytes a client may send ahead of the answers
        self.closed = False
        self.busy = False   # a request is being answered: the next one waits
        self._processing = False

    # -- hooks -----------------------------------------------------------------------------------
    def waiting(self) -> bool:
        """True while no further request may be read (one is being answered, or the connection
        carries something else now)."""
        return self.busy

    def overrun(self) -> None:
        """The client sent more than max_buffered bytes ahead."""

    def must_close(self) -> None:
        """h11 will not go on with this connection (Connection: close, HTTP/1.0, an error)."""

    def bad_request(self, exc: h11.RemoteProtocolError) -> None:
        """Malformed HTTP; exc.error_status_hint is the status to answer with."""

    def need_data(self, started: bool) -> None:
        """h11 waits for bytes; `started`: part of a request has arrived."""

    def request_head(self, head: h11.Request) -> None: ...

    def request_data(self, data: bytes) -> None: ...

    def request_end(self) -> None: ...

    def peer_closed(self) -> None: ...

    # -- input -----------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        try:
            self.h.receive_data(data)
        except RuntimeError:  # data after the client closed, or after an error: nothing more to read
            return
        if len(self.h.trailing_data[0]) > self.max_buffered:
            self.overrun()
            return
        self.process()

    def process(self) -> None:
        """Hand h11's events to the hooks until it needs data or the subclass is waiting."""
        if self._processing:
            return  # answered from inside the loop below: the loop carries on
        self._processing = True
        try:
            while not self.closed and not self.waiting():
                if self.h.our_state is h11.MUST_CLOSE:
                    self.must_close()
                    return
                if self.h.our_state is h11.DONE and self.h.their_state is h11.DONE:
                    self.h.start_next_cycle()
                try:
                    event = self.h.next_event()
                except h11.RemoteProtocolError as exc:
                    self.bad_request(exc)
                    return
                if event is h11.NEED_DATA:
                    self.need_data(self.h.their_state is h11.SEND_BODY or bool(self.h.trailing_data[0]))
                    return
                if event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    self.request_head(event)
                elif isinstance(event, h11.Data):
                    self.request_data(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self.request_end()
                elif isinstance(event, h11.ConnectionClosed):
                    self.peer_closed()
                    return
        finally:
            self._processing = False

    # -- output ----------------------------------------------------------------------------------
    def encode_response(self, status: int, headers: list, body: bytes, head_only: bool = False) -> bytes:
        """A whole response (no body for HEAD); raises h11.LocalProtocolError when h11 cannot send it."""
        data = self.h.send(h11.Response(status_code=status, reason=HTTPStatus(status).phrase.encode(),
                                        headers=headers))
        if body and not head_only:
            data += self.h.send(h11.Data(data=body))
        return data + self.h.send(h11.EndOfMessage())
