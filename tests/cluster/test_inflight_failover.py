"""Calls set up while the active broker of a pair fails: no phone action is refused or lost.

Cross-LIM calls (dial, answer, hang up, each a bus request of a plain client) run back to back in
a thread while the primary broker hangs (SIGSTOP: supervisord cannot restart it, so the backup
must take over). The requests caught in flight are sent again through the backup, and each is
carried out once: every call completes, and no call is left in the exchange.

The topology is broker_pair.yaml with the default no-answer timer: with its 0.8 s one, a call
ringing when the primary hangs is released by the no-answer timer before the failover (about
1.2 s) lets the callee's answer through, and the answer is rightly refused (`no_such_call`).
"""
from __future__ import annotations

import threading
import time

import pytest

from broker.client import BusError
from lim.phone import Exchange
from tests.cluster.test_broker_pair import all_registered, broker_states
from tests.procs import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.mxone_topology("tests/cluster/broker_pair_ringing.yaml")]

PAIRS = [("1001", "2001"), ("2002", "1002"), ("1003", "2003")]


def until_in_state(phone, call_id: str, state: str) -> None:
    """As a person would: answer once the phone rings, hang up once the call is answered (the
    dial's reply can come before the callee's LIM has its copy of the call)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(c["call_id"] == call_id and c["state"] == state for c in phone.state()["calls"]):
            return
        time.sleep(0.01)
    raise AssertionError(f"{phone.number} not {state} in {call_id} within 10 s")


def test_calls_set_up_during_a_failover_complete(cluster):
    wait_for(lambda: broker_states(cluster) == {"primary": "active", "backup": "passive"}, 10,
             "the primary active and the backup passive")
    rpc = cluster.rpc().supervisor
    stop = threading.Event()
    done: list[float] = []
    failures: list[str] = []

    def traffic(caller: str, callee: str) -> None:
        with Exchange.from_run_dir(cluster.run_dir) as ex:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    call_id = ex.phone(caller).dial(callee)["call_id"]
                    until_in_state(ex.phone(callee), call_id, "alerting")
                    ex.phone(callee).answer()
                    until_in_state(ex.phone(caller), call_id, "connected")
                    ex.phone(caller).hangup()
                    until_in_state_none = ex.phone(callee)
                    while any(c["call_id"] == call_id for c in until_in_state_none.state()["calls"]):
                        time.sleep(0.01)  # the callee's LIM has released it too
                except BusError as exc:  # every refusal is a failure here: the phones are idle
                    failures.append(f"{caller}->{callee} at {started:.2f}: {exc.code}: {exc.message}")
                    return
                done.append(time.monotonic())

    threads = [threading.Thread(target=traffic, args=pair, daemon=True) for pair in PAIRS]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(done) >= 6 or failures, 20, "calls flowing before the failover")
        hung_at = time.monotonic()
        rpc.signalProcess("broker", "STOP")
        wait_for(lambda: failures or broker_states(cluster).get("backup") == "active", 15,
                 "the backup to take over")
        wait_for(lambda: failures or sum(1 for t in done if t > hung_at + 2.0) >= 6, 20,
                 "calls completing through the backup")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        rpc.signalProcess("broker", "CONT")
    assert not failures, failures
    ends = sorted(done)
    pause = max(b - a for a, b in zip(ends, ends[1:]) if b > hung_at)
    print(f"\nprimary hung: {len(done)} calls completed, none failed; the longest wait between two "
          f"completions after the hang: {pause:.2f} s")
    with Exchange.from_run_dir(cluster.run_dir) as ex:
        wait_for(lambda: all_registered(ex), 10, "every node registered with the backup")
        assert ex.calls() == []  # nothing done twice, nothing left half done
