"""A LIM's store when its disk fails (issue 18): writes that fail keep the state in memory, say
why once, and land when the fault clears; a corrupt file at start is moved aside. The errors are
sqlite's own (its messages, its error names), raised by a wrapped real connection or by real files."""
from __future__ import annotations

import logging
import sqlite3

import pytest

import lim.store
from broker.timers import FakeClock
from lim.store import RETRY_S, Store, fault_kind


class FaultyConnection:
    """A real sqlite connection whose writes raise the error armed in `faults` (None: work)."""

    def __init__(self, path: str, faults: dict):
        self.real = sqlite3.connect(path, isolation_level=None)
        self.faults = faults

    def _check(self, sql: str) -> None:
        error = self.faults.get("error")
        if error is not None and not sql.lstrip().upper().startswith(("SELECT", "PRAGMA")):
            raise error

    def execute(self, sql: str, params=()):
        self._check(sql)
        return self.real.execute(sql, params)

    def executemany(self, sql: str, rows):
        self._check(sql)
        return self.real.executemany(sql, rows)

    def close(self) -> None:
        self.real.close()

    def __enter__(self):
        return self.real.__enter__()

    def __exit__(self, *exc):
        return self.real.__exit__(*exc)


def sqlite_error(cls, message: str, name: str) -> sqlite3.Error:
    exc = cls(message)
    exc.sqlite_errorname = name  # as sqlite3 sets it on the errors it raises (Python 3.11)
    return exc


def faulty_store(path, faults: dict, clock: FakeClock) -> Store:
    return Store(path, clock=clock, connect=lambda p: FaultyConnection(p, faults))


def stored(path) -> dict:
    db = sqlite3.connect(path)
    try:
        return {(n, k): v for n, k, v in db.execute("SELECT number, key, value FROM device_state")}
    finally:
        db.close()


def test_a_full_disk_keeps_changes_in_memory_says_so_once_and_writes_them_when_space_returns(tmp_path, caplog):
    clock = FakeClock()
    faults: dict = {}
    path = tmp_path / "lim-1.db"
    store = faulty_store(path, faults, clock)
    assert store.next_incarnation() == 1
    store.set_device_state("1000", "logged_on", True)
    faults["error"] = sqlite_error(sqlite3.OperationalError, "database or disk is full", "SQLITE_FULL")
    caplog.set_level(logging.ERROR, logger="lim.store")
    for n in range(5):  # five writes, one log line
        store.set_device_state("1001", "features", {"dnd": n})
    store.set_device_state("1000", "logged_on", False)
    assert store.status()["persist"] == "failing (disk full: database or disk is full)"
    assert store.status()["persist_pending"] == 2
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert len(caplog.records) == 1 and "disk full" in caplog.records[0].getMessage()
    assert store.device_state()["1001"]["features"] == {"dnd": 4}  # the LIM's view is unchanged
    assert stored(path) == {("1000", "logged_on"): "true"}          # what was stored is still there

    faults["error"] = None
    store.retry()  # too early: nothing tried before RETRY_S
    assert store.status()["persist"].startswith("failing")
    clock.advance(RETRY_S)
    store.retry()
    assert store.status() == {"persist": "ok", "persist_pending": 0, "persist_notes": []}
    assert stored(path) == {("1000", "logged_on"): "false", ("1001", "features"): '{"dnd": 4}'}
    store.close()
    assert Store(path).device_state() == {"1000": {"logged_on": False}, "1001": {"features": {"dnd": 4}}}


def test_the_next_change_after_the_retry_interval_writes_everything_pending(tmp_path):
    clock = FakeClock()
    faults: dict = {"error": sqlite_error(sqlite3.OperationalError, "attempt to write a readonly database",
                                          "SQLITE_READONLY")}
    path = tmp_path / "lim-1.db"
    sqlite3.connect(path).close()
    store = faulty_store(path, faults, clock)
    assert store.status()["persist"] == "failing (read-only: attempt to write a readonly database)"
    incarnation = store.next_incarnation()  # counted in memory all the same
    store.set_device_state("1000", "logged_on", True)
    faults["error"] = None
    clock.advance(RETRY_S)
    store.set_device_state("1001", "logged_on", True)
    assert store.status()["persist"] == "ok"
    store.close()
    again = Store(path)
    assert again.next_incarnation() == incarnation + 1  # the boot counter was written too
    assert again.device_state() == {"1000": {"logged_on": True}, "1001": {"logged_on": True}}


