"""The live view's state folding (liveview/model.py), fed the events and answers of real LimCores
wired through the in-process bus of tests/fakes.py."""
from __future__ import annotations

import pytest

from liveview.model import ViewModel
from tests.fakes import FakeNetwork
from topology.model import AcdGroup, BrokerSettings, Extension, Lim, Timers, Topology, TrunkRoute


def make_topology() -> Topology:
    exts = [Extension(str(n), "ip", 1, True) for n in range(1000, 1004)]
    exts += [Extension(str(n), "ip", 2, True) for n in range(2000, 2004)]
    exts += [Extension(str(n), "ip", 3, True) for n in range(3000, 3002)]
    exts += [Extension("1009", "ip", 1, False)]
    return Topology(name="t", broker=BrokerSettings(),
                    lims=(Lim(1, "127.0.1.1"), Lim(2, "127.0.1.2"), Lim(3, "127.0.1.3")),
                    extensions=tuple(exts), acd_groups=(AcdGroup("5000", 1, ("1001", "2001"), wrapup_s=5),),
                    trunks=(TrunkRoute("pstn", "0", 1, channels=2),), timers=Timers(no_answer_s=30))


class Feed:
    """Hands the model every event the LIMs published since the last call, once each (the fake
    bus lists an event once per topic, one right after the other)."""

    def __init__(self, net: FakeNetwork, model: ViewModel, drop: bool = False):
        self.net, self.model, self.seen, self.drop = net, model, 0, drop

    def __call__(self) -> None:
        previous = None
        for topic, body in self.net.published[self.seen:]:
            if body is not previous and body != previous and not self.drop:
                self.model.apply_event(body)
            previous = body
        self.seen = len(self.net.published)


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


@pytest.fixture
def model(net) -> ViewModel:
    model = ViewModel(net.topology)
    model.set_members([{"node": f"lim-{n}", "role": "lim", "lim": n, "incarnation": 1, "state": "up"}
                       for n in (1, 2, 3)])
    return model


def resync(net: FakeNetwork, model: ViewModel, lims=(1, 2, 3)) -> None:
    marker = model.events
    for n in lims:
        model.apply_lim_status(n, net.request(f"lim-{n}", "lim.status"), marker)
    for group in net.topology.acd_groups:
        model.apply_group(group.number, net.request(f"dev:{group.number}", "device.get"), marker)


def calls_of(model: ViewModel) -> dict[str, list[tuple[str, str, int | None]]]:
    return {c["call_id"]: sorted((p["device"], p["state"], p["lim"]) for p in c["parties"])
            for c in model.snapshot()["calls"]}


def device(model: ViewModel, number: str) -> dict:
    return model.device_json(number)


def test_a_call_across_lims_from_its_events(net, model):
    feed = Feed(net, model)
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    feed()
    assert calls_of(model) == {call_id: [("1000", "connected", 1), ("2000", "alerting", 2)]}
    assert device(model, "2000")["state"] == "alerting" and device(model, "1000")["state"] == "connected"
    [call] = model.snapshot()["calls"]
    assert (call["controller"], call["calling"], call["called"], call["last_event"]) == (1, "1000", "2000", "Delivered")
    patch = model.take_patch()
    assert {d["number"] for d in patch["devices"]} >= {"1000", "2000"} and patch["calls"]

    net.phone("2000", "answer")
    feed()
    assert calls_of(model) == {call_id: [("1000", "connected", 1), ("2000", "connected", 2)]}
    net.phone("1000", "hangup")
    feed()
    assert calls_of(model) == {}
    assert device(model, "1000")["state"] == device(model, "2000")["state"] == "idle"
    assert model.take_patch()["calls"] == []
    assert model.take_patch() is None  # nothing more changed


def test_an_answer_that_says_nothing_new_makes_no_patch(net, model):
    Feed(net, model)
    net.phone("1000", "dial", digits="2000")
    Feed(net, model)()
    model.take_patch()
    resync(net, model)
    assert model.take_patch() is None


def test_the_view_from_events_equals_the_view_from_answers(net, model):
    """Transfers and conferences across three LIMs move calls between controllers: what the
    events tell must be what the LIMs say when asked."""
    feed = Feed(net, model)
    net.phone("1000", "dial", digits="2000")
    net.phone("2000", "answer")
    net.phone("2000", "consult", digits="3000")     # 2000's LIM controls the consultation
    net.phone("3000", "answer")
    net.phone("2000", "transfer")                   # 1000 and 3000 now talk, under one controller
    net.phone("1001", "dial", digits="2001")
    net.phone("2001", "answer")
    net.phone("2001", "consult", digits="1002")
    net.phone("1002", "answer")
    net.phone("2001", "conference")
    net.phone("1003", "dial", digits="0701234567")  # out over the trunk
    feed()
    from_events = calls_of(model)
    assert len(from_events) == 3
    fresh = ViewModel(net.topology)
    resync(net, fresh)
    assert calls_of(fresh) == from_events
    assert {p for c in from_events.values() for p, _, _ in c} == {"1000", "3000", "1001", "2001", "1002",
                                                                   "1003", "0701234567"}
    assert device(model, "2000")["state"] == "idle"


