"""`mxone_certificate`: the exchange's TLS certificate for the CSTA servers' TLS ports.

    mxone_certificate --create [--cn NAME] [--days N]   a self-signed certificate for every LIM address
    mxone_certificate --install CERT KEY                 a certificate and key from elsewhere (PEM)
    mxone_certificate --print                            what is installed

The work is csta_front/certificates.py; this is the command around it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster.control import Cluster, ClusterError, default_run_dir
from cli.common import with_help
from cli.version import add_common_options
from csta_front.certificates import (
    CertificateError,
    create_self_signed,
    describe,
    install,
    load_installed,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mxone_certificate", description="The exchange's TLS certificate.")
    add_common_options(parser)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", action="store_true", help="create a self-signed certificate")
    action.add_argument("--install", nargs=2, metavar=("CERT", "KEY"), type=Path, help="install PEM files")
    action.add_argument("--print", action="store_true", help="print what is installed")
    parser.add_argument("--cn", default="mxone-sim", help="--create: the certificate's common name")
    parser.add_argument("--days", type=int, default=365, help="--create: days of validity (default 365)")
    parser.add_argument("--run-dir", type=Path, default=None, help="the cluster's run directory")
    with_help(parser, ["mxone_certificate --create --cn pbx.lab --days 90   # self-signed, for every LIM address",
                       "mxone_certificate --install server.crt server.key",
                       "mxone_certificate --print"],
              "0 done, 1 no usable certificate or run directory (the reason on standard error), 2 a bad command line")
    args = parser.parse_args(argv)
    run_dir = args.run_dir if args.run_dir is not None else default_run_dir()
    try:
        if args.print:
            print(describe(load_installed(run_dir)))
            return 0
        if args.create:
            if not 1 <= args.days <= 3650:
                raise CertificateError("--days must be 1 to 3650")
            addresses = [lim.address for lim in Cluster(run_dir).topology().lims]
            info = install(run_dir, *create_self_signed(args.cn, addresses, args.days))
        else:
            cert_file, key_file = args.install
            for path in (cert_file, key_file):
                if not path.is_file():
                    raise CertificateError(f"{path}: no such file")
            info = install(run_dir, cert_file.read_bytes(), key_file.read_bytes())
        print("Installed. " + describe(info))
        print("CSTA servers with a TLS port use it from their next start (csta -i restarts them).")
        return 0
    except (CertificateError, ClusterError) as exc:
        print(f"mxone_certificate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
