"""Disk and data faults under real LIM processes (issue 18): a LIM whose data folder is full or
read-only goes on serving calls, says `persist: failing` in lim.status, and writes again when the
fault clears; a corrupt store at start is kept aside and the LIM starts empty."""
from __future__ import annotations

from broker.protocol import Kind, lim_node
from tests.disk import fill, read_only, tmpfs
from tests.procs import running_exchange, wait_for


def lim_status(exchange, lim: int) -> dict:
    return exchange.client.request(lim_node(lim), Kind.LIM_STATUS, timeout=2.0)


def call_works(exchange, caller: str = "1001", called: str = "2000") -> None:
    """A call across the two LIMs, answered and cleared: the exchange still serves calls."""
    exchange.phone(caller).dial(called)
    wait_for(lambda: exchange.phone(called).state()["calls"], 5, f"{called} to ring")
    exchange.phone(called).answer()
    wait_for(lambda: any(c["state"] == "connected" for c in exchange.phone(called).state()["calls"]), 5,
             f"{called} connected")
    exchange.phone(caller).hangup()
    wait_for(lambda: not exchange.phone(called).state()["calls"], 5, "the call to clear")


def test_a_lim_on_a_full_disk_serves_calls_and_stores_its_changes_once_space_returns(tmp_path):
    run = tmp_path / "run"
    with tmpfs(run / "data", "8m") as data, running_exchange(run, cstas=()) as ex:
        filler = fill(data)
        ex.exchange.phone("1000").do_not_disturb(True)     # a change that cannot be written
        call_works(ex.exchange)
        status = lim_status(ex.exchange, 1)
        assert status["persist"].startswith("failing (disk full"), status["persist"]
        assert status["persist_pending"] >= 1
        assert ex.exchange.phone("1000").features()["dnd"] is True  # the LIM's own view is intact
        log = (run / "logs" / "lim-1.log").read_text()
        assert log.count("persist: failing (disk full") == 1, log

        filler.unlink()
        wait_for(lambda: lim_status(ex.exchange, 1)["persist"] == "ok", 10, "LIM 1 to write again")
        assert "persist: ok again" in (run / "logs" / "lim-1.log").read_text()
        restart_lim(ex, 1)                                   # kill -9: only what was written survives
        assert ex.exchange.phone("1000").features()["dnd"] is True
        call_works(ex.exchange)


def restart_lim(ex, lim: int) -> None:
    """kill -9, then start it again: only what it wrote survives."""
    old = lim_status(ex.exchange, lim)["incarnation"]
    ex.procs.procs[f"lim-{lim}"].kill()
    ex.procs.procs[f"lim-{lim}"].wait()
    ex.procs.start_lim(lim)
    wait_for(lambda: lim_status(ex.exchange, lim)["incarnation"] > old, 15, f"LIM {lim} back")


def test_a_lim_started_on_a_read_only_data_folder_serves_calls_and_writes_once_it_can(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with running_exchange(run, cstas=()) as ex:
        ex.exchange.phone("1000").do_not_disturb(True)     # stored while it can be
        old = lim_status(ex.exchange, 1)["incarnation"]
        ex.procs.procs["lim-1"].kill()
        ex.procs.procs["lim-1"].wait()
        with read_only(run / "data"):
            ex.procs.start_lim(1)                          # no crash loop on a read-only folder
            wait_for(lambda: lim_status(ex.exchange, 1)["incarnation"] > old, 15, "LIM 1 back")
            status = lim_status(ex.exchange, 1)
            assert status["persist"].startswith("failing ("), status
            assert "read-only" in status["persist"] or "cannot open" in status["persist"], status
            assert ex.exchange.phone("1000").features()["dnd"] is True   # read from the read-only file
            ex.exchange.phone("1001").do_not_disturb(True)  # cannot be stored yet
            call_works(ex.exchange, caller="1002")
        wait_for(lambda: lim_status(ex.exchange, 1)["persist"] == "ok", 10, "LIM 1 to write again")
        restart_lim(ex, 1)
        assert ex.exchange.phone("1001").features()["dnd"] is True
        assert ex.exchange.phone("1000").features()["dnd"] is True


def test_a_corrupt_store_at_start_is_kept_aside_and_the_lim_starts_empty(tmp_path):
    run = tmp_path / "run"
    run.mkdir()

    def corrupt(directory):
        (directory / "data").mkdir(parents=True, exist_ok=True)
        (directory / "data" / "lim-1.db").write_bytes(b"overwritten by something else " * 200)

    with running_exchange(run, cstas=(), before_start=corrupt) as ex:
        status = lim_status(ex.exchange, 1)
        assert status["persist"] == "ok"
        [note] = status["persist_notes"]
        assert "lim-1.db was corrupt" in note and "started empty" in note
        [aside] = (run / "data").glob("lim-1.db.corrupt-*")
        assert aside.read_bytes().startswith(b"overwritten by something else")
        assert "was corrupt" in (run / "logs" / "lim-1.log").read_text()
        call_works(ex.exchange)
