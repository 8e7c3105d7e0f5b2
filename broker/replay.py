"""No event lost or duplicated when the broker fails over. Pure: fed events and the time.

Publisher side, `ReplayWindow`: the last few seconds of what a node published. Each event sent
on a topic carries `prev`, the sequence number of the event this publisher sent before it on the
same topic (0 when there is none in the window), so a subscriber can tell a hole from a quiet topic.

Subscriber side, `EventTracker`: the last sequence number seen per (publisher, incarnation, topic).
It drops what it has already delivered (an event may arrive twice: live and replayed), notices
holes, and while a publisher is asked to replay, holds that publisher's new events back, so that
events are delivered in the order they were published.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from broker.envelope import TOPIC_SEPARATOR, Envelope

Source = tuple[str, int]  # (publisher node, its incarnation)


class ReplayWindow:
    def __init__(self, keep_s: float = 5.0, max_events: int = 200_000):
        self.keep_s = keep_s
        self.max_events = max_events
        self._events: deque[tuple[float, str, int, bytes, bytes, int]] = deque()
        self._last: dict[str, int] = {}  # topic -> sequence number of its latest event kept

    def __len__(self) -> int:
        return len(self._events)

    def add(self, now: float, topic: str, seq: int, header: bytes, payload: bytes) -> int:
        """Keep an event; returns its `prev`."""
        events = self._events
        while events and (events[0][0] < now - self.keep_s or len(events) >= self.max_events):
            _, old_topic, old_seq, *_ = events.popleft()
            if self._last.get(old_topic) == old_seq:
                del self._last[old_topic]  # the topic is quiet: its next event starts afresh
        prev = self._last.get(topic, 0)
        self._last[topic] = seq
        events.append((now, topic, seq, header, payload, prev))
        return prev

    def replay(self, topics: list[str], since: dict[str, int], since_time: float | None) -> list[list[Any]]:
        """Kept events on `topics` (exact topics, or prefixes not ending with the separator): on a
        topic in `since`, those after that sequence number; on the others, those published at or
        after `since_time` (none when it is None). As [topic, header, payload, prev], oldest first."""
        exact = set(topics)
        prefixes = [t for t in topics if not t.endswith(TOPIC_SEPARATOR)]
        since = {t: s for t, s in since.items() if isinstance(t, str) and isinstance(s, int)}
        out = []
        for t, topic, seq, header, payload, prev in self._events:
            if topic not in exact and not any(topic.startswith(p) for p in prefixes):
                continue
            if topic in since:
                if seq <= since[topic]:
                    continue
            elif since_time is None or t < since_time:
                continue
            out.append([topic, header, payload, prev])
        return out

    def clear(self) -> None:
        self._events.clear()
        self._last.clear()


class EventTracker:
    def __init__(self, forget_after_s: float = 60.0, hold_limit_s: float = 10.0):
        self.forget_after = forget_after_s
        self.hold_limit = hold_limit_s
        # topic -> {(publisher, incarnation): (last sequence number delivered, when)}
        self._last: dict[str, dict[Source, tuple[int, float]]] = {}
        self._held: dict[str, tuple[float, list[tuple[str, Envelope, int]]]] = {}
        self._gaps: list[tuple[str, dict[str, int]]] = []
        self._received = 0
        self.duplicates = 0  # dropped because already delivered
        self.holes = 0       # holes noticed (each answered by a replay request)
        self.recovered = 0   # events delivered from a replay: they would have been lost

    def received(self, topic: str, env: Envelope, prev: int, now: float) -> list[tuple[str, Envelope]]:
        """A live event arrived: the events now ready for delivery, in order."""
        self._received += 1
        if self._received % 10_000 == 0:
            self._forget(now)
        held = self._held.get(env.src)
        if held is not None:
            if now - held[0] < self.hold_limit:
                held[1].append((topic, env, prev))
                return []
            # The replay never came (the publisher is gone): deliver what we hold and go on.
            return self.replayed(env.src, [(topic, env, prev)], now)
        seen = self._last.setdefault(topic, {})
        source = (env.src, env.incarnation)
        last = seen.get(source)
        if last is not None:
            if env.seq <= last[0]:
                self.duplicates += 1
                return []
            if prev > last[0]:
                self.holes += 1
                self._gaps.append((env.src, {topic: last[0]}))
                self._held[env.src] = (now, [(topic, env, prev)])
                return []
        seen[source] = (env.seq, now)
        return [(topic, env)]

    def take_gaps(self) -> list[tuple[str, dict[str, int]]]:
        """Holes seen since the last call: (publisher, {topic: last sequence number delivered})."""
        gaps, self._gaps = self._gaps, []
        return gaps

    def hold(self, src: str, now: float) -> None:
        """Hold `src`'s events back until its replay arrives (`replayed`)."""
        self._held.setdefault(src, (now, []))

    def forget_topic(self, topic: str) -> None:
        self._last.pop(topic, None)

    def held_sources(self) -> set[str]:
        return set(self._held)

    def since(self, src: str, incarnation: int, topics: list[str]) -> dict[str, int]:
        """What we have delivered of `src`'s current incarnation on `topics`."""
        wanted = set(topics)
        since = {}
        for topic in wanted:
            last = self._last.get(topic, {}).get((src, incarnation))
            if last is not None:
                since[topic] = last[0]
        return since

    def replayed(self, src: str, events: list[tuple[str, Envelope, int]], now: float) -> list[tuple[str, Envelope]]:
        """A replay from `src` arrived (or failed: no events): deliver it with what was held back,
        in publishing order, each event once."""
        _, held = self._held.pop(src, (now, []))
        items = [(env.seq, True, topic, env) for topic, env, _ in events]
        items += [(env.seq, False, topic, env) for topic, env, _ in held]
        out = []
        for _, from_replay, topic, env in sorted(items, key=lambda item: (item[0], not item[1])):
            seen = self._last.setdefault(topic, {})
            last = seen.get((env.src, env.incarnation))
            if last is not None and env.seq <= last[0]:
                self.duplicates += 1
                continue
            seen[(env.src, env.incarnation)] = (env.seq, now)
            self.recovered += from_replay
            out.append((topic, env))
        return out

    def _forget(self, now: float) -> None:
        # Topics quiet for long: a publisher has long dropped them from its window too.
        for topic in list(self._last):
            seen = self._last[topic]
            for source in [s for s, (_, when) in seen.items() if now - when > self.forget_after]:
                del seen[source]
            if not seen:
                del self._last[topic]
