"""`mxone soak`: a throwaway exchange under steady traffic for hours, sampled for what grows."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import CliError, with_help


def add_parsers(sub, with_run_dir) -> None:
    soak = sub.add_parser("soak", help="steady traffic, CSTA churn and feature changes on a throwaway exchange "
                                       "for --duration; slopes of every process's memory, fds, threads, files")
    soak.add_argument("--duration", default=None, help="seconds (default 3600)")
    soak.add_argument("--interval", default=None, help="seconds between samples (default 60)")
    soak.add_argument("--warmup", default=None, help="seconds not judged at the start (default a tenth of "
                                                      "--duration, at least two intervals)")
    soak.add_argument("--rate", default=None, help="office calls per second (default 1)")
    soak.add_argument("--callcentre-rate", default=None, help="callers per second to the ACD group (default 0.3)")
    soak.add_argument("--max-growth", default=None,
                      help="%% of its mean per hour above which a steadily rising quantity fails (default 10)")
    soak.add_argument("--seed", default=None, help="repeat a run's traffic")
    soak.add_argument("--topology", type=Path, default=None, help="the exchange's topology (default: the built-in one)")
    soak.add_argument("--run-dir", type=Path, default=None,
                      help="the throwaway exchange's run directory, kept afterwards (default: a temporary one)")
    soak.add_argument("--csv", type=Path, default=None, help="write the samples here (rewritten after each sample)")
    soak.add_argument("--json", action="store_true", help="print the report as one JSON object")
    with_help(soak, ["mxone soak --duration 3600 --csv samples.csv   # an hour, a sample a minute",
                     "mxone soak --duration 120 --interval 5 --json  # a short run, as the tests do"],
              "0 nothing grows and nothing is lost, 1 something grows or an event was lost, 2 a bad option")
    soak.set_defaults(handler=cmd_soak)


def cmd_soak(args: argparse.Namespace) -> int:
    """Exit 0 when nothing grows and nothing is lost, 1 otherwise, 2 for a bad command line."""
    from tools.soak import make_soak_options, run_soak  # on use: every other command would pay for it
    from tools.traffic_run import parse_number
    try:
        options = make_soak_options(
            duration=parse_number(args.duration, "--duration"), interval=parse_number(args.interval, "--interval"),
            warmup=parse_number(args.warmup, "--warmup"), rate=parse_number(args.rate, "--rate"),
            callcentre_rate=parse_number(args.callcentre_rate, "--callcentre-rate"),
            pct_per_hour=parse_number(args.max_growth, "--max-growth"), seed=parse_number(args.seed, "--seed", int))
        if args.topology is not None and not args.topology.is_file():
            raise ValueError(f"--topology: {args.topology}: no such file")
        report = run_soak(options, args.topology, args.run_dir, args.csv)
    except ValueError as exc:
        raise CliError(f"soak: {exc}", 2) from None
    report.pop("_samples", None)
    print(json.dumps(report) if args.json else format_report(report), flush=True)
    return 0 if report["verdict"]["ok"] else 1


def format_report(r: dict) -> str:
    o = r["options"]
    lines = [f"soak of {o['duration_s']:g} s, {r['samples']} samples every {o['interval_s']:g} s, "
             f"judged after {o['warmup_s']:g} s (growth over {o['max_growth_pct_per_hour']:g} % of the mean per hour, "
             f"steadily); seed {o['seed']}",
             "slopes per hour (largest of each kind): " + "; ".join(
                 f"{kind} " + ", ".join(f"{m} {v:+.3g}" for m, v in sorted(ms.items()))
                 for kind, ms in sorted(r["slopes_per_hour_by_kind"].items()))]
    for name in ("office", "callcentre"):
        t = r["traffic"].get(name)
        if t:
            lines.append(f"{name}: {t['attempted']} calls, {t['answered']} answered, {t['failed']} failed")
    e, c = r["events"], r["csta"]
    lines.append(f"CSTA: {e['monitored_call_sides_checked']} monitored call sides checked, {e['events_lost']} events "
                 f"lost, {e['events_duplicated']} duplicated; {c['churn_sessions']} churn sessions, "
                 f"{c['monitors_started']} monitors started, {c['feature_changes']} feature changes")
    v = r["verdict"]
    lines.append("verdict: " + ("ok: nothing grows, nothing lost" if v["ok"] else "FAIL: " + "; ".join(v["reasons"])))
    return "\n".join(lines)
