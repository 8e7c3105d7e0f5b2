"""`mxone up`, `down`, `status`, `kill`: start, stop and inspect the exchange's processes (status: its groups too)."""
from __future__ import annotations

import argparse
import os
import json
from pathlib import Path
from typing import Any

from broker.client import BusClient, BusError
from broker.protocol import Kind, csta_node
from cli.common import CliError, plural, run_dir_of, with_help
from cli.groups import describe, group_status
from cluster.control import Cluster, ClusterError, describe_orphans
from cluster.exchange import launch
from lim.phone import Exchange
from liveview.client import is_listening, url_of
from topology.hosts import HostError, lim_program, programs_on
from topology.loader import default_topology_path
from netio.logs import ENV as LOG_LEVEL_ENV, add_log_level_option, chosen_level


def add_parsers(sub, with_run_dir) -> None:
    up = with_run_dir(sub.add_parser("up", help="start the exchange under supervisord"))
    up.add_argument("topology", nargs="?", type=Path, help="topology YAML (default: the built-in two-LIM exchange)")
    up.add_argument("--detach", action="store_true", help="return once the exchange is up")
    up.add_argument("--timeout", type=float, default=None, help="seconds to wait for every LIM (default: scales with size)")
    up.add_argument("--host", default=None, help="start only the programs the topology places on this host "
                                                 "(its brokers, its LIMs and their CSTA servers)")
    add_log_level_option(up)  # passed to every process as $MXONE_LOG_LEVEL (netio/logs.py)

    down = with_run_dir(sub.add_parser("down", help="stop the exchange"))

    status = with_run_dir(sub.add_parser("status", help="processes, LIMs and calls in progress"))
    status.add_argument("--json", action="store_true", help="print one JSON object")

    kill = with_run_dir(sub.add_parser("kill", help="send a signal to one process of the cluster"))
    kill.add_argument("process", help="broker or lim-N")
    kill.add_argument("--signal", default="KILL", help="signal name (default KILL)")
    with_help(up, ["mxone up --detach              # the built-in exchange; returns once every LIM has registered",
                  "mxone up lab.yaml             # your topology, in the foreground (Ctrl-C stops it)",
                  "mxone up lab.yaml --host beta --detach   # only host beta's share"])
    with_help(down, ["mxone down                    # stop every process of ./run's exchange",
                     "mxone down --run-dir /tmp/lab"])
    with_help(status, ["mxone status                  # processes, LIMs, groups, calls, CSTA faults",
                       "mxone status --json           # lims, groups, calls: for scripts"])
    with_help(kill, ["mxone kill lim-2               # SIGKILL LIM 2; supervisord restarts it",
                     "mxone kill broker --signal TERM"],
              "0 signal sent, 1 no such process or the exchange is not running, 2 a bad command line")
    up.set_defaults(handler=cmd_up)
    down.set_defaults(handler=cmd_down)
    status.set_defaults(handler=cmd_status)
    kill.set_defaults(handler=cmd_kill)


def cmd_up(args: argparse.Namespace) -> int:
    try:
        os.environ[LOG_LEVEL_ENV] = chosen_level(args.log_level)  # supervisord's children inherit it
    except ValueError as exc:
        raise CliError(f"up: {exc}", 2) from None
    cluster = Cluster(run_dir_of(args))
    if not cluster.is_running() and (stopped := cluster.stop_orphans()):
        print(f"Stopped {plural(len(stopped), 'orphan process')} of an earlier exchange whose "
              f"supervisord was gone: {describe_orphans(stopped)}.", flush=True)
    try:
        topology, proc, _ = launch(cluster, args.topology or default_topology_path(), detach=args.detach,
                                   timeout=args.timeout, host=args.host)
    except HostError as exc:
        raise CliError(f"up: {exc}", 2) from None
    print_summary(cluster, topology)
    if args.detach:
        return 0
    try:  # before the line a script waits for: its Ctrl-C may follow at once
        print("Ctrl-C stops the exchange.", flush=True)
        proc.wait()
    except KeyboardInterrupt:
        proc.wait()  # supervisord got the same SIGINT and is stopping every process
    return 0


