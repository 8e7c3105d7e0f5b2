"""The CSTA servers' store (data/csta.db) on a bad disk (issue 18): a corrupt file is kept aside
and the topology's settings apply again; a store that cannot be written is read as it is; a change
that cannot be stored fails with one clear line instead of a traceback."""
from __future__ import annotations

import sqlite3

import pytest

from csta_front.settings import AuthSettings, CstaStore, StoreError
from topology.loader import load_default_topology


def test_a_corrupt_store_is_kept_aside_and_the_topology_settings_apply(tmp_path):
    topology = load_default_topology()
    path = tmp_path / "csta.db"
    path.write_bytes(b"garbage, not sqlite " * 100)
    store = CstaStore(path, topology)
    [aside] = tmp_path.glob("csta.db.corrupt-*")
    assert aside.read_bytes().startswith(b"garbage")
    assert "was corrupt" in store.notes[0]
    assert store.server(1) == topology.lim(1).csta
    store.set_auth(AuthSettings(initiated=True))  # the fresh file takes changes
    store.close()
    assert CstaStore(path, topology).auth().initiated


class ReadOnlyConnection:
    """A connection whose writes fail as on a read-only file system."""

    def __init__(self, real: sqlite3.Connection):
        self.real = real

    def execute(self, sql: str, params=()):
        if sql.startswith("INSERT"):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return self.real.execute(sql, params)

    def close(self) -> None:
        self.real.close()


def test_a_change_that_cannot_be_stored_is_one_clear_error_and_reads_go_on(tmp_path):
    topology = load_default_topology()
    store = CstaStore(tmp_path / "csta.db", topology)
    store.set_auth(AuthSettings(initiated=True, mandatory=True))
    store.db = ReadOnlyConnection(store.db)
    with pytest.raises(StoreError, match="cannot store the change in .*csta.db: attempt to write a readonly"):
        store.set_server(1, None)
    assert store.server(1) == topology.lim(1).csta and store.auth().mandatory  # nothing lost
    store.close()
