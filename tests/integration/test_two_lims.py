"""A broker and two LIM processes on free ports: calls each way across them, and a bus that
shrugs off garbage."""
from __future__ import annotations

import signal

import msgpack
import pytest
import zmq

from broker.client import BusError
from lim.phone import Exchange
from cluster.children import Children
from tests.procs import EventLog, lim_states, wait_for, write_topology
from topology.loader import load_topology


@pytest.fixture
def exchange(tmp_path):
    topo_file = write_topology(tmp_path / "topology.yaml", no_answer_s=3)
    procs = Children(topo_file, tmp_path / "data", tmp_path)
    procs.start_broker()
    procs.start_lim(1)
    procs.start_lim(2)
    topology = load_topology(topo_file)
    ex = Exchange(topology)
    try:
        wait_for(lambda: {s for s, _ in lim_states(ex.client).values()} == {"up"}
                 and len(lim_states(ex.client)) == 2, 15, "both LIMs to register")
        yield ex, procs, topology
    finally:
        ex.close()
        procs.stop_all()


def states(event):
    return {d: s for d, s in event["connections"]}


CALLER = ["ServiceInitiated", "Originated", "Delivered", "Established", "ConnectionCleared", "ConnectionCleared"]
CALLED = ["Delivered", "Established", "ConnectionCleared", "ConnectionCleared"]


@pytest.mark.parametrize("caller, called", [("1000", "2000"), ("2001", "1001")])
def test_call_across_lims(exchange, caller, called):
    ex, _, _ = exchange
    log = EventLog(ex.client, [caller, called])
    ex.phone(caller).offhook()
    call_id = ex.phone(caller).dial(called)["call_id"]
    log.wait(called, ["Delivered"])
    assert ex.phone(called).state()["calls"][0]["state"] == "alerting"
    ex.phone(called).answer()
    log.wait(called, ["Delivered", "Established"])
    assert [c["call_id"] for c in ex.calls()] == [call_id]
    ex.phone(called).hangup()  # the called party clears this time
    mine = log.wait(caller, CALLER)
    theirs = log.wait(called, CALLED)
    for events in (mine, theirs):
        assert {e["call_id"] for e in events} == {call_id}
    delivered = theirs[0]
    assert delivered["calling"] == caller and delivered["called"] == called
    assert states(delivered) == {caller: "connected", called: "alerting"}
    assert states(theirs[1]) == {caller: "connected", called: "connected"}
    assert theirs[2]["dropped"] == called and states(theirs[2]) == {caller: "connected"}
    assert mine[-1]["dropped"] == caller and mine[-1]["cause"] == "normalClearing"
    assert ex.calls() == []


def test_busy_unknown_and_not_ringing(exchange):
    ex, _, _ = exchange
    log = EventLog(ex.client, ["1000", "2000"])
    with pytest.raises(BusError, match="not allocated"):
        ex.phone("1000").dial("4999")
    with pytest.raises(BusError, match="not ringing"):
        ex.phone("2000").answer()
    with pytest.raises(BusError, match="no terminal logged on"):
        ex.phone("1010").dial("2000")  # 1010 is logged off in the default topology
    ex.phone("2000").offhook()
    ex.phone("1000").dial("2000")
    failed = log.wait("1000", ["ServiceInitiated", "Originated", "Failed"])[-1]
    assert failed["cause"] == "busy" and failed["failing"] == "2000"
    ex.phone("1000").hangup()
    ex.phone("2000").hangup()
    assert ex.calls() == []


def test_no_answer_releases_the_call(exchange):
    ex, _, _ = exchange
    log = EventLog(ex.client, ["2000"])
    ex.phone("1000").dial("2000")
    events = log.wait("2000", ["Delivered", "ConnectionCleared", "ConnectionCleared"], timeout=10)
    assert events[-1]["cause"] == "callNotAnswered"


