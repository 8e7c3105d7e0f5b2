"""`mxone scenario run`: a scenario file against the running exchange, or one started for it."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from cli.common import CliError, run_dir_of, with_help
from cluster.control import Cluster


def add_parsers(sub, with_run_dir) -> None:
    scenario = sub.add_parser("scenario", help="run a scenario file: people at phones, and the CSTA events expected")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    scenario_run = with_run_dir(scenario_sub.add_parser("run", help="run FILE against the running exchange, or a new one"))
    scenario_run.add_argument("file", type=Path)
    scenario_run.add_argument("--speed", type=float, default=1.0, help="time scale: 10 runs a 10 s scenario in 1 s")
    scenario_run.add_argument("--junit", type=Path, metavar="FILE",
                              help="also write JUnit XML there: a test case per step and per device's expectation")
    scenario_run.epilog = ("example:\n  mxone scenario run basic_call.yaml --speed 5 --junit results.xml\n\n"
                           "exit status: 0 every expectation met, 1 one missed, 2 a broken file or option")
    scenario_run.formatter_class = argparse.RawDescriptionHelpFormatter
    with_help(scenario, ["mxone scenario run tools/scenarios/basic_call.yaml --speed 5"],
              "0 every expectation met, 1 one missed, 2 a broken file or option")
    scenario_run.set_defaults(handler=cmd_scenario)


def cmd_scenario(args: argparse.Namespace) -> int:
    """Exit 0 when every expectation is met, 1 when one is missed, 2 for a broken file."""
    from tools.scenario import run_scenario_file  # on use: every other command would pay for the tools' imports
    if not args.file.is_file():
        raise CliError(f"scenario: {args.file}: no such file", 2)
    if not 0.01 <= args.speed <= 1000:
        raise CliError("scenario: --speed must be 0.01 to 1000", 2)
    if args.junit is not None and not args.junit.parent.is_dir():
        raise CliError(f"scenario: --junit {args.junit}: no such directory", 2)
    run_dir = run_dir_of(args)
    running = run_dir if Cluster(run_dir).is_running() else None  # else the scenario starts its own
    outcomes: list = []
    began = time.monotonic()
    try:
        met = run_scenario_file(args.file, run_dir=running, speed=args.speed, out=lambda line: print(line, flush=True),
                                outcomes=outcomes)
    except ValueError as exc:
        raise CliError(f"scenario: {exc}", 2) from None
    finally:
        if args.junit is not None and outcomes:
            write_junit(args.junit, args.file, outcomes, time.monotonic() - began)
    return 0 if met else 1


def write_junit(path: Path, scenario_file: Path, outcomes: list, seconds: float) -> None:
    from tools.junit import Case, junit_xml
    suite = scenario_file.stem
    cases = [Case(o.name, f"scenario.{suite}", o.seconds, o.failure) for o in outcomes]
    path.write_bytes(junit_xml(suite, cases, seconds))
