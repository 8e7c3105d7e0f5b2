"""A LIM's persistent state: what must survive kill -9 (sqlite3 in WAL mode).

Device state is a small JSON value per (device, key): `logged_on` now; features later. The boot
counter gives each start of the LIM a new incarnation, which also keeps call IDs unique.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class Store:
    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each write lands
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS device_state (number TEXT, key TEXT, value TEXT,"
                        " PRIMARY KEY (number, key))")

    def next_incarnation(self) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT value FROM meta WHERE key='boots'").fetchone()
            boots = int(row[0]) + 1 if row else 1
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('boots', ?)", (str(boots),))
        return boots

    def device_state(self) -> dict[str, dict[str, Any]]:
        states: dict[str, dict[str, Any]] = {}
        for number, key, value in self.db.execute("SELECT number, key, value FROM device_state"):
            states.setdefault(number, {})[key] = json.loads(value)
        return states

    def set_device_state(self, number: str, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO device_state VALUES (?, ?, ?)",
                        (number, key, json.dumps(value)))

    def close(self) -> None:
        self.db.close()
