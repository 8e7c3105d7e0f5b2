"""`mxone fault`: make a LIM's CSTA server misbehave on purpose, for a client's error paths."""
from __future__ import annotations

import argparse

from broker.client import BusClient
from broker.protocol import Kind, csta_node
from cli.common import CliError, run_dir_of, with_help
from cluster.control import Cluster


def add_parsers(sub, with_run_dir) -> None:
    fault = with_run_dir(sub.add_parser("fault", help="make a LIM's CSTA server misbehave on purpose (and stop)"))
    fault.add_argument("--lim", type=int, required=True, help="the LIM whose CSTA server misbehaves")
    fault.add_argument("what", choices=["delay", "error", "events", "burst", "reset", "off", "list"],
                       help="delay responses, answer errors, delay events, send events in bursts, reset "
                            "every connection now; off [KIND] ends faults; list shows them")
    fault.add_argument("kind", nargs="?", choices=["delay", "error", "events", "burst"], help="off: only this kind")
    fault.add_argument("--service", default=None, help="delay, error: only this service (e.g. MakeCall)")
    fault.add_argument("--ms", type=int, default=None, help="delay, events: how long; burst: how often")
    fault.add_argument("--category", default=None, help="error: the CSTAErrorCode category (systemResourceAvailibility)")
    fault.add_argument("--value", default=None, help="error: the CSTAErrorCode value (resourceBusy)")
    with_help(fault, ["mxone fault --lim 1 delay --ms 2000       # every response 2 s late",
                      "mxone fault --lim 1 error --service MakeCall",
                      "mxone fault --lim 1 off"])
    fault.set_defaults(handler=cmd_fault)


def cmd_fault(args: argparse.Namespace) -> int:
    if args.kind and args.what != "off":
        raise CliError(f"fault: {args.what} takes no kind", 2)
    if args.what in ("delay", "events", "burst") and not args.ms:
        raise CliError(f"fault: {args.what} needs --ms", 2)
    cluster = Cluster(run_dir_of(args))
    topology = cluster.topology()
    if args.lim not in cluster.csta_servers(topology):
        raise CliError(f"fault: no CSTA server is initiated on LIM {args.lim}")
    if args.what in ("off", "reset", "list"):
        body = {"action": {"off": "clear"}.get(args.what, args.what), "kind": args.kind}
    else:
        body = {"action": "set", "kind": args.what, "service": args.service, "ms": args.ms or 0,
                "category": args.category, "value": args.value}
    with BusClient(topology.broker) as client:
        reply = client.request(csta_node(args.lim), Kind.CSTA_FAULT, body)
    if args.what == "reset":
        print(f"LIM {args.lim}'s CSTA server: {reply['reset']} connections reset.")
    faults = "; ".join(reply["faults"]) or "none"
    print(f"Faults on LIM {args.lim}'s CSTA server: {faults}")
    return 0