def test_trunk_call_out_and_in(exchange):
    ex, _, _ = exchange
    log = EventLog(ex.client, ["2000", "0701234567"])
    ex.phone("2000").dial("0701234567")
    log.wait("2000", ["ServiceInitiated", "Originated", "NetworkReached", "Delivered"])
    ex.phone("0701234567").answer()
    ex.phone("0701234567").hangup()
    log.wait("2000", ["ServiceInitiated", "Originated", "NetworkReached", "Delivered", "Established",
                      "ConnectionCleared", "ConnectionCleared"])
    log.clear()
    ex.phone("0701234567").dial("2000")
    delivered = log.wait("2000", ["Delivered"])[0]
    assert delivered["calling"] == "0701234567"


def test_garbage_on_the_bus_is_dropped_and_the_exchange_carries_on(exchange):
    ex, procs, topology = exchange
    ctx = zmq.Context.instance()
    ep = topology.broker.primary
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.IDENTITY, b"rogue")
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(ep.url("router"))
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(ep.url("pub"))
    rogue.send_multipart([b"\xc1\xc1"])
    rogue.send_multipart([b"\xc1", b"\xc1"])
    rogue.send_multipart([msgpack.packb([99, "phone", "rogue", 0, 0, 1, 0, "dev:1000"]), msgpack.packb({})])
    rogue.send_multipart([msgpack.packb([1, "phone", "someone-else", 0, 0, 1, 0, "dev:1000"]), msgpack.packb({})])
    # A well-formed header straight to a LIM, with a body that is not a map.
    rogue.send_multipart([msgpack.packb([1, "phone", "rogue", 0, 0, 1, 0, "dev:1000"]), b"\xc1"])
    for _ in range(20):
        pub.send_multipart([b"d:1000|", b"garbage"])
        pub.send_multipart([b"d:1000|", msgpack.packb([1, "event", "x", 0, 0, 0, 0, ""]), b"\xc1"])
    rogue.close()
    pub.close()
    log = EventLog(ex.client, ["2000"])
    ex.phone("1000").dial("2000")
    log.wait("2000", ["Delivered"])
    assert all(p.poll() is None for p in procs.procs.values()), "a process died of garbage"
    ex.phone("1000").hangup()


def test_lim_restart_releases_calls_and_re_registers(exchange):
    ex, procs, _ = exchange
    log = EventLog(ex.client, ["1000"])
    ex.phone("1000").dial("2000")
    ex.phone("2000").answer()
    log.wait("1000", ["ServiceInitiated", "Originated", "Delivered", "Established"])
    before = lim_states(ex.client)[2][1]
    procs.procs["lim-2"].kill()
    procs.procs["lim-2"].wait()
    events = log.wait("1000", ["ServiceInitiated", "Originated", "Delivered", "Established",
                               "ConnectionCleared", "ConnectionCleared"], timeout=5)
    assert events[-2]["dropped"] == "2000" and events[-2]["cause"] == "networkNotObtainable"
    assert lim_states(ex.client)[2][0] == "dead"
    procs.start_lim(2)
    wait_for(lambda: lim_states(ex.client)[2] == ("up", before + 1), 15, "LIM 2 to re-register")
    log.clear()
    ex.phone("1000").dial("2000")
    log.wait("1000", ["ServiceInitiated", "Originated", "Delivered"])


def test_hung_lim_is_declared_dead_and_rejoins_clean(exchange):
    ex, procs, _ = exchange
    log = EventLog(ex.client, ["1000", "2000"])
    ex.phone("1000").dial("2000")
    ex.phone("2000").answer()
    log.wait("1000", ["ServiceInitiated", "Originated", "Delivered", "Established"])
    before = lim_states(ex.client)[2][1]
    procs.procs["lim-2"].send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: lim_states(ex.client)[2][0] == "dead", 3, "heartbeats to find LIM 2 dead")
        log.wait("1000", ["ServiceInitiated", "Originated", "Delivered", "Established",
                          "ConnectionCleared", "ConnectionCleared"])
    finally:
        procs.procs["lim-2"].send_signal(signal.SIGCONT)
    # It learns it was declared dead and comes back as a new incarnation with no stale call.
    wait_for(lambda: lim_states(ex.client)[2] == ("up", before + 1), 5, "LIM 2 to rejoin")
    assert ex.phone("2000").state()["calls"] == []
    assert ex.calls() == []
    log.clear()
    ex.phone("2000").dial("1000")
    log.wait("1000", ["Delivered"])
