"""The CSTA server process of one LIM (`csta-N` under supervisord)."""
from __future__ import annotations

import argparse
import logging
import resource
import signal
import ssl
import sys
import time
from pathlib import Path

from broker.node import BusNode
from broker.protocol import csta_node
from broker.timers import TimerQueue
from csta_front.server import FrontEnd
from csta_front.settings import CstaStore
from csta_front.soap_login import announce_refusal, privilege_refusal
from topology.loader import TopologyError, load_topology
from netio.logs import add_log_level_option
from netio.startup import start_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxone-csta", description="Run the CSTA server of one LIM.")
    parser.add_argument("--topology", required=True, type=Path, help="topology YAML")
    parser.add_argument("--lim", required=True, type=int, help="the LIM this CSTA server is installed on")
    parser.add_argument("--data-dir", required=True, type=Path, help="the cluster's data folder (csta.db)")
    add_log_level_option(parser)
    args = parser.parse_args(argv)
    if (status := start_process("mxone-csta", csta_node(args.lim), args.log_level)) is not None:
        return status
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
    bus = BusNode(csta_node(args.lim), topology.broker, timers, incarnation=_incarnation(),
                  role="front", lim=args.lim)
    front = FrontEnd(topology, args.lim, bus, timers, settings, store)
    bus.on_request = front.on_request
    _raise_file_limit()
    try:
        front.listen(_tls_context(args.data_dir.parent, settings, args.lim))
    except OSError as exc:
        print(f"mxone-csta: cannot listen on {front.address}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    # TR87: SIP over TCP on the CSTA port, and over UDP (bound now) for TR87_uaCSTA servers.
    if settings.server_type == "TR87_uaCSTA":
        _install_sip(front)
    else:
        _on_first_connection(front, "sip", _install_sip)
    # The SOAP web service: HTTP on the CSTA port (seed Figure 2 and 6.1).
    if (refusal := privilege_refusal()) is not None:
        announce_refusal(refusal)
    _on_first_connection(front, "http", _install_soap)

    def stop(*_):
        front.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bus.start()
    front.run()
    bus.close()
    return 0


def _install_sip(front: FrontEnd) -> None:
    from csta_front.tr87 import install
    install(front)


def _install_soap(front: FrontEnd) -> None:
    from csta_front.soap import install
    install(front)


def _on_first_connection(front: FrontEnd, kind: str, install) -> None:
    """Build the service of `kind` connections when the first one comes. Importing SIP and SOAP
    (h11, the WSDL, the SIP parser) was a third of a CSTA server's start, and most servers of a
    large exchange never see either (issue 16, docs/benchmarks.md)."""
    def first(front_: FrontEnd, connection):
        install(front)  # puts the service's own handler in front.stream_handlers[kind]
        return front.stream_handlers[kind](front_, connection)
    front.stream_handlers[kind] = first


def _tls_context(run_dir: Path, settings, lim: int) -> ssl.SSLContext | None:
    """The TLS port opens only with a valid certificate, as the seed requires."""
    if settings.tls_port is None:
        return None
    from csta_front.certificates import CertificateError, load_installed  # cryptography: only for TLS
    try:
        installed = load_installed(run_dir)
    except CertificateError as exc:
        logging.getLogger("csta").error("LIM %d: TLS port %d not opened: %s (see mxone_certificate)",
                                        lim, settings.tls_port, exc)
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(installed.cert_path, installed.key_path)
    return context


def _raise_file_limit() -> None:
    """Thousands of client connections need thousands of descriptors: take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _incarnation() -> int:
    return int(time.time() * 1000) % 2_000_000_000  # a front end keeps no state: any fresh number will do


if __name__ == "__main__":
    sys.exit(main())
