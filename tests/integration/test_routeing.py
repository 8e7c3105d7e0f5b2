"""Route points on a real exchange: a client of LIM 1's CSTA server routes the calls that reach route
point 7000 on LIM 2 (from LIM 1, from LIM 2, from the public network), the route timeout sends a
call to the default destination, and so does the client leaving mid-route."""
from __future__ import annotations

import asyncio

import pytest

from csta_front.client import CstaClient, field
from csta_front.codec import local_name
from tests.procs import running_exchange, wait_for

ROUTE_TIMEOUT_S = 1.5
DEFAULT = "1003"


def short_route_timeout(data: dict) -> None:
    data["groups"]["route"] = [{"number": "7000", "lim": 2, "default": DEFAULT, "timeout_s": ROUTE_TIMEOUT_S}]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("route"), edit=short_route_timeout) as running:
        yield running


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def connect(running) -> CstaClient:
    lim = running.topology.lim(1)
    return await CstaClient.connect(lim.address, lim.csta.port)


async def register(csta: CstaClient) -> str:
    answer = await csta.request(csta.E.RouteRegister(csta.E.routeingDevice("7000")))
    assert local_name(answer) == "RouteRegisterResponse"
    return field(answer, "routeRegisterReqID")


async def server_request(csta: CstaClient, name: str, timeout: float = 10.0):
    invoke_id, root = await asyncio.wait_for(csta.server_requests.get(), timeout)
    assert local_name(root) == name, f"expected {name}, got {local_name(root)}"
    assert invoke_id >= 9000
    return root


def ringing(running, number: str) -> bool:
    calls = running.exchange.phone(number).state().get("calls", [])
    return any(c["state"] == "alerting" for c in calls)


def idle(running, caller: str, *numbers: str) -> None:
    """The caller hangs up (an external one is gone with its call); every other number is idle."""
    running.exchange.phone(caller).hangup()
    for number in numbers:
        phone = running.exchange.phone(number)
        if phone.state().get("calls"):
            phone.hangup()
        wait_for(lambda: not phone.state().get("calls"), what=f"{number} idle")


@pytest.mark.parametrize("caller", ["1000", "2000", "0701234567"])
def test_a_client_on_lim_1_routes_calls_to_route_point_on_lim_2(running, caller):
    async def scenario():
        async with await connect(running) as csta:
            register_id = await register(csta)
            running.exchange.phone(caller).dial("7000")
            request = await server_request(csta, "RouteRequest")
            assert field(request, "routeRegisterReqID") == register_id
            assert field(request, "routeingDevice", "deviceIdentifier") == "7000"
            assert field(request, "callingDevice", "deviceIdentifier") == caller
            assert field(request, "currentRoute", "deviceIdentifier") == "7000"
            assert len(field(request, "routedCall", "callID")) == 24
            xref = field(request, "crossRefIdentifier")
            E = csta.E
            await csta.answer_server(77, E.RouteSelect(E.crossRefIdentifier(xref), E.routeRegisterReqID(register_id),
                                                       E.routeSelected("1001"), E.routeUsedReq("true")))
            used = await server_request(csta, "RouteUsed")
            assert field(used, "routeUsed", "deviceIdentifier") == "1001"
            end = await server_request(csta, "RouteEnd")
            assert field(end, "crossRefIdentifier") == xref
            wait_for(lambda: ringing(running, "1001"), what="1001 rings")
            idle(running, caller, "1001")
    run(scenario())


def test_a_busy_destination_is_rerouted(running):
    async def scenario():
        async with await connect(running) as csta:
            register_id = await register(csta)
            running.exchange.phone("2004").offhook()  # busy
            running.exchange.phone("1000").dial("7000")
            xref = field(await server_request(csta, "RouteRequest"), "crossRefIdentifier")
            E = csta.E
            await csta.answer_server(78, E.RouteSelect(E.crossRefIdentifier(xref), E.routeSelected("2004")))
            reroute = await server_request(csta, "ReRoute")
            assert field(reroute, "crossRefIdentifier") == xref and field(reroute, "routeRegisterReqID") == register_id
            await csta.answer_server(79, E.RouteSelect(E.crossRefIdentifier(xref), E.routeSelected("2001")))
            await server_request(csta, "RouteEnd")
            wait_for(lambda: ringing(running, "2001"), what="2001 rings")
            idle(running, "1000", "2001")
            running.exchange.phone("2004").onhook()
    run(scenario())


def test_no_route_select_in_time_sends_the_call_to_the_default(running):
    async def scenario():
        async with await connect(running) as csta:
            await register(csta)
            running.exchange.phone("2002").dial("7000")
            await server_request(csta, "RouteRequest")
            end = await server_request(csta, "RouteEnd", timeout=ROUTE_TIMEOUT_S + 5)
            assert field(end, "errorValue", "operation") == "routeingTimerExpired"
            wait_for(lambda: ringing(running, DEFAULT), what="the default rings")
            idle(running, "2002", DEFAULT)
    run(scenario())


def test_a_client_leaving_mid_route_leaves_the_call_to_the_default(running):
    async def scenario():
        csta = await connect(running)
        await register(csta)
        running.exchange.phone("1002").dial("7000")
        await server_request(csta, "RouteRequest")
        await csta.close()
        wait_for(lambda: ringing(running, DEFAULT), timeout=ROUTE_TIMEOUT_S + 5, what="the default rings")
        idle(running, "1002", DEFAULT)
    run(scenario())


def test_without_an_application_the_call_goes_to_the_default(running):
    running.exchange.phone("1004").dial("7000")
    wait_for(lambda: ringing(running, DEFAULT), what="the default rings")
    idle(running, "1004", DEFAULT)
