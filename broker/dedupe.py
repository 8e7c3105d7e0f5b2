"""The answers a node remembers, so that a request sent again is not carried out twice. Pure.

A sender resends a request that may have been lost with a broker (broker/node.py): through the
new active broker of a pair, or the same broker restarted. The request may have been carried out
already (only the reply was lost), or still be in progress. Its ID is the sender's node id,
incarnation and message id, unique across the exchange and restarts, and the same in every copy.
The receiver answers a copy of a request it has answered with the answer it gave the first time,
and drops a copy of one still in progress (its one answer goes to the same sender and message id).

Remembered answers expire after `ttl` (longer than any sender keeps resending) and at most
`limit` are kept, the oldest forgotten first, so the memory stays bounded under any load.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable

IN_PROGRESS = object()  # lookup(): the first copy is still being served
REQUEST_TTL_S = 30.0
REQUEST_LIMIT = 20_000


class AnswerMemory:
    def __init__(self, ttl: float = REQUEST_TTL_S, limit: int = REQUEST_LIMIT):
        if ttl <= 0 or limit < 1:
            raise ValueError("ttl must be positive and limit at least 1")
        self.ttl = ttl
        self.limit = limit
        # request id -> (first seen, the answer or IN_PROGRESS), oldest first
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.duplicates = 0  # copies answered from memory or dropped as in progress

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, request_id: Hashable, now: float) -> Any:
        """A request arrived. None: a new one, to be served (and now in progress); else IN_PROGRESS
        or the answer given to its first copy (a duplicate, not to be served again)."""
        self._expire(now)
        entry = self._entries.get(request_id)
        if entry is not None:
            self.duplicates += 1
            return entry[1]
        self._entries[request_id] = (now, IN_PROGRESS)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)
        return None

    def answered(self, request_id: Hashable, answer: Any) -> None:
        """The request was answered: remember the answer for its copies (unless already forgotten)."""
        entry = self._entries.get(request_id)
        if entry is not None:
            self._entries[request_id] = (entry[0], answer)

    def _expire(self, now: float) -> None:
        entries = self._entries
        while entries:
            first_seen, _ = next(iter(entries.values()))
            if now - first_seen < self.ttl:
                return
            entries.popitem(last=False)
