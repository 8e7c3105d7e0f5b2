"""The wire tap: every document a CSTA session sends, appended to a file, when MXONE_WIRE_LOG says where.

With `MXONE_WIRE_LOG=DIR` in its environment, each process writes `DIR/wire-<pid>.log`: one JSON
object a line, `{"time", "pid", "session", "peer", "invoke_id", "xml"}`, in the order sent. It is
how the test suite checks every document the server sends against the ECMA-323 schema, and a way
to capture a whole run's output (unlike `mxone record`, which is per LIM, on demand and both ways).
Unset, `CstaSession` pays one `is None` test per document. A file that cannot be written costs a
log line and the tap, never the document.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

ENV = "MXONE_WIRE_LOG"
log = logging.getLogger("csta")


class WireTap:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._lock = threading.Lock()  # SOAP's notifier thread and the poll loop may both send
        self._file = None
        self._pid = 0

    def path(self) -> Path:
        return self.directory / f"wire-{os.getpid()}.log"

    def document(self, session: int, peer: str, invoke_id: int, xml: bytes) -> None:
        line = json.dumps({"time": round(time.time(), 6), "pid": os.getpid(), "session": session, "peer": peer,
                           "invoke_id": invoke_id, "xml": xml.decode("utf-8", "replace")})
        global TAP
        with self._lock:
            try:
                if self._file is None or self._pid != os.getpid():  # a forked child writes its own file
                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path(), "a", encoding="utf-8")
                    self._pid = os.getpid()
                self._file.write(line + "\n")
                self._file.flush()  # read by another process at any moment: no half-written lines kept back
            except OSError as exc:
                log.warning("wire tap %s: %s: tap off", self.directory, exc)
                TAP = None


def from_environment() -> WireTap | None:
    directory = os.environ.get(ENV)
    return WireTap(directory) if directory else None


TAP: WireTap | None = from_environment()


def configure(directory: str | os.PathLike | None) -> None:
    """Turn the tap on (or off, None) in this process, e.g. after setting MXONE_WIRE_LOG late."""
    global TAP
    TAP = WireTap(directory) if directory else None
