"""`mxone logs`: several programs' last lines merged in time order, a traceback kept with its line."""
from __future__ import annotations

from cli.logs import merge, tail


def test_lines_of_several_logs_in_time_order_led_by_their_program():
    lim = ["2026-12-02 10:00:01,500 lim-1 INFO up", "2026-12-02 10:00:03,000 lim-1 ERROR boom",
           "Traceback (most recent call last):", "ValueError: x"]
    broker = ["2026-12-02 10:00:02,000 broker INFO LIM 1 joined", "2026-12-02 10:00:04,000 broker INFO ok"]
    assert merge({"lim-1": lim, "broker": broker}) == [
        "lim-1 | 2026-12-02 10:00:01,500 lim-1 INFO up",
        "broker | 2026-12-02 10:00:02,000 broker INFO LIM 1 joined",
        "lim-1 | 2026-12-02 10:00:03,000 lim-1 ERROR boom",
        "lim-1 | Traceback (most recent call last):",
        "lim-1 | ValueError: x",
        "broker | 2026-12-02 10:00:04,000 broker INFO ok",
    ]


def test_tail():
    assert tail("a\nb\nc\n", 2) == ["b", "c"]
    assert tail("a\nb\n", 0) == []
    assert tail("", 5) == []
