"""Route points on the LIMs (lim/routes.py), driven through a fake bus and a fake clock: a test
plays the CSTA servers the applications are registered on (their `route.dialogue` messages)."""
from __future__ import annotations

import pytest

from broker.envelope import Envelope
from broker.protocol import Kind, Refusal, device_address, lim_node
from tests.fakes import FakeNetwork
from topology.model import (AcdGroup, BrokerSettings, Extension, Lim, RoutePoint, Timers, Topology,
                            TrunkRoute)

ROUTE_TIMEOUT_S = 4.0


def make_topology() -> Topology:
    exts = [Extension(str(n), "ip", 1, True) for n in range(1000, 1004)]
    exts += [Extension(str(n), "ip", 2, True) for n in range(2000, 2004)]
    exts += [Extension("2009", "ip", 2, False)]  # no terminal: refuses every call
    return Topology(name="t", broker=BrokerSettings(), lims=(Lim(1, "127.0.1.1"), Lim(2, "127.0.1.2")),
                    extensions=tuple(exts), acd_groups=(AcdGroup("5000", 1, ("1001",)),),
                    trunks=(TrunkRoute("pstn", "0", 1, channels=4),),
                    route_points=(RoutePoint("7000", 2, default="1003", timeout_s=ROUTE_TIMEOUT_S),
                                  RoutePoint("7100", 1, default="2003", timeout_s=ROUTE_TIMEOUT_S)),
                    timers=Timers(no_answer_s=30))


class FakeServer:
    """A CSTA server node: records every routeing message; answers requests (or not)."""

    def __init__(self, net: FakeNetwork, node: str):
        self.net, self.node = net, node
        self.port = net.port(node)
        self.got: list[dict] = []
        self.accepting = True
        net.nodes[node] = self.received

    def received(self, env: Envelope) -> None:
        assert env.kind == Kind.ROUTE_DIALOGUE
        self.got.append(dict(env.body))
        if env.msg_id:
            self.port.reply(env, {"ok": True} if self.accepting else
                            {"ok": False, "error": Refusal.NO_SUCH_ROUTE, "message": "gone"})

    def msgs(self) -> list[str]:
        return [m["msg"] for m in self.got]

    def route(self, dst: str, **body) -> dict:
        replies: list[dict] = []
        self.port.request(dst, Kind.ROUTE, body, replies.append)
        self.net.advance(0)
        return replies[0]

    def register(self, register_id: str, device: str | None = "7000") -> dict:
        return self.route(device_address(device) if device else lim_node(2), op="register",
                          register_id=register_id, device=device)


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def parties(net: FakeNetwork, lim: int, call_id: str) -> dict[str, str]:
    call = net.cores[lim].calls.get(call_id)
    return {d: str(p.state) for d, p in call.parties.items()} if call else {}


def call_to(net: FakeNetwork, caller: str, number: str = "7000") -> str:
    net.phone(caller, "offhook")
    reply = net.phone(caller, "dial", digits=number)
    assert reply["ok"], reply
    net.advance(0)
    return reply["call_id"]


def test_a_registered_application_routes_a_call_from_another_lim(net):
    app = FakeServer(net, "csta-1")
    assert app.register("r1")["ok"]
    call_id = call_to(net, "1000")
    assert parties(net, 1, call_id) == {"1000": "connected", "7000": "queued"}
    assert "Queued" in net.event_names("7000")
    request = app.got[0]
    assert request["msg"] == "request" and request["register_id"] == "r1"
    assert (request["calling"], request["called"], request["route_point"], request["call_id"]) == \
        ("1000", "7000", "7000", call_id)

    assert app.route(lim_node(2), op="select", xref=request["xref"], destination="2001", route_used_req=True)["ok"]
    net.advance(0)
    assert parties(net, 1, call_id) == {"1000": "connected", "2001": "alerting"}
    assert app.msgs() == ["request", "used", "end"]
    assert app.got[1]["destination"] == "2001" and app.got[1]["calling"] == "1000"
    assert app.got[2]["error"] == ["unspecified", None]
    diverted = [e for e in net.events("7000") if e["event"] == "Diverted"][-1]
    assert diverted["diverted_to"] == "2001" and diverted["cause"] == "redirected"
    assert not net.cores[2].state.route_table.dialogues  # nothing left hanging


def test_no_application_sends_the_call_to_the_default_at_once(net):
    call_id = call_to(net, "2000")
    assert parties(net, 2, call_id) == {"2000": "connected", "1003": "alerting"}


