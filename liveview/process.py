"""The live view's process (`view` under supervisord): `python -m liveview --topology FILE`."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from broker.node import BusNode
from broker.protocol import view_node
from broker.timers import TimerQueue
from liveview.client import needs_token, read_token
from liveview.server import LiveViewServer
from topology.loader import TopologyError, load_topology
from netio.logs import add_log_level_option
from netio.startup import start_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxone-view", description="Serve the live view of the exchange.")
    parser.add_argument("--topology", required=True, type=Path, help="topology YAML")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="the token every /api/ request must carry (needed when bound beyond loopback)")
    add_log_level_option(parser)
    args = parser.parse_args(argv)
    if (status := start_process("mxone-view", "view", args.log_level)) is not None:
        return status
    try:
        topology = load_topology(args.topology)
    except TopologyError as exc:
        print(f"mxone-view: {exc}", file=sys.stderr)
        return 2
    if topology.live_view is None:
        print("mxone-view: the topology turns the live view off (live_view: enabled: false)", file=sys.stderr)
        return 0
    token = read_token(args.token_file) if args.token_file is not None else None
    if token is None and needs_token(topology.live_view.address):
        print(f"mxone-view: the live view listens on {topology.live_view.address}, beyond loopback, and works "
              f"phones: it needs a token (--token-file; `mxone up` makes one), and "
              f"{args.token_file or 'none'} has none", file=sys.stderr)
        return 2
    timers = TimerQueue()
    # Not a member of the exchange (no role): it only listens and asks, like `mxone events`.
    bus = BusNode(view_node(os.getpid()), topology.broker, timers, incarnation=0)
    server = LiveViewServer(topology, bus, timers, topology.live_view, token)
    try:
        server.listen()
    except OSError as exc:
        print(f"mxone-view: cannot listen on {server.url}: {exc.strerror}", file=sys.stderr)
        return 1

    def stop(*_):
        server.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bus.start()
    server.run()
    bus.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
