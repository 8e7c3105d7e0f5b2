"""`mxone bench --sweep` end to end, tiny: two rates on one generated exchange, written as CSV and
as a PNG chart, with JSON on standard output and no progress line (not a terminal)."""
from __future__ import annotations

import csv
import json
import struct
import subprocess
import sys


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # PNG specification, 5.2


def test_a_tiny_sweep_writes_its_curve_as_csv_and_png(tmp_path):
    out_csv, out_png = tmp_path / "sweep.csv", tmp_path / "sweep.png"
    argv = ["bench", "--quick", "--calls", "20", "--sweep", "20,40", "--json", "--csv", str(out_csv),
            "--png", str(out_png), "--run-dir", str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-m", "cli.main", *argv], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr  # stderr is a pipe: no progress line
    result = json.loads(proc.stdout)
    assert [p["rate_limit"] for p in result["points"]] == [20.0, 40.0]
    assert all(p["calls_completed"] == 20 and p["lost_events"] == 0 for p in result["points"])

    lines = out_csv.read_text().splitlines()
    assert lines[0] == "# mxone " + " ".join(argv)              # the command that made it...
    assert lines[1].startswith("# before: load average ") and lines[2].startswith("# after: load average ")
    rows = list(csv.DictReader(lines[3:]))
    assert len(rows) == 2
    for key in ("rate_limit", "calls_per_second", "event_latency_p50_ms", "event_latency_p99_ms",
                "cpu_ms_per_call_broker", "cpu_ms_per_call_lim", "cpu_ms_per_call_csta", "cpu_ms_per_call_driver",
                "load_average_1min"):
        assert key in rows[0], key
    assert [float(r["rate_limit"]) for r in rows] == [20.0, 40.0]
    for row in rows:
        assert int(row["calls_completed"]) == 20
        assert float(row["calls_per_second"]) > 0
        assert 0 < float(row["event_latency_p50_ms"]) <= float(row["event_latency_p99_ms"])

    data = out_png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (800, 500)
    assert len(data) > 10_000  # axes, two lines, a title: not an empty image
