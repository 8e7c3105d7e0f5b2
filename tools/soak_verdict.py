"""The soak's verdict (pure): from a series of samples, which quantities grow without bound.

A quantity grows when, over the samples after the warm-up, all of these hold:
- its least-squares slope is above `pct_per_hour` % of its mean per hour (relative: RSS of 60 MB
  and a WAL of 4 MB are judged alike);
- the growth the fitted line gives over the measured window is above the quantity's absolute floor
  (a single extra file descriptor or a few hundred kB of malloc noise is no leak);
- the slope stands out of the noise: it is at least MIN_T times its standard error (the samples'
  scatter around the fitted line: a few sessions' fds open at one sample and not the next);
- it grows monotonically: the means of the first, middle and last thirds of the window strictly
  increase (a warm-up that levels off, or a saw-tooth such as a WAL checkpointed now and then,
  does not).
Fewer than MIN_SAMPLES samples after the warm-up are not judged (said so in the result).

Samples are flat dicts: "t" (seconds since the start) and one number per quantity, named
`KIND:WHO:WHAT` (proc:lim-1:rss_mb, file:data/lim-1.db:bytes, latency:bus:ms, ...); a quantity
that is None in a sample (a process not running then) is left out of that sample.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Iterable

MIN_SAMPLES = 6
MIN_T = 3.0
DEFAULT_PCT_PER_HOUR = 10.0

# Absolute floors (growth over the measured window, in the quantity's own unit) by the last part
# of the name.
FLOORS = {"rss_mb": 2.0, "fds": 3.0, "threads": 2.0, "bytes": 1_000_000.0, "ms": 5.0}
DEFAULT_FLOOR = 0.0

# Quantities reported but not judged for growth: counters that grow by design (events received)
# and logs, which grow until supervisord rotates them (their bound is checked apart: log_over_cap).
NOT_JUDGED_PREFIXES = ("count:", "log:")


@dataclass(frozen=True)
class Trend:
    name: str
    samples: int
    mean: float | None
    slope_per_hour: float | None
    pct_per_hour: float | None       # slope as a share of the mean
    window_growth: float | None      # the fitted line's rise over the measured window
    thirds: tuple[float, float, float] | None
    growing: bool
    judged: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "samples": self.samples, "mean": _round(self.mean),
                "slope_per_hour": _round(self.slope_per_hour), "pct_per_hour": _round(self.pct_per_hour),
                "window_growth": _round(self.window_growth),
                "thirds": None if self.thirds is None else [_round(v) for v in self.thirds],
                "growing": self.growing, "judged": self.judged, "note": self.note}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def slope(times: list[float], values: list[float]) -> float:
    """Least-squares slope of values over times (units per time unit); 0 for a flat or single point."""
    n = len(times)
    if n < 2:
        return 0.0
    mt, mv = sum(times) / n, sum(values) / n
    var = sum((t - mt) ** 2 for t in times)
    if var == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in zip(times, values)) / var


def t_statistic(times: list[float], values: list[float]) -> float:
    """The least-squares slope over its standard error (infinite for points on a rising line)."""
    n = len(times)
    if n < 3:
        return 0.0
    b = slope(times, values)
    mt, mv = sum(times) / n, sum(values) / n
    var_t = sum((t - mt) ** 2 for t in times)
    if var_t == 0:
        return 0.0
    residual = sum((v - mv - b * (t - mt)) ** 2 for t, v in zip(times, values)) / (n - 2)
    if residual <= 1e-12 * max(1.0, mv * mv):
        return 0.0 if b == 0 else float("inf") * (1 if b > 0 else -1)
    return b / (residual / var_t) ** 0.5


def floor_for(name: str) -> float:
    return FLOORS.get(name.rsplit(":", 1)[-1], DEFAULT_FLOOR)


def trend(name: str, times: list[float], values: list[float], pct_per_hour: float = DEFAULT_PCT_PER_HOUR,
          floor: float | None = None) -> Trend:
    """The trend of one quantity (times in seconds), already cut to the window after the warm-up."""
    n = len(values)
    if n == 0:
        return Trend(name, 0, None, None, None, None, None, False, False, "no samples")
    mean = sum(values) / n
    per_hour = slope(times, values) * 3600
    span = times[-1] - times[0]
    growth = per_hour * span / 3600
    pct = 100 * per_hour / mean if mean else (0.0 if per_hour == 0 else float("inf"))
    judged = n >= MIN_SAMPLES and not name.startswith(NOT_JUDGED_PREFIXES)
    thirds = None
    if n >= 3:
        k = n // 3
        parts = (values[:k], values[k:n - k], values[n - k:])
        thirds = tuple(sum(p) / len(p) for p in parts)  # type: ignore[assignment]
    monotone = thirds is not None and thirds[0] < thirds[1] < thirds[2]
    floor = floor_for(name) if floor is None else floor
    growing = (judged and per_hour > 0 and pct > pct_per_hour and growth > floor and monotone
               and t_statistic(times, values) >= MIN_T)
    note = ""
    if n < MIN_SAMPLES:
        note = f"not judged: {n} samples after the warm-up (at least {MIN_SAMPLES})"
    elif not judged:
        note = "not judged: grows by design"
    elif growing:
        note = (f"grows {per_hour:+.3g}/h ({pct:+.1f} % of its mean per hour), "
                f"{growth:+.3g} over {span / 60:.1f} min, every third higher")
    return Trend(name, n, mean, per_hour, pct, growth, thirds, growing, judged, note)


def series(samples: Iterable[dict[str, Any]], warmup_s: float) -> dict[str, tuple[list[float], list[float]]]:
    """name -> (times, values) of every quantity, from the samples at or after `warmup_s`."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for sample in samples:
        t = sample["t"]
        if t < warmup_s:
            continue
        for name, value in sample.items():
            if name == "t" or value is None or isinstance(value, (str, bool)):
                continue
            times, values = out.setdefault(name, ([], []))
            times.append(float(t))
            values.append(float(value))
    return out


