"""A CSTA connection's output: what a loop round writes leaves in one send() when the round ends
(FrontEnd.flush), a socket that takes only part waits for POLLOUT, a close sends what is queued."""
from __future__ import annotations

import socket

import pytest

from csta_front.server import MAX_OUTPUT, Connection, FrontEnd
from topology.model import CstaSettings


class Front:
    """The parts of FrontEnd a Connection uses for output."""

    def __init__(self):
        self.to_flush: list[Connection] = []
        self.polling_out: dict[int, bool] = {}
        self.forgotten: list[Connection] = []
        self.sessions: set = set()
        self.settings = CstaSettings()  # a Connection reads the greeting and session settings

    def want_write(self, conn: Connection, on: bool) -> None:
        self.polling_out[conn.fd] = on

    def forget(self, conn: Connection) -> None:
        self.forgotten.append(conn)

    flush = FrontEnd.flush


class CountingSocket:
    """A socket that records each send() and takes at most `take` bytes per call."""

    def __init__(self, sock: socket.socket, take: int | None = None):
        self.sock, self.take, self.sends = sock, take, []

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data) -> int:
        data = bytes(data[:self.take] if self.take is not None else data)
        self.sends.append(data)
        return self.sock.send(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)  # as the server's sockets are
    b.settimeout(2)
    yield a, b
    a.close()
    b.close()


def test_a_round_of_documents_leaves_in_one_send(pair):
    a, b = pair
    front, sock = Front(), CountingSocket(a)
    conn = Connection(front, sock, "peer")
    for n in range(5):
        conn.write(b"doc%d;" % n)
    assert sock.sends == [] and front.to_flush == [conn]  # queued once, however many writes
    front.flush()
    assert sock.sends == [b"doc0;doc1;doc2;doc3;doc4;"] and front.to_flush == []
    assert b.recv(100) == b"doc0;doc1;doc2;doc3;doc4;"
    assert not conn.out and not front.polling_out.get(conn.fd)


def test_what_the_socket_does_not_take_waits_for_pollout(pair):
    a, b = pair
    front, sock = Front(), CountingSocket(a, take=4)
    conn = Connection(front, sock, "peer")
    conn.write(b"0123456789")
    front.flush()
    assert bytes(conn.out) == b"456789" and conn.blocked and front.polling_out[conn.fd] is True
    conn.write(b"AB")  # while blocked, written bytes wait behind the rest: no flush of their own
    assert front.to_flush == []
    front.flush()
    assert len(sock.sends) == 1
    while conn.out:
        conn.writable()
    assert not conn.blocked and front.polling_out[conn.fd] is False
    assert b.recv(100) == b"0123456789AB"


def test_close_sends_what_the_round_queued(pair):
    a, b = pair
    front, sock = Front(), CountingSocket(a)
    conn = Connection(front, sock, "peer")
    conn.write(b"last answer")
    conn.close()
    front.flush()  # a closed connection in the list is skipped
    assert sock.sends == [b"last answer"] and front.forgotten == [conn]
    assert b.recv(100) == b"last answer"
    conn.write(b"more")  # nothing after close
    assert front.to_flush == []


def test_a_client_that_reads_nothing_is_cut_off(pair):
    a, _ = pair
    front = Front()
    conn = Connection(front, CountingSocket(a), "peer")
    conn.write(b"x" * (MAX_OUTPUT + 1))
    assert conn.closed and front.forgotten == [conn]
