"""Queue and agent status on a real exchange (broker, two LIMs, LIM 1's CSTA server over TCP):
callers queued at ACD group 5000 seen through SnapshotDevice, Queued events and `mxone group` /
`mxone status`; an agent made not ready during a call stays busy until the call ends.

Expected values come from ECMA-269 (numberQueued counts the calls queued including this one,
callsInFront those ahead; a state requested while busy is pending until the call ends) and the
callers the test itself placed; every document the server sends is checked against the schema."""
from __future__ import annotations

import json

import pytest

from cli.exchange import _groups as status_groups
from csta_front.client import ED6, device_field, field
from csta_front.codec import text
from tests.integration.test_csta_server import Events, connect, run
from tests.procs import mxone, running_exchange, wait_for

CALLERS = ("0701234561", "0701234562", "0701234563")   # external callers, over the trunk


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_exchange(tmp_path_factory.mktemp("queue"), lims=(1, 2), cstas=(1,)) as running:
        yield running


def group_json(running) -> dict:
    out = mxone("group", "5000", "--json", "--run-dir", str(running.directory))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_three_callers_queue_in_order_with_positions(running):
    ex, topology = running.exchange, running.topology

    async def scenario():
        async with await connect(topology, 1) as csta:
            ev = Events(csta)
            group = await csta.monitor_start("5000")
            ids = []
            for caller in CALLERS:          # no agent is logged on: every call waits
                ids.append(ex.phone(caller).dial("5000")["call_id"])
                queued = (await ev.wait(group, ["Queued"]))[0]
                assert field(queued, "queuedConnection", "callID") == ids[-1]
                assert device_field(queued, "callingDevice") == caller
                assert field(queued, "numberQueued") == str(len(ids))      # including this call
                assert field(queued, "callsInFront") == str(len(ids) - 1)  # the calls ahead of it
            assert await csta.snapshot_device("5000") == [(i, "queued") for i in ids]

            # Without Python: the queue, its callers and their waiting times.
            shown = group_json(running)
            assert [(c["position"], c["call_id"], c["calling"]) for c in shown["queue"]] == \
                [(1, ids[0], CALLERS[0]), (2, ids[1], CALLERS[1]), (3, ids[2], CALLERS[2])]
            waits = [c["waiting_s"] for c in shown["queue"]]
            assert waits == sorted(waits, reverse=True) and waits[-1] >= 0
            text_out = mxone("group", "5000", "--run-dir", str(running.directory))
            assert text_out.returncode == 0, text_out.stderr
            assert "3 calls queued" in text_out.stdout
            lines = [line for line in text_out.stdout.splitlines() if "waiting" in line]
            assert [line.split()[1] for line in lines] == list(CALLERS)
            # `mxone status` lists the same per group (its processes part needs supervisord: the
            # groups part is run here on its own).
            members = {m["lim"]: m for m in ex.members() if m["role"] == "lim"}
            groups = status_groups(ex, topology, members)
            acd = next(g for g in groups if g["number"] == "5000")
            assert [c["call_id"] for c in acd["queue"]] == ids and acd["agents"] == []
            assert next(g for g in groups if g["number"] == "6000")["members"] == ["1002", "1003", "2002", "2003"]

            # The first caller gives up: the two others move up; a new caller joins behind them.
            ex.phone(CALLERS[0]).hangup()
            wait_for(lambda: [c["call_id"] for c in ex.phone("5000").state()["calls"]] == ids[1:], 5,
                     "the first call to leave the queue")
            assert await csta.snapshot_device("5000") == [(i, "queued") for i in ids[1:]]
            ex.phone(CALLERS[0]).dial("5000")
            # The abandoned call's two connections clear, then the new call is queued.
            queued = (await ev.wait(group, ["ConnectionCleared", "ConnectionCleared", "Queued"]))[2]
            assert field(queued, "numberQueued") == "3" and field(queued, "callsInFront") == "2"

            for caller in CALLERS:
                ex.phone(caller).hangup()
            wait_for(lambda: ex.phone("5000").state()["calls"] == [], 5, "the queue to empty")
            assert await csta.snapshot_device("5000") == []
    run(scenario())


def test_not_ready_during_a_call_is_pending_until_the_call_ends(running):
    ex, topology = running.exchange, running.topology

    async def scenario():
        async with await connect(topology, 1, ns=ED6) as csta:
            ev = Events(csta)
            agent = await csta.monitor_start("2006")       # an agent position on LIM 2
            await csta.set_agent_state("2006", "loggedOn", agent_id="26", group="5000")
            await ev.wait(agent, ["AgentLoggedOn", "AgentReady"])
            ex.phone(CALLERS[0]).dial("5000")
            await ev.wait(agent, ["AgentBusy", "Delivered"])
            ex.phone("2006").answer()
            await ev.wait(agent, ["Established"])

            E = csta.E
            root = await csta.request(E.SetAgentState(E.device("2006"), E.requestedAgentState("notReady")))
            assert text(root, "pendingAgentState") == "agentNotReady"
            busy = (await ev.wait(agent, ["AgentBusy"]))[0]
            assert field(busy, "pendingAgentState") == "agentNotReady"
            assert field(busy, "agentID") == "26" and field(busy, "acdGroup") == "5000"
            root = await csta.request(E.GetAgentState(E.device("2006")))
            info = ("agentStateList", "agentStateEntry", "agentInfo", "agentInfoItem")
            assert text(root, *info, "agentState") == "agentBusy"
            assert text(root, *info, "pendingAgentState") == "agentNotReady"
            agents = group_json(running)["agents"]
            assert [(a["device"], a["state"], a["pending"]) for a in agents] == [("2006", "agentBusy", "agentNotReady")]

            ex.phone(CALLERS[0]).hangup()                  # the call ends: now not ready
            got = await ev.wait(agent, ["ConnectionCleared", "ConnectionCleared", "AgentNotReady"])
            assert field(got[2], "agentID") == "26" and field(got[2], "acdGroup") == "5000"
            assert await csta.get_agent_state("2006") == "agentNotReady"
            wait_for(lambda: [a["state"] for a in group_json(running)["agents"]] == ["agentNotReady"], 5,
                     "the group to know the agent is not ready")
            await csta.set_agent_state("2006", "loggedOff")
            await ev.wait(agent, ["AgentLoggedOff"])
    run(scenario())


def test_snapshot_of_a_hunt_group_lists_the_call_ringing_at_it(running):
    ex, topology = running.exchange, running.topology

    async def scenario():
        async with await connect(topology, 1) as csta:
            call_id = ex.phone("2000").dial("6000")["call_id"]   # linear hunt group on LIM 1: 1002 rings
            wait_for(lambda: ex.phone("1002").state()["calls"], 5, "1002 to ring")
            assert await csta.snapshot_device("6000") == [(call_id, "alerting")]
            ex.phone("2000").hangup()
            wait_for(lambda: not ex.phone("1002").state()["calls"], 5, "the call to end")
            assert await csta.snapshot_device("6000") == []
    run(scenario())
