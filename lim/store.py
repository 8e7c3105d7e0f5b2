"""A LIM's persistent state: what must survive kill -9 (sqlite3 in WAL mode).

Device state is a small JSON value per (device, key): `logged_on`, `features`. The boot counter
gives each start of the LIM a new incarnation, which also keeps call IDs unique.

The disk may fail under a running LIM (full, remounted read-only, the file locked or corrupt).
The LIM must go on serving calls, so a write never raises: the store keeps the whole device state
in memory, marks what could not be written as pending, says why in `status()`, logs one line per
kind of fault, and writes everything pending again once the fault clears (`retry`, called on the
next change and by the LIM's timer). A file that is not a database at start is moved aside and the
LIM starts empty rather than crash-looping.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("lim.store")

BUSY_TIMEOUT_S = 1.0   # a lock held by someone else: wait this long, then count it as a fault
RETRY_S = 2.0          # while failing, try again at most this often

# sqlite's error names (Python 3.11 puts them on the exception) -> the reason said in status and log.
KINDS = {"SQLITE_FULL": "disk full", "SQLITE_READONLY": "read-only", "SQLITE_BUSY": "locked",
         "SQLITE_LOCKED": "locked", "SQLITE_CANTOPEN": "cannot open", "SQLITE_IOERR": "I/O error",
         "SQLITE_CORRUPT": "corrupt", "SQLITE_NOTADB": "corrupt", "SQLITE_PERM": "read-only"}
MESSAGES = (("disk is full", "disk full"), ("readonly", "read-only"), ("read-only", "read-only"),
            ("locked", "locked"), ("unable to open", "cannot open"), ("i/o error", "I/O error"),
            ("malformed", "corrupt"), ("not a database", "corrupt"), ("no space", "disk full"))


def fault_kind(exc: BaseException) -> str:
    """The kind of a store fault, from sqlite's error name, else its message."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    for prefix, kind in KINDS.items():
        if name == prefix or name.startswith(prefix + "_"):
            return kind
    text = str(exc).lower()
    for needle, kind in MESSAGES:
        if needle in text:
            return kind
    return "error"


Connect = Callable[[str], sqlite3.Connection]


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)  # autocommit: each write lands


