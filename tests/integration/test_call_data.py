"""Call data on a real exchange (broker, LIMs 1 and 2, both LIMs' CSTA servers, clients over TCP):
an external caller reaches agent 2005 (LIM 2) through ACD group 5000 (LIM 1), the client attaches
data with AssociateData, the agent consults supervisor 1000 (LIM 1) and transfers. The supervisor's
screen pops with the customer's data: Delivered, Established and Transfered carry it, as both
LIMs' servers report them."""
from __future__ import annotations

import asyncio
import time

import pytest

from csta_front.client import CstaClient, event_name, field
from tests.procs import running_exchange, wait_for

CORRELATOR, ACCOUNT = "C0FFEE0042", "4711"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("calldata"), cstas=(1, 2)) as running:
        yield running


async def connect(running, lim: int) -> CstaClient:
    address = running.topology.lim(lim)
    return await CstaClient.connect(address.address, address.csta.port)


async def events_until(csta: CstaClient, last: str, timeout: float = 15.0) -> list:
    """Events up to and including the first named `last`."""
    events: list = []
    deadline = time.monotonic() + timeout
    while not events or event_name(events[-1]) != last:
        events.append(await csta.next_event(timeout=max(0.01, deadline - time.monotonic())))
    return events


def test_the_supervisor_sees_the_customers_data_after_consultation_and_transfer(running):
    phone = running.exchange.phone

    async def scenario():
        async with await connect(running, 2) as agent_app, await connect(running, 1) as lim1, \
                await connect(running, 2) as lim2:
            await agent_app.monitor_start("2005")
            await lim1.monitor_start("1000")
            await lim2.monitor_start("1000")
            assert phone("2005").agent("login", "41", "5000")["ok"]
            assert phone("2005").agent("ready")["ok"]
            phone("0701234567").dial("5000")
            delivered = (await events_until(agent_app, "DeliveredEvent"))[-1]
            call_id = field(delivered, "connection", "callID")
            await agent_app.associate_data(call_id, "2005", correlator=CORRELATOR, account=ACCOUNT)
            info = (await events_until(agent_app, "CallInformationEvent"))[-1]
            assert field(info, "correlatorData", "string") == CORRELATOR
            assert field(info, "accountInfo") == ACCOUNT
            wait_for(lambda: phone("2005").answer(), what="2005 answers")
            established = (await events_until(agent_app, "EstablishedEvent"))[-1]
            assert field(established, "correlatorData", "string") == CORRELATOR
            phone("2005").consult("1000")
            wait_for(lambda: phone("1000").answer(), what="1000 answers")
            phone("2005").transfer()
            for csta in (lim1, lim2):
                events = await events_until(csta, "TransferedEvent")
                names = [event_name(e) for e in events]
                assert names == ["DeliveredEvent", "EstablishedEvent", "TransferedEvent"], names
                assert [field(e, "correlatorData", "string") for e in events] == [CORRELATOR] * 3
            phone("1000").hangup()
            for csta in (lim1, lim2):
                cleared = (await events_until(csta, "ConnectionClearedEvent"))[-1]
                assert field(cleared, "correlatorData", "string") == CORRELATOR
            phone("2005").agent("logout")
    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_an_ivr_attaches_data_through_the_python_api_and_a_monitor_sees_it(running):
    phone = running.exchange.phone

    async def scenario():
        async with await connect(running, 1) as csta:
            await csta.monitor_start("2001")
            phone("1001").dial("2001")
            await events_until(csta, "DeliveredEvent")
            assert phone("1001").attach(user="48656C6C6F")["ok"]
            info = (await events_until(csta, "CallInformationEvent"))[-1]
            assert field(info, "userData", "string") == "48656C6C6F"
            wait_for(lambda: phone("2001").answer(), what="2001 answers")
            established = (await events_until(csta, "EstablishedEvent"))[-1]
            assert field(established, "userData", "string") == "48656C6C6F"
            phone("1001").hangup()
            await events_until(csta, "ConnectionClearedEvent")
    asyncio.run(asyncio.wait_for(scenario(), 60))
