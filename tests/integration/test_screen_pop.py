"""The screen pop, proven on a real exchange (issue 15): a call reaches an agent or group member
through an ACD group, a hunt group, a cascade ring group or a route point, from the public network,
from an extension on the other LIM and from one on the answering device's own LIM. A client of
each LIM's CSTA server monitors the answering device; the DeliveredEvent each of them gets must
name everything an agent's screen shows.

Expected values come from ECMA-269's meaning of each Delivered field, not from the server:
  - alertingDevice: the device being alerted (the agent or member whose phone rings);
  - callingDevice: the calling device (the caller, whichever LIM or network it is on); ECMA-269's
    DeviceID type of number tells a public number, whose type is implicit in its prefix digits
    (the trunk prefix, `implicitPublic`), from an extension of the exchange;
  - calledDevice: the originally called device, i.e. the number dialled (the group or route point);
  - lastRedirectionDevice: the device the call was last redirected from: the group or route point
    (ECMA-323's RedirectionDeviceID carries its number as `numberDialed`);
  - cause: `distributed` when a distribution device (ACD or hunt group) hands the call on,
    `redirected` when a routeing device's application sent it elsewhere (RouteSelect).
Every document the servers send is also checked against the schema (tests/conftest.py)."""
from __future__ import annotations

import asyncio
import time

import pytest

from csta_front.client import CstaClient, device_field, field
from csta_front.codec import local_name
from tests.procs import running_exchange, wait_for

PUBLIC = "0701234567"   # a public network number: the trunk (prefix 0) is on LIM 1

# target -> (number dialled, the device that rings, an extension of its LIM, one of the other LIM,
# the cause ECMA-269 gives the Delivered at that device)
TARGETS = {
    "acd": ("5000", "2005", "2001", "1001", "distributed"),        # ACD group on LIM 1, agent on LIM 2
    "hunt": ("6000", "1002", "1000", "2000", "distributed"),       # linear hunt group on LIM 1
    "cascade": ("6100", "2004", "2001", "1001", "distributed"),    # cascade ring group on LIM 2
    "route": ("7000", "1005", "1000", "2000", "redirected"),       # route point on LIM 2 -> agent on LIM 1
}
AGENT_IDS = {"2005": "25", "1005": "15"}


def short_timers(data: dict) -> None:
    for group in data["groups"]["acd"]:
        group["wrapup_s"] = 0.2          # the next case finds the agent ready again at once


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("pop"), lims=(1, 2), cstas=(1, 2), edit=short_timers) as running:
        yield running


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def connect(running, lim: int) -> CstaClient:
    return await CstaClient.connect(running.topology.lim(lim).address, running.topology.lim(lim).csta.port)


async def delivered(csta: CstaClient, xref: str, timeout: float = 10.0, wanted: str = "DeliveredEvent"):
    """The next `wanted` event of monitor `xref`; agent state events may come before it (they are
    device events, in no order with the call's), nothing else may."""
    deadline = time.monotonic() + timeout
    while True:
        event = await csta.next_event(timeout=max(0.01, deadline - time.monotonic()))
        name = local_name(event)
        assert field(event, "monitorCrossRefID") == xref, f"an event of another monitor: {name}"
        if name == wanted:
            return event
        assert name.startswith("Agent"), f"{name} before the {wanted}"


async def route_to(csta: CstaClient, register_id: str, destination: str) -> None:
    """The routeing application: answer the RouteRequest with `destination`."""
    _, request = await asyncio.wait_for(csta.server_requests.get(), 10)
    assert local_name(request) == "RouteRequest"
    assert field(request, "routeRegisterReqID") == register_id
    E = csta.E
    await csta.answer_server(90, E.RouteSelect(E.crossRefIdentifier(field(request, "crossRefIdentifier")),
                                               E.routeRegisterReqID(register_id), E.routeSelected(destination)))
    _, end = await asyncio.wait_for(csta.server_requests.get(), 10)
    assert local_name(end) == "RouteEnd"


def idle(running, caller: str, *numbers: str) -> None:
    """The caller hangs up (a public number is gone with its call); every other number is idle."""
    running.exchange.phone(caller).hangup()
    for number in numbers:
        phone = running.exchange.phone(number)
        if phone.state().get("calls"):
            phone.hangup()
        wait_for(lambda: not phone.state().get("calls"), what=f"{number} idle")


def caller_of(target: str, origin: str) -> str:
    _, _, same, other, _ = TARGETS[target]
    return {"public": PUBLIC, "same LIM": same, "other LIM": other}[origin]


