"""`mxone traffic` and `mxone chaos`: traffic at the phones, and kills under traffic."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import CliError, add_output_options, check_outputs, emit, run_dir_of, with_help
from tools.traffic import ARRIVALS, PROFILES


def add_parsers(sub, with_run_dir) -> None:
    traffic = with_run_dir(sub.add_parser("traffic", help="call-centre or office traffic at the phones, with a summary"))
    traffic.add_argument("--profile", default="callcentre", choices=PROFILES, help="callcentre (default) or office")
    traffic.add_argument("--rate", default=None, help="calls per second (callcentre 0.3, office 2)")
    traffic.add_argument("--bhca", default=None, help="busy-hour call attempts, instead of --rate")
    traffic.add_argument("--duration", default=None, help="seconds of arrivals (default 60)")
    traffic.add_argument("--calls", default=None, help="this many calls, instead of --duration")
    traffic.add_argument("--seed", default=None, help="repeat a run (default: a new seed, printed)")
    traffic.add_argument("--talk-time", default=None, help="seconds: MEAN (exponential), exp:MEAN, fixed:S, "
                                                             "uniform:A-B (callcentre exp:8, office exp:5)")
    traffic.add_argument("--ring-time", default=None, help="how long the phone rings before it is answered "
                                                             "(callcentre uniform:1-3, office uniform:0.5-2)")
    traffic.add_argument("--wrapup", default=None, help="callcentre: the agents' wrap-up (uniform:1-5; the "
                                                         "group's wrapup_s is the longest)")
    traffic.add_argument("--abandon-share", default=None, help="callcentre: share of callers who hang up before "
                                                                "an answer (0.05)")
    traffic.add_argument("--cross-lim", default=None, help="office: share of calls to another LIM (0.5)")
    traffic.add_argument("--transfer-share", default=None, help="office: share of calls transferred (0.1)")
    traffic.add_argument("--arrivals", default="poisson", choices=ARRIVALS, help="poisson (default) or even")
    traffic.add_argument("--group", default=None, help="callcentre: the ACD group (default: the first)")
    traffic.add_argument("--trunk", default=None, help="callcentre: the trunk callers come in on (default: the first)")
    traffic.add_argument("--route-point", default=None,
                         help="callcentre: callers dial this route point (e.g. 7000); a routeing application "
                              "registered for it routes the calls, else its default ACD group takes them")
    traffic.add_argument("--drain", default=None, help="seconds calls in progress may take after the arrivals (60)")
    traffic.add_argument("--topology", type=Path, default=None,
                         help="start an exchange from this file for the run (default: the running one)")
    traffic.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    chaos = sub.add_parser("chaos", help="kill LIMs, CSTA servers and the broker under traffic on a throwaway "
                                         "exchange; report what was lost")
    chaos.add_argument("--duration", default=None, help="seconds of traffic; the kills fall inside (default 30)")
    chaos.add_argument("--kills", default=None, help="how many processes to kill (default 3)")
    chaos.add_argument("--targets", default=None, help="what may be killed: lim,csta,broker (default all three)")
    chaos.add_argument("--seed", default=None, help="repeat a run's kill times, targets and traffic")
    chaos.add_argument("--rate", default=None, help="office calls per second (default 3)")
    chaos.add_argument("--cross-lim", default=None, help="share of calls across LIMs (default 0.5)")
    chaos.add_argument("--recover-timeout", default=None, help="seconds a kill may take to recover (default 30)")
    chaos.add_argument("--topology", type=Path, default=None, help="the exchange's topology (default: the built-in one)")
    chaos.add_argument("--pair", action="store_true", help="add a backup broker (a Binary Star pair) if the topology has none")
    chaos.add_argument("--run-dir", type=Path, default=None,
                       help="the throwaway exchange's run directory, kept afterwards (default: a temporary one)")
    chaos.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_output_options(chaos, "each kill's recovery time")
    with_help(traffic, ["mxone traffic --calls 20 --seed 1          # call centre, 20 calls, repeatable",
                        "mxone traffic --profile office --rate 5 --duration 30",
                        "mxone traffic --topology lab.yaml --json  # on an exchange started for the run"],
              "0 no call failed (abandoned calls are part of the profile), 1 a call failed or was left "
              "in the exchange, 2 a bad option")
    with_help(chaos, ["mxone chaos                               # 30 s of traffic, 3 kills",
                      "mxone chaos --duration 60 --kills 8 --seed 2 --json"],
              "0 nothing lost (every must-be-zero figure is zero), 1 something lost, 2 a bad option")
    traffic.set_defaults(handler=cmd_traffic)
    chaos.set_defaults(handler=cmd_chaos)


def cmd_traffic(args: argparse.Namespace) -> int:
    """Exit 0 when no call failed (abandoned calls are part of the profile), 1 otherwise."""
    from tools.traffic_run import format_summary, options_from_args, run_traffic  # on use: every other command would pay for the tools' imports
    try:
        options = options_from_args(args)
        if args.topology is not None and not args.topology.is_file():
            raise ValueError(f"--topology: {args.topology}: no such file")
        summary = run_traffic(options, run_dir_of(args), args.topology)
    except ValueError as exc:
        raise CliError(f"traffic: {exc}", 2) from None
    print(json.dumps(summary) if args.json else format_summary(summary), flush=True)
    return 0 if summary["failed"] == 0 and not summary["exchange_calls_left"] else 1


def cmd_chaos(args: argparse.Namespace) -> int:
    """Exit 0 when every must-be-zero figure is zero, 1 otherwise."""
    from tools import chaos, report  # on use: every other command would pay for the tools' imports
    from tools.traffic_run import parse_number
    check_outputs(args, "chaos")
    try:
        options = chaos.make_chaos_options(
            duration=parse_number(args.duration, "--duration"), kills=parse_number(args.kills, "--kills", int),
            targets=args.targets, seed=parse_number(args.seed, "--seed", int), rate=parse_number(args.rate, "--rate"),
            cross_lim=parse_number(args.cross_lim, "--cross-lim"),
            recover_timeout=parse_number(args.recover_timeout, "--recover-timeout"))
        if args.topology is not None and not args.topology.is_file():
            raise ValueError(f"--topology: {args.topology}: no such file")
        with report.Progress(report.progress_wanted(args.json)):
            result = chaos.run_chaos(options, args.topology, args.run_dir, pair=args.pair)
    except ValueError as exc:
        raise CliError(f"chaos: {exc}", 2) from None
    emit(args, result, chaos.format_report(result), lambda: chaos.csv_document(result, args.command_line),
         lambda path: chaos.recovery_chart(result, path, args.command_line))
    return 1 if result["must_be_zero_not_zero"] else 0
