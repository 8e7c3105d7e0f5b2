"""How every process of the exchange logs: one line per record on stderr (supervisord files it in
the run directory's logs/), at the level of `--log-level`, else of $MXONE_LOG_LEVEL, else info.
The variable reaches every process because supervisord and plain children inherit the environment
of `mxone up`, which sets it from its own `--log-level`."""
from __future__ import annotations

import argparse
import logging
import os

LEVELS = ("debug", "info", "warning", "error")
ENV = "MXONE_LOG_LEVEL"


def add_log_level_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LEVELS, default=None,
                        help=f"how much to log (default: ${ENV}, else info)")


def chosen_level(option: str | None) -> str:
    """The level to use; ValueError naming the variable when $MXONE_LOG_LEVEL is not a level."""
    if option:
        return option
    value = os.environ.get(ENV, "").strip().lower()
    if value and value not in LEVELS:
        raise ValueError(f"{ENV}={os.environ[ENV]!r} is not a log level ({', '.join(LEVELS)})")
    return value or "info"


def configure_logging(node: str, option: str | None) -> None:
    """Set up the process's log; `node` names the process on every line (e.g. `lim-1`)."""
    logging.basicConfig(level=getattr(logging, chosen_level(option).upper()),
                        format=f"%(asctime)s {node} %(levelname)s %(message)s")
    # A log that cannot be written (a full disk under a plain child's log file) must cost the line,
    # not the process's time: by default logging prints a traceback to stderr for every record.
    logging.raiseExceptions = False