def test_answers_repair_lost_events(net, model):
    feed = Feed(net, model)
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    feed()
    feed.drop = True  # the hangup's events never arrive (a broker restart, say)
    net.phone("1000", "hangup")
    feed()
    assert call_id in calls_of(model)
    resync(net, model)
    assert calls_of(model) == {} and device(model, "2000")["state"] == "idle"


def test_an_event_newer_than_an_answer_wins(net, model):
    feed = Feed(net, model)
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    feed()
    marker = model.events                       # the question goes out ...
    stale = net.request("lim-1", "lim.status")  # ... and is answered: 2000 ringing
    net.phone("2000", "answer")                 # the answer's event arrives before the answer
    feed()
    model.apply_lim_status(1, stale, marker)
    assert calls_of(model)[call_id] == [("1000", "connected", 1), ("2000", "connected", 2)]

    marker = model.events
    stale = net.request("lim-1", "lim.status")
    net.phone("1000", "hangup")
    feed()
    model.apply_lim_status(1, stale, marker)    # a late answer does not bring the call back
    assert calls_of(model) == {}


def test_a_dead_lim_takes_its_calls_and_devices_with_it(net, model):
    feed = Feed(net, model)
    lost = net.phone("2000", "dial", digits="1000")["call_id"]     # controlled by LIM 2
    kept = net.phone("1001", "dial", digits="2001")["call_id"]     # controlled by LIM 1
    net.phone("1002", "dial", digits="1003")
    feed()
    model.take_patch()
    net.kill_lim(2)
    model.on_member({"node": "lim-2", "role": "lim", "lim": 2, "incarnation": 1, "state": "dead"})
    net.run()
    feed()
    calls = calls_of(model)
    assert lost not in calls and kept not in calls      # LIM 1 released 2001's side of its call
    assert list(calls.values()) == [[("1002", "connected", 1), ("1003", "alerting", 1)]]
    assert device(model, "1000")["state"] == "idle"
    assert device(model, "2000")["lim_up"] is False and device(model, "1000")["lim_up"] is True
    patch = model.take_patch()
    assert [lim["state"] for lim in patch["lims"]] == ["up", "dead", "up"]
    resync(net, model, lims=(1, 3))
    assert calls_of(model) == calls


def test_acd_queue_and_agents(net, model):
    feed = Feed(net, model)
    resync(net, model)
    net.agent("1001", "login", agent_id="41", group="5000")
    net.agent("2001", "login", agent_id="42", group="5000")
    net.agent("1001", "notready")
    net.agent("2001", "notready")
    feed()
    group = model.snapshot()["groups"][0]
    assert [(a["device"], a["agent_id"], a["state"]) for a in group["agents"]] == \
        [("1001", "41", "agentNotReady"), ("2001", "42", "agentNotReady")]
    call_id = net.phone("1000", "dial", digits="5000")["call_id"]
    feed()
    assert model.snapshot()["groups"][0]["queue"] == [call_id]
    assert calls_of(model)[call_id] == [("1000", "connected", 1), ("5000", "queued", 1)]
    net.agent("2001", "ready")
    feed()
    assert model.snapshot()["groups"][0]["queue"] == []
    assert device(model, "2001")["state"] == "alerting"
    assert device(model, "2001")["agent"] == {"group": "5000", "agent_id": "42", "state": "agentBusy"}
    net.agent("1001", "logout")
    feed()
    fresh = ViewModel(net.topology)
    resync(net, fresh)
    assert fresh.snapshot()["groups"] == model.snapshot()["groups"]
    assert [a["device"] for a in model.snapshot()["groups"][0]["agents"]] == ["2001"]


def test_terminals_logged_off_before_the_view_started(net, model):
    feed = Feed(net, model)
    net.phone("1002", "logoff")  # not seen: the view starts after it
    feed.seen = len(net.published)
    assert device(model, "1002")["logged_on"] is True
    resync(net, model)
    assert device(model, "1002")["state"] == "outOfService"
    assert device(model, "1009")["state"] == "outOfService"  # logged off in the topology
    marker = model.events
    stale = net.request("lim-1", "lim.status")
    net.phone("1002", "logon")
    feed()
    model.apply_lim_status(1, stale, marker)  # older than the BackInService event: ignored
    assert device(model, "1002")["state"] == "idle"


