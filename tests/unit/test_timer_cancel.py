"""Cancelled timers cost nothing once cancelled (issue 18's soak: a CSTA server grew ~2.4 kB per
session, each closed session kept alive until its cancelled day-long session timer came due).

The expected behaviour is the timer queue's contract, not its output: a cancelled timer never runs,
the others run in deadline order (ties in scheduling order), and what a cancelled callback refers
to is garbage at once."""
from __future__ import annotations

import gc
import random
import tracemalloc
import weakref

from broker.timers import FakeClock, TimerQueue

DAY_S = 86_400.0


class Owner:
    """Stands for what a callback holds: a session, its connection and buffers."""

    def expire(self) -> None:
        raise AssertionError("a cancelled timer ran")


def test_a_cancelled_timer_lets_go_of_its_callback_at_once():
    timers = TimerQueue(FakeClock())
    owner = Owner()
    alive = weakref.ref(owner)
    timers.call_later(DAY_S, owner.expire).cancel()
    del owner
    gc.collect()
    assert alive() is None, "the cancelled timer still holds what its callback refers to"


def test_cancelled_timers_do_not_pile_up_until_their_deadline():
    """A session a second, each with a day's timer cancelled when it closes: the queue's memory
    stays flat instead of holding every one of them for a day."""
    clock = FakeClock()
    timers = TimerQueue(clock)

    def tick() -> None:  # a timer due sooner than all of them, as the server's reaper is
        timers.call_later(1.0, tick)
    tick()
    tracemalloc.start()
    try:
        def churn(n: int) -> None:
            for _ in range(n):
                timers.call_later(DAY_S, Owner().expire).cancel()
                clock.advance(1.0, timers)
        churn(1000)
        base = tracemalloc.get_traced_memory()[0]
        churn(20_000)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert timers.waiting() == 1
    # Before: 20,000 heap entries, timers and owners (6.3 MB); after: at most a compaction's worth.
    assert grown < 64_000, f"{grown} bytes more after 20,000 cancelled timers"


def test_only_the_live_timers_run_in_deadline_order_across_compactions():
    rng = random.Random(18)
    clock = FakeClock()
    timers = TimerQueue(clock)
    ran: list[int] = []
    expected: list[tuple[float, int]] = []
    handles = []
    for i in range(5000):
        deadline = rng.choice([rng.uniform(0, 100), 50.0])  # many ties at 50 s
        handles.append((deadline, i, timers.call_later(deadline, lambda i=i: ran.append(i))))
    for deadline, i, timer in handles:
        if rng.random() < 0.8:  # enough cancellations to compact the heap several times
            timer.cancel()
            timer.cancel()  # twice: still one cancellation
        else:
            expected.append((deadline, i))
    assert timers.waiting() == len(expected)
    clock.advance(100.0, timers)
    assert ran == [i for _, i in sorted(expected)]
    assert timers.waiting() == 0


def test_cancel_from_inside_a_running_timer():
    """A callback that cancels others (a session closing from a timer cancels its own timers)
    may make the heap compact under run_due: what is due still runs, once, in order."""
    clock = FakeClock()
    timers = TimerQueue(clock)
    ran: list[str] = []
    later = [timers.call_later(10.0 + i, lambda: ran.append("cancelled one")) for i in range(200)]

    def closing() -> None:
        ran.append("closing")
        for timer in later:
            timer.cancel()
    first = timers.call_later(1.0, closing)
    timers.call_later(1.0, lambda: ran.append("same time"))
    timers.call_later(300.0, lambda: ran.append("last"))
    clock.advance(1.0, timers)
    first.cancel()  # after it ran: nothing changes
    assert timers.waiting() == 1
    clock.advance(400.0, timers)
    assert ran == ["closing", "same time", "last"]
    assert timers.waiting() == 0
