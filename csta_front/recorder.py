"""Recording of CSTA traffic (`mxone record`): every document of the chosen sessions, in and out,
with a timestamp, in a readable log a developer can attach to a bug report.

    2026-11-27 21:50:01.123  session 3 (127.0.0.1:53412)  <- 0001  <MakeCall xmlns=...>...</MakeCall>
    2026-11-27 21:50:01.125  session 3 (127.0.0.1:53412)  -> 0001  <MakeCallResponse ...>

`<-` is from the client, `->` to it. One line per document (line breaks inside are folded).
"""
from __future__ import annotations

import time
from pathlib import Path


class Recorder:
    def __init__(self, path: Path, sessions: set[int] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sessions = sessions  # None: every session
        self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered: readable live
        self.count = 0

    def wants(self, session_id: int) -> bool:
        return self.sessions is None or session_id in self.sessions

    def document(self, session_id: int, peer: str, outgoing: bool, invoke_id: int, xml: bytes) -> None:
        if not self.wants(session_id):
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        text = xml.decode("utf-8", errors="replace").replace("\r", " ").replace("\n", " ")
        self.file.write(f"{stamp}  session {session_id} ({peer})  {'->' if outgoing else '<-'} "
                        f"{invoke_id:04d}  {text}\n")
        self.count += 1

    def close(self) -> None:
        self.file.close()
