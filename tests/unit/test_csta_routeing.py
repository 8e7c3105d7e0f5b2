"""The routeing services of the CSTA server (csta_front/services_routeing.py, csta_front/routeing.py)
on a real CstaSession with a fake bus: RouteRegister, RouteRegisterCancel, RouteSelect, RouteEnd
from the client; RouteRequest, ReRoute, RouteUsed, RouteEnd from the switching function. Expected
documents are written from the ECMA-323 schema facts (element names and order)."""
from __future__ import annotations

import pytest
from lxml import etree

from broker.envelope import Envelope
from broker.protocol import Kind, Refusal
from csta_front.routeing import Routeing
from csta_front.services import SERVICE_GROUPS
from tests.csta_fakes import FakeClient, FakeFront, canon
from tests.ecma323_validator import validate

ED6 = "http://www.ecma-international.org/standards/ecma-323/csta/ed6"
ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"


@pytest.fixture
def front() -> FakeFront:
    front = FakeFront()
    front.lim = 1
    front.routeing = Routeing(front)
    front.sent = []
    front.bus.send = lambda dst, kind, body: front.sent.append((dst, kind, dict(body)))
    front.bus.answer("dev:7000", Kind.ROUTE, {"ok": True})
    front.bus.answer("lim-2", Kind.ROUTE, {"ok": True})
    return front


def register(client: FakeClient, ns: str = ED6, device: str | None = "7000") -> str:
    routeing = f"<routeingDevice>{device}</routeingDevice>" if device else ""
    frame = client.ask(3, f'<RouteRegister xmlns="{ns}">{routeing}</RouteRegister>')
    root = etree.fromstring(frame.xml)
    assert etree.QName(root).localname == "RouteRegisterResponse", frame.xml
    return root.findtext(f"{{{ns}}}routeRegisterReqID")


def dialogue(front: FakeFront, msg: str, register_id: str, **fields) -> dict:
    body = {"msg": msg, "xref": "2-1-7", "register_id": register_id, "route_point": "7000",
            "call_id": "002000001000000000000042", **fields}
    return front.routeing.on_dialogue(Envelope(Kind.ROUTE_DIALOGUE, "lim-2", "csta-1", body, msg_id=5))


def test_route_register_for_one_route_point_asks_its_lim(front):
    client = FakeClient(front)
    register_id = register(client)
    assert register_id
    assert front.bus.requests[-1] == ("dev:7000", Kind.ROUTE,
                                      {"op": "register", "register_id": register_id, "device": "7000"})


def test_route_register_for_all_asks_every_route_points_lim(front):
    client = FakeClient(front)
    register_id = register(client, device=None)
    assert front.bus.requests[-1] == ("lim-2", Kind.ROUTE, {"op": "register", "register_id": register_id,
                                                            "device": None})


def test_route_register_refuses_what_is_not_a_route_point(front):
    client = FakeClient(front)
    answer = client.ask(3, f'<RouteRegister xmlns="{ED6}"><routeingDevice>2000</routeingDevice></RouteRegister>')
    assert b"<operation>requestIncompatibleWithObject</operation>" in answer.xml
    answer = client.ask(4, f'<RouteRegister xmlns="{ED6}"><routeingDevice>4444</routeingDevice></RouteRegister>')
    assert b"<operation>invalidDeviceID</operation>" in answer.xml
    assert front.routeing.registrations == {}


