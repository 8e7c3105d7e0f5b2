"""A RouteRequest carries the call's data (ECMA-323: correlatorData after routedCall): the route
point's LIM puts the call's data in its request (lim/routes.py), the CSTA server places the
correlator in the document (csta_front/routeing.py). The call's other data items have no place in
RouteRequest. Expected documents follow the ECMA-323 schema facts (element names and order)."""
from __future__ import annotations

from broker.envelope import Envelope
from broker.protocol import Kind, device_address, lim_node
from csta_front.routeing import Routeing
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.ecma323_validator import validate
from tests.fakes import FakeNetwork
from tests.unit.test_lim_routes import FakeServer, make_topology

ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
ACME = "41636D65204142"  # "Acme AB" in hex, as AssociateData gives it


# -- the route point's LIM -----------------------------------------------------------------------------
def test_a_call_with_data_brings_it_to_the_route_request():
    net = FakeNetwork(make_topology())
    app = FakeServer(net, "csta-1")
    assert app.register("r1")["ok"]
    call_id = net.phone("1000", "offhook")["call_id"]
    assert net.request(device_address("1000"), Kind.CALL_DATA, call_id=call_id,
                       data={"correlator": ACME, "account": "1234"})["ok"]
    assert net.phone("1000", "dial", digits="7000")["ok"]
    net.advance(0)
    request = app.got[-1]
    assert request["msg"] == "request" and request["data"] == {"correlator": ACME, "account": "1234"}


def test_data_attached_during_a_dialogue_comes_back_with_the_next_one():
    """An agent sends a routed call back to the route point (single-step transfer): the data the
    application attached the first time is in the second RouteRequest."""
    net = FakeNetwork(make_topology())
    app = FakeServer(net, "csta-1")
    assert app.register("r1")["ok"]
    net.phone("1000", "offhook")
    call_id = net.phone("1000", "dial", digits="7000")["call_id"]
    net.advance(0)
    first = app.got[-1]
    assert "data" not in first  # a call without data: nothing to carry
    assert net.request(device_address("7000"), Kind.CALL_DATA, call_id=call_id, data={"correlator": ACME})["ok"]
    assert app.route(lim_node(2), op="select", xref=first["xref"], destination="2001", route_used_req=False)["ok"]
    net.advance(0)
    assert net.phone("2001", "answer", call_id=call_id)["ok"]
    net.advance(0)
    assert net.phone("2001", "sst", digits="7000")["ok"]
    net.advance(0)
    second = [m for m in app.got if m["msg"] == "request"][-1]
    assert second["xref"] != first["xref"] and second["data"] == {"correlator": ACME}


# -- the CSTA server's document ------------------------------------------------------------------------
def _front() -> FakeFront:
    front = FakeFront()
    front.lim = 1
    front.routeing = Routeing(front)
    front.bus.answer("dev:7000", Kind.ROUTE, {"ok": True})
    return front


def _request(front: FakeFront, client: FakeClient, ns: str, data: dict | None) -> bytes:
    frame = client.ask(3, f'<RouteRegister xmlns="{ns}"><routeingDevice>7000</routeingDevice></RouteRegister>')
    register_id = frame.xml.split(b"<routeRegisterReqID>")[1].split(b"<")[0].decode()
    body = {"msg": "request", "xref": "2-1-7", "register_id": register_id, "route_point": "7000",
            "call_id": "002000001000000000000042", "calling": "0701234567", "called": "7000"}
    if data is not None:
        body["data"] = data
    assert front.routeing.on_dialogue(Envelope(Kind.ROUTE_DIALOGUE, "lim-2", "csta-1", body, msg_id=5))["ok"]
    return register_id


def test_the_correlator_follows_routed_call_in_every_edition():
    for ns in (ED3, ED6):
        front = _front()
        client = FakeClient(front)
        register_id = _request(front, client, ns, {"correlator": ACME, "account": "1234", "user": "AB"})
        xml = client.frames[-1].xml
        assert canon(xml) == canon(f"""
            <RouteRequest xmlns="{ns}">
              <crossRefIdentifier>2-1-7</crossRefIdentifier>
              <routeRegisterReqID>{register_id}</routeRegisterReqID>
              <currentRoute><deviceIdentifier>7000</deviceIdentifier></currentRoute>
              <callingDevice><deviceIdentifier>0701234567</deviceIdentifier></callingDevice>
              <routeingDevice><deviceIdentifier>7000</deviceIdentifier></routeingDevice>
              <routedCall><callID>002000001000000000000042</callID><deviceID>7000</deviceID></routedCall>
              <correlatorData><string>{ACME}</string></correlatorData>
            </RouteRequest>""")
        assert validate(xml) == [], xml


def test_data_without_a_correlator_adds_nothing():
    front = _front()
    client = FakeClient(front)
    _request(front, client, ED6, {"account": "ABCD"})
    xml = client.frames[-1].xml
    assert b"correlatorData" not in xml and b"ABCD" not in xml and validate(xml) == []
