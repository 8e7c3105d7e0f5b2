"""One non-blocking TCP (or TLS) socket in a `netio.loop.Loop`: bytes in, batched bytes out.

What a loop round writes leaves in one send() when the round ends (`Loop.flush`), so the answers
and events of one round cost one system call per connection rather than one each; what the socket
does not take waits for POLLOUT. The protocol on top is a subclass: `received(data)` gets the bytes
read and `lost()` is told of the close; the limits and the logger are the owner's to choose.
"""
from __future__ import annotations

import logging
import socket
import ssl
from abc import ABC, abstractmethod
from typing import Any

# A socket that cannot go on now, but may later: read or write again when the poller says so.
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Connection(ABC):
    """`loop` is what the connection asks for output: its `to_flush` list, `want_write(conn, on)`
    and `forget(conn)` (a `netio.loop.Loop`). With `tls`, `sock` is an SSLSocket whose handshake
    has not been done yet: it is driven by the poller, and nothing is sent until it is done."""

    def __init__(self, loop: Any, sock: socket.socket, peer: str, *, log: logging.Logger, max_output: int,
                 read_size: int, tls: bool = False, overflow_level: int = logging.WARNING):
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.log = log
        self.max_output = max_output        # a client that reads nothing is cut off above this
        self.read_size = read_size          # per loop round: a flooding client cannot hold the others up
        self.overflow_level = overflow_level
        self.out = bytearray()
        self.closed = False
        self.closing = False       # close_when_sent: closes once `out` has left
        self.handshaking = tls
        self.flush_queued = False  # in loop.to_flush: bytes written this round wait to be sent
        self.blocked = False       # the socket took only part of `out`: the rest waits for POLLOUT

    # -- what the protocol on top does -----------------------------------------------------------
    @abstractmethod
    def received(self, data: bytes) -> None:
        """Bytes read from the socket."""

    def lost(self) -> None:
        """The connection is closed (by either side); nothing more is sent or received."""

    def handshake_done(self) -> None:
        """The TLS handshake is complete: from now on the peer's bytes are the inner protocol's."""

    # -- input -----------------------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.loop.want_write(self, False)
            return
        except ssl.SSLWantWriteError:
            self.loop.want_write(self, True)
            return
        except (ssl.SSLError, OSError) as exc:
            self.log.info("%s: TLS handshake failed: %s", self.peer, exc)
            self.close()
            return
        self.handshaking = False
        self.blocked = bool(self.out)  # written during the handshake: sent when writable
        self.loop.want_write(self, self.blocked)
        self.handshake_done()

    def readable(self) -> None:
        if self.handshaking:
            self._handshake()
            return
        while not self.closed:
            try:
                data = self.sock.recv(self.read_size)
            except _WOULD_BLOCK:
                return
            except OSError:
                self.close()
                return
            if not data:
                self.close()
                return
            self.received(data)
            # TLS may hold decrypted bytes the poller cannot see: read them now.
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                return

    # -- output ----------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue bytes; they leave at the end of this loop round (Loop.flush)."""
        if self.closed:
            return
        self.out += data
        if len(self.out) > self.max_output:
            self.log.log(self.overflow_level, "%s reads nothing (%d bytes waiting): closing", self.peer, len(self.out))
            self.close()
            return
        if not self.flush_queued and not self.blocked:
            self.flush_queued = True
            self.loop.to_flush.append(self)

    def flush(self) -> None:
        """Send what is queued; what the socket does not take waits for POLLOUT (writable)."""
        self.flush_queued = False
        if self.closed or self.handshaking or self.blocked or not self.out:
            return
        self._send()

    def writable(self) -> None:
        if self.handshaking:
            self._handshake()
            return
        self._send()

    def _send(self) -> None:
        """As much of `out` as the socket takes; POLLOUT is wanted exactly while some is left."""
        try:
            sent = self.sock.send(self.out)
        except _WOULD_BLOCK:
            sent = 0
        except OSError:
            self.close()
            return
        del self.out[:sent]
        if bool(self.out) != self.blocked:
            self.blocked = bool(self.out)
            self.loop.want_write(self, self.blocked)
        if not self.out and self.closing:
            self.close()

    # -- closing ---------------------------------------------------------------------------------
    def close_when_sent(self) -> None:
        """Close once what is queued has left (a last response with `Connection: close`)."""
        self.closing = True
        if not self.out:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        if self.out and not self.handshaking and not self.blocked:
            try:  # what this round queued (a last answer before closing) still goes, if the socket takes it
                self.sock.send(self.out)
            except (OSError, ValueError):
                pass
        self.closed = True
        self.lost()
        self.loop.forget(self)
        try:
            self.sock.close()
        except OSError:
            pass
