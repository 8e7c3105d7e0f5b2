"""What every server process of the exchange does first (broker, LIM, CSTA server, live view): set
up its log at the level asked, and tie its life to supervisord's. One place, so the four agree."""
from __future__ import annotations

import sys

from netio.logs import configure_logging
from netio.parent import die_with_supervisor


def start_process(prog: str, node: str, log_level: str | None) -> int | None:
    """None to go on; else the exit status, the reason already said on stderr in one line:
    2 for a bad log level, 1 when supervisord is already gone (we would be an orphan)."""
    try:
        configure_logging(node, log_level)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if (gone := die_with_supervisor()) is not None:
        print(f"{prog}: {gone}: not starting", file=sys.stderr)
        return 1
    return None
