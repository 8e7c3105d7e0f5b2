"""`mxone events`, `watch`, `record`: what the exchange reports, on the bus and through a CSTA server."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.client import BusClient, BusError
from broker.envelope import SYSTEM_TOPIC, device_topic
from broker.protocol import BROKER, Kind, csta_node
from cli.common import CliError, run_dir_of, with_help
from cluster.control import Cluster
from csta_front.client import CstaClient, CstaError, describe_event
from csta_front.codec import to_bytes


def add_parsers(sub, with_run_dir) -> None:
    events = with_run_dir(sub.add_parser("events", help="print the exchange's events as they happen"))
    events.add_argument("--device", action="append", default=[], help="only this device (repeatable)")
    events.add_argument("--count", type=int, default=None, help="stop after this many events")
    events.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    events.add_argument("--json", action="store_true", help="one JSON object per line")

    watch = with_run_dir(sub.add_parser("watch", help="connect to a LIM's CSTA server and print a line per event"))
    watch.add_argument("--lim", type=int, default=1, help="the LIM whose CSTA server to use (default 1)")
    watch.add_argument("--device", action="append", required=True, help="device to monitor (repeatable)")
    watch.add_argument("--count", type=int, default=None, help="stop after this many events")
    watch.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    watch.add_argument("--xml", action="store_true", help="print each event's XML instead of a line")
    watch.add_argument("--application-id", default=None,
                       help="start an ECMA-354 application session first (needed when authentication is mandatory)")
    watch.add_argument("--user", default=None,
                       help="with --application-id: the user (the password is asked, or taken from $MXONE_CSTA_PASSWORD)")

    record = with_run_dir(sub.add_parser("record", help="record every CSTA message of a LIM's server to a readable log"))
    record.add_argument("--lim", type=int, required=True, help="the LIM whose CSTA server to record")
    record.add_argument("--session", type=int, action="append", default=None,
                        help="only this session (repeatable; `mxone status --json` lists them); default: all")
    record.add_argument("--file", type=Path, default=None, help="the log (default: RUN_DIR/logs/csta-N.record.log)")
    record.add_argument("--stop", action="store_true", help="stop recording")
    with_help(events, ["mxone events                              # every event until Ctrl-C",
                       "mxone events --device 2000 --count 5 --json",
                       "mxone events --timeout 10                 # stop after 10 s"])
    with_help(watch, ["mxone watch --lim 1 --device 2000         # the screen pop a CTI client of LIM 1 sees",
                      "mxone watch --lim 2 --device 1000 --device 1001 --xml --count 3"],
              "0 stopped (--count, --timeout or Ctrl-C), 1 the server refused (the CSTA error on standard "
              "error) or is not reachable, 2 a bad command line")
    with_help(record, ["mxone record --lim 1                      # to RUN_DIR/logs/csta-1.record.log",
                       "mxone record --lim 1 --session 3          # one client only",
                       "mxone record --lim 1 --stop               # says how many documents were written"])
    events.set_defaults(handler=cmd_events)
    watch.set_defaults(handler=cmd_watch)
    record.set_defaults(handler=cmd_record)


def format_event(body: dict[str, Any]) -> str:
    stamp = datetime.fromtimestamp(body.get("time") or time.time()).strftime("%H:%M:%S.%f")[:-3]
    parts = [stamp, f"{body.get('event', '?'):<18}"]
    if body.get("device"):
        parts.append(f"device {body['device']}")
    if body.get("call_id"):
        parts.append(f"call {body['call_id']}")
    for field in ("calling", "called", "alerting", "answering", "dropped", "failing"):
        if body.get(field):
            parts.append(f"{field} {body[field]}")
    if body.get("cause"):
        parts.append(f"cause {body['cause']}")
    if body.get("connections"):
        parts.append("[" + ", ".join(f"{d} {s}" for d, s in body["connections"]) + "]")
    return "  ".join(parts)


def cmd_events(args: argparse.Namespace) -> int:
    topology = Cluster(run_dir_of(args)).topology()
    with BusClient(topology.broker, name="events") as client:
        # Without a device filter: every device's and every call's events (CallCleared goes to the
        # call's topic only), and the broker's membership changes (a LIM dead, back up).
        topics = [device_topic(d) for d in args.device] or ["d:", "c:", SYSTEM_TOPIC]
        for topic in topics:
            client.subscribe(topic)
        client.sync()
        print("Watching " + (", ".join(args.device) if args.device else "every device") + " (Ctrl-C stops).",
              file=sys.stderr, flush=True)
        seen: set[tuple] = set()
        count = 0
        last_check = time.monotonic()
        for topic, env in client.events(timeout=args.timeout, idle=True):
            if time.monotonic() - last_check > 2:  # quiet for a while: is the exchange still there?
                last_check = time.monotonic()
                try:
                    client.request(BROKER, Kind.STATUS, timeout=2.0)
                except BusError:
                    raise CliError("events: the exchange stopped (no answer from its broker)") from None
            if topic is None:
                continue
            # An event arrives once per device (and call) it concerns: print it once.
            key = (env.src, env.incarnation, env.seq) if topic != SYSTEM_TOPIC else ("sys", env.body.get("mv"))
            if key in seen:
                continue
            seen.add(key)
            body = env.body if topic != SYSTEM_TOPIC else {"event": f"{env.body['node']} is {env.body['state']}",
                                                              "incarnation": env.body.get("incarnation")}
            print(json.dumps(body) if args.json else format_event(body), flush=True)
            count += 1
            if args.count is not None and count >= args.count:
                break
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """The screen-pop view: a CSTA client of LIM N's server, one line per event."""

    topology = Cluster(run_dir_of(args)).topology()
    try:
            lim = topology.lim(args.lim)
    except KeyError:
        raise CliError(f"watch: there is no LIM {args.lim}", 2) from None
    server = Cluster(run_dir_of(args)).csta_servers(topology).get(args.lim)
    if server is None:
        raise CliError(f"watch: no CSTA server is initiated on LIM {args.lim}")

    async def watch() -> None:
        try:
            client = await CstaClient.connect(lim.address, server.port)
        except (OSError, asyncio.TimeoutError) as exc:
            raise CliError(f"watch: cannot reach the CSTA server of LIM {args.lim} at "
                           f"{lim.address}:{server.port} ({exc})") from None
        async with client:
            if args.application_id:
                password = None
                if args.user:
                    password = os.environ.get("MXONE_CSTA_PASSWORD") or getpass.getpass(f"Password for {args.user}: ")
                try:
                    await client.start_application_session(args.application_id, user=args.user, password=password)
                except CstaError as exc:
                    raise CliError(f"watch: the application session was refused: {exc}") from None
            for device in args.device:
                try:
                    xref = await client.monitor_start(device)
                except CstaError as exc:
                    hint = " (authentication is mandatory: give --application-id and --user)" \
                        if exc.category == "security" else ""
                    raise CliError(f"watch: cannot monitor {device}: {exc}{hint}") from None
                print(f"Monitoring {device} on LIM {args.lim}'s CSTA server (cross-reference {xref}).",
                      file=sys.stderr, flush=True)
            loop = asyncio.get_running_loop()
            deadline = None if args.timeout is None else loop.time() + args.timeout
            count = 0
            while args.count is None or count < args.count:
                wait = None if deadline is None else deadline - loop.time()
                if wait is not None and wait <= 0:
                    break
                try:
                    event = await asyncio.wait_for(client.next_event(timeout=3600), wait)
                except asyncio.TimeoutError:
                    break
                stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
                print(to_bytes(event).decode() if args.xml else f"{stamp} {describe_event(event)}", flush=True)
                count += 1

    try:
        asyncio.run(watch())
    except ConnectionError as exc:
        raise CliError(f"watch: {exc}") from None
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    cluster = Cluster(run_dir_of(args))
    topology = cluster.topology()
    if args.lim not in cluster.csta_servers(topology):
        raise CliError(f"record: no CSTA server is initiated on LIM {args.lim}")
    path = (args.file or cluster.run_dir / "logs" / f"csta-{args.lim}.record.log").resolve()
    with BusClient(topology.broker) as client:
        reply = client.request(csta_node(args.lim), Kind.CSTA_RECORD,
                               {"on": not args.stop, "path": str(path), "sessions": args.session})
    if args.stop:
        done = f"{reply['documents']} documents in {reply['path']}" if reply.get("path") else "nothing was recording"
        print(f"Recording of LIM {args.lim}'s CSTA server stopped: {done}.")
    else:
        which = f"sessions {', '.join(map(str, args.session))}" if args.session else "every session"
        print(f"Recording {which} of LIM {args.lim}'s CSTA server to {path} "
              f"(`mxone record --lim {args.lim} --stop` ends it).")
    return 0
