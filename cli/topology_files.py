"""`mxone topology validate|show|generate`: topology files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import CliError, plural
from topology.describe import describe_topology
from topology.generate import generate_topology
from topology.loader import load_default_topology, load_topology


def add_parsers(sub, with_run_dir) -> None:
    topo = sub.add_parser("topology", help="validate, show or generate topology files")
    topo_sub = topo.add_subparsers(dest="topology_command", required=True, metavar="ACTION")
    validate = topo_sub.add_parser("validate", help="check a topology file")
    validate.add_argument("file", type=Path)
    show = topo_sub.add_parser("show", help="describe a topology")
    show.add_argument("file", type=Path, nargs="?", help="default: the built-in topology")
    gen = topo_sub.add_parser("generate", help="write a topology for a large exchange")
    gen.add_argument("--lims", type=int, required=True)
    gen.add_argument("--extensions-per-lim", type=int, required=True)
    gen.add_argument("--heartbeat-ms", type=int, default=100,
                     help="bus heartbeat interval (100; dead after 6 times it): larger costs less idle CPU")
    gen.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    topo.set_defaults(handler=cmd_topology)


def cmd_topology(args: argparse.Namespace) -> int:
    if args.topology_command == "validate":
        topology = load_topology(args.file)
        print(f"{args.file}: valid: {plural(len(topology.lims), 'LIM')}, "
              f"{plural(len(topology.extensions), 'extension')}, "
              f"{plural(len(topology.acd_groups) + len(topology.hunt_groups), 'group')}, "
              f"{plural(len(topology.trunks), 'trunk')}")
    elif args.topology_command == "show":
        print(describe_topology(load_topology(args.file) if args.file else load_default_topology()))
    else:
        try:
            text = generate_topology(args.lims, args.extensions_per_lim, heartbeat_ms=args.heartbeat_ms)
        except ValueError as exc:
            raise CliError(f"topology generate: {exc}", 2) from None
        if args.output:
            args.output.write_text(text)
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return 0
