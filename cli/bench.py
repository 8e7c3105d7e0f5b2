"""`mxone bench` and `mxone scale`: the measuring commands (the work is in tools/bench.py and tools/scale.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import CliError, add_output_options, check_outputs, emit, with_help

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64)  # mxone scale curve
CURVE_DEFAULTS = {"total_extensions": 1280, "calls": 1500, "rate": 100.0, "workers": 8, "idle_s": 3.0}


def add_parsers(sub, with_run_dir) -> None:
    bench = sub.add_parser("bench", help="start a generated exchange, drive cross-LIM calls, measure")
    bench.add_argument("--run-dir", type=Path, default=None,
                       help="the benchmark exchange's run directory, kept afterwards (default: a temporary one)")
    bench.add_argument("--lims", type=int, default=None, help="LIMs (default 4; --quick 2)")
    bench.add_argument("--extensions-per-lim", type=int, default=None, help="default 50; --quick 20")
    bench.add_argument("--calls", type=int, default=None, help="calls to make (default 1000; --quick 100)")
    bench.add_argument("--rate", type=float, default=None, help="at most this many calls started per second "
                                                                 "(default 200; --quick 100)")
    bench.add_argument("--workers", type=int, default=8, help="calls in progress at once (coroutines sharing one bus client)")
    bench.add_argument("--quick", action="store_true", help="small defaults: done in well under a minute")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--sweep", nargs="?", const="default", default=None, metavar="RATES",
                       help="the same load at each rate in turn (comma-separated calls/s; default "
                            "50,100,200,400,800): the latency-throughput curve")
    add_output_options(bench, "--sweep's latency-throughput chart")

    scale_parser = sub.add_parser("scale", help="the scale curve, a large exchange's startup, one front end's monitors")
    what = scale_parser.add_subparsers(dest="scale_command", required=True, metavar="MEASUREMENT")
    curve = what.add_parser("curve", help="the same total load on 1, 2, 4, ... 64 LIMs")
    curve.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="LIM counts (default 1,2,4,...,64)")
    curve.add_argument("--total-extensions", type=int, default=CURVE_DEFAULTS["total_extensions"],
                       help="extensions in the whole exchange, split over the LIMs (default 1280)")
    curve.add_argument("--calls", type=int, default=CURVE_DEFAULTS["calls"], help="calls at every size (default 1500)")
    curve.add_argument("--rate", type=float, default=CURVE_DEFAULTS["rate"], help="calls started per second (100)")
    curve.add_argument("--workers", type=int, default=CURVE_DEFAULTS["workers"], help="driving threads (8)")
    curve.add_argument("--heartbeat-ms", type=int, default=None,
                       help="bus heartbeat interval (default: the generated 100 ms; dead after 6 times it)")
    curve.add_argument("--idle-s", type=float, default=CURVE_DEFAULTS["idle_s"],
                       help="seconds of idle CPU measured before the load (3)")
    startup = what.add_parser("startup", help="time `mxone up` of a generated exchange")
    startup.add_argument("--lims", type=int, default=64)
    startup.add_argument("--extensions-per-lim", type=int, default=1000)
    startup.add_argument("--csta", choices=["all", "first"], default="all",
                         help="a CSTA server on every LIM (default) or on LIM 1 only")
    startup.add_argument("--heartbeat-ms", type=int, default=None,
                         help="bus heartbeat interval (default: the generated 100 ms; dead after 6 times it)")
    startup.add_argument("--timeout", type=float, default=None, help="seconds to wait (default 60 + 2 per LIM)")
    startup.add_argument("--run-dir", type=Path, default=None, help="kept afterwards (default: a temporary one)")
    mon = what.add_parser("monitors", help="one front end monitoring many devices")
    mon.add_argument("--devices", type=int, default=10000)
    mon.add_argument("--sessions", type=int, default=10, help="CSTA connections sharing the devices (10)")
    mon.add_argument("--in-flight", type=int, default=50, help="MonitorStarts outstanding per session (50)")
    mon.add_argument("--max-monitors", type=int, default=None, help="the server's limit (default: --devices)")
    mon.add_argument("--extensions-per-lim", type=int, default=1000)
    mon.add_argument("--lims", type=int, default=None, help="default: enough for --devices")
    mon.add_argument("--sample-calls", type=int, default=20, help="calls whose events are checked (20)")
    mon.add_argument("--heartbeat-ms", type=int, default=None,
                     help="bus heartbeat interval (default: the generated 100 ms; dead after 6 times it)")
    mon.add_argument("--run-dir", type=Path, default=None, help="kept afterwards (default: a temporary one)")
    for p in (curve, startup, mon):
        p.add_argument("--json", action="store_true", help="print one JSON object")
    add_output_options(curve, "the scale curve: CPU per call against LIMs", png=True)
    add_output_options(startup, "", png=False)
    add_output_options(mon, "", png=False)
    with_help(bench, ["mxone bench --quick                       # 2 LIMs x 20 extensions, 100 calls",
                      "mxone bench --lims 4 --calls 1000 --rate 200 --json",
                      "mxone bench --sweep 50,100,200,400 --csv sweep.csv --png sweep.png  # latency-throughput"],
              "0 every call completed, 1 a call did not complete or the exchange failed, 2 a bad option")
    scale_status = "0 every size measured and checked, 1 a measurement failed, 2 a bad option"
    with_help(scale_parser, ["mxone scale curve --sizes 1,2,4           # the same load on 1, 2 and 4 LIMs",
                             "mxone scale startup --lims 8 --extensions-per-lim 100",
                             "mxone scale monitors --devices 1000"], scale_status)
    with_help(curve, ["mxone scale curve --sizes 1,2,4 --calls 300 --json"], scale_status)
    with_help(startup, ["mxone scale startup --lims 8 --extensions-per-lim 100 --csta first"], scale_status)
    with_help(mon, ["mxone scale monitors --devices 1000 --sessions 2"], scale_status)
    bench.set_defaults(handler=cmd_bench)
    scale_parser.set_defaults(handler=cmd_scale)


def cmd_bench(args: argparse.Namespace) -> int:
    from tools import bench, report  # on use: every other command would pay for the tools' imports
    for name in ("lims", "extensions_per_lim", "calls", "workers"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise CliError(f"bench: --{name.replace('_', '-')} must be at least 1", 2)
    if args.rate is not None and args.rate <= 0:
        raise CliError("bench: --rate must be positive", 2)
    rates = None
    if args.sweep is not None:
        try:
            rates = list(bench.DEFAULT_SWEEP) if args.sweep == "default" else bench.parse_rates(args.sweep)
        except ValueError as exc:
            raise CliError(f"bench: {exc}", 2) from None
    elif args.png is not None:
        raise CliError("bench: --png draws the latency-throughput curve of --sweep; add --sweep", 2)
    check_outputs(args, "bench")
    with report.Progress(report.progress_wanted(args.json)):
        result = bench.run_sweep(args, rates) if rates else bench.run_bench(args)
    if rates:
        emit(args, result, bench.format_sweep(result), lambda: bench.csv_document(result),
             lambda path: bench.sweep_chart(result, path))
        return 0 if all(p["calls_completed"] == p["calls"] for p in result["points"]) else 1
    emit(args, result, bench.format_table(result), lambda: bench.csv_document(result), None)
    return 0 if result["calls_completed"] == result["calls"] else 1


def cmd_scale(args: argparse.Namespace) -> int:
    from tools import report, scale  # on use: every other command would pay for the tools' imports
    try:
        scale.check_args(args)
    except ValueError as exc:
        raise CliError(f"scale {args.scale_command}: {exc}", 2) from None
    check_outputs(args, f"scale {args.scale_command}")
    with report.Progress(report.progress_wanted(args.json)):
        result = scale.run(args)
    emit(args, result, scale.format_result(args.scale_command, result),
         lambda: scale.csv_document(args.scale_command, result), lambda path: scale.curve_chart(result, path))
    failed = scale.failures(args.scale_command, result)
    for failure in failed:
        print(f"mxone scale {args.scale_command}: {failure}", file=sys.stderr)
    return 1 if failed else 0
