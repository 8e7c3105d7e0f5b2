"""What every command module of the CLI shares: the one-line error, the run directory option, and the
measuring commands' outputs (--csv, --png)."""
from __future__ import annotations

import argparse
import json
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


def add_output_options(parser, chart: str, png: bool = True) -> None:
    """--csv and --png, the same for bench, scale and chaos (tools/report.py)."""
    parser.add_argument("--csv", nargs="?", const="-", default=None, metavar="FILE",
                        help="write the table as CSV to FILE (to standard output, instead of the table, "
                             "with no FILE)")
    if png:
        parser.add_argument("--png", type=Path, default=None, metavar="FILE",
                            help=f"draw {chart} as a PNG chart (needs: pip install 'mxone-sim[plot]')")


def check_outputs(args: argparse.Namespace, command: str) -> None:
    """Before anything runs: one thing on standard output, and charts only where matplotlib is."""
    if args.csv == "-" and args.json:
        raise CliError(f"{command}: --csv to standard output and --json cannot both be printed; give --csv FILE", 2)
    if getattr(args, "png", None) is not None:
        from tools import report
        try:
            report.need_charts()
        except report.ChartError as exc:
            raise CliError(f"{command}: {exc}", 2) from None


def emit(args: argparse.Namespace, result, table: str, csv_text, chart) -> None:
    """The result as the options ask: JSON or the table (or CSV) on standard output, CSV and PNG files."""
    from tools import report
    if args.csv is not None:
        report.write_text(args.csv, csv_text())
    if getattr(args, "png", None) is not None:
        chart(args.png)
    if args.json:
        print(json.dumps(result), flush=True)
    elif args.csv != "-":
        print(table, flush=True)