def print_summary(cluster: Cluster, topology) -> None:
    ep = topology.broker.primary
    print(f"Exchange {topology.name!r} is up: {len(topology.lims)} LIMs, "
          f"{len(topology.extensions)} extensions (run directory {cluster.run_dir}).")
    print(f"Broker on {ep.address} ports {ep.router_port}/{ep.pub_port}/{ep.sub_port}.")
    if cluster.host() is not None:
        print(f"This is host {cluster.host()}: it runs {', '.join(programs_on(topology, cluster.host()))}.")
    servers = cluster.csta_servers(topology)
    for lim in topology.lims:
        exts = topology.extensions_on(lim.number)
        span = f"{exts[0].number}..{exts[-1].number}" if exts else "no extensions"
        server = servers.get(lim.number)
        csta = f"; CSTA {server.server_type} server on {lim.address}:{server.port}" if server else ""
        print(f"  LIM {lim.number} on {lim.address}: {len(exts)} extensions ({span}){csta}")
    if topology.live_view:
        print(f"Live view: {url_of(topology.live_view, cluster.live_view_token())}")


def cmd_down(args: argparse.Namespace) -> int:
    cluster = Cluster(run_dir_of(args))
    running = cluster.supervisord_pid() is not None
    if running:
        cluster.shutdown()
    stopped = cluster.stop_orphans()
    if stopped:
        print(f"{'' if running else 'supervisord was gone; '}stopped "
              f"{plural(len(stopped), 'orphan process')}: {describe_orphans(stopped)}.")
    elif not running:
        raise ClusterError(f"no exchange running in {cluster.run_dir}")
    if running:
        print(f"Exchange in {cluster.run_dir} stopped.")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    cluster = Cluster(run_dir_of(args))
    cluster.signal(args.process, args.signal.upper().removeprefix("SIG"))
    print(f"Sent SIG{args.signal.upper().removeprefix('SIG')} to {args.process}.")
    return 0


def collect_status(cluster: Cluster) -> dict[str, Any]:
    topology = cluster.topology()
    processes = cluster.processes()
    pids = {p["name"]: (p["pid"] or None) for p in processes}
    members: dict[int, dict] = {}
    answers: dict[int, dict] = {}  # each live LIM's lim.status: its calls, whether it can persist
    broker_reachable = True
    brokers = []
    with Exchange(topology) as exchange:
        try:
            for member in exchange.members():
                if member["role"] == "lim":
                    members[member["lim"]] = member
        except BusError:
            broker_reachable = False
        for number, member in members.items():
            if member["state"] != "dead":
                try:
                    answers[number] = exchange.client.request(member["node"], Kind.LIM_STATUS, timeout=2.0)
                except BusError:
                    pass  # the LIM failed between the two questions; its calls are gone
        groups = _groups(exchange, topology, members) if broker_reachable else []
        if topology.broker.backup is not None:
            brokers = exchange.client.broker_states()
    csta = []
    if broker_reachable:
        with BusClient(topology.broker) as client:
            for number, server in cluster.csta_servers(topology).items():
                try:
                    csta.append(client.request(csta_node(number), Kind.CSTA_STATUS, timeout=1.0))
                except BusError as exc:
                    csta.append({"lim": number, "address": topology.lim(number).address, "port": server.port,
                                 "server_type": server.server_type, "error": exc.message})
    lims = []
    for lim in topology.lims:
        member = members.get(lim.number)
        state = member["state"] if member else ("unknown" if not broker_reachable else "down")
        answer = answers.get(lim.number, {})
        lims.append({"number": lim.number, "address": lim.address, "state": state,
                     "pid": pids.get(lim_program(lim.number)), "incarnation": member["incarnation"] if member else None,
                     "persist": answer.get("persist"), "persist_pending": answer.get("persist_pending"),
                     "persist_notes": answer.get("persist_notes", [])})
    calls = [c for answer in answers.values() for c in answer.get("calls", [])]
    return {
        "exchange": topology.name,
        "run_dir": str(cluster.run_dir),
        "topology_changed": cluster.topology_changed(),  # topology.yaml edited since `mxone up`
        "host": cluster.host(),  # `mxone up --host`: the processes are this host's only
        "broker": {"reachable": broker_reachable, "pid": pids.get("broker"),
                   "pair": [dict(b, pid=pids.get("broker-backup" if b["mode"] == "backup" else "broker"))
                            for b in brokers]},
        "processes": [{"name": p["name"], "state": p["statename"], "pid": p["pid"] or None} for p in processes],
        "lims": lims,
        "csta": [{k: v for k, v in c.items() if k != "ok"} for c in csta],
        "live_view": live_view_status(topology, pids, cluster.live_view_token()),
        "groups": groups,
        "calls": [{"call_id": c["call_id"], "controller": c["controller"],
                   "connections": [{"device": x["device"], "state": x["state"], "lim": x["lim"]}
                                   for x in c["connections"]]} for c in calls],
    }


