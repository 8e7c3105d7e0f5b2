"""What every command module of the CLI shares: the one-line error and the run directory option."""
from __future__ import annotations

import argparse
from pathlib import Path

from cluster.control import default_run_dir


class CliError(Exception):
    """A one-line message for the user; `status` is the exit code."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def with_run_dir(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="the cluster's run directory (default: $MXONE_RUN_DIR or ./run)")
    return parser


def run_dir_of(args: argparse.Namespace) -> Path:
    return args.run_dir if args.run_dir is not None else default_run_dir()


def plural(count: int, noun: str) -> str:
    """`1 session`, `2 sessions`, `2 processes`: for the counts the commands print."""
    return f"{count} {noun}{'' if count == 1 else ('es' if noun.endswith('s') else 's')}"


# The exit status every `mxone` command shares (cli/main.py maps the errors to these).
EXIT_STATUS = ("0 done, 1 the exchange refused or failed (the reason on standard error), "
               "2 a bad command line or topology, 130 interrupted (Ctrl-C)")


def with_help(parser: argparse.ArgumentParser, examples: list[str], exit_status: str = EXIT_STATUS
              ) -> argparse.ArgumentParser:
    """An epilog with examples (each `command  # what it does`) and the exit status, laid out as
    written: `--help` should show how a command is used, not only what its options are."""
    title = "example" if len(examples) == 1 else "examples"
    parser.epilog = f"{title}:\n" + "\n".join(f"  {line}" for line in examples) + f"\n\nexit status: {exit_status}"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser
