"""A timer queue with an injected clock, shared by every process loop and by the tests.

Process loops use `time.monotonic`; unit tests use `FakeClock` and call `advance()`, so timeouts
(no answer, heartbeats, liveness) run deterministically and instantly.
"""
from __future__ import annotations

import heapq
import itertools
import math
import time
from typing import Callable


class Timer:
    __slots__ = ("deadline", "fn", "cancelled", "queue")

    def __init__(self, deadline: float, fn: Callable[[], None] | None, queue: "TimerQueue | None" = None):
        self.deadline = deadline
        self.fn = fn
        self.cancelled = False
        self.queue = queue  # told of a cancellation while the timer waits in it

    def cancel(self) -> None:
        if self.cancelled:
            return  # already cancelled, or already run
        self.cancelled = True
        # What the callback refers to (a closed session, its connection) is freed now, not when
        # the deadline comes round: a session's timer is set for up to a day.
        self.fn = None
        if self.queue is not None:
            self.queue._cancelled_one()


# A cancelled timer stays in the heap (removing one from the middle costs O(n)); the heap is
# rebuilt without them once they are more than half of it, so they cost O(1) each, amortised.
COMPACT_MIN = 64


class TimerQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # ties fire in scheduling order
        self._cancelled = 0  # cancelled timers still in the heap

    def waiting(self) -> int:
        """Timers waiting to run (cancelled ones not counted). Not __len__: an empty queue must
        stay truthy where a queue is optional (`timers or TimerQueue()`)."""
        return len(self._heap) - self._cancelled

    def now(self) -> float:
        return self.clock()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(self.clock() + delay, fn, self)
        heapq.heappush(self._heap, (timer.deadline, next(self._order), timer))
        return timer

    def next_delay(self, default: float) -> float:
        """Seconds until the next live timer is due (for a poll timeout), at most `default`."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
            self._cancelled -= 1
        if not self._heap:
            return default
        return max(0.0, min(default, self._heap[0][0] - self.clock()))

    def poll_timeout_ms(self, default: float) -> int:
        """`next_delay` as a poll timeout: whole milliseconds, rounded up. Rounded down, a timer
        0.9 ms away gave poll(0) again and again until it was due: an idle process spun through
        its loop about 20 times per timer (235 polls a second instead of about 20)."""
        return math.ceil(self.next_delay(default) * 1000)

    def run_due(self) -> int:
        """Run every timer whose deadline has passed; returns how many ran."""
        ran = 0
        while self._heap and self._heap[0][0] <= self.clock():
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                self._cancelled -= 1
                continue
            fn, timer.fn = timer.fn, None
            timer.cancelled = True  # out of the heap: a cancel() now changes nothing
            if fn is not None:
                fn()
                ran += 1
        return ran

    def _cancelled_one(self) -> None:
        self._cancelled += 1
        if self._cancelled > COMPACT_MIN and 2 * self._cancelled > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float, timers: TimerQueue | None = None) -> None:
        """Move time forward, firing due timers step by step so each sees its own deadline."""
        target = self.t + seconds
        if timers is not None:
            while True:
                delay = timers.next_delay(default=float("inf"))
                if delay == float("inf") or self.t + delay > target:
                    break
                self.t += delay
                timers.run_due()
        self.t = target
        if timers is not None:
            timers.run_due()
