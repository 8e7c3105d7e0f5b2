"""Results people can read and machines can use, shared by bench, scale and chaos: the progress
line on a terminal, CSV tables, and PNG charts (matplotlib, an optional extra imported only when a
chart is asked for)."""
from __future__ import annotations

import csv
import io
import os
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

PLOT_MISSING = "charts need matplotlib, which is not installed: pip install 'mxone-sim[plot]'"
CLEAR_LINE = "\r\x1b[K"  # back to the start of the line, erase it: the line is overwritten in place


class ChartError(RuntimeError):
    """A chart cannot be made (matplotlib missing); the message is one line for the user."""


# -- the progress line -------------------------------------------------------------------------------
def progress_wanted(json_output: bool, stdout: TextIO | None = None, stderr: TextIO | None = None) -> bool:
    """A progress line only for a person at a terminal: not with --json, not when either stream is
    a file or a pipe (a script or a log would get carriage returns and escape codes)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    return not json_output and _isatty(stdout) and _isatty(stderr)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def format_progress(label: str, done: int, total: int, elapsed_s: float, unit: str = "calls",
                    extra: str = "") -> str:
    """`bench: 340/1000 calls (34%), 12.3 s, 27.6/s` and whatever `extra` adds."""
    share = f" ({100 * done // total}%)" if total else ""
    rate = f", {done / elapsed_s:.1f}/s" if elapsed_s > 0 and done else ""
    return f"{label}: {done}/{total} {unit}{share}, {elapsed_s:.1f} s{rate}{f', {extra}' if extra else ''}"


class Progress:
    """One line on stderr, overwritten in place at most every `interval_s` (a tight loop pays for
    one clock read per update, not a write). Disabled, it writes nothing at all."""

    def __init__(self, enabled: bool, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 interval_s: float = 0.2):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.interval_s = interval_s
        self.text = ""  # what is on the line now
        self._last = -float("inf")
        self._lock = threading.Lock()  # chaos logs from its killer's thread while the loop draws the line

    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self._last < self.interval_s:
            return
        with self._lock:
            self._last = now
            self.text = text
            self.stream.write(CLEAR_LINE + text)
            self.stream.flush()

    def note(self, message: str) -> None:
        """A line of its own (a log message) above the progress line, which is drawn again below it."""
        with self._lock:
            if self.enabled and self.text:
                self.stream.write(CLEAR_LINE + message + "\n" + self.text)
            else:
                self.stream.write(message + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Erase the line: the result that follows starts on a clean line."""
        with self._lock:
            if self.enabled and self.text:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
            self.text = ""

    def __enter__(self) -> "Progress":
        global _active
        _active = self
        return self

    def __exit__(self, *exc) -> None:
        global _active
        self.close()
        _active = None


_active: Progress | None = None  # the line the tools' log messages must step around


def current() -> Progress:
    """The progress line in use, or a disabled one: callers never need to check."""
    return _active if _active is not None else Progress(False)


def say(message: str) -> None:
    """The tools' log line on stderr, above the progress line if one is shown."""
    if _active is not None:
        _active.note(message)
    else:
        print(message, file=sys.stderr, flush=True)


# -- CSV ---------------------------------------------------------------------------------------------
def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become `outer_inner` columns; lists (details, not figures) are left out."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        elif not isinstance(value, (list, tuple)):
            flat[name] = value
    return flat


def columns_of(rows: Sequence[dict[str, Any]], first: Sequence[str] = ()) -> list[str]:
    """Every key of every row, `first` ones first, the others in the order they are met."""
    seen = dict.fromkeys(k for k in first if any(k in r for r in rows))
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
             comments: Iterable[str] = ()) -> str:
    """`# ...` lines (what made the table, the machine's load: read them with pandas'
    `comment="#"`, or skip them), the header, one line per row; an absent value is empty."""
    out = io.StringIO()
    for line in comments:
        out.write(f"# {line}\n")
    writer = csv.DictWriter(out, fieldnames=list(columns or columns_of(rows)), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def write_text(target: str, text: str) -> None:
    """To the file `target`, or to standard output for `-`."""
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(target).write_text(text)


# -- the machine ---------------------------------------------------------------------------------------
def load_note() -> str:
    """How busy the machine was: the figures of a shared machine mean little without it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# -- charts --------------------------------------------------------------------------------------------
def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), or ChartError."""
    try:
        import matplotlib
    except ImportError:
        raise ChartError(PLOT_MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def need_charts() -> None:
    """Before a long run: fail at once, not after the measurement, when charts cannot be made."""
    pyplot()


Series = tuple[str, Sequence[float], Sequence[float | None]]  # label, x values, y values (None: no point)


def line_chart(path: Path | str, title: str, x_label: str, y_label: str, series: Sequence[Series], *,
               log_x: bool = False, log_y: bool = False, x_ticks: Sequence[float] | None = None,
               notes: Sequence[str] | None = None) -> None:
    """`notes`: a word beside each point of the first series (e.g. the rate asked)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    try:
        for label, xs, ys in series:
            points = [(x, y) for x, y in zip(xs, ys) if y is not None]
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        if notes and series:
            _, xs, ys = series[0]
            for x, y, note in zip(xs, ys, notes):
                if y is not None:
                    ax.annotate(note, (x, y), textcoords="offset points", xytext=(4, -12), fontsize=7)
        _finish(ax, title, x_label, y_label, log_x, log_y)
        if x_ticks is not None:
            ax.set_xticks(list(x_ticks))
            ax.set_xticklabels([f"{t:g}" for t in x_ticks])
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def bar_chart(path: Path | str, title: str, y_label: str, labels: Sequence[str],
              series: Sequence[tuple[str, Sequence[float | None]]]) -> None:
    """Grouped bars: one group per label, one bar per series (None: no bar)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 5), dpi=100)
    try:
        width = 0.8 / max(1, len(series))
        for i, (name, values) in enumerate(series):
            xs = [k + (i - (len(series) - 1) / 2) * width for k in range(len(labels))]
            ax.bar(xs, [0 if v is None else v for v in values], width, label=name)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=20, ha="right")
        _finish(ax, title, "", y_label, False, False)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _finish(ax, title: str, x_label: str, y_label: str, log_x: bool, log_y: bool) -> None:
    # A long command line would run off the image: wrapped, every line of the title kept.
    ax.set_title("\n".join(textwrap.fill(line, 110) for line in title.split("\n")), fontsize=8)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    from matplotlib.ticker import FuncFormatter
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 5, not 5x10^0, on a log axis
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
