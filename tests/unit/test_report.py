"""tools/report.py and the rows each measuring tool makes of its result: the progress line, CSV,
charts, and the one-line error when matplotlib is missing."""
from __future__ import annotations

import csv
import io
import struct
import subprocess
import sys
import textwrap

import pytest

from tools import bench, chaos, report, scale
from tools.chaos import Kill

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # PNG specification, 5.2


class Terminal(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the progress line -------------------------------------------------------------------------------
def test_progress_only_for_a_person_at_a_terminal():
    assert report.progress_wanted(False, Terminal(True), Terminal(True))
    assert not report.progress_wanted(True, Terminal(True), Terminal(True))      # --json
    assert not report.progress_wanted(False, Terminal(False), Terminal(True))    # stdout to a file or pipe
    assert not report.progress_wanted(False, Terminal(True), Terminal(False))    # stderr to a file or pipe
    assert not report.progress_wanted(False, object(), Terminal(True))           # no isatty at all


def test_progress_text():
    assert report.format_progress("bench", 340, 1000, 10.0) == "bench: 340/1000 calls (34%), 10.0 s, 34.0/s"
    assert report.format_progress("bench", 0, 1000, 0.0) == "bench: 0/1000 calls (0%), 0.0 s"
    assert report.format_progress("x", 1, 0, 1.0, unit="kills", extra="1 recovering") == \
        "x: 1/0 kills, 1.0 s, 1.0/s, 1 recovering"


def test_the_line_is_overwritten_in_place_at_most_every_interval():
    stream, clock = Terminal(True), FakeClock()
    progress = report.Progress(True, stream, clock=clock, interval_s=0.2)
    progress.show("one")
    clock.now = 0.1
    progress.show("too soon")                   # dropped: a tight loop must not flood the terminal
    progress.show("forced", force=True)
    clock.now = 0.35
    progress.show("two")
    assert stream.getvalue() == "\r\x1b[Kone\r\x1b[Kforced\r\x1b[Ktwo"
    progress.note("bench: a log line")          # above the line, which is drawn again
    assert stream.getvalue() == "\r\x1b[Kone\r\x1b[Kforced\r\x1b[Ktwo\r\x1b[Kbench: a log line\ntwo"
    progress.close()                            # the result starts on a clean line
    assert stream.getvalue().endswith("two\r\x1b[K")


def test_a_disabled_progress_writes_nothing_but_log_lines():
    stream = Terminal(False)
    progress = report.Progress(False, stream, clock=FakeClock())
    progress.show("hidden", force=True)
    progress.close()
    assert stream.getvalue() == ""
    progress.note("bench: still said")
    assert stream.getvalue() == "bench: still said\n"


def test_log_lines_step_around_the_active_line(capsys):
    stream = Terminal(True)
    with report.Progress(True, stream, clock=FakeClock()) as progress:
        assert report.current() is progress
        progress.show("calls 1/2")
        report.say("bench: started")
    assert stream.getvalue() == "\r\x1b[Kcalls 1/2\r\x1b[Kbench: started\ncalls 1/2\r\x1b[K"
    assert not report.current().enabled                    # none active: a disabled one, never None
    report.say("bench: plain")
    assert capsys.readouterr().err == "bench: plain\n"


# -- CSV ---------------------------------------------------------------------------------------------
def test_csv_has_comment_lines_a_header_and_one_line_per_row():
    text = report.csv_text([{"a": 1, "b": None}, {"a": 2, "c": "x,y"}], comments=["mxone bench --sweep", "load 1"])
    lines = text.splitlines()
    assert lines[:2] == ["# mxone bench --sweep", "# load 1"]
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 2)[2])))
    assert rows == [{"a": "1", "b": "", "c": ""}, {"a": "2", "b": "", "c": "x,y"}]


def test_flatten_joins_nested_keys_and_leaves_lists_out():
    assert report.flatten({"a": 1, "cpu": {"lim": 2, "x": {"y": 3}}, "detail": [1, 2]}) == \
        {"a": 1, "cpu_lim": 2, "cpu_x_y": 3}