def judge(samples: list[dict[str, Any]], warmup_s: float, pct_per_hour: float = DEFAULT_PCT_PER_HOUR) -> list[Trend]:
    """Every quantity's trend after the warm-up, in name order."""
    return [trend(name, times, values, pct_per_hour)
            for name, (times, values) in sorted(series(samples, warmup_s).items())]


def kind_of_program(program: str) -> str:
    """lim-2 -> lim, csta-1 -> csta, broker-backup -> broker; supervisord, view, ... as they are."""
    return program.split("-")[0]


def slopes_by_kind(trends: list[Trend]) -> dict[str, dict[str, float]]:
    """For the report: per process kind and metric (rss_mb, fds, threads), the largest slope per
    hour among that kind's processes."""
    out: dict[str, dict[str, float]] = {}
    for t in trends:
        parts = t.name.split(":")
        if parts[0] != "proc" or t.slope_per_hour is None:
            continue
        kind, metric = kind_of_program(parts[1]), parts[2]
        best = out.setdefault(kind, {}).get(metric)
        if best is None or t.slope_per_hour > best:
            out[kind][metric] = round(t.slope_per_hour, 4)
    return out


def verdict(trends: list[Trend], *, events_lost: int = 0, events_duplicated: int = 0,
            restarts: dict[str, int] | None = None, logs_over_cap: list[str] | None = None,
            settings_lost: int = 0) -> dict[str, Any]:
    """ok, and each reason it is not: a quantity that grows, events lost or duplicated at the
    CSTA monitors, a process restarted (it died or was killed: nothing in a soak kills it), a
    log file over its rotation size, a feature setting the exchange forgot."""
    reasons = [f"{t.name}: {t.note}" for t in trends if t.growing]
    if events_lost:
        reasons.append(f"{events_lost} events lost at the CSTA monitors")
    if events_duplicated:
        reasons.append(f"{events_duplicated} events duplicated at the CSTA monitors")
    for program, count in sorted((restarts or {}).items()):
        if count:
            reasons.append(f"{program} restarted {count} times")
    for path in logs_over_cap or []:
        reasons.append(f"log {path} is over its rotation size: not rotated")
    if settings_lost:
        reasons.append(f"{settings_lost} feature settings read back wrong")
    return {"ok": not reasons, "reasons": reasons}


def to_csv(samples: list[dict[str, Any]]) -> str:
    """The samples as CSV: a column per quantity (every name any sample has), a row per sample."""
    names = sorted({k for s in samples for k in s if k != "t"})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["t", *names])
    for s in samples:
        writer.writerow([s["t"], *("" if s.get(n) is None else s[n] for n in names)])
    return out.getvalue()


def from_csv(text: str) -> list[dict[str, Any]]:
    """The samples back from `to_csv` (for the chart and the docs script)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header, out = rows[0], []
    for row in rows[1:]:
        out.append({name: (float(v) if v != "" else None) for name, v in zip(header, row)})
    return out