def test_each_kind_of_fault_is_logged_once_and_again_after_a_recovery(tmp_path, caplog):
    clock = FakeClock()
    faults: dict = {}
    store = faulty_store(tmp_path / "lim-1.db", faults, clock)
    caplog.set_level(logging.WARNING, logger="lim.store")
    for error in (sqlite_error(sqlite3.OperationalError, "database is locked", "SQLITE_BUSY"),
                  sqlite_error(sqlite3.OperationalError, "database or disk is full", "SQLITE_FULL"),
                  sqlite_error(sqlite3.OperationalError, "database is locked", "SQLITE_BUSY")):
        faults["error"] = error
        clock.advance(RETRY_S)
        store.set_device_state("1000", "logged_on", True)
    faults["error"] = None
    clock.advance(RETRY_S)
    store.retry()
    faults["error"] = sqlite_error(sqlite3.OperationalError, "database is locked", "SQLITE_BUSY")
    store.set_device_state("1000", "logged_on", False)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split("(")[1].split(":")[0] for line in lines if "failing" in line] == \
        ["locked", "disk full", "locked"]
    assert sum("ok again" in line for line in lines) == 1


def test_a_corrupt_file_at_start_is_moved_aside_and_the_lim_starts_empty(tmp_path, caplog):
    path = tmp_path / "lim-1.db"
    path.write_bytes(b"this is not an sqlite file, it was overwritten " * 100)
    caplog.set_level(logging.ERROR, logger="lim.store")
    store = Store(path, wall_clock=lambda: 0.0)
    aside = list(tmp_path.glob("lim-1.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not an sqlite file")
    assert store.status()["persist"] == "ok"
    assert store.status()["persist_notes"] == [
        f"lim-1.db was corrupt (file is not a database): kept as {aside[0].name}, started empty"]
    assert any("kept as" in r.getMessage() for r in caplog.records)
    assert store.next_incarnation() == 1 and store.device_state() == {}
    store.set_device_state("1000", "logged_on", True)
    store.close()
    assert Store(path).device_state() == {"1000": {"logged_on": True}}


def test_a_file_corrupted_under_a_running_lim_is_replaced_by_its_whole_state(tmp_path):
    clock = FakeClock()
    faults: dict = {}
    path = tmp_path / "lim-1.db"
    store = faulty_store(path, faults, clock)
    store.next_incarnation()
    store.set_device_state("1000", "logged_on", True)
    faults["error"] = sqlite_error(sqlite3.DatabaseError, "database disk image is malformed", "SQLITE_CORRUPT")
    store.set_device_state("1001", "logged_on", True)  # corrupt: moved aside, the fresh file fails as well
    assert len(list(tmp_path.glob("lim-1.db.corrupt-*"))) == 1
    assert store.status()["persist"].startswith("failing (corrupt")
    faults["error"] = None
    clock.advance(RETRY_S)
    store.retry()
    assert store.status()["persist"] == "ok"
    store.close()
    again = Store(path)
    assert again.device_state() == {"1000": {"logged_on": True}, "1001": {"logged_on": True}}
    assert again.next_incarnation() == 2


def test_a_lock_held_by_another_process_waits_the_busy_timeout_then_counts_as_a_fault(tmp_path, monkeypatch):
    monkeypatch.setattr(lim.store, "BUSY_TIMEOUT_S", 0.1)
    clock = FakeClock()
    path = tmp_path / "lim-1.db"
    store = Store(path, clock=clock)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    store.set_device_state("1000", "logged_on", True)
    assert store.status()["persist"] == "failing (locked: database is locked)"
    other.execute("COMMIT")
    other.close()
    clock.advance(RETRY_S)
    store.retry()
    assert store.status()["persist"] == "ok"
    store.close()
    assert Store(path).device_state() == {"1000": {"logged_on": True}}


@pytest.mark.parametrize("message, kind", [("database or disk is full", "disk full"),
                                           ("attempt to write a readonly database", "read-only"),
                                           ("database is locked", "locked"),
                                           ("file is not a database", "corrupt"),
                                           ("disk I/O error", "I/O error"),
                                           ("unable to open database file", "cannot open")])
def test_sqlite_messages_name_their_kind_without_error_names(message, kind):
    assert fault_kind(sqlite3.OperationalError(message)) == kind
