"""`mxone topology validate|show|generate`: topology files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import CliError, plural, with_help
from topology.describe import describe_topology
from topology.generate import generate_topology
from topology.loader import load_default_topology, load_topology

TOPOLOGY_STATUS = "0 valid, 2 a broken topology (file, line and problem on standard error) or a bad option"


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
    gen.add_argument("--lim-addresses", default="127.0", metavar="A.B",
                     help="LIM n listens on A.B.{1 + (n-1) // 250}.{1 + (n-1) %% 250} (default 127.0)")
    gen.add_argument("--broker-address", default="127.0.0.1", help="the broker's address (default 127.0.0.1)")
    gen.add_argument("--broker-port", type=int, default=7800,
                     help="the broker's first port: requests on it, events on the next two (default 7800)")
    gen.add_argument("--csta-port", type=int, default=8882, help="every LIM's CSTA server port (default 8882)")
    view = gen.add_mutually_exclusive_group()
    view.add_argument("--live-view-port", type=int, default=8890,
                      help="the live view's port, on the broker's address (default 8890)")
    view.add_argument("--no-live-view", action="store_true", help="no live view")
    gen.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    gen.epilog = ("example: two exchanges side by side\n"
                  "  mxone topology generate --lims 2 --extensions-per-lim 50 -o a.yaml\n"
                  "  mxone topology generate --lims 2 --extensions-per-lim 50 --lim-addresses 127.1 \\\n"
                  "      --broker-port 7900 --live-view-port 8891 -o b.yaml")
    gen.formatter_class = argparse.RawDescriptionHelpFormatter
    with_help(topo, ["mxone topology validate lab.yaml          # names the file, line and problem",
                     "mxone topology show                       # the built-in topology"],
              TOPOLOGY_STATUS)
    with_help(validate, ["mxone topology validate lab.yaml"], TOPOLOGY_STATUS)
    with_help(show, ["mxone topology show                       # the built-in topology",
                     "mxone topology show lab.yaml"], TOPOLOGY_STATUS)
    gen.epilog += "\n\nexit status: 0 written, 2 a bad option"
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
            port = args.broker_port
            text = generate_topology(args.lims, args.extensions_per_lim, heartbeat_ms=args.heartbeat_ms,
                                     lim_addresses=args.lim_addresses, broker_address=args.broker_address,
                                     broker_ports=(port, port + 1, port + 2), csta_port=args.csta_port,
                                     live_view_port=None if args.no_live_view else args.live_view_port)
        except ValueError as exc:
            raise CliError(f"topology generate: {exc}", 2) from None
        if args.output:
            args.output.write_text(text)
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return 0
