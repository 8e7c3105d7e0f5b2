"""`mxone`: start, stop and inspect the exchange, work its phones, watch its events.

Each command group lives in its own module of this package (cli/exchange.py for up, down, status,
kill; cli/phones.py; cli/groups.py; cli/events.py; cli/bench.py; cli/fault.py; cli/scenario.py; cli/traffic.py;
cli/soak.py; cli/topology_files.py); each adds its sub-commands with a `handler`, and `main` runs it.

Exit status: 0 done, 1 the exchange refused or failed, 2 bad command line or bad topology.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from broker.client import BusError
from cli import (
    bench,
    events,
    exchange,
    fault,
    groups,
    logs,
    phones,
    scenario,
    soak,
    topology_files,
    traffic,
)
from cli.common import EXIT_STATUS, CliError, with_help, with_run_dir
from cluster.control import ClusterError
from topology.loader import TopologyError
from cli.version import add_common_options

# In the order `mxone --help` lists them.
COMMAND_GROUPS = (exchange, logs, phones, groups, events, bench, fault, scenario, traffic, soak, topology_files)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxone", description="A simulated MX-ONE exchange.")
    add_common_options(parser)
    with_help(parser, ["mxone up --detach                       # start the built-in exchange, then:",
                       "mxone phone 1000 dial 2000",
                       "mxone status --help                     # each command's options, examples, exit status"], EXIT_STATUS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(sub, with_run_dir)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["mxone", *(sys.argv[1:] if argv is None else argv)])  # for reports' titles
    try:
        return args.handler(args) or 0
    except TopologyError as exc:
        print(f"mxone: {exc}", file=sys.stderr)
        return 2
    except (CliError, ClusterError) as exc:
        print(f"mxone: {exc}", file=sys.stderr)
        return getattr(exc, "status", 1)
    except BusError as exc:
        print(f"mxone: {exc.message} ({exc.code})", file=sys.stderr)  # the code, for scripts
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