class Store:
    def __init__(self, path: Path | str, clock: Callable[[], float] = time.monotonic,
                 connect: Connect = _connect, wall_clock: Callable[[], float] = time.time):
        self.path = str(path)
        self.clock = clock
        self.wall_clock = wall_clock
        self._connect = connect
        self.db: sqlite3.Connection | None = None
        self.state: dict[str, dict[str, Any]] = {}   # the whole device state, as the LIM has it
        self.pending: set[tuple[str, str]] = set()    # (number, key) not yet written
        self.boots = 0
        self.boots_pending = False
        self.fault: str | None = None                 # "disk full: database or disk is full"
        self._logged: set[str] = set()                # kinds logged in this fault
        self._next_retry = 0.0
        self.notes: list[str] = []                    # what happened at start (a corrupt file moved aside)
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._failed(exc)
        self._start()

    # -- start -----------------------------------------------------------------------------------
    def _start(self) -> None:
        try:
            self.db = self._open()
            self._load(self.db)
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            if fault_kind(exc) == "corrupt" and self._move_aside(exc):
                self._start()
                return
            self._failed(exc)
            self._load_read_only()

    def _open(self) -> sqlite3.Connection:
        db = self._connect(self.path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS device_state (number TEXT, key TEXT, value TEXT,"
                       " PRIMARY KEY (number, key))")
        except BaseException:
            db.close()
            raise
        return db

    def _load(self, db: sqlite3.Connection) -> None:
        state: dict[str, dict[str, Any]] = {}
        for number, key, value in db.execute("SELECT number, key, value FROM device_state"):
            state.setdefault(number, {})[key] = json.loads(value)
        row = db.execute("SELECT value FROM meta WHERE key='boots'").fetchone()
        self.state, self.boots = state, int(row[0]) if row else 0

    def _load_read_only(self) -> None:
        """The file cannot be opened for writing (a read-only directory, a full disk): read what it
        holds, so the LIM starts with its stored state and writes it back once it can."""
        if self.path == ":memory:" or not Path(self.path).exists():
            return
        try:
            db = sqlite3.connect(f"file:{Path(self.path).resolve()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
            try:
                self._load(db)
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.error("persist: cannot read %s either (%s): starting with the topology's state", self.path, exc)

    def _move_aside(self, exc: BaseException) -> bool:
        """Rename a corrupt file (and its WAL) out of the way; False if that is impossible too."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.wall_clock()))
        aside = f"{self.path}.corrupt-{stamp}"
        try:
            Path(self.path).rename(aside)
        except OSError as err:
            log.error("persist: %s is corrupt (%s) and cannot be moved aside (%s)", self.path, exc, err.strerror)
            return False
        for suffix in ("-wal", "-shm"):
            Path(self.path + suffix).unlink(missing_ok=True)
        note = f"{Path(self.path).name} was corrupt ({exc}): kept as {Path(aside).name}, started empty"
        log.error("persist: %s", note)
        self.notes.append(note)
        return True

    # -- the LIM's interface ------------------------------------------------------------------------
    def next_incarnation(self) -> int:
        """The next boot number. It is counted in memory if it cannot be written, and written later."""
        self.boots += 1
        self.boots_pending = True
        self._write()
        return self.boots

    def device_state(self) -> dict[str, dict[str, Any]]:
        return {number: dict(keys) for number, keys in self.state.items()}

    def set_device_state(self, number: str, key: str, value: Any) -> None:
        self.state.setdefault(number, {})[key] = json.loads(json.dumps(value))  # a copy, as stored
        self.pending.add((number, key))
        if self.fault is None or self.clock() >= self._next_retry:
            self._write()

    def retry(self) -> None:
        """While failing: try again (the LIM's timer calls this every RETRY_S)."""
        if self.fault is not None and self.clock() >= self._next_retry:
            self._write()

    def status(self) -> dict[str, Any]:
        """What lim.status reports: `persist` is "ok" or "failing (reason)"."""
        waiting = len(self.pending) + self.boots_pending
        return {"persist": "ok" if self.fault is None else f"failing ({self.fault})",
                "persist_pending": waiting, "persist_notes": list(self.notes)}

    def close(self) -> None:
        self._close_quietly()

    # -- writing --------------------------------------------------------------------------------------
    def _write(self, may_move: bool = True) -> None:
        recovering = self.fault is not None
        try:
            if self.db is None or recovering:  # a fresh connection: the old one may be stuck in the fault
                self._close_quietly()
                self.db = self._open()
            written = len(self.pending) + self.boots_pending
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                if self.boots_pending:
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES ('boots', ?)", (str(self.boots),))
                self.db.executemany("INSERT OR REPLACE INTO device_state VALUES (?, ?, ?)",
                                    [(n, k, json.dumps(self.state[n][k])) for n, k in sorted(self.pending)])
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            if may_move and fault_kind(exc) == "corrupt" and self._move_aside(exc):
                self.pending = {(n, k) for n, keys in self.state.items() for k in keys}  # all of it, anew
                self.boots_pending = True
                self._write(may_move=False)
                return
            self._failed(exc)
            return
        self.pending.clear()
        self.boots_pending = False
        if recovering:
            log.warning("persist: ok again, %d change%s written to %s", written, "" if written == 1 else "s",
                        self.path)
            self.fault = None
            self._logged.clear()

    def _failed(self, exc: BaseException) -> None:
        kind = fault_kind(exc)
        self.fault = f"{kind}: {getattr(exc, 'strerror', None) or exc}"
        self._next_retry = self.clock() + RETRY_S
        if kind not in self._logged:  # one line per kind of fault, not one per write
            self._logged.add(kind)
            log.error("persist: failing (%s) writing %s; the LIM goes on in memory and writes again "
                      "when it can (retrying every %.0f s)", self.fault, self.path, RETRY_S)

    def _close_quietly(self) -> None:
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass  # closing a connection in a fault: nothing more to lose
            self.db = None
