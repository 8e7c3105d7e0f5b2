"""Which broker of a primary/backup pair is active: the ZeroMQ guide's Binary Star, plus a quorum
of LIMs so that a partition never leaves both active. Pure: fed observations and the time.

The two brokers tell each other their state every heartbeat. One is active (routes requests,
fans out events, watches liveness), the other passive (answers every node with "go elsewhere").
As in the guide, failover is decided by a client's request: a passive broker becomes active
only when a node asks it to (a `register`) while its peer has been silent for `peer_expiry`.
A silent peer may be dead or merely cut off, so the guide's rule alone can make two actives in a
partition. Hence the quorum: a broker whose peer is silent is active only while it can see more
than half of the topology's LIMs (the primary wins a tie), and an active broker that loses its
peer and its quorum steps down. Whichever side of a cut holds most LIMs carries on; the other
side's LIMs see no broker at all (the same as a LIM cut off alone).
"""
from __future__ import annotations

from dataclasses import dataclass

PRIMARY, BACKUP, ACTIVE, PASSIVE = "primary", "backup", "active", "passive"
STATES = (PRIMARY, BACKUP, ACTIVE, PASSIVE)


@dataclass(frozen=True)
class Verdict:
    """The answer to a node that asked a broker to serve it."""
    accepted: bool
    reason: str = ""      # why not, for the node's log and the error reply
    peer_alive: bool = False  # the node should try the peer rather than wait here


def has_quorum(visible: int, total: int, primary: bool) -> bool:
    if total == 0:
        return True
    return 2 * visible > total or (primary and 2 * visible == total)


class BinaryStar:
    def __init__(self, primary: bool, peer_expiry: float, total_lims: int, now: float):
        self.primary = primary
        self.state = PRIMARY if primary else BACKUP
        self.peer_expiry = peer_expiry
        self.total_lims = total_lims
        self.peer_state: str | None = None
        self.peer_seen = now  # silence is counted from our own start
        self.transitions: list[tuple[str, str, str]] = []  # (from, to, why), for the log

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    def peer_alive(self, now: float) -> bool:
        """Heard lately (within half the expiry): a node should go to it rather than wait here.
        Between that and the expiry the peer is in doubt: nodes are told to wait."""
        return self.peer_state is not None and now - self.peer_seen < self.peer_expiry / 2

    def _peer_silent_long_enough(self, now: float) -> bool:
        return now - self.peer_seen >= self.peer_expiry

    def _go(self, state: str, why: str) -> None:
        if state != self.state:
            self.transitions.append((self.state, state, why))
            self.state = state

    # -- events --------------------------------------------------------------------------------
    def peer_heard(self, peer_state: str, now: float) -> None:
        """The peer's periodic state message arrived."""
        if peer_state not in STATES:
            return
        self.peer_state = peer_state
        self.peer_seen = now
        if self.state == PRIMARY:
            if peer_state in (BACKUP, PASSIVE):
                self._go(ACTIVE, "the backup is standing by")
            elif peer_state == ACTIVE:
                self._go(PASSIVE, "the backup is active")
        elif self.state == BACKUP:
            if peer_state == ACTIVE:
                self._go(PASSIVE, "the primary is active")
            # A passive primary becomes active on hearing us (below): we wait for that.
        elif self.state == ACTIVE:
            if peer_state == ACTIVE and not self.primary:
                # Two actives (the peer was cut off and both took over): the primary keeps it.
                self._go(PASSIVE, "dual actives: the primary keeps the exchange")
        elif self.state == PASSIVE:
            if peer_state in (PRIMARY, BACKUP):
                self._go(ACTIVE, "the peer restarted")
            elif peer_state == PASSIVE and self.primary:
                self._go(ACTIVE, "both passive: the primary takes the exchange")

    def client_request(self, now: float, visible_lims: int) -> Verdict:
        """A node asks this broker to serve it (it found the other one silent)."""
        if self.state == ACTIVE:
            return Verdict(True)
        if self.peer_alive(now) and self.peer_state in (ACTIVE, PRIMARY):
            return Verdict(False, f"the peer broker is {self.peer_state}", peer_alive=True)
        if self.state == BACKUP and self.peer_alive(now):
            return Verdict(False, "the primary is starting", peer_alive=True)
        if not self._peer_silent_long_enough(now):
            return Verdict(False, "waiting to be sure the peer broker is gone")
        if not has_quorum(visible_lims, self.total_lims, self.primary):
            return Verdict(False, f"only {visible_lims} of {self.total_lims} LIMs can reach this broker")
        self._go(ACTIVE, f"a node asked and the peer has been silent for {self.peer_expiry:.1f}s")
        return Verdict(True)

    def check(self, now: float, visible_lims: int) -> None:
        """Called every heartbeat: an active broker cut off from its peer and from most LIMs
        steps down, so that the side of a partition holding most LIMs can take over alone. It
        steps down after half the peer expiry: before the other side may take over."""
        if (self.state == ACTIVE and now - self.peer_seen >= self.peer_expiry / 2
                and not has_quorum(visible_lims, self.total_lims, self.primary)):
            self._go(PASSIVE, f"the peer is silent and only {visible_lims} of {self.total_lims} LIMs are alive")