def test_csta_servers_and_the_broker(model):
    model.take_patch()
    model.apply_front(1, {"port": 8882, "server_type": "XML", "sessions": 2, "session_ids": [1, 2],
                          "monitored_devices": ["1000"], "faults": [], "recording": None})
    model.apply_front(2, None)
    model.set_broker_reachable(False)
    patch = model.take_patch()
    assert patch["broker"] == {"reachable": False}
    assert patch["lims"][0]["csta"]["sessions"] == 2 and patch["lims"][1]["csta"] is None
    model.apply_front(1, {"port": 8882, "server_type": "XML", "sessions": 2, "session_ids": [1, 2],
                          "monitored_devices": ["1000"], "faults": [], "recording": None})
    assert model.take_patch() is None


@pytest.mark.parametrize("body", [
    None, [], "x", {}, {"event": 3}, {"event": "Delivered", "call_id": "1", "connections": "nonsense"},
    {"event": "Delivered", "call_id": "1", "connections": [["1000"], 5, None]},
    {"event": "OutOfService", "device": ["1000"]}, {"event": "AgentReady", "device": "1000", "group": 5},
    {"event": "Delivered", "call_id": 7, "connections": [["1000", "alerting"]]},
    {"event": "Transferred", "call_id": "2", "secondary_old_call": {"x": 1}, "connections": [["1000", "connected"]]},
])
def test_odd_events_do_no_harm(model, body):
    model.apply_event(body)
    model.snapshot()
    model.take_patch()


def test_odd_answers_do_no_harm(model):
    model.apply_lim_status(9, {"calls": []}, 0)
    model.apply_lim_status(1, {"calls": [None, {"call_id": 5}, {"call_id": "x", "connections": [None]}],
                               "queues": {"5000": "no", "9": []}, "logged_off": "1000"}, 0)
    model.apply_group("5000", {"agents": [None, {"x": 1}], "queue": []}, 0)
    model.apply_group("nope", {}, 0)
    model.set_members([None, {"role": "lim", "lim": "1"}])
    model.set_members("nonsense")
    model.apply_lim_status(1, {"calls": 5}, 0)
    model.apply_group("5000", {"agents": 5}, 0)
    model.snapshot()


def test_tombstones_are_forgotten_in_the_order_of_their_calls(model):
    for n, call_id in enumerate(("a", "b", "c")):
        model.apply_event({"event": "Delivered", "call_id": call_id, "connections": [["1000", "alerting"]]})
        model.apply_event({"event": "CallCleared", "call_id": call_id, "connections": []})
    # A conference merged a in again (its late report): a's tombstone is now the newest.
    model.apply_event({"event": "Conferenced", "call_id": "d", "secondary_old_call": "a",
                       "connections": [["1000", "connected"]]})
    counts = dict(model.tombstones)
    assert list(counts) == ["b", "c", "a"] and "d" in model.calls
    model.forget_tombstones(counts["c"])
    assert list(model.tombstones) == ["c", "a"]
    model.forget_tombstones(counts["a"] + 1)
    assert model.tombstones == {}
    # A call forgotten long after it cleared is no longer refused: nothing late about it can come.
    model.apply_lim_status(1, {"calls": [{"call_id": "b", "connections": [{"device": "1000", "state": "connected"}]}]},
                           model.events)
    assert "b" in model.calls


class _Bus:
    """What the live view's server uses of a BusNode: the broker answers that it is unreachable."""

    def __init__(self):
        self.on_event = self.on_member = None

    def subscribe(self, topic):
        pass

    def request(self, dst, kind, body, on_reply, timeout):
        on_reply({"ok": False})


def test_the_server_remembers_events_and_cleared_calls_for_a_while_only(net):
    """An hour's traffic must not leave the view bigger than a minute's: what the server remembers
    to fold each event once, and the model's tombstones, are bounded in time, not only in count."""
    from broker.envelope import Envelope
    from broker.protocol import Kind
    from broker.timers import FakeClock, TimerQueue
    from liveview.server import LiveViewServer
    from topology.model import LiveView

    clock = FakeClock()
    timers = TimerQueue(clock)
    server = LiveViewServer(net.topology, _Bus(), timers, LiveView())
    server.running = True
    server.start()
    seq = 0
    for second in range(900):  # 15 minutes, two calls a second, each three events on three topics
        for n in range(2):
            call_id = f"{second:06d}{n}"
            for name, connections in (("Originated", [["1000", "initiated"]]),
                                      ("Delivered", [["1000", "connected"], ["2000", "alerting"]]),
                                      ("CallCleared", [])):
                seq += 1
                env = Envelope(kind=Kind.EVENT, src="lim-1", incarnation=1, seq=seq,
                               body={"event": name, "call_id": call_id, "connections": connections, "lim": 1})
                for topic in ("d:1000.", "d:2000.", f"c:{call_id}."):
                    server.on_event(topic, env)
        clock.advance(1.0, timers)
    assert server.model.events == seq and server.model.calls == {}
    assert len(server._seen) <= 6 * 60            # a minute's events at most (30 s)
    assert len(server.model.tombstones) <= 2 * 120  # two minutes' calls at most (60 s)
