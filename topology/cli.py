"""`mxone`: start, stop and inspect the exchange, work its phones, watch its events.

Exit status: 0 done, 1 the exchange refused or failed, 2 bad command line or bad topology.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.protocol import BROKER, PHYSICAL_ACTIONS, Kind, csta_node, device_address
from topology.cluster import Cluster, ClusterError, default_run_dir, wait_for


AGENT_USAGE = "login AGENTID GROUP | logout | ready | notready | wrapup"


class CliError(Exception):
    """A one-line message for the user; `status` is the exit code."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxone", description="A simulated MX-ONE exchange.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_run_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--run-dir", type=Path, default=None,
                       help="the cluster's run directory (default: $MXONE_RUN_DIR or ./run)")
        return p

    up = with_run_dir(sub.add_parser("up", help="start the exchange under supervisord"))
    up.add_argument("topology", nargs="?", type=Path, help="topology YAML (default: the built-in two-LIM exchange)")
    up.add_argument("--detach", action="store_true", help="return once the exchange is up")
    up.add_argument("--timeout", type=float, default=None, help="seconds to wait for every LIM (default: scales with size)")
    up.add_argument("--host", default=None, help="start only the programs the topology places on this host "
                                                 "(its brokers, its LIMs and their CSTA servers)")

    with_run_dir(sub.add_parser("down", help="stop the exchange"))

    status = with_run_dir(sub.add_parser("status", help="processes, LIMs and calls in progress"))
    status.add_argument("--json", action="store_true", help="print one JSON object")

    kill = with_run_dir(sub.add_parser("kill", help="send a signal to one process of the cluster"))
    kill.add_argument("process", help="broker or lim-N")
    kill.add_argument("--signal", default="KILL", help="signal name (default KILL)")

    phone = with_run_dir(sub.add_parser("phone", help="act at a phone: " + ", ".join(PHYSICAL_ACTIONS)))
    phone.add_argument("extension")
    phone.add_argument("action", choices=list(PHYSICAL_ACTIONS))
    phone.add_argument("digits", nargs="?", help="the number (dial, consult, deflect, sst) or DTMF digits (digits)")

    agent = with_run_dir(sub.add_parser("agent", help=f"ACD agent at an extension: {AGENT_USAGE}"))
    agent.add_argument("extension")
    agent.add_argument("action", choices=["login", "logout", "ready", "notready", "wrapup"])
    agent.add_argument("agent_id", nargs="?", help="login: the agent ID")
    agent.add_argument("group", nargs="?", help="login: the ACD group")

    feature = with_run_dir(sub.add_parser("feature", help="dnd on|off, forward all|busy|noanswer NUMBER|off, mwi on|off, show"))
    feature.add_argument("extension")
    feature.add_argument("feature", choices=["dnd", "forward", "mwi", "show"])
    feature.add_argument("values", nargs="*", help="on|off, or for forward: TYPE NUMBER|off")
    feature.add_argument("--after", type=float, default=None, help="forward noanswer: seconds of ringing first")

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

    bench = sub.add_parser("bench", help="start a generated exchange, drive cross-LIM calls, measure")
    bench.add_argument("--run-dir", type=Path, default=None,
                       help="the benchmark exchange's run directory, kept afterwards (default: a temporary one)")
    bench.add_argument("--lims", type=int, default=None, help="LIMs (default 4; --quick 2)")
    bench.add_argument("--extensions-per-lim", type=int, default=None, help="default 50; --quick 20")
    bench.add_argument("--calls", type=int, default=None, help="calls to make (default 1000; --quick 100)")
    bench.add_argument("--rate", type=float, default=None, help="at most this many calls started per second "
                                                                 "(default 200; --quick 100)")
    bench.add_argument("--workers", type=int, default=8, help="calls in progress at once (coroutines sharing one bus client)")
    bench.add_argument("--quick", action="store_true", help="small defaults: done in well under a minute")
    bench.add_argument("--json", action="store_true", help="print one JSON object")

    from topology.scale import add_parser as add_scale_parser
    add_scale_parser(sub)  # mxone scale curve|startup|monitors (topology/scale.py)

    fault = with_run_dir(sub.add_parser("fault", help="make a LIM's CSTA server misbehave on purpose (and stop)"))
    fault.add_argument("--lim", type=int, required=True, help="the LIM whose CSTA server misbehaves")
    fault.add_argument("what", choices=["delay", "error", "events", "burst", "reset", "off", "list"],
                       help="delay responses, answer errors, delay events, send events in bursts, reset "
                            "every connection now; off [KIND] ends faults; list shows them")
    fault.add_argument("kind", nargs="?", choices=["delay", "error", "events", "burst"], help="off: only this kind")
    fault.add_argument("--service", default=None, help="delay, error: only this service (e.g. MakeCall)")
    fault.add_argument("--ms", type=int, default=None, help="delay, events: how long; burst: how often")
    fault.add_argument("--category", default=None, help="error: the CSTAErrorCode category (systemResourceAvailability)")
    fault.add_argument("--value", default=None, help="error: the CSTAErrorCode value (resourceBusy)")

    scenario = sub.add_parser("scenario", help="run a scenario file: people at phones, and the CSTA events expected")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    scenario_run = with_run_dir(scenario_sub.add_parser("run", help="run FILE against the running exchange, or a new one"))
    scenario_run.add_argument("file", type=Path)
    scenario_run.add_argument("--speed", type=float, default=1.0, help="time scale: 10 runs a 10 s scenario in 1 s")

    traffic = with_run_dir(sub.add_parser("traffic", help="call-centre or office traffic at the phones, with a summary"))
    traffic.add_argument("--profile", default="callcentre", help="callcentre (default) or office")
    traffic.add_argument("--rate", default=None, help="calls per second (callcentre 0.3, office 2)")
    traffic.add_argument("--bhca", default=None, help="busy-hour call attempts, instead of --rate")
    traffic.add_argument("--duration", default=None, help="seconds of arrivals (default 60)")
    traffic.add_argument("--calls", default=None, help="this many calls, instead of --duration")
    traffic.add_argument("--seed", default=None, help="repeat a run (default: a new seed, printed)")
    traffic.add_argument("--talk-time", default=None, help="seconds: MEAN (exponential), exp:MEAN, fixed:S, "
                                                             "uniform:A-B (callcentre exp:8, office exp:5)")
    traffic.add_argument("--ring-time", default=None, help="how long the phone rings before it is answered "
                                                             "(callcentre uniform:1-3, office uniform:0.5-2)")
    traffic.add_argument("--wrapup", default=None, help="callcentre: the agents' wrap-up (uniform:1-5; the "
                                                         "group's wrapup_s is the longest)")
    traffic.add_argument("--abandon-share", default=None, help="callcentre: share of callers who hang up before "
                                                                "an answer (0.05)")
    traffic.add_argument("--cross-lim", default=None, help="office: share of calls to another LIM (0.5)")
    traffic.add_argument("--transfer-share", default=None, help="office: share of calls transferred (0.1)")
    traffic.add_argument("--arrivals", default="poisson", help="poisson (default) or even")
    traffic.add_argument("--group", default=None, help="callcentre: the ACD group (default: the first)")
    traffic.add_argument("--trunk", default=None, help="callcentre: the trunk callers come in on (default: the first)")
    traffic.add_argument("--drain", default=None, help="seconds calls in progress may take after the arrivals (60)")
    traffic.add_argument("--topology", type=Path, default=None,
                         help="start an exchange from this file for the run (default: the running one)")
    traffic.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    chaos = sub.add_parser("chaos", help="kill LIMs, CSTA servers and the broker under traffic on a throwaway "
                                         "exchange; report what was lost")
    chaos.add_argument("--duration", default=None, help="seconds of traffic; the kills fall inside (default 30)")
    chaos.add_argument("--kills", default=None, help="how many processes to kill (default 3)")
    chaos.add_argument("--targets", default=None, help="what may be killed: lim,csta,broker (default all three)")
    chaos.add_argument("--seed", default=None, help="repeat a run's kill times, targets and traffic")
    chaos.add_argument("--rate", default=None, help="office calls per second (default 3)")
    chaos.add_argument("--cross-lim", default=None, help="share of calls across LIMs (default 0.5)")
    chaos.add_argument("--recover-timeout", default=None, help="seconds a kill may take to recover (default 30)")
    chaos.add_argument("--topology", type=Path, default=None, help="the exchange's topology (default: the built-in one)")
    chaos.add_argument("--pair", action="store_true", help="add a backup broker (a Binary Star pair) if the topology has none")
    chaos.add_argument("--run-dir", type=Path, default=None,
                       help="the throwaway exchange's run directory, kept afterwards (default: a temporary one)")
    chaos.add_argument("--json", action="store_true", help="print the report as one JSON object")

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "kill": cmd_kill,
                "phone": cmd_phone, "agent": cmd_agent, "feature": cmd_feature, "events": cmd_events,
                "watch": cmd_watch, "record": cmd_record, "bench": cmd_bench, "scale": cmd_scale,
                "fault": cmd_fault, "scenario": cmd_scenario, "traffic": cmd_traffic,
                "chaos": cmd_chaos, "topology": cmd_topology}
    from broker.client import BusError
    from topology.loader import TopologyError
    try:
        return handlers[args.command](args) or 0
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