@pytest.mark.parametrize("origin", ["public", "other LIM", "same LIM"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_the_agent_sees_who_calls_what_was_dialled_and_where_the_call_came_from(running, target, origin):
    dialled, ringing, _, _, cause = TARGETS[target]
    caller = caller_of(target, origin)
    assert origin == "public" or (caller[0] == ringing[0]) == (origin == "same LIM")
    ex = running.exchange
    agent = AGENT_IDS.get(ringing)
    if agent:
        ex.phone(ringing).agent("login", agent_id=agent, group="5000")

    async def scenario():
        async with await connect(running, 1) as on_1, await connect(running, 2) as on_2:
            xrefs = [await on_1.monitor_start(ringing), await on_2.monitor_start(ringing)]
            router = None
            if target == "route":
                router = await connect(running, 1)
                answer = await router.request(router.E.RouteRegister(router.E.routeingDevice(dialled)))
                register_id = field(answer, "routeRegisterReqID")
            try:
                call_id = ex.phone(caller).dial(dialled)["call_id"]
                if router is not None:
                    await route_to(router, register_id, ringing)
                events = [await delivered(on_1, xrefs[0]), await delivered(on_2, xrefs[1])]
            finally:
                if router is not None:
                    await router.close()
            for event in events:
                assert field(event, "connection", "callID") == call_id
                assert field(event, "connection", "deviceID") == ringing
                assert device_field(event, "alertingDevice") == ringing
                assert device_field(event, "callingDevice") == caller
                calling_id = event.find("{*}callingDevice/{*}deviceIdentifier")
                assert calling_id.get("typeOfNumber") == ("implicitPublic" if origin == "public" else None)
                assert device_field(event, "calledDevice") == dialled
                assert field(event, "lastRedirectionDevice", "numberDialed") == dialled
                assert field(event, "localConnectionInfo") == "alerting"
                assert field(event, "cause") == cause

            # The agent answers: the Established names the same caller, number dialled and
            # redirecting device (ECMA-269 gives its fields the Delivered's meaning).
            ex.phone(ringing).answer()
            for csta, xref in zip((on_1, on_2), xrefs):
                event = await delivered(csta, xref, wanted="EstablishedEvent")
                assert field(event, "establishedConnection", "callID") == call_id
                assert device_field(event, "answeringDevice") == ringing
                assert device_field(event, "callingDevice") == caller
                calling_id = event.find("{*}callingDevice/{*}deviceIdentifier")
                assert calling_id.get("typeOfNumber") == ("implicitPublic" if origin == "public" else None)
                assert device_field(event, "calledDevice") == dialled
                assert field(event, "lastRedirectionDevice", "numberDialed") == dialled
                assert field(event, "localConnectionInfo") == "connected"

    try:
        run(scenario())
    finally:
        idle(running, caller, ringing)
        if agent:
            ex.phone(ringing).agent("logout")


async def pop(running, monitored: str, act) -> list:
    """The DeliveredEvent at `monitored` seen through each LIM's server after `act()`."""
    async with await connect(running, 1) as on_1, await connect(running, 2) as on_2:
        xrefs = [await on_1.monitor_start(monitored), await on_2.monitor_start(monitored)]
        act()
        return [await delivered(on_1, xrefs[0]), await delivered(on_2, xrefs[1])]


def check(events: list, *, alerting: str, calling: str, called: str, redirected_from: str, cause: str) -> None:
    for event in events:
        assert device_field(event, "alertingDevice") == alerting
        assert device_field(event, "callingDevice") == calling
        assert device_field(event, "calledDevice") == called
        assert field(event, "lastRedirectionDevice", "numberDialed") == redirected_from
        assert field(event, "cause") == cause


def test_a_queued_call_pops_up_when_an_agent_becomes_ready(running):
    """The call waits in the queue (nobody ready), then the group hands it to the agent who logs on."""
    ex = running.exchange

    def act():
        ex.phone(PUBLIC).dial("5000")
        wait_for(lambda: ex.phone("5000").state().get("calls"), what="the call queued")
        ex.phone("2005").agent("login", agent_id="25", group="5000")

    try:
        events = run(pop(running, "2005", act))
        check(events, alerting="2005", calling=PUBLIC, called="5000", redirected_from="5000", cause="distributed")
    finally:
        idle(running, PUBLIC, "2005")
        ex.phone("2005").agent("logout")


def test_a_route_point_with_no_application_pops_the_dialled_number_and_the_group_it_went_through(running):
    """No application is registered for 7000: the call goes to its default, ACD group 5000, whose
    agent gets it. The number dialled is still the route point; the call last came from the group."""
    ex = running.exchange
    ex.phone("1005").agent("login", agent_id="15", group="5000")
    try:
        events = run(pop(running, "1005", lambda: ex.phone("2001").dial("7000")))
        check(events, alerting="1005", calling="2001", called="7000", redirected_from="5000", cause="distributed")
    finally:
        idle(running, "2001", "1005")
        ex.phone("1005").agent("logout")


def test_a_cascade_group_pops_its_number_at_a_later_step(running):
    """The first step's member (2004) is busy: the second step rings 1004 (and 1008) at once."""
    ex = running.exchange
    ex.phone("2004").offhook()
    try:
        events = run(pop(running, "1004", lambda: ex.phone("2002").dial("6100")))
        check(events, alerting="1004", calling="2002", called="6100", redirected_from="6100", cause="distributed")
    finally:
        idle(running, "2002", "1004", "1008")
        ex.phone("2004").onhook()
