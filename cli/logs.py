"""`mxone logs [-f] [-n N] [PROGRAM]`: read the cluster's logs (the run directory's logs/, one file per
program and supervisord's own), whether or not the exchange is still running.

Without PROGRAM, every log's last lines are merged in time order, each line led by its program's
name; a line without a timestamp of its own (a traceback's) keeps the one of the line before it.
`-f` then prints what each log gains until Ctrl-C."""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from cli.common import CliError, run_dir_of, with_help

_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+")
FOLLOW_INTERVAL_S = 0.2


def add_parsers(sub, with_run_dir) -> None:
    logs = with_help(with_run_dir(sub.add_parser("logs", help="print the cluster's logs (-f: and follow them)")),
                     ["mxone logs                                # the last lines of every program, in time order",
                      "mxone logs -f lim-2                       # LIM 2's log as it grows (Ctrl-C stops)"],
                     "0 done, 1 there are no logs or no such program, 2 a bad command line")
    logs.add_argument("program", nargs="?", help="one program (broker, lim-N, csta-N, view, supervisord)")
    logs.add_argument("-n", "--lines", type=int, default=20, help="lines from the end of each log (default 20)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing what the logs gain")
    logs.set_defaults(handler=cmd_logs)


def log_files(run_dir: Path) -> dict[str, Path]:
    folder = run_dir / "logs"
    return {p.stem: p for p in sorted(folder.glob("*.log"))} if folder.is_dir() else {}


def tail(text: str, count: int) -> list[str]:
    return text.splitlines()[-count:] if count > 0 else []


def merge(lines_by_program: dict[str, list[str]]) -> list[str]:
    """Lines of several logs in time order (stable: a log's own order is kept), led by the program."""
    stamped = []
    for program, lines in lines_by_program.items():
        stamp = ""
        for index, line in enumerate(lines):
            match = _STAMP.match(line)
            stamp = match.group(0).replace(",", ".") if match else stamp
            stamped.append((stamp, program, index, f"{program} | {line}"))
    return [line for *_, line in sorted(stamped)]


def cmd_logs(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise CliError("logs: --lines must be 0 or more", 2)
    run_dir = run_dir_of(args)
    files = log_files(run_dir)
    if not files:
        raise CliError(f"no logs in {run_dir / 'logs'} (no exchange was started there)")
    if args.program is not None:
        if args.program not in files:
            raise CliError(f"logs: no program {args.program!r} (the logs are of {', '.join(files)})")
        files = {args.program: files[args.program]}
    sizes, texts = {}, {}
    for program, path in files.items():
        data = path.read_bytes()
        sizes[program] = len(data)
        texts[program] = tail(data.decode("utf-8", errors="replace"), args.lines)
    lines = texts[args.program] if args.program else merge(texts)
    if lines:
        print("\n".join(lines), flush=True)
    if not args.follow:
        return 0
    try:
        while True:
            time.sleep(FOLLOW_INTERVAL_S)
            for program, path in log_files(run_dir).items():
                if args.program not in (None, program):
                    continue
                size = path.stat().st_size
                seen = sizes.get(program, 0)
                if size < seen:  # rotated by supervisord: start again at the new file's beginning
                    seen = 0
                if size > seen:
                    with open(path, "rb") as f:
                        f.seek(seen)
                        new = f.read(size - seen)
                    sizes[program] = seen + len(new)
                    for line in new.decode("utf-8", errors="replace").splitlines():
                        print(line if args.program else f"{program} | {line}", flush=True)
                else:
                    sizes[program] = size
    except KeyboardInterrupt:
        return 0
