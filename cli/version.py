"""The one version string of mxone-sim: pyproject.toml reads it (a dynamic version), and every console
script prints it with `--version`."""
from __future__ import annotations

import argparse

VERSION = "0.2.0"


def add_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s (mxone-sim) {VERSION}")
