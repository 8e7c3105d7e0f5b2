"""The CSTA servers' administrative data, in the cluster's data folder (`data/csta.db`, sqlite WAL):
per LIM the server settings (`csta -i/-e`), and the application session authentication settings
and users (`csta_authentication`). The topology gives each LIM's initial settings the first time
the store is opened; after that the store is the truth, and it survives kill -9 and restarts.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from topology.model import CSTA_SERVER_TYPES, CstaSettings, Topology

log = logging.getLogger("csta.settings")
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}  # stdlib scrypt: a memory-hard password hash


@dataclass(frozen=True)
class AuthSettings:
    """ECMA-354 application session authentication (`csta_authentication`)."""
    initiated: bool = False
    mandatory: bool = False
    application_ids: tuple[str, ...] = ()      # empty: any application ID is accepted
    max_session_duration_s: int = 3600
    users: dict[str, str] = field(default_factory=dict)  # name -> "scrypt$salt$hash" (never the password)

    def public(self) -> dict:
        """What may be printed: everything but the password hashes."""
        data = asdict(self)
        data["users"] = sorted(self.users)
        data["application_ids"] = list(self.application_ids)
        return data


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hash_password(password, bytes.fromhex(salt_hex)).split("$")[2]
    return hmac.compare_digest(candidate, digest_hex)


def validate_settings(settings: CstaSettings) -> None:
    """Raise ValueError naming the problem with a set of server settings."""
    if settings.server_type not in CSTA_SERVER_TYPES:
        raise ValueError(f"server type {settings.server_type!r}: use {' or '.join(CSTA_SERVER_TYPES)}")
    for name in ("port", "tls_port"):
        port = getattr(settings, name)
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"{name} {port} is not a port (1-65535)")
    if settings.tls_port is not None and settings.tls_port == settings.port:
        raise ValueError("the TLS port must differ from the port")
    if settings.max_sessions < 1 or settings.max_monitors < 1:
        raise ValueError("maximum sessions and monitors must be at least 1")


class StoreError(Exception):
    """A change that could not be stored (disk full, read-only, locked): one line for the CLI."""


class CstaStore:
    """Opening never fails on a bad disk: a corrupt file is moved aside (the topology's settings
    again, said in the log and `notes`); a file that cannot be written is read as it is, and the
    topology's settings stand in for the LIMs it does not name yet (`fault` says why). Only an
    administrative change (`set_server`, `set_auth`) that cannot be stored fails, with StoreError."""

    def __init__(self, path: Path | str, topology: Topology):
        self.path = str(path)
        self.topology = topology
        self.fault: str | None = None
        self.notes: list[str] = []
        self.db: sqlite3.Connection | None = None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if self.db is not None:
                self.db.close()
                self.db = None
            try:
                if "not a database" not in str(exc) and "malformed" not in str(exc):
                    raise
                self._move_aside(exc)
            except (OSError, sqlite3.DatabaseError) as err:  # not corrupt, or cannot be replaced
                self.db = None
                self._read_only(err)

    def _open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)  # 10 s: a lock is waited for
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS server (lim INTEGER PRIMARY KEY, settings TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS auth (id INTEGER PRIMARY KEY CHECK (id = 1), settings TEXT)")
        known = {row[0] for row in self.db.execute("SELECT lim FROM server")}
        for lim in self.topology.lims:
            if lim.number not in known:  # first use: the topology's settings ("null" = not initiated)
                self._write_server(lim.number, lim.csta)

    def _move_aside(self, exc: Exception) -> None:
        aside = f"{self.path}.corrupt-{int(time.time())}"
        Path(self.path).rename(aside)
        for suffix in ("-wal", "-shm"):
            Path(self.path + suffix).unlink(missing_ok=True)
        note = (f"{Path(self.path).name} was corrupt ({exc}): kept as {Path(aside).name}; the CSTA settings "
                "are the topology's again and authentication is not initiated")
        log.error("%s", note)
        self.notes.append(note)
        self._open()

    def _read_only(self, exc: Exception) -> None:
        self.fault = str(exc)
        log.error("%s cannot be written (%s): reading it as it is; changes cannot be stored", self.path, exc)
        if Path(self.path).exists():
            try:
                self.db = sqlite3.connect(f"file:{Path(self.path).resolve()}?mode=ro", uri=True, timeout=10)
            except sqlite3.Error:
                self.db = None

    @staticmethod
    def for_run_dir(run_dir: Path, topology: Topology) -> "CstaStore":
        return CstaStore(Path(run_dir) / "data" / "csta.db", topology)

    # -- servers ---------------------------------------------------------------------------------
    def server(self, lim: int) -> CstaSettings | None:
        row = self._read("SELECT settings FROM server WHERE lim = ?", (lim,))
        if row is None:  # not stored (a store that cannot be written): the topology's settings
            return next((x.csta for x in self.topology.lims if x.number == lim), None)
        if row[0] == "null":
            return None
        return CstaSettings(**json.loads(row[0]))

    def set_server(self, lim: int, settings: CstaSettings | None) -> None:
        if settings is not None:
            validate_settings(settings)
        self._write_server(lim, settings)

    def _write_server(self, lim: int, settings: CstaSettings | None) -> None:
        value = "null" if settings is None else json.dumps(asdict(settings))
        self._write("INSERT OR REPLACE INTO server VALUES (?, ?)", (lim, value))

    def _read(self, sql: str, params: tuple) -> tuple | None:
        if self.db is None:
            return None
        try:
            return self.db.execute(sql, params).fetchone()
        except sqlite3.DatabaseError as exc:
            log.error("%s cannot be read (%s)", self.path, exc)
            return None

    def _write(self, sql: str, params: tuple) -> None:
        try:
            if self.db is None:
                raise sqlite3.OperationalError(self.fault or "the store is not open")
            self.db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot store the change in {self.path}: {exc}") from None

    # -- authentication -----------------------------------------------------------------------------
    def auth(self) -> AuthSettings:
        row = self._read("SELECT settings FROM auth WHERE id = 1", ())
        if row is None:
            return AuthSettings()
        data = json.loads(row[0])
        data["application_ids"] = tuple(data.get("application_ids", ()))
        return AuthSettings(**data)

    def set_auth(self, settings: AuthSettings) -> None:
        if settings.max_session_duration_s < 1:
            raise ValueError("the maximum session duration must be at least 1 second")
        data = asdict(settings)
        data["application_ids"] = list(settings.application_ids)
        self._write("INSERT OR REPLACE INTO auth VALUES (1, ?)", (json.dumps(data),))

    def change_auth(self, **changes) -> AuthSettings:
        settings = replace(self.auth(), **changes)
        self.set_auth(settings)
        return settings

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