def bench_result(rate: float, p50: float, p99: float, per_second: float) -> dict:
    return {"lims": 2, "extensions_per_lim": 20, "calls": 30, "rate_limit": rate, "calls_completed": 30,
            "call_errors": [], "duration_s": 1.5, "calls_per_second": per_second, "events_per_second": 200.0,
            "events_received": 300, "events_expected": 300, "event_latency_p50_ms": p50,
            "event_latency_p99_ms": p99, "event_latency_max_ms": p99 + 1, "lost_events": 0,
            "duplicated_events": 0, "unexpected_events": 0,
            "cpu_seconds_per_call": {"broker": 0.002, "lim": 0.0025, "csta": 0.0015, "driver": 0.001},
            "cpu_busy_seconds_per_call": {"broker": 0.001, "lim": 0.002, "csta": 0.001, "driver": 0.001},
            "idle_cpu_per_second": {}, "memory_mb": {"broker": 24.0, "lim": 25.5, "csta": 48.0},
            "baseline_bus_round_trip_p50_ms": 0.2, "baseline_bus_round_trip_p99_ms": 0.5, "baseline_requests": 200,
            "load_average_1min": 1.5, "startup_s": 1.2}


def test_a_bench_result_as_a_csv_row_in_milliseconds_per_kind():
    row = bench.csv_row(bench_result(20.0, 1.2, 6.9, 20.5))
    assert row["rate_limit"] == 20.0 and row["calls_per_second"] == 20.5 and row["event_latency_p99_ms"] == 6.9
    assert [row[f"cpu_ms_per_call_{k}"] for k in ("broker", "lim", "csta", "driver")] == [2.0, 2.5, 1.5, 1.0]
    assert row["cpu_ms_per_call_total"] == 7.0
    assert row["cpu_busy_ms_per_call_lim"] == 2.0 and row["memory_mb_csta"] == 48.0
    assert row["load_average_1min"] == 1.5


def sweep() -> dict:
    return {"command": "mxone bench --sweep 20,60", "machine_before": "load average 1.00 1.00 1.00 on 2 cores",
            "machine_after": "load average 2.00 1.00 1.00 on 2 cores", "lims": 2, "extensions_per_lim": 20,
            "calls": 30, "workers": 8, "rates": [20.0, 60.0],
            "points": [bench_result(20.0, 1.2, 6.9, 20.5), bench_result(60.0, 1.4, 5.0, 60.8)]}


def test_a_sweep_as_csv_names_its_command_and_load():
    text = bench.csv_document(sweep())
    assert text.splitlines()[:3] == ["# mxone bench --sweep 20,60", "# before: load average 1.00 1.00 1.00 on 2 cores",
                                     "# after: load average 2.00 1.00 1.00 on 2 cores"]
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert [(r["rate_limit"], r["calls_per_second"], r["event_latency_p50_ms"]) for r in rows] == \
        [("20.0", "20.5", "1.2"), ("60.0", "60.8", "1.4")]
    table = bench.format_sweep(sweep())
    assert "mxone bench --sweep 20,60" in table and "   7.00" in table  # CPU per call in all, per rate


def test_the_scale_curve_and_chaos_kills_as_csv_rows():
    point = {"lims": 4, "extensions_per_lim": 320, "startup_s": 3.0, "calls_completed": 100, "calls_per_second": 99.9,
             "lost_events": 0, "duplicated_events": 0, "event_latency_p50_ms": 2.0, "event_latency_p99_ms": 9.0,
             "cpu_ms_per_call": {"broker": 1.5, "lim": 2.0, "csta": 1.9, "driver": 1.0}, "cpu_ms_per_call_total": 6.4,
             "cpu_ms_per_call_net_of_idle": {"lim": 1.0}, "cpu_ms_per_call_net_total": 4.0,
             "idle_cpu_per_s": {"lim": 0.02}, "load_average_1min": 3.0}
    row = scale.curve_row(point)
    assert (row["lims"], row["cpu_ms_per_call_lim"], row["cpu_ms_per_call_net_of_idle_lim"], row["idle_cpu_per_s_lim"],
            row["cpu_ms_per_call_net_of_idle_broker"]) == (4, 2.0, 1.0, 0.02, None)
    kills = [{"kind": "lim", "program": "lim-2", "planned_s": 5.0, "at_s": 5.01, "recovered_s": 1.2,
              "failover_s": None, "error": None},
             {"kind": "broker", "program": "broker", "planned_s": 9.0, "at_s": 9.0, "recovered_s": None,
              "failover_s": 0.8, "error": "not whole again after 30 s"}]
    r = {"seed": 7, "duration_s": 30.0, "calls_attempted": 90, "calls_completed": 85, "events_lost": 0,
         "events_duplicated": 0, "settings_lost": 0, "settings_checked": 12, "kills": kills, "machine": "load x"}
    text = chaos.csv_document(r, "mxone chaos --seed 7")
    assert text.splitlines()[:2] == ["# mxone chaos --seed 7", "# load x"]
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert list(rows[0]) == list(chaos.KILL_COLUMNS)
    assert [(k["program"], k["recovered_s"], k["failover_s"]) for k in rows] == [("lim-2", "1.2", ""), ("broker", "", "0.8")]


