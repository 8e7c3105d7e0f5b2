"""The LIM process: one LimCore on the bus, driven by a poll loop."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from broker.node import BusNode
from broker.protocol import lim_node
from broker.timers import TimerQueue
from lim.core import LimCore
from lim.store import RETRY_S, Store
from topology.loader import TopologyError, load_topology
from netio.logs import add_log_level_option
from netio.startup import start_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxone-lim", description="Run one LIM of the exchange.")
    parser.add_argument("--topology", required=True, type=Path, help="topology YAML")
    parser.add_argument("--lim", required=True, type=int, help="the LIM number to run")
    parser.add_argument("--data-dir", required=True, type=Path, help="where persistent state lives")
    add_log_level_option(parser)
    args = parser.parse_args(argv)
    if (status := start_process("mxone-lim", lim_node(args.lim), args.log_level)) is not None:
        return status
    try:
        topology = load_topology(args.topology)
        topology.lim(args.lim)
    except (TopologyError, KeyError) as exc:
        print(f"mxone-lim: {exc}", file=sys.stderr)
        return 2
    timers = TimerQueue()
    store = Store(args.data_dir / f"lim-{args.lim}.db", clock=timers.now)
    incarnation = store.next_incarnation()
    node = BusNode(lim_node(args.lim), topology.broker, timers, incarnation=incarnation,
                   role="lim", lim=args.lim)
    core = LimCore(topology, args.lim, node, timers, store, incarnation)
    node.on_request = core.handle
    node.on_member = core.on_member
    node.on_members = core.on_members
    node.on_peer = core.on_peer
    node.on_rejoin = core.rejoin
    running = True

    def stop(*_):
        nonlocal running
        running = False

    def retry_store() -> None:  # a store fault that clears is noticed without waiting for a change
        store.retry()
        timers.call_later(RETRY_S, retry_store)

    timers.call_later(RETRY_S, retry_store)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    node.start()
    logging.getLogger("lim").info("LIM %d up, incarnation %d, %d devices", args.lim, incarnation,
                                  len(core.devices))
    while running:
        node.poll_once(0.2)
    node.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