def test_the_dialogue_in_documents_of_the_schema(front):
    client = FakeClient(front)
    register_id = register(client)
    assert dialogue(front, "request", register_id, calling="1000", called="7000") == {"ok": True}
    request = client.frames[-1]
    assert request.invoke_id >= 9000  # invoked by the switching function
    assert canon(request.xml) == canon(f"""
        <RouteRequest xmlns="{ED6}">
          <crossRefIdentifier>2-1-7</crossRefIdentifier>
          <routeRegisterReqID>{register_id}</routeRegisterReqID>
          <currentRoute><deviceIdentifier>7000</deviceIdentifier></currentRoute>
          <callingDevice><deviceIdentifier>1000</deviceIdentifier></callingDevice>
          <routeingDevice><deviceIdentifier>7000</deviceIdentifier></routeingDevice>
          <routedCall><callID>002000001000000000000042</callID><deviceID>7000</deviceID></routedCall>
        </RouteRequest>""")
    assert validate(request.xml) == []

    # RouteSelect has no response: nothing comes back on success; the route point's LIM is told.
    assert client.send(8, f"""<RouteSelect xmlns="{ED6}"><crossRefIdentifier>2-1-7</crossRefIdentifier>
        <routeRegisterReqID>{register_id}</routeRegisterReqID><routeSelected>2001</routeSelected>
        <routeUsedReq>true</routeUsedReq></RouteSelect>""") == []
    assert front.bus.requests[-1] == ("lim-2", Kind.ROUTE, {"op": "select", "xref": "2-1-7", "destination": "2001",
                                                            "route_used_req": True})

    dialogue(front, "reroute", register_id)
    assert canon(client.frames[-1].xml) == canon(f"""<ReRoute xmlns="{ED6}">
        <crossRefIdentifier>2-1-7</crossRefIdentifier><routeRegisterReqID>{register_id}</routeRegisterReqID>
        </ReRoute>""")
    dialogue(front, "used", register_id, destination="2001", calling="1000")
    assert canon(client.frames[-1].xml) == canon(f"""<RouteUsed xmlns="{ED6}">
        <crossRefIdentifier>2-1-7</crossRefIdentifier><routeRegisterReqID>{register_id}</routeRegisterReqID>
        <routeUsed><deviceIdentifier>2001</deviceIdentifier></routeUsed>
        <callingDevice><deviceIdentifier>1000</deviceIdentifier></callingDevice></RouteUsed>""")
    dialogue(front, "end", register_id, error=["unspecified", None])
    assert canon(client.frames[-1].xml) == canon(f"""<RouteEnd xmlns="{ED6}">
        <crossRefIdentifier>2-1-7</crossRefIdentifier><routeRegisterReqID>{register_id}</routeRegisterReqID>
        <errorValue><unspecified/></errorValue></RouteEnd>""")
    for frame in client.frames:
        assert validate(frame.xml) == [], frame.xml

    # The dialogue is over: selecting now is the client's error.
    answer = client.ask(9, f"""<RouteSelect xmlns="{ED6}"><crossRefIdentifier>2-1-7</crossRefIdentifier>
        <routeSelected>2001</routeSelected></RouteSelect>""")
    assert b"<operation>invalidRouteingCrossRefID</operation>" in answer.xml


def test_a_timer_end_in_ed3(front):
    client = FakeClient(front)
    register_id = register(client, ns=ED3)
    dialogue(front, "request", register_id, calling="0701234567", called="7000")
    dialogue(front, "end", register_id, error=["operation", "routeingTimerExpired"])
    assert canon(client.frames[-1].xml) == canon(f"""<RouteEnd xmlns="{ED3}">
        <crossRefIdentifier>2-1-7</crossRefIdentifier><routeRegisterReqID>{register_id}</routeRegisterReqID>
        <errorValue><operation>routeingTimerExpired</operation></errorValue></RouteEnd>""")
    assert validate(client.frames[-1].xml) == []


def test_another_session_cannot_answer_for_a_dialogue(front):
    owner, other = FakeClient(front), FakeClient(front)
    register_id = register(owner)
    dialogue(front, "request", register_id, calling="1000")
    answer = other.ask(4, f"""<RouteSelect xmlns="{ED6}"><crossRefIdentifier>2-1-7</crossRefIdentifier>
        <routeSelected>2001</routeSelected></RouteSelect>""")
    assert b"invalidRouteingCrossRefID" in answer.xml
    answer = other.ask(5, f'<RouteRegisterCancel xmlns="{ED6}"><routeRegisterReqID>{register_id}'
                          f'</routeRegisterReqID></RouteRegisterCancel>')
    assert b"invalidRouteRegistrationCrossRefID" in answer.xml


def test_cancel_and_disconnect_end_the_registration_on_the_lims(front):
    client = FakeClient(front)
    first = register(client)
    answer = client.ask(5, f'<RouteRegisterCancel xmlns="{ED6}"><routeRegisterReqID>{first}'
                           f'</routeRegisterReqID></RouteRegisterCancel>')
    assert canon(answer.xml) == canon(f'<RouteRegisterCancelResponse xmlns="{ED6}"/>')
    assert front.sent[-1] == ("lim-2", Kind.ROUTE, {"op": "cancel", "register_id": first})
    second = register(client)
    client.session.close()
    assert front.sent[-1] == ("lim-2", Kind.ROUTE, {"op": "cancel", "register_id": second})
    reply = dialogue(front, "request", second, calling="1000")
    assert reply["ok"] is False and reply["error"] == Refusal.NO_SUCH_ROUTE  # the LIM asks someone else


def test_routeing_services_are_in_the_schemas_capability_list_in_its_order():
    assert list(SERVICE_GROUPS["routeingServList"]) == ["routeRegister", "routeRegisterCancel", "reRoute", "routeEnd",
                                                        "routeRequest", "routeSelect", "routeUsed"]
    groups = list(SERVICE_GROUPS)
    assert groups.index("callAssociatedServList") < groups.index("routeingServList") < groups.index("physDevServList")