def test_no_answer_within_the_timeout_ends_the_dialogue_and_goes_to_the_default(net):
    app = FakeServer(net, "csta-2")
    app.register("r1")
    call_id = call_to(net, "2000")
    net.advance(ROUTE_TIMEOUT_S - 0.5)
    assert parties(net, 2, call_id)["7000"] == "queued"
    net.advance(1.0)
    assert parties(net, 2, call_id) == {"2000": "connected", "1003": "alerting"}
    assert app.msgs() == ["request", "end"]
    assert app.got[1]["error"] == ["operation", "routeingTimerExpired"]
    late = app.route(lim_node(2), op="select", xref=app.got[0]["xref"], destination="2001")
    assert late["error"] == Refusal.NO_SUCH_ROUTE  # the dialogue is over


def test_a_busy_or_unknown_destination_is_rerouted(net):
    app = FakeServer(net, "csta-1")
    app.register("r1")
    net.phone("2001", "offhook")  # busy
    call_id = call_to(net, "1000")
    xref = app.got[0]["xref"]
    app.route(lim_node(2), op="select", xref=xref, destination="2001")
    net.advance(0)
    assert app.msgs() == ["request", "reroute"] and app.got[1]["xref"] == xref
    assert parties(net, 1, call_id) == {"1000": "connected", "7000": "queued"}
    app.route(lim_node(2), op="select", xref=xref, destination="4444")  # no such number
    net.advance(0)
    assert app.msgs() == ["request", "reroute", "reroute"]
    app.route(lim_node(2), op="select", xref=xref, destination="2009")  # no terminal logged on
    net.advance(0)
    assert app.msgs()[-1] == "reroute"
    app.route(lim_node(2), op="select", xref=xref, destination="1002")
    net.advance(0)
    assert parties(net, 1, call_id) == {"1000": "connected", "1002": "alerting"}
    assert app.msgs()[-1] == "end"  # no RouteUsed: not asked for


def test_a_cancelled_registration_mid_route_sends_the_call_to_the_default(net):
    app = FakeServer(net, "csta-1")
    app.register("r1")
    call_id = call_to(net, "1000")
    assert app.route(lim_node(2), op="cancel", register_id="r1")["ok"]
    net.advance(0)
    assert parties(net, 1, call_id) == {"1000": "connected", "1003": "alerting"}
    assert app.msgs() == ["request"]  # it left: nothing more is sent to it


def test_an_unreachable_registrant_is_dropped_and_the_next_one_asked(net):
    first, second = FakeServer(net, "csta-1"), FakeServer(net, "csta-2")
    first.register("a", device=None)   # every route point, earlier
    second.register("b")                # this route point: asked first
    first.register("c")                 # this route point, later
    second.accepting = False            # its session is gone
    call_to(net, "1000")
    assert second.msgs() == ["request"]
    assert first.msgs() == ["request"] and first.got[0]["register_id"] == "c"
    registered = [r.register_id for r in net.cores[2].state.route_table.registrations]
    assert registered == ["a", "c"]


def test_the_caller_leaving_ends_the_dialogue(net):
    app = FakeServer(net, "csta-1")
    app.register("r1")
    call_to(net, "1000")
    net.phone("1000", "hangup")
    net.advance(0)
    assert app.msgs() == ["request", "end"] and app.got[1]["error"] == ["stateIncompatibility", "noCallToComplete"]
    assert not net.cores[2].state.route_table.dialogues
    net.advance(ROUTE_TIMEOUT_S + 1)
    assert app.msgs() == ["request", "end"]


def test_the_application_ending_the_dialogue_sends_the_call_to_the_default(net):
    app = FakeServer(net, "csta-1")
    app.register("r1")  # LIM 2's route point 7000 only
    net2 = FakeServer(net, "csta-2")
    assert net2.route(lim_node(1), op="register", register_id="x", device=None)["ok"]
    call_id = call_to(net, "0701234568", "7100")  # from the public network, to LIM 1's route point
    assert app.got == []
    assert net2.msgs() == ["request"] and net2.got[0]["calling"] == "0701234568"
    assert net2.route(lim_node(1), op="end", xref=net2.got[0]["xref"])["ok"]
    net.advance(0)
    assert parties(net, 1, call_id) == {"0701234568": "connected", "2003": "alerting"}
    assert net2.msgs() == ["request"]


def test_hostile_route_requests_are_refused_and_change_nothing(net):
    app, other = FakeServer(net, "csta-1"), FakeServer(net, "csta-2")
    assert app.route(device_address("2000"), op="register", register_id="r", device="2000")["error"] == \
        Refusal.NOT_A_ROUTE_POINT
    app.register("r1")
    call_to(net, "1000")
    xref = app.got[0]["xref"]
    # Another server cannot answer for this application's dialogue.
    assert other.route(lim_node(2), op="select", xref=xref, destination="2001")["error"] == Refusal.NO_SUCH_ROUTE
    assert app.route(lim_node(2), op="dance", xref=xref)["error"] == Refusal.UNKNOWN_ACTION
    assert app.route(lim_node(2), op="select", xref=xref)["error"] == Refusal.BAD_REQUEST  # no destination
    assert app.msgs() == ["request"]
