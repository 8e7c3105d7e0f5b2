"""What every console script's parser shares: the one version string of mxone-sim (pyproject.toml reads
it, a dynamic version; `--version` prints it) and shell completion (`--print-completion bash|zsh|tcsh`,
written by shtab from the parser itself, so it cannot drift from the options)."""
from __future__ import annotations

import argparse

import shtab

VERSION = "0.2.0"


def add_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s (mxone-sim) {VERSION}")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    add_version_option(parser)
    shtab.add_argument_to(parser, ["--print-completion"], help="print a shell completion script (bash, zsh, tcsh)")
