"""The CSTA XML servers with real processes: a broker, three LIMs, CSTA servers on LIMs 1 and 2,
and clients speaking ECMA-323 over TCP."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from csta_front.client import ED3, ED5, CstaClient, CstaError, device_field, event_name, field
from tests.procs import running_exchange, wait_for


def add_lim_3(data: dict) -> None:
    data["lims"].append({"number": 3, "address": "127.0.1.3",
                         "extensions": [{"numbers": "3000-3009", "type": "ip"}]})
    data["groups"]["acd"][0]["queue_timeout_s"] = 30


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("csta"), lims=(1, 2, 3), cstas=(1, 2), edit=add_lim_3) as running:
        yield running.exchange, running.procs, running.topology


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def connect(topology, lim: int = 1, ns=None) -> CstaClient:
    kwargs = {"ns": ns} if ns else {}
    return await CstaClient.connect(topology.lim(lim).address, topology.lim(lim).csta.port, **kwargs)


class Events:
    """Events of one connection, sorted by monitor cross-reference."""

    def __init__(self, client: CstaClient):
        self.client = client
        self.by_xref: dict[str, list] = {}

    async def wait(self, xref: str, names: list[str], timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.by_xref.get(xref, [])) < len(names):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                event = await self.client.next_event(timeout=left)
            except asyncio.TimeoutError:
                break
            self.by_xref.setdefault(field(event, "monitorCrossRefID"), []).append(event)
        got = [event_name(e) for e in self.by_xref.get(xref, [])]
        assert got == [f"{n}Event" for n in names], f"monitor {xref}: {got}"
        events = self.by_xref.get(xref, [])
        self.by_xref[xref] = []
        return events


def test_make_answer_clear_across_lims(exchange):
    _, _, topology = exchange

    async def scenario():
        async with await connect(topology, 1) as csta:
            events = Events(csta)
            m1000 = await csta.monitor_start("1000")
            m2000 = await csta.monitor_start("2000")  # a device of LIM 2, from LIM 1's server
            assert m1000 != m2000
            call_id = await csta.make_call("1000", "2000")
            assert len(call_id) == 24 and call_id.isdigit()
            on_1000 = await events.wait(m1000, ["ServiceInitiated", "Originated", "Delivered"])
            on_2000 = await events.wait(m2000, ["Delivered"])
            delivered = on_2000[0]
            assert field(delivered, "connection", "callID") == call_id
            assert field(delivered, "connection", "deviceID") == "2000"
            assert device_field(delivered, "callingDevice") == "1000"
            assert device_field(delivered, "calledDevice") == "2000"
            assert device_field(delivered, "alertingDevice") == "2000"
            assert field(delivered, "localConnectionInfo") == "alerting"
            assert field(on_1000[2], "localConnectionInfo") == "connected"
            assert field(delivered, "cause") == "newCall"
            await csta.answer_call(call_id, "2000")
            est = (await events.wait(m1000, ["Established"]))[0]
            assert device_field(est, "answeringDevice") == "2000"
            await events.wait(m2000, ["Established"])
            assert await csta.snapshot_call(call_id) == [("1000", "connected"), ("2000", "connected")]
            assert await csta.snapshot_device("2000") == [(call_id, "connected")]
            await csta.clear_connection(call_id, "1000")
            cleared = await events.wait(m2000, ["ConnectionCleared", "ConnectionCleared"])
            assert device_field(cleared[0], "releasingDevice") == "1000"
            assert field(cleared[0], "localConnectionInfo") == "connected"
            assert field(cleared[1], "localConnectionInfo") == "null"
            await events.wait(m1000, ["ConnectionCleared", "ConnectionCleared"])
            # The call is gone: answering it again is an error with the right code.
            with pytest.raises(CstaError) as err:
                await csta.answer_call(call_id, "2000")
            assert (err.value.category, err.value.value) == ("operation", "invalidConnectionID")
            await csta.monitor_stop(m1000)
            await csta.monitor_stop(m2000)
    run(scenario())


def test_transfer_and_conference_across_three_lims(exchange):
    _, _, topology = exchange

    async def scenario():
        async with await connect(topology, 2) as csta:
            ev = Events(csta)
            mon = {d: await csta.monitor_start(d) for d in ("1001", "2001", "3001")}
            first = await csta.make_call("2001", "1001")
            await csta.answer_call(first, "1001")
            second = await csta.consultation_call(first, "1001", "3001")
            assert second != first
            await csta.answer_call(second, "3001")
            await ev.wait(mon["2001"], ["ServiceInitiated", "Originated", "Delivered", "Established", "Held"])
            await ev.wait(mon["3001"], ["Delivered", "Established"])
            await ev.wait(mon["1001"], ["Delivered", "Established", "Held", "ServiceInitiated", "Originated",
                                        "Delivered", "Established"])
            transferred_call = await csta.transfer_call(first, second, "1001")
            assert transferred_call == first
            for device in ("2001", "3001", "1001"):
                transferred = (await ev.wait(mon[device], ["Transfered"]))[0]
                assert device_field(transferred, "transferringDevice") == "1001"
                assert device_field(transferred, "transferredToDevice") == "3001"
                assert field(transferred, "primaryOldCall", "callID") == first
                assert field(transferred, "secondaryOldCall", "callID") == second
            assert await csta.snapshot_call(first) == [("2001", "connected"), ("3001", "connected")]
            # Now 3001 brings 1001 back into a conference.
            third = await csta.consultation_call(first, "3001", "1001")
            await csta.answer_call(third, "1001")
            conf_call = await csta.conference_call(first, third, "3001")
            assert conf_call == first
            await ev.wait(mon["1001"], ["Delivered", "Established", "Conferenced"])
            conferenced = (await ev.wait(mon["2001"], ["Held", "Conferenced"]))[1]
            assert device_field(conferenced, "conferencingDevice") == "3001"
            assert device_field(conferenced, "addedParty") == "1001"
            await ev.wait(mon["3001"], ["Held", "ServiceInitiated", "Originated", "Delivered", "Established",
                                        "Conferenced"])
            await csta.clear_connection(first, "2001")  # one party leaves the conference
            left = (await ev.wait(mon["3001"], ["ConnectionCleared"]))[0]
            assert field(left, "localConnectionInfo") == "connected"
            await ev.wait(mon["1001"], ["ConnectionCleared"])
            await ev.wait(mon["2001"], ["ConnectionCleared"])
            await csta.clear_call(first, "3001")
            await ev.wait(mon["3001"], ["ConnectionCleared", "ConnectionCleared"])
    run(scenario())


def test_acd_call_queued_and_distributed_with_the_group_monitored(exchange):
    ex, _, topology = exchange

    async def scenario():
        async with await connect(topology, 1) as csta:
            ev = Events(csta)
            group = await csta.monitor_start("5000")
            agent = await csta.monitor_start("2006")
            # An external caller dials in over the trunk, as in a call centre.
            call_id = ex.phone("0701234567").dial("5000")["call_id"]
            queued = (await ev.wait(group, ["Queued"]))[0]
            assert device_field(queued, "queue") == "5000"
            assert field(queued, "numberQueued") == "1"
            assert device_field(queued, "callingDevice") == "0701234567"
            await csta.set_agent_state("2006", "loggedOn", agent_id="26", group="5000")
            assert await csta.get_agent_state("2006") in ("agentReady", "agentBusy")
            on_group = await ev.wait(group, ["AgentLoggedOn", "AgentReady", "Diverted", "AgentBusy"])
            assert device_field(on_group[2], "newDestination") == "2006"
            assert field(on_group[2], "cause") == "distributed"
            on_agent = await ev.wait(agent, ["AgentLoggedOn", "AgentReady", "AgentBusy", "Delivered"])
            delivered = on_agent[-1]
            assert device_field(delivered, "callingDevice") == "0701234567"
            assert device_field(delivered, "lastRedirectionDevice") == "5000"
            assert field(delivered, "connection", "callID") == call_id
            await csta.answer_call(call_id, "2006")
            await ev.wait(agent, ["Established"])
            await csta.clear_connection(call_id, "2006")
            await ev.wait(agent, ["ConnectionCleared", "ConnectionCleared", "AgentWorkingAfterCall"])
            await csta.set_agent_state("2006", "loggedOff")
    run(scenario())


@pytest.mark.parametrize("ns", [ED3, ED5])
def test_other_editions_are_answered_in_their_namespace(exchange, ns):
    _, _, topology = exchange

    async def scenario():
        async with await connect(topology, 1, ns=ns) as csta:
            root = await csta.request(csta.E.RequestSystemStatus())
            assert root.tag == f"{{{ns}}}RequestSystemStatusResponse"
            xref = await csta.monitor_start("2002")
            call_id = await csta.make_call("1002", "2002")
            event = await csta.next_event()
            assert event.tag == f"{{{ns}}}DeliveredEvent" and field(event, "monitorCrossRefID") == xref
            await csta.clear_call(call_id, "1002")
    run(scenario())


def test_prefixed_request_and_tel_uris(exchange):
    _, _, topology = exchange
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>'
           b'<ns3:MakeCall xmlns:ns3="http://www.ecma-international.org/standards/ecma-323/csta/ed5" '
           b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           b'xsi:schemaLocation="http://www.ecma-international.org/standards/ecma-323/csta/ed5 csta.xsd">'
           b'<ns3:callingDevice typeOfNumber="dialingNumber">tel:1003;phone-context=dialstring</ns3:callingDevice>'
           b'<ns3:calledDirectoryNumber>tel:2003</ns3:calledDirectoryNumber>'
           b'<ns3:autoOriginate>doNotPrompt</ns3:autoOriginate></ns3:MakeCall>')

    async def scenario():
        async with await connect(topology, 1) as csta:
            root = await csta.send_raw(xml)
            assert root.tag == "{http://www.ecma-international.org/standards/ecma-323/csta/ed5}MakeCallResponse"
            call_id = field(root, "callingDevice", "callID")
            await csta.clear_call(call_id, "1003")
    run(scenario())


def test_bad_requests_get_errors_and_the_session_carries_on(exchange):
    _, _, topology = exchange
    ed4 = b'xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"'
    cases = [
        (b"<MakeCall " + ed4 + b"><callingDevice>1004", ("operation", "invalidParameterValue")),
        (b"<Juggle " + ed4 + b"/>", ("operation", "serviceNotSupported")),
        (b"<MakeCall " + ed4 + b"><callingDevice>1004</callingDevice></MakeCall>", ("operation", "invalidDeviceID")),
        (b"<MakeCall " + ed4 + b"><callingDevice>1004</callingDevice><calledDirectoryNumber>4999"
         b"</calledDirectoryNumber></MakeCall>", ("operation", "invalidCalledDeviceID")),
        (b"<MonitorStart " + ed4 + b"><monitorObject><deviceObject>4999</deviceObject></monitorObject></MonitorStart>",
         ("operation", "invalidMonitorObject")),
        (b"<AnswerCall " + ed4 + b"><callToBeAnswered><deviceID>1004</deviceID></callToBeAnswered></AnswerCall>",
         ("stateIncompatibility", "noCallToAnswer")),
        (b"<MakeCall " + ed4 + b"><callingDevice>1010</callingDevice><calledDirectoryNumber>2000"
         b"</calledDirectoryNumber></MakeCall>", ("systemResourceAvailibility", "resourceOutOfService")),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><RequestSystemStatus ' + ed4 + b'>&e;</RequestSystemStatus>',
         ("operation", "invalidParameterValue")),
        (b"<MonitorStop " + ed4 + b"><monitorCrossRefID>999999</monitorCrossRefID></MonitorStop>",
         ("operation", "invalidCrossRefID")),
    ]

    async def scenario():
        async with await connect(topology, 1) as csta:
            for xml, expected in cases:
                with pytest.raises(CstaError) as err:
                    await csta.send_raw(xml)
                assert (err.value.category, err.value.value) == expected, xml
            assert await csta.request_system_status() == "normal"
    run(scenario())


def test_impossible_frame_closes_only_that_connection(exchange):
    _, _, topology = exchange
    lim = topology.lim(1)

    async def scenario():
        async with await connect(topology, 1) as good:
            xref = await good.monitor_start("1005")
            with socket.create_connection((lim.address, lim.csta.port), timeout=5) as bad:
                bad.sendall(b"\x00\x00\x00\x03" + b"0001")  # a length shorter than the header
                assert bad.recv(100) == b""  # closed by the server
            with socket.create_connection((lim.address, lim.csta.port), timeout=5) as bad:
                bad.sendall(b"HELLO THERE\r\n")  # no protocol this port speaks
                assert bad.recv(100) == b""
            assert await good.request_system_status() == "normal"
            await good.monitor_stop(xref)
    run(scenario())


def test_monitors_end_with_their_connection(exchange):
    ex, _, topology = exchange

    async def scenario():
        first = await connect(topology, 1)
        await first.monitor_start("1006")
        await first.close()
        async with await connect(topology, 1) as csta:
            xref = await csta.monitor_start("1007")
            wait_for(lambda: ex.client.request("csta-1", "csta.status")["monitored_devices"] == ["1007"],
                     5, "the closed connection's monitor to go")
            await csta.monitor_stop(xref)
    run(scenario())


def test_features_over_csta(exchange):
    _, _, topology = exchange

    async def scenario():
        async with await connect(topology, 2) as csta:
            xref = await csta.monitor_start("3002")
            await csta.set_do_not_disturb("3002", True)
            assert await csta.get_do_not_disturb("3002") is True
            await csta.set_forwarding("3002", "forwardImmediate", "1008")
            assert (await csta.get_forwarding("3002"))["forwardImmediate"] == "1008"
            with pytest.raises(CstaError) as err:
                await csta.set_forwarding("3002", "forwardImmediate", "3002")
            assert err.value.value == "invalidForwardingDestination"
            await csta.set_forwarding("3002", "forwardImmediate", None)
            await csta.set_do_not_disturb("3002", False)
            assert await csta.get_message_waiting("3002") is False
            names = [event_name(await csta.next_event()) for _ in range(4)]
            assert names == ["DoNotDisturbEvent", "ForwardingEvent", "ForwardingEvent", "DoNotDisturbEvent"]
            features = await csta.get_csta_features()
            assert "MakeCall" in features and "MonitorStart" in features
            await csta.monitor_stop(xref)
    run(scenario())


def test_a_lim_dies_and_comes_back_under_the_monitor(exchange):
    ex, procs, topology = exchange

    async def scenario():
        async with await connect(topology, 1) as csta:
            ev = Events(csta)
            xref = await csta.monitor_start("3003")
            mine = await csta.monitor_start("1009")
            call_id = await csta.make_call("1009", "3003")
            await csta.answer_call(call_id, "3003")
            await ev.wait(xref, ["Delivered", "Established"])
            await ev.wait(mine, ["ServiceInitiated", "Originated", "Delivered", "Established"])
            procs.procs["lim-3"].kill()
            procs.procs["lim-3"].wait()
            # Out of service as soon as the broker declares LIM 3 dead (the same announcement that
            # makes LIM 1 release the call, so it always comes first), then the releases.
            await ev.wait(xref, ["OutOfService", "ConnectionCleared", "ConnectionCleared"], timeout=5)
            cleared = await ev.wait(mine, ["ConnectionCleared", "ConnectionCleared"])
            assert field(cleared[0], "cause") == "networkNotObtainable"
            procs.start_lim(3)
            await ev.wait(xref, ["BackInService"], timeout=15)
            # The open monitor delivers again, without the client doing anything.
            call_id = await csta.make_call("1009", "3003")
            await ev.wait(xref, ["Delivered"])
            await csta.clear_call(call_id, "1009")
    run(scenario())
