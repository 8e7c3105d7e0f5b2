"""A LIM cut off from the broker (a network partition, a hung or dead broker) publishes nothing.

While the broker is silent the LIM cannot tell a partition from a broker restart. In a partition
the broker declares the LIM dead after `dead_after_ms`, every other LIM releases the calls it
shares with this one, and every CSTA server tells its monitors; after a restart of the broker,
nothing was released and the calls go on. So the LIM keeps its calls and waits for the broker's
verdict when it reaches one again: `rejoin` (it was declared dead: LimCore.rejoin drops every call
without a word, and it comes back as a new incarnation) or a plain registration (calls go on).

Meanwhile it must not act for the exchange: an event it published now (a no-answer timer firing
on a cross-LIM call, say) would reach nobody while cut off, but sit in the socket and be delivered
when the network heals, after the rest of the exchange has moved on: a stale ConnectionCleared on
a call that was released long before, the split brain a partition must not produce. So events
are dropped from the moment the node finds the broker silent until it is registered again.
Requests and call updates need no such care: the broker drops whatever a dead incarnation sends
and answers it with `rejoin`.
"""
from __future__ import annotations

import logging

from broker.node import BusNode

log = logging.getLogger("lim")


class IsolatingBus:
    """The LIM's bus: the node's requests, replies and events, with events dropped while cut off.

    `check()`, called after each poll of the node, notices when the node stops being registered
    (it found the broker silent, or was told to rejoin) and when it is registered again."""

    def __init__(self, node: BusNode, describe=lambda: ""):
        self.node = node
        self.describe = describe  # what the LIM holds, for the log line when cut off
        self.isolated = False
        self.dropped = 0
        self._was_registered = False

    def request(self, dst, kind, body, on_reply=None, timeout: float = 2.0) -> int:
        return self.node.request(dst, kind, body, on_reply, timeout)

    def send(self, dst, kind, body) -> None:
        self.node.send(dst, kind, body)

    def reply(self, request, body) -> None:
        self.node.reply(request, body)

    def publish(self, topics, kind, body) -> None:
        if self.isolated:
            self.dropped += 1
            return
        self.node.publish(topics, kind, body)

    def check(self) -> None:
        registered = self.node.registered
        if self._was_registered and not registered and not self.isolated:
            self.isolated = True
            self.dropped = 0
            log.warning("cut off from the broker: publishing nothing until it registers us again (%s)",
                        self.describe())
        elif registered and self.isolated:
            self.isolated = False
            log.warning("registered again (incarnation %d): publishing; %d events were not published "
                        "while cut off (%s)", self.node.incarnation, self.dropped, self.describe())
        self._was_registered = registered


def calls_summary(core) -> str:
    """How many calls a LimCore holds, and how many involve another LIM, for the log."""
    calls = list(core.calls.values())
    shared = sum(1 for call in calls if any(party.lim != core.lim for party in call.parties.values()))
    return f"{len(calls)} calls in progress, {shared} of them with other LIMs"
