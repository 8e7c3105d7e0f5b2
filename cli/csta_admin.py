"""`csta` and `csta_authentication`: the MX-ONE administration commands of the CSTA servers.

    csta -i [--lim N | --all] [--type XML|TR87_uaCSTA] [--port P] [--tls-port P|none] ...
    csta -e [--lim N | --all]
    csta -p [--lim N] [--json]
    csta_authentication -i | -c  [--mandatory yes|no] [--application-id ID] [--user NAME] ...
    csta_authentication -e | -p

Settings live in the cluster's store (data/csta.db) and apply to the running cluster at once: the
CSTA server process of the LIM is restarted (or stopped) through supervisord's XML-RPC interface.
With a terminal and no setting given, the commands ask for each value, as the real ones do; with
any flag they never ask. Passwords are read from the terminal without echo, or one per line from
standard input when it is not a terminal; they are stored hashed and never printed.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
import xmlrpc.client
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from broker.client import BusClient, BusError
from broker.protocol import BROKER, Kind, csta_node
from cluster.control import Cluster, ClusterError, default_run_dir, wait_for
from csta_front.certificates import CertificateError, load_installed
from csta_front.settings import AuthSettings, StoreError, hash_password, validate_settings
from topology.loader import TopologyError
from topology.model import CSTA_SERVER_TYPES, CstaSettings
from cli.common import with_help
from cli.version import add_common_options


class AdminError(Exception):
    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status

ADMIN_STATUS = ("0 done, 1 the exchange refused or is not running (the reason on standard error), 2 a bad "
                "command line, LIM or password (nothing changed), 130 cancelled (nothing changed)")


def _run(prog: str, body: Callable[[], int]) -> int:
    try:
        return body()
    except (AdminError, ClusterError, TopologyError, StoreError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return getattr(exc, "status", 1) if isinstance(exc, AdminError) else (2 if isinstance(exc, TopologyError) else 1)
    except (KeyboardInterrupt, EOFError):
        print(f"\n{prog}: cancelled, nothing changed", file=sys.stderr)
        return 130


def _yes_no(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("yes", "y", "true", "on", "1", "mandatory"):
        return True
    if lowered in ("no", "n", "false", "off", "0", "optional"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r}: say yes or no")


def _port_or_none(value: str) -> int | None:
    if value.strip().lower() in ("none", "no", "off", "-"):
        return None
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} must be at least 1")
    return number


def _ask(question: str, default: Any, convert: Callable[[str], Any]) -> Any:
    """Prompt until the answer converts; an empty answer keeps the default."""
    shown = "none" if default is None else ("yes" if default is True else "no" if default is False else default)
    while True:
        answer = input(f"{question} [{shown}]: ").strip()
        if not answer:
            return default
        try:
            return convert(answer)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            print(f"  {exc}", file=sys.stderr)


# -- csta ------------------------------------------------------------------------------------------
SERVER_OPTIONS = ("server_type", "port", "tls_port", "authentication_mandatory", "max_sessions",
                  "max_monitors", "system_status_on_connect")
NOT_GIVEN = object()  # `--tls-port none` gives None, which must differ from no option at all


def csta_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csta", description="Initiate, remove or print the CSTA servers of the LIMs.")
    add_common_options(parser)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("-i", dest="action", action="store_const", const="initiate", help="initiate (or change) a CSTA server")
    action.add_argument("-e", dest="action", action="store_const", const="remove", help="remove a CSTA server")
    action.add_argument("-p", dest="action", action="store_const", const="print", help="print status and monitored devices")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--lim", type=int, help="the LIM (default: ask, or all for -p)")
    where.add_argument("--all", action="store_true", help="every LIM")
    parser.add_argument("--type", dest="server_type", choices=CSTA_SERVER_TYPES, help="server type")
    parser.add_argument("--port", type=_port_or_none, help="port (8882 for XML, 5062 for TR87_uaCSTA by default)")
    parser.add_argument("--tls-port", dest="tls_port", type=_port_or_none, help="TLS port, or none (needs a certificate)")
    parser.add_argument("--auth", dest="authentication_mandatory", type=_yes_no,
                        help="application session authentication mandatory: yes or no")
    parser.add_argument("--max-sessions", dest="max_sessions", type=_positive)
    parser.add_argument("--max-monitors", dest="max_monitors", type=_positive)
    parser.add_argument("--system-status-on-connect", dest="system_status_on_connect", type=_yes_no,
                        help="greet each connection with SystemStatus: yes or no")
    parser.add_argument("--json", action="store_true", help="-p: print JSON")
    parser.add_argument("--run-dir", type=Path, default=None, help="the cluster's run directory")
    parser.set_defaults(**{option: NOT_GIVEN for option in SERVER_OPTIONS})
    return with_help(parser, ["csta -i --lim 1 --type XML --port 8882     # initiate (or change) LIM 1's server",
                              "csta -i --all --max-monitors 10000",
                              "csta -p --lim 1 --json",
                              "csta -e --lim 2                            # remove LIM 2's server"], ADMIN_STATUS)


def csta_main(argv: list[str] | None = None) -> int:
    args = csta_parser().parse_args(argv)
    return _run("csta", lambda: _csta(args))


def _csta(args: argparse.Namespace) -> int:
    cluster = Cluster(args.run_dir if args.run_dir is not None else default_run_dir())
    topology = cluster.topology()
    numbers = [lim.number for lim in topology.lims]
    changes = {o: v for o in SERVER_OPTIONS if (v := getattr(args, o)) is not NOT_GIVEN}
    interactive = sys.stdin.isatty() and not changes
    if args.lim is not None and args.lim not in numbers:
        raise AdminError(f"there is no LIM {args.lim} (LIMs: {', '.join(map(str, numbers))})", 2)
    if args.action == "print":
        targets = numbers if args.lim is None else [args.lim]
        return _csta_print(cluster, topology, targets, args.json)
    if args.all:
        targets = numbers
    elif args.lim is not None:
        targets = [args.lim]
    elif sys.stdin.isatty():
        targets = [_ask("LIM", numbers[0], lambda v: _known_lim(int(v), numbers))]
    else:
        raise AdminError("say which LIM: --lim N or --all", 2)
    store = cluster.csta_store(topology)
    try:
        for lim in targets:
            if args.action == "remove":
                if store.server(lim) is None:
                    raise AdminError(f"no CSTA server is initiated on LIM {lim}")
                store.set_server(lim, None)
                _apply(cluster, topology, lim, running=False)
                print(f"CSTA server of LIM {lim} removed.")
                continue
            current = store.server(lim) or CstaSettings()
            if interactive:
                changes = _prompt_server(current)
            if changes.get("port", 0) is None:
                raise AdminError("a CSTA server needs a port", 2)
            if changes.get("server_type") == "TR87_uaCSTA" and "port" not in changes:
                changes["port"] = 5062
            settings = replace(current, **changes)
            try:
                validate_settings(settings)
            except ValueError as exc:
                raise AdminError(str(exc), 2) from None
            if settings.tls_port is not None and not _certificate_ready(cluster):
                raise AdminError("a TLS port needs a valid certificate: create or install one with mxone_certificate")
            store.set_server(lim, settings)
            _apply(cluster, topology, lim, running=True)
            tls = f", TLS port {settings.tls_port}" if settings.tls_port else ""
            print(f"CSTA server of LIM {lim} initiated: {settings.server_type} on "
                  f"{topology.lim(lim).address}:{settings.port}{tls}.")
    finally:
        store.close()
    return 0


def _known_lim(lim: int, numbers: list[int]) -> int:
    if lim not in numbers:
        raise ValueError(f"there is no LIM {lim}")
    return lim


def _prompt_server(current: CstaSettings) -> dict[str, Any]:
    def server_type(value: str) -> str:
        if value not in CSTA_SERVER_TYPES:
            raise ValueError(f"choose {' or '.join(CSTA_SERVER_TYPES)}")
        return value
    kind = _ask(f"Server type ({' or '.join(CSTA_SERVER_TYPES)})", current.server_type, server_type)
    port_default = current.port if kind == current.server_type else (5062 if kind == "TR87_uaCSTA" else 8882)
    return {
        "server_type": kind,
        "port": _ask("Port", port_default, lambda v: _port_or_none(v) or 8882),
        "tls_port": _ask("TLS port (none for no TLS)", current.tls_port, _port_or_none),
        "authentication_mandatory": _ask("Application session authentication mandatory (yes/no)",
                                         current.authentication_mandatory, _yes_no),
        "max_sessions": _ask("Maximum sessions", current.max_sessions, _positive),
        "max_monitors": _ask("Maximum monitors", current.max_monitors, _positive),
        "system_status_on_connect": _ask("Send SystemStatus when a client connects (yes/no)",
                                         current.system_status_on_connect, _yes_no),
    }


def _certificate_ready(cluster: Cluster) -> bool:
    try:
        load_installed(cluster.run_dir)
        return True
    except CertificateError:
        return False


def _apply(cluster: Cluster, topology, lim: int, running: bool) -> None:
    """Make the running cluster follow the store: restart (or stop) csta-N through supervisord."""
    if not cluster.is_running():
        return  # applies when the exchange starts
    rpc = cluster.rpc().supervisor
    name = csta_node(lim)

    def incarnation(client: BusClient) -> int | None:
        """The incarnation of csta-N the broker knows as up, if any."""
        try:
            members = client.request(BROKER, Kind.STATUS, timeout=0.5)["members"]
        except BusError:
            return None
        return next((m["incarnation"] for m in members if m["node"] == name and m["state"] == "up"), None)

    with BusClient(topology.broker) as client:
        before = incarnation(client)
    try:
        rpc.stopProcess(name, True)
    except xmlrpc.client.Fault as fault:
        if "NOT_RUNNING" not in fault.faultString:
            raise AdminError(f"cannot stop {name}: {fault.faultString}") from None
    if not running:
        return
    try:
        rpc.startProcess(name, True)
    except xmlrpc.client.Fault as fault:
        raise AdminError(f"cannot start {name}: {fault.faultString} (see {cluster.run_dir}/logs/{name}.log)") from None

    with BusClient(topology.broker) as client:
        # The new process registers once it listens; the old one may still look up for a moment.
        def listening() -> bool:
            now = incarnation(client)
            return now is not None and now != before
        try:
            wait_for(listening, 15, f"{name} to listen")
        except ClusterError:
            raise AdminError(f"{name} did not come up: see {cluster.run_dir}/logs/{name}.log") from None


def _csta_print(cluster: Cluster, topology, targets: list[int], as_json: bool) -> int:
    store = cluster.csta_store(topology)
    rows = []
    try:
        live = cluster.is_running()
        client = BusClient(topology.broker) if live else None
        try:
            for lim in targets:
                settings = store.server(lim)
                row: dict[str, Any] = {"lim": lim, "address": topology.lim(lim).address, "initiated": settings is not None}
                if settings is not None:
                    row.update(asdict(settings))
                    row.update(sessions=None, monitored_devices=None, running=False)
                    if client is not None:
                        try:
                            status = client.request(csta_node(lim), Kind.CSTA_STATUS, timeout=1.0)
                            row.update(sessions=status["sessions"], monitored_devices=status["monitored_devices"],
                                       running=True)
                        except BusError:
                            pass
                rows.append(row)
        finally:
            if client is not None:
                client.close()
    finally:
        store.close()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        if not row["initiated"]:
            print(f"LIM {row['lim']}: no CSTA server initiated")
            continue
        state = "running" if row["running"] else "NOT running"
        print(f"LIM {row['lim']}: CSTA server {row['server_type']} on {row['address']}:{row['port']}"
              f"{', TLS port ' + str(row['tls_port']) if row['tls_port'] else ''} ({state})")
        print(f"  authentication mandatory: {'yes' if row['authentication_mandatory'] else 'no'}; "
              f"maximum sessions {row['max_sessions']}, monitors {row['max_monitors']}; "
              f"SystemStatus on connect: {'yes' if row['system_status_on_connect'] else 'no'}")
        if row["running"]:
            devices = ", ".join(row["monitored_devices"]) or "none"
            print(f"  sessions connected: {row['sessions']}; monitored devices: {devices}")
    return 0


# -- csta_authentication ------------------------------------------------------------------------------
def auth_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csta_authentication",
                                     description="Application session authentication settings (ECMA-354).")
    add_common_options(parser)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("-i", dest="action", action="store_const", const="initiate", help="initiate the settings")
    action.add_argument("-c", dest="action", action="store_const", const="change", help="change the settings")
    action.add_argument("-e", dest="action", action="store_const", const="remove", help="remove the settings")
    action.add_argument("-p", dest="action", action="store_const", const="print", help="print the settings")
    parser.add_argument("--mandatory", type=_yes_no, help="authentication mandatory for every session: yes or no")
    parser.add_argument("--application-id", action="append", default=None,
                        help="an accepted application ID (repeatable; none given: any ID)")
    parser.add_argument("--remove-application-id", action="append", default=[], help="-c: stop accepting this ID")
    parser.add_argument("--user", action="append", default=None,
                        help="a user (repeatable); the password is asked, or read from standard input")
    parser.add_argument("--remove-user", action="append", default=[], help="-c: remove this user")
    parser.add_argument("--max-duration", type=_positive, help="maximum session duration in seconds")
    parser.add_argument("--json", action="store_true", help="-p: print JSON")
    parser.add_argument("--run-dir", type=Path, default=None, help="the cluster's run directory")
    return with_help(parser, ["csta_authentication -i --mandatory yes --application-id CallCenter --user alice",
                              "csta_authentication -c --user bob          # add bob, or change his password",
                              "csta_authentication -p                     # settings and user names, never passwords"],
                     ADMIN_STATUS)


def auth_main(argv: list[str] | None = None) -> int:
    args = auth_parser().parse_args(argv)
    return _run("csta_authentication", lambda: _auth(args))


def _read_password(user: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {user}: ")
        if getpass.getpass(f"Password for {user} again: ") != first:
            raise AdminError(f"the two passwords for {user} differ; nothing changed")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise AdminError(f"the password for {user} must have at least 8 characters; nothing changed", 2)
    return password


def _auth(args: argparse.Namespace) -> int:
    cluster = Cluster(args.run_dir if args.run_dir is not None else default_run_dir())
    store = cluster.csta_store()
    try:
        current = store.auth()
        if args.action == "print":
            data = current.public()
            if args.json:
                print(json.dumps(data, indent=2))
            elif not current.initiated:
                print("Application session authentication: not initiated")
            else:
                print("Application session authentication: initiated")
                print(f"  mandatory: {'yes' if current.mandatory else 'no'}")
                print(f"  accepted application IDs: {', '.join(current.application_ids) or 'any'}")
                print(f"  users: {', '.join(data['users']) or 'none (no credentials asked)'}")
                print(f"  maximum session duration: {current.max_session_duration_s} s")
            return 0
        if args.action == "remove":
            if not current.initiated:
                raise AdminError("application session authentication is not initiated")
            store.set_auth(AuthSettings())
            print("Application session authentication removed.")
            return 0
        if args.action == "initiate" and current.initiated:
            raise AdminError("application session authentication is already initiated: change it with -c")
        if args.action == "change" and not current.initiated:
            raise AdminError("application session authentication is not initiated: initiate it with -i")
        base = current if args.action == "change" else AuthSettings()
        given = any(v for v in (args.mandatory is not None, args.application_id, args.user, args.max_duration,
                                args.remove_user, args.remove_application_id))
        if sys.stdin.isatty() and not given:
            mandatory = _ask("Authentication mandatory (yes/no)", base.mandatory, _yes_no)
            ids = _ask("Accepted application IDs, separated by commas (empty: any)",
                       ",".join(base.application_ids), str)
            app_ids = tuple(i.strip() for i in ids.split(",") if i.strip())
            max_duration = _ask("Maximum session duration (s)", base.max_session_duration_s, _positive)
            users = dict(base.users)
            while True:
                name = input("Add a user (empty to finish): ").strip()
                if not name:
                    break
                users[name] = hash_password(_read_password(name))
        else:
            mandatory = base.mandatory if args.mandatory is None else args.mandatory
            app_ids = tuple(dict.fromkeys([*base.application_ids, *(args.application_id or [])]))
            app_ids = tuple(i for i in app_ids if i not in args.remove_application_id)
            max_duration = args.max_duration or base.max_session_duration_s
            users = {u: h for u, h in base.users.items() if u not in args.remove_user}
            for name in args.user or []:
                users[name] = hash_password(_read_password(name))
        for name in [*args.remove_user]:
            if name not in base.users:
                raise AdminError(f"there is no user {name}; nothing changed", 2)
        store.set_auth(AuthSettings(initiated=True, mandatory=mandatory, application_ids=app_ids,
                                    max_session_duration_s=max_duration, users=users))
        verb = "initiated" if args.action == "initiate" else "changed"
        print(f"Application session authentication {verb}: mandatory {'yes' if mandatory else 'no'}, "
              f"{len(users)} users, {len(app_ids) or 'any'} application IDs.")
        return 0
    finally:
        store.close()
