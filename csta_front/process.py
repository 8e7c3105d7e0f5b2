"""The CSTA server process of one LIM (`csta-N` under supervisord)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from broker.node import BusNode
from broker.timers import TimerQueue
from csta_front.server import FrontEnd
from csta_front.settings import CstaStore


def main(argv: list[str] | None = None) -> int:
    from topology.loader import TopologyError, load_topology

    parser = argparse.ArgumentParser(prog="mxone-csta", description="Run the CSTA server of one LIM.")
    parser.add_argument("--topology", required=True, type=Path, help="topology YAML")
    parser.add_argument("--lim", required=True, type=int, help="the LIM this CSTA server is installed on")
    parser.add_argument("--data-dir", required=True, type=Path, help="the cluster's data folder (csta.db)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s csta-{args.lim} %(levelname)s %(message)s")
    try:
        topology = load_topology(args.topology)
        topology.lim(args.lim)
    except (TopologyError, KeyError) as exc:
        print(f"mxone-csta: {exc}", file=sys.stderr)
        return 2
    store = CstaStore(args.data_dir / "csta.db", topology)
    settings = store.server(args.lim)
    if settings is None:
        # Not initiated (`csta -e`, or never): exit cleanly; supervisord does not restart a clean exit.
        print(f"mxone-csta: no CSTA server is initiated on LIM {args.lim}", file=sys.stderr)
        return 0
    timers = TimerQueue()
    bus = BusNode(f"csta-{args.lim}", topology.broker, timers, incarnation=_incarnation(),
                  role="front", lim=args.lim)
    front = FrontEnd(topology, args.lim, bus, timers, settings, store)
    bus.on_request = front.on_request
    try:
        front.listen()
    except OSError as exc:
        print(f"mxone-csta: cannot listen on {front.address}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1

    def stop(*_):
        front.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bus.start()
    front.run()
    bus.close()
    return 0


def _incarnation() -> int:
    import time
    return int(time.time() * 1000) % 2_000_000_000  # a front end keeps no state: any fresh number will do


if __name__ == "__main__":
    sys.exit(main())
