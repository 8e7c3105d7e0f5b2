"""Which nodes are alive, from heartbeats alone. Pure: fed observations and the time.

A node is `up` while it is heard from; `suspect` once two heartbeat intervals pass in silence;
`dead` once `dead_after` passes. A node heard from again with a new incarnation restarted: its old
incarnation is declared dead first, so every peer releases what the old one held. A node heard
from with the incarnation that was declared dead must rejoin (it was hung, e.g. SIGSTOP): it is
not allowed back silently with stale state.
"""
from __future__ import annotations

from dataclasses import dataclass

UP, SUSPECT, DEAD = "up", "suspect", "dead"


@dataclass
class Member:
    node_id: str
    role: str            # "lim" or "front"
    lim: int | None      # the LIM number for a LIM (and the LIM a front end serves)
    incarnation: int
    state: str
    last_seen: float


@dataclass(frozen=True)
class Change:
    node_id: str
    role: str
    lim: int | None
    incarnation: int
    state: str


class Liveness:
    def __init__(self, interval_s: float, dead_after_s: float):
        self.interval = interval_s
        self.dead_after = dead_after_s
        self.members: dict[str, Member] = {}

    def register(self, node_id: str, role: str, lim: int | None, incarnation: int,
                 now: float) -> tuple[str, list[Change]]:
        """Returns (verdict, changes): "ok", or "rejoin" for an incarnation already declared dead
        or older than the registered one (a hung node must come back as a new incarnation)."""
        changes = []
        old = self.members.get(node_id)
        if old is not None and (incarnation < old.incarnation
                                or (incarnation == old.incarnation and old.state == DEAD)):
            return "rejoin", []
        if old is not None and old.state != DEAD and old.incarnation != incarnation:
            old.state = DEAD  # a restart the heartbeats did not catch: the old one is gone
            changes.append(self._change(old))
        if old is None or old.incarnation != incarnation or old.state != UP:
            member = Member(node_id, role, lim, incarnation, UP, now)
            self.members[node_id] = member
            changes.append(self._change(member))
        else:
            old.last_seen = now
        return "ok", changes

    def heard(self, node_id: str, incarnation: int, now: float) -> tuple[str, list[Change]]:
        """A heartbeat or any message arrived. Returns (verdict, changes), verdict one of:
        "ok"; "unknown" (not registered: a client, or a node's new incarnation that has not
        registered yet: its requests are routed, it is not yet a member); "stale" (sent by an older
        incarnation than the registered one: drop it); "rejoin" (its incarnation was declared
        dead: it hung and woke up)."""
        member = self.members.get(node_id)
        if member is None or incarnation > member.incarnation:
            return "unknown", []
        if incarnation < member.incarnation:
            return "stale", []
        if member.state == DEAD:
            return "rejoin", []
        member.last_seen = now
        if member.state == SUSPECT:
            member.state = UP
            return "ok", [self._change(member)]
        return "ok", []

    def check(self, now: float) -> list[Change]:
        changes = []
        for member in self.members.values():
            silent = now - member.last_seen
            if member.state != DEAD and silent >= self.dead_after:
                member.state = DEAD
                changes.append(self._change(member))
            elif member.state == UP and silent >= 2 * self.interval:
                member.state = SUSPECT
                changes.append(self._change(member))
        return changes

    def is_alive(self, node_id: str) -> bool:
        member = self.members.get(node_id)
        return member is not None and member.state != DEAD

    def lim_states(self) -> dict[int, Member]:
        return {m.lim: m for m in self.members.values() if m.role == "lim" and m.lim is not None}

    @staticmethod
    def _change(m: Member) -> Change:
        return Change(m.node_id, m.role, m.lim, m.incarnation, m.state)