def _groups(exchange: Exchange, topology, members: dict[int, dict]) -> list[dict[str, Any]]:
    """Each ACD group's queue and agents and each hunt group's members, from the group's LIM; a
    group whose LIM is not up is listed with the reason."""
    out = []
    for group in (*topology.acd_groups, *topology.hunt_groups):
        member = members.get(group.lim)
        if member is None or member["state"] != "up":
            out.append({"number": group.number, "lim": group.lim, "error": f"LIM {group.lim} is not up"})
            continue
        try:
            out.append(group_status(exchange, group.number))
        except BusError as exc:
            out.append({"number": group.number, "lim": group.lim, "error": exc.message})
    return out


def live_view_status(topology, pids: dict, token: str | None) -> dict[str, Any] | None:
    """Its address; bound beyond loopback, with the token it asks for (the URL carries it too)."""
    if topology.live_view is None:
        return None
    return {"url": url_of(topology.live_view, token), "token": token, "pid": pids.get("view"),
            "listening": is_listening(topology.live_view)}


def cmd_status(args: argparse.Namespace) -> int:
    cluster = Cluster(run_dir_of(args))
    if not cluster.is_running() and (orphans := cluster.orphans()):
        # supervisord was killed and its programs run on: nothing restarts or stops them.
        if args.json:
            print(json.dumps({"run_dir": str(cluster.run_dir), "supervisord": None,
                              "orphans": [{"name": name, "pid": pid} for name, pid in orphans]}, indent=2))
        else:
            print(f"supervisord of {cluster.run_dir} is not running, but {plural(len(orphans), 'process')} of it "
                  f"run on as orphans: {describe_orphans(orphans)}. `mxone down` stops them "
                  "(`mxone up` does too, before it starts).")
        return 1
    status = collect_status(cluster)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    broker = status["broker"]
    host = f", host {status['host']}" if status["host"] else ""
    print(f"Exchange {status['exchange']!r} (run directory {status['run_dir']}{host})")
    if status["topology_changed"]:
        print(f"TOPOLOGY CHANGED: {status['topology_changed']}")
    print(f"Broker: {'reachable' if broker['reachable'] else 'NOT reachable'}, pid {broker['pid']}")
    for member in broker["pair"]:
        print(f"  {member['mode']:<8}{member['address']}:{member['router_port']:<7}{member['state']:<15}pid {member['pid']}")
    print(f"{'LIM':<5}{'address':<16}{'state':<9}{'pid':<9}incarnation")
    for lim in status["lims"]:
        print(f"{lim['number']:<5}{lim['address']:<16}{lim['state']:<9}{str(lim['pid'] or '-'):<9}"
              f"{lim['incarnation'] if lim['incarnation'] is not None else '-'}")
    for lim in status["lims"]:  # a LIM that cannot write its store runs on in memory: say so
        if lim["persist"] not in (None, "ok"):
            print(f"  LIM {lim['number']} persist: {lim['persist']}; {plural(lim['persist_pending'], 'change')} "
                  "not yet stored (kept in memory, written when the fault clears)")
        for note in lim["persist_notes"]:
            print(f"  LIM {lim['number']} store: {note}")
    for server in status["csta"]:
        where = f"CSTA {server['server_type']} server of LIM {server['lim']} on {server['address']}:{server['port']}"
        if "error" in server:
            print(f"{where}: not answering ({server['error']})")
        else:
            devices = ", ".join(server["monitored_devices"]) or "none"
            print(f"{where}: {plural(server['sessions'], 'session')}; monitored devices: {devices}")
            if server.get("faults"):
                print(f"  FAULTS ON: {'; '.join(server['faults'])}  (mxone fault --lim {server['lim']} off)")
            if server.get("recording"):
                print(f"  recording to {server['recording']}")
    view = status["live_view"]
    if view is not None:
        print(f"Live view: {view['url']}" + ("" if view["listening"] else " (NOT listening: see logs/view.log)"))
    for group in status["groups"]:
        if "error" in group:
            print(f"Group {group['number']} (LIM {group['lim']}): not answering ({group['error']})")
        else:
            print("\n".join(describe(group)))
    print(f"Calls in progress: {len(status['calls'])}")
    for call in status["calls"]:
        parties = ", ".join(f"{c['device']} {c['state']} (LIM {c['lim']})" for c in call["connections"])
        print(f"  {call['call_id']}  {parties}")
    return 0
