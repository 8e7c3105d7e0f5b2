"""`mxone scale` fails (exit 1) when events are lost or calls not completed, as bench and chaos do."""
from __future__ import annotations

from tools import scale
from cli.main import main


def point(lims: int, completed: int = 30, lost: int = 0) -> dict:
    return {"lims": lims, "extensions_per_lim": 20, "startup_s": 1.0, "calls_completed": completed,
            "calls_per_second": 10.0, "lost_events": lost, "duplicated_events": 0, "event_latency_p99_ms": 1.0,
            "cpu_ms_per_call": {}, "cpu_ms_per_call_total": 1.0, "cpu_ms_per_call_net_total": 1.0,
            "idle_cpu_per_s": {}}


def curve(*points: dict) -> dict:
    return {"total_extensions": 40, "calls": 30, "rate": 50.0, "workers": 8, "heartbeat_ms": 100,
            "points": list(points)}


def test_a_clean_curve_passes_and_a_lossy_one_names_what_failed():
    assert scale.failures("curve", curve(point(1), point(2))) == []
    assert scale.failures("curve", curve(point(1), point(2, completed=28, lost=3))) == [
        "2 LIMs: 3 events lost", "2 LIMs: 2 of 30 calls not completed"]
    assert scale.failures("monitors", {"sample_events_lost": 0}) == []
    assert scale.failures("monitors", {"sample_events_lost": 4}) == ["4 events of the sample calls lost"]
    assert scale.failures("startup", {"startup_s": 3.0}) == []


def test_the_command_exits_1_and_says_why(monkeypatch, capsys):
    monkeypatch.setattr(scale, "run", lambda args: curve(point(1), point(2, lost=1)))
    assert main(["scale", "curve", "--sizes", "1,2", "--total-extensions", "40", "--json"]) == 1
    assert capsys.readouterr().err == "mxone scale curve: 2 LIMs: 1 event lost\n"
    monkeypatch.setattr(scale, "run", lambda args: curve(point(1)))
    assert main(["scale", "curve", "--sizes", "1", "--total-extensions", "40", "--json"]) == 0