def run_dir_of(args: argparse.Namespace) -> Path:
    return args.run_dir if args.run_dir is not None else default_run_dir()


# -- cluster ---------------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    from topology.hosts import HostError
    from topology.loader import default_topology_path
    cluster = Cluster(run_dir_of(args))
    try:
        topology = cluster.prepare(args.topology or default_topology_path(), host=args.host)
    except HostError as exc:
        raise CliError(f"up: {exc}", 2) from None
    proc = cluster.start_supervisord(detach=args.detach)
    timeout = args.timeout or 20 + 0.5 * len(topology.lims)
    try:
        wait_until_up(cluster, topology, timeout, proc, cluster.host())
    except (ClusterError, KeyboardInterrupt) as exc:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ClusterError(f"{exc}; see the logs in {cluster.run_dir / 'logs'}") from None
    print_summary(cluster, topology)
    if args.detach:
        return 0
    print("Ctrl-C stops the exchange.", flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.wait()  # supervisord got the same SIGINT and is stopping every process
    return 0


def wait_until_up(cluster: Cluster, topology, timeout: float, proc, host: str | None = None) -> None:
    from broker.client import BusClient, BusError
    from topology.hosts import lims_on, programs_on
    # Up means every LIM registered and every CSTA server listening (it registers only then); with
    # --host, every LIM of this host (a host with only a broker: the broker answering).
    lims = lims_on(topology, host)
    runs_view = topology.live_view is not None and "view" in programs_on(topology, host)
    wanted = {("lim", n) for n in lims}
    wanted |= {("front", n) for n in cluster.csta_servers(topology) if n in lims}
    with BusClient(topology.broker) as client:
        def ready() -> bool:
            if proc.poll() is not None and proc.returncode != 0:
                raise ClusterError(f"supervisord exited with status {proc.returncode}")
            try:
                members = client.request(BROKER, Kind.STATUS, timeout=0.5)["members"]
            except BusError:
                return False
            return wanted <= {(m["role"], m["lim"]) for m in members if m["state"] == "up"} and (
                not runs_view or view_listening(topology))
        wait_for(ready, timeout, f"{len(lims)} LIMs and their CSTA servers to register"
                                 f"{' and the live view to listen' if runs_view else ''}", interval=0.1)


def view_listening(topology) -> bool:
    from liveview.client import is_listening
    return topology.live_view is None or is_listening(topology.live_view)


def print_summary(cluster: Cluster, topology) -> None:
    ep = topology.broker.primary
    print(f"Exchange {topology.name!r} is up: {len(topology.lims)} LIMs, "
          f"{len(topology.extensions)} extensions (run directory {cluster.run_dir}).")
    print(f"Broker on {ep.address} ports {ep.router_port}/{ep.pub_port}/{ep.sub_port}.")
    if cluster.host() is not None:
        from topology.hosts import programs_on
        print(f"This is host {cluster.host()}: it runs {', '.join(programs_on(topology, cluster.host()))}.")
    servers = cluster.csta_servers(topology)
    for lim in topology.lims:
        exts = topology.extensions_on(lim.number)
        span = f"{exts[0].number}..{exts[-1].number}" if exts else "no extensions"
        server = servers.get(lim.number)
        csta = f"; CSTA {server.server_type} server on {lim.address}:{server.port}" if server else ""
        print(f"  LIM {lim.number} on {lim.address}: {len(exts)} extensions ({span}){csta}")
    if topology.live_view:
        from liveview.server import url_of
        print(f"Live view: {url_of(topology.live_view)}")


def cmd_down(args: argparse.Namespace) -> int:
    cluster = Cluster(run_dir_of(args))
    cluster.shutdown()
    print(f"Exchange in {cluster.run_dir} stopped.")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    cluster = Cluster(run_dir_of(args))
    cluster.signal(args.process, args.signal.upper().removeprefix("SIG"))
    print(f"Sent SIG{args.signal.upper().removeprefix('SIG')} to {args.process}.")
    return 0


def collect_status(cluster: Cluster) -> dict[str, Any]:
    from broker.client import BusError
    from lim.phone import Exchange
    topology = cluster.topology()
    processes = cluster.processes()
    pids = {p["name"]: (p["pid"] or None) for p in processes}
    members: dict[int, dict] = {}
    calls: list[dict] = []
    broker_reachable = True
    brokers = []
    with Exchange(topology) as exchange:
        try:
            for member in exchange.members():
                if member["role"] == "lim":
                    members[member["lim"]] = member
            calls = exchange.calls()
        except BusError:
            broker_reachable = False
        if topology.broker.backup is not None:
            brokers = exchange.client.broker_states()
    csta = []
    if broker_reachable:
        from broker.client import BusClient
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
        lims.append({"number": lim.number, "address": lim.address, "state": state,
                     "pid": pids.get(lim.node_id), "incarnation": member["incarnation"] if member else None})
    return {
        "exchange": topology.name,
        "run_dir": str(cluster.run_dir),
        "host": cluster.host(),  # `mxone up --host`: the processes are this host's only
        "broker": {"reachable": broker_reachable, "pid": pids.get("broker"),
                   "pair": [dict(b, pid=pids.get("broker-backup" if b["mode"] == "backup" else "broker"))
                            for b in brokers]},
        "processes": [{"name": p["name"], "state": p["statename"], "pid": p["pid"] or None} for p in processes],
        "lims": lims,
        "csta": [{k: v for k, v in c.items() if k != "ok"} for c in csta],
        "live_view": live_view_status(topology, pids),
        "calls": [{"call_id": c["call_id"], "controller": c["controller"],
                   "connections": [{"device": x["device"], "state": x["state"], "lim": x["lim"]}
                                   for x in c["connections"]]} for c in calls],
    }


def live_view_status(topology, pids: dict) -> dict[str, Any] | None:
    if topology.live_view is None:
        return None
    from liveview.client import is_listening
    from liveview.server import url_of
    return {"url": url_of(topology.live_view), "pid": pids.get("view"), "listening": is_listening(topology.live_view)}


def cmd_status(args: argparse.Namespace) -> int:
    status = collect_status(Cluster(run_dir_of(args)))
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    broker = status["broker"]
    host = f", host {status['host']}" if status["host"] else ""
    print(f"Exchange {status['exchange']!r} (run directory {status['run_dir']}{host})")
    print(f"Broker: {'reachable' if broker['reachable'] else 'NOT reachable'}, pid {broker['pid']}")
    for member in broker["pair"]:
        print(f"  {member['mode']:<8}{member['address']}:{member['router_port']:<7}{member['state']:<15}pid {member['pid']}")
    print(f"{'LIM':<5}{'address':<16}{'state':<9}{'pid':<9}incarnation")
    for lim in status["lims"]:
        print(f"{lim['number']:<5}{lim['address']:<16}{lim['state']:<9}{str(lim['pid'] or '-'):<9}"
              f"{lim['incarnation'] if lim['incarnation'] is not None else '-'}")
    for server in status["csta"]:
        where = f"CSTA {server['server_type']} server of LIM {server['lim']} on {server['address']}:{server['port']}"
        if "error" in server:
            print(f"{where}: not answering ({server['error']})")
        else:
            devices = ", ".join(server["monitored_devices"]) or "none"
            print(f"{where}: {server['sessions']} sessions; monitored devices: {devices}")
            if server.get("faults"):
                print(f"  FAULTS ON: {'; '.join(server['faults'])}  (mxone fault --lim {server['lim']} off)")
            if server.get("recording"):
                print(f"  recording to {server['recording']}")
    view = status["live_view"]
    if view is not None:
        print(f"Live view: {view['url']}" + ("" if view["listening"] else " (NOT listening: see logs/view.log)"))
    print(f"Calls in progress: {len(status['calls'])}")
    for call in status["calls"]:
        parties = ", ".join(f"{c['device']} {c['state']} (LIM {c['lim']})" for c in call["connections"])
        print(f"  {call['call_id']}  {parties}")
    return 0


# -- phones and events -----------------------------------------------------------------------------
def exchange_of(args: argparse.Namespace):
    from lim.phone import Exchange
    return Exchange(Cluster(run_dir_of(args)).topology())


def cmd_phone(args: argparse.Namespace) -> int:
    if PHYSICAL_ACTIONS[args.action] and not args.digits:
        raise CliError(f"phone: {args.action} needs a number", 2)
    if not PHYSICAL_ACTIONS[args.action] and args.digits:
        raise CliError(f"phone: {args.action} takes no number", 2)
    with exchange_of(args) as exchange:
        body = {"action": args.action, **({"digits": args.digits} if args.digits else {})}
        reply = exchange.client.request(device_address(args.extension), Kind.PHONE, body)
    detail = f"call {reply['call_id']}, {reply['state']}" if "call_id" in reply else \
        f"logged {'on' if reply.get('logged_on') else 'off'}"
    print(f"{args.extension}: {args.action}{' ' + args.digits if args.digits else ''}: {detail}")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    if args.action == "login" and not (args.agent_id and args.group):
        raise CliError(f"agent: login needs an agent ID and a group ({AGENT_USAGE})", 2)
    if args.action != "login" and (args.agent_id or args.group):
        raise CliError(f"agent: {args.action} takes nothing more ({AGENT_USAGE})", 2)
    with exchange_of(args) as exchange:
        reply = exchange.phone(args.extension).agent(args.action, args.agent_id, args.group)
    if reply["agent_state"] == "agentNull":
        print(f"{args.extension}: agent logged off")
    else:
        print(f"{args.extension}: agent {reply['agent_id']} in group {reply['group']}: {reply['agent_state']}")
    return 0


def on_off(values: list[str], what: str) -> bool:
    if len(values) != 1 or values[0] not in ("on", "off"):
        raise CliError(f"feature: {what} takes on or off", 2)
    return values[0] == "on"


def cmd_feature(args: argparse.Namespace) -> int:
    # Check the words before reaching for the exchange.
    if args.feature == "dnd":
        change = lambda phone, on=on_off(args.values, "dnd"): phone.do_not_disturb(on)
    elif args.feature == "mwi":
        change = lambda phone, on=on_off(args.values, "mwi"): phone.message_waiting(on)
    elif args.feature == "forward":
        if len(args.values) != 2 or args.values[0] not in ("all", "busy", "noanswer"):
            raise CliError("feature: forward takes all|busy|noanswer and a number or off", 2)
        kind, target = args.values
        change = lambda phone: phone.forward(kind, None if target == "off" else target, args.after)
    elif args.values:
        raise CliError("feature: show takes nothing more", 2)
    else:
        change = lambda phone: None
    with exchange_of(args) as exchange:
        phone = exchange.phone(args.extension)
        change(phone)
        features = phone.features()
    fwd = ", ".join(f"{k} -> {features['forward_' + k]}" for k in ("all", "busy", "noanswer")
                    if features.get("forward_" + k))
    if features.get("forward_noanswer"):
        fwd += f" after {features['forward_noanswer_s']:g} s"
    agent = (f"agent {features['agent_id']} in {features['agent_group']} ({features['agent_state']})"
             if features.get("agent_group") else "no agent")
    print(f"{args.extension}: dnd {'on' if features['dnd'] else 'off'}; forwarding {fwd or 'off'}; "
          f"message waiting {'on' if features['mwi'] else 'off'}; {agent}")
    return 0


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
    from broker.client import BusClient
    from broker.envelope import device_topic
    from broker.client import BusError
    from broker.envelope import SYSTEM_TOPIC
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
    import asyncio

    from csta_front.client import CstaClient, CstaError, describe_event
    from csta_front.codec import to_bytes
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
    from broker.client import BusClient
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


# -- benchmark -------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from topology.bench import format_table, run_bench
    for name in ("lims", "extensions_per_lim", "calls", "workers"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise CliError(f"bench: --{name.replace('_', '-')} must be at least 1", 2)
    if args.rate is not None and args.rate <= 0:
        raise CliError("bench: --rate must be positive", 2)
    result = run_bench(args)
    print(json.dumps(result) if args.json else format_table(result), flush=True)
    return 0 if result["calls_completed"] == result["calls"] else 1


def cmd_scale(args: argparse.Namespace) -> int:
    from topology.scale import check_args, format_result, run
    try:
        check_args(args)
    except ValueError as exc:
        raise CliError(f"scale {args.scale_command}: {exc}", 2) from None
    result = run(args)
    print(json.dumps(result) if args.json else format_result(args.scale_command, result), flush=True)
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    from broker.client import BusClient
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


def cmd_scenario(args: argparse.Namespace) -> int:
    """Exit 0 when every expectation is met, 1 when one is missed, 2 for a broken file."""
    from topology.scenario import run_scenario_file
    if not args.file.is_file():
        raise CliError(f"scenario: {args.file}: no such file", 2)
    if not 0.01 <= args.speed <= 1000:
        raise CliError("scenario: --speed must be 0.01 to 1000", 2)
    run_dir = run_dir_of(args)
    running = run_dir if Cluster(run_dir).is_running() else None  # else the scenario starts its own
    try:
        met = run_scenario_file(args.file, run_dir=running, speed=args.speed, out=lambda line: print(line, flush=True))
    except ValueError as exc:
        raise CliError(f"scenario: {exc}", 2) from None
    return 0 if met else 1


def cmd_traffic(args: argparse.Namespace) -> int:
    """Exit 0 when no call failed (abandoned calls are part of the profile), 1 otherwise."""
    from topology.traffic_run import format_summary, options_from_args, run_traffic
    try:
        options = options_from_args(args)
        if args.topology is not None and not args.topology.is_file():
            raise ValueError(f"--topology: {args.topology}: no such file")
        summary = run_traffic(options, run_dir_of(args), args.topology)
    except ValueError as exc:
        raise CliError(f"traffic: {exc}", 2) from None
    print(json.dumps(summary) if args.json else format_summary(summary), flush=True)
    return 0 if summary["failed"] == 0 and not summary["exchange_calls_left"] else 1


def cmd_chaos(args: argparse.Namespace) -> int:
    """Exit 0 when every must-be-zero figure is zero, 1 otherwise."""
    from topology.chaos import format_report, make_chaos_options, run_chaos
    from topology.traffic_run import parse_number
    try:
        options = make_chaos_options(
            duration=parse_number(args.duration, "--duration"), kills=parse_number(args.kills, "--kills", int),
            targets=args.targets, seed=parse_number(args.seed, "--seed", int), rate=parse_number(args.rate, "--rate"),
            cross_lim=parse_number(args.cross_lim, "--cross-lim"),
            recover_timeout=parse_number(args.recover_timeout, "--recover-timeout"))
        if args.topology is not None and not args.topology.is_file():
            raise ValueError(f"--topology: {args.topology}: no such file")
        report = run_chaos(options, args.topology, args.run_dir, pair=args.pair)
    except ValueError as exc:
        raise CliError(f"chaos: {exc}", 2) from None
    print(json.dumps(report) if args.json else format_report(report), flush=True)
    return 1 if report["must_be_zero_not_zero"] else 0


# -- topology files ----------------------------------------------------------------------------------
def cmd_topology(args: argparse.Namespace) -> int:
    from topology.describe import describe_topology
    from topology.generate import generate_topology
    from topology.loader import load_default_topology, load_topology
    if args.topology_command == "validate":
        topology = load_topology(args.file)
        print(f"{args.file}: valid: {len(topology.lims)} LIMs, {len(topology.extensions)} extensions, "
              f"{len(topology.acd_groups) + len(topology.hunt_groups)} groups, {len(topology.trunks)} trunks")
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


if __name__ == "__main__":
    sys.exit(main())
