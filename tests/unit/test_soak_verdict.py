"""The soak's verdict (tools/soak_verdict.py) on fake sample series: a leak fails, noise, a warm-up
that levels off and a saw-tooth do not; lost events and restarts fail; the CSV round-trips."""
from __future__ import annotations

import random

from tools.soak_verdict import (
    MIN_SAMPLES,
    from_csv,
    judge,
    slope,
    slopes_by_kind,
    t_statistic,
    to_csv,
    trend,
    verdict,
)

HOUR = 3600.0


def hour_series(fn, n: int = 61) -> tuple[list[float], list[float]]:
    """A sample a minute for an hour: times in seconds, values fn(hours)."""
    times = [i * 60.0 for i in range(n)]
    return times, [fn(t / HOUR) for t in times]


def test_least_squares_slope_of_a_line_and_of_flat_data():
    assert slope([0, 1, 2, 3], [1, 3, 5, 7]) == 2
    assert slope([0, 1, 2], [4, 4, 4]) == 0
    assert slope([5], [1]) == 0


def test_a_steady_rss_leak_grows():
    # 60 MB leaking 12 MB per hour: 20 % of the mean per hour, over the 10 % threshold.
    times, values = hour_series(lambda h: 60 + 12 * h)
    t = trend("proc:lim-1:rss_mb", times, values)
    assert t.growing and t.judged
    assert abs(t.slope_per_hour - 12) < 1e-6
    assert verdict([t])["ok"] is False


def test_an_fd_leak_grows_even_with_noise():
    rng = random.Random(1)
    times, values = hour_series(lambda h: 20 + 30 * h + rng.choice([-1, 0, 1]))
    assert trend("proc:csta-1:fds", times, values).growing


def test_noise_around_a_flat_level_does_not_grow():
    rng = random.Random(2)
    times, values = hour_series(lambda h: 60 + rng.gauss(0, 1.5))
    t = trend("proc:lim-1:rss_mb", times, values)
    assert t.judged and not t.growing


def test_a_warm_up_that_levels_off_within_the_window_is_below_the_threshold():
    # 50 MB rising to 55 MB in the first ten minutes, then flat: the fitted slope is small.
    times, values = hour_series(lambda h: 50 + 5 * min(1.0, h * 6))
    assert not trend("proc:lim-1:rss_mb", times, values).growing


def test_a_saw_tooth_such_as_a_checkpointed_wal_does_not_grow():
    times, values = hour_series(lambda h: 4_000_000 * ((h * 6) % 1))
    assert not trend("file:data/lim-1.db-wal:bytes", times, values).growing


def test_a_rise_below_the_absolute_floor_is_no_leak():
    # One more file descriptor over the hour is 10 % of 10 but one descriptor: not a leak.
    times, values = hour_series(lambda h: 10 + (1 if h > 0.5 else 0))
    assert not trend("proc:broker:fds", times, values, pct_per_hour=5).growing


def test_logs_and_counters_are_reported_but_not_judged():
    times, values = hour_series(lambda h: 1e6 + 5e7 * h)
    for name in ("log:lim-1:bytes", "count:events:n"):
        t = trend(name, times, values)
        assert not t.judged and not t.growing and t.slope_per_hour > 0


def test_too_few_samples_after_the_warm_up_are_not_judged():
    samples = [{"t": i * 60.0, "proc:lim-1:fds": 10.0 + 10 * i} for i in range(MIN_SAMPLES + 2)]
    trends = judge(samples, warmup_s=3 * 60.0)
    assert trends[0].samples == MIN_SAMPLES - 1
    assert not trends[0].judged and "not judged" in trends[0].note
    assert verdict(trends)["ok"]


def test_the_warm_up_is_left_out_of_the_judgement():
    # A steep climb in the first 5 minutes, flat afterwards: judged after the warm-up it is flat.
    samples = [{"t": i * 60.0, "proc:lim-1:rss_mb": 40.0 + 4 * min(i, 5)} for i in range(61)]
    assert judge(samples, warmup_s=0)[0].slope_per_hour > 0
    after = judge(samples, warmup_s=360)[0]
    assert after.slope_per_hour == 0 and not after.growing


def test_a_process_missing_from_some_samples_is_judged_on_the_others():
    samples = [{"t": i * 60.0, "proc:csta-2:fds": None if i % 10 == 0 else 30.0} for i in range(61)]
    t = judge(samples, warmup_s=0)[0]
    assert t.samples == 54 and not t.growing


def test_lost_or_duplicated_events_restarts_unrotated_logs_and_lost_settings_fail():
    assert verdict([])["ok"]
    for kwargs, word in (({"events_lost": 2}, "lost"), ({"events_duplicated": 1}, "duplicated"),
                         ({"restarts": {"lim-2": 1}}, "restarted"), ({"logs_over_cap": ["lim-1.log"]}, "rotation"),
                         ({"settings_lost": 1}, "settings")):
        result = verdict([], **kwargs)
        assert not result["ok"] and word in result["reasons"][0]


def test_slopes_by_kind_take_the_largest_of_each_kind():
    times, flat = hour_series(lambda h: 50.0)
    _, rising = hour_series(lambda h: 50 + 3 * h)
    trends = [trend("proc:lim-1:rss_mb", times, flat), trend("proc:lim-2:rss_mb", times, rising),
              trend("file:data/lim-1.db:bytes", times, flat)]
    by_kind = slopes_by_kind(trends)
    assert set(by_kind) == {"lim"} and abs(by_kind["lim"]["rss_mb"] - 3) < 1e-6


def test_the_csv_has_a_column_per_quantity_and_round_trips():
    samples = [{"t": 0.0, "proc:lim-1:fds": 10.0}, {"t": 60.0, "proc:lim-1:fds": 11.0, "proc:csta-1:fds": 20.0}]
    text = to_csv(samples)
    assert text.splitlines()[0] == "t,proc:csta-1:fds,proc:lim-1:fds"
    back = from_csv(text)
    assert back[0] == {"t": 0.0, "proc:csta-1:fds": None, "proc:lim-1:fds": 10.0}
    assert back[1]["proc:csta-1:fds"] == 20.0


def test_the_interim_document_of_a_run_still_going_names_what_grows():
    from tools.soak_doc import document, interim_report
    samples = [{"t": i * 60.0, "proc:lim-1:rss_mb": 30.0, "proc:csta-1:fds": 20.0 + i,
                "file:data/lim-1.db:bytes": 4096.0} for i in range(40)]
    report = interim_report(samples, 3700, 60, 370)
    text = document(report, samples, "mxone soak --duration 3700", "not recorded", None)
    assert "**Interim**" in text and "**FAIL**" in text and "proc:csta-1:fds" in text
    assert "| lim-1 | 30 (+0/h)" in text and "Traffic and CSTA" not in text


def test_a_rise_lost_in_scatter_is_no_leak():
    # A short run's fds, flat but jumping by 4 as churn sessions come and go: this draw happens to
    # rise from third to third by more than the floor, but the slope is within its noise.
    rng = random.Random(114)
    times = [i * 5.0 for i in range(19)]
    values = [20.0 + rng.choice([0, 4]) for _ in times]
    t = trend("proc:csta-1:fds", times, values)
    assert t.thirds[0] < t.thirds[1] < t.thirds[2] and t.window_growth > 3 and t.pct_per_hour > 10
    assert t_statistic(times, values) < 3 and not t.growing