def test_chaos_progress_says_where_the_run_is():
    kills = [Kill("lim", 3.0, "lim-1", at=3.0, recovered_s=1.0), Kill("csta", 6.0, "csta-2", at=6.1),
             Kill("broker", 9.0)]
    assert chaos.progress_text(7.25, 30.0, kills) == \
        "chaos: 7.2 of 30 s of traffic, kills: 1 recovered, 1 recovering, 1 to come"
    assert chaos.progress_text(31.0, 30.0, []) == "chaos: 31.0 s, calls in progress finishing, kills: none"


# -- charts --------------------------------------------------------------------------------------------
def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_charts_are_png_files(tmp_path):
    bench.sweep_chart(sweep(), tmp_path / "sweep.png")
    assert png_size(tmp_path / "sweep.png") == (800, 500)
    r = {"kills": [{"kind": "lim", "program": "lim-2", "planned_s": 5.0, "at_s": 5.0, "recovered_s": 1.2,
                    "failover_s": None}], "topology": "two-lims", "seed": 1, "duration_s": 30.0, "machine": "load"}
    chaos.recovery_chart(r, tmp_path / "chaos.png")
    assert png_size(tmp_path / "chaos.png")[1] == 500


# -- the commands' options -------------------------------------------------------------------------------
def test_csv_to_standard_output_replaces_the_table(monkeypatch, capsys, tmp_path):
    from cli.main import main
    monkeypatch.setattr(bench, "run_sweep", lambda args, rates: {**sweep(), "rates": rates})
    assert main(["bench", "--sweep", "20,60", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# mxone bench --sweep 20,60\n") and "rate_limit" in out and "calls/s" not in out
    assert main(["bench", "--sweep", "20,60", "--csv", str(tmp_path / "s.csv")]) == 0
    assert "calls/s" in capsys.readouterr().out                              # the table, and the CSV in the file
    assert (tmp_path / "s.csv").read_text().startswith("# mxone bench --sweep 20,60\n")


@pytest.mark.parametrize("argv, message", [
    (["bench", "--sweep", "20,60", "--csv", "--json"], "--csv to standard output and --json"),
    (["bench", "--png", "x.png"], "add --sweep"),
    (["bench", "--sweep", "20,fast"], "--sweep: '20,fast' is not"),
    (["bench", "--sweep", "20,0"], "every rate must be a positive"),
])
def test_wrong_output_options_are_refused_before_anything_runs(monkeypatch, capsys, argv, message):
    from cli.main import main
    monkeypatch.setattr(bench, "run_sweep", lambda *a: pytest.fail("ran"))
    monkeypatch.setattr(bench, "run_bench", lambda *a: pytest.fail("ran"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# A finder that refuses matplotlib, as a machine without the [plot] extra would.
NO_MATPLOTLIB = textwrap.dedent("""
    import sys
    class NoMatplotlib:
        def find_spec(self, name, path=None, target=None):
            if name == "matplotlib" or name.startswith("matplotlib."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, NoMatplotlib())
    from cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("argv", [["bench", "--sweep", "20,60", "--png", "x.png"],
                                  ["scale", "curve", "--sizes", "1,2", "--png", "x.png"],
                                  ["chaos", "--png", "x.png"]])
def test_a_chart_without_matplotlib_is_one_clear_line(tmp_path, argv):
    proc = subprocess.run([sys.executable, "-c", NO_MATPLOTLIB, *argv], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "pip install 'mxone-sim[plot]'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "x.png").exists()


def test_the_tools_do_not_import_matplotlib_until_a_chart_is_asked_for():
    code = "import sys, cli.main, tools.bench, tools.scale, tools.chaos; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60).stdout.strip() == "False"
