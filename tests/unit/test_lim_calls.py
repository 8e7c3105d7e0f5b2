"""The call state machine of the LIMs, driven through a fake bus and a fake clock."""
from __future__ import annotations

import pytest

from lim.store import Store
from tests.fakes import FakeNetwork
from topology.model import (AcdGroup, BrokerSettings, Extension, Lim, Timers, Topology,
                            TrunkRoute)


def make_topology(**overrides) -> Topology:
    exts = [Extension(str(n), "ip", 1, True) for n in range(1000, 1004)]
    exts += [Extension(str(n), "ip", 2, True) for n in range(2000, 2004)]
    exts += [Extension(str(n), "ip", 3, True) for n in range(3000, 3002)]
    exts += [Extension("1009", "ip", 1, False), Extension("1008", "virtual", 1, False)]
    values = dict(name="t", broker=BrokerSettings(),
                  lims=(Lim(1, "127.0.1.1"), Lim(2, "127.0.1.2"), Lim(3, "127.0.1.3")),
                  extensions=tuple(exts),
                  acd_groups=(AcdGroup("5000", 1, ("1001",)),),
                  trunks=(TrunkRoute("pstn", "0", 1, channels=2),),
                  timers=Timers(no_answer_s=30))
    values.update(overrides)
    return Topology(**values)


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork(make_topology())


def states(event: dict) -> dict[str, str]:
    return dict((d, s) for d, s in event["connections"])


def test_call_across_lims_answered_and_cleared_by_caller(net):
    assert net.phone("1000", "offhook")["state"] == "initiated"
    reply = net.phone("1000", "dial", digits="2000")
    assert reply["ok"] and reply["state"] == "connected"
    call_id = reply["call_id"]
    assert len(call_id) == 24 and call_id.isdigit()
    assert net.phone("2000", "answer")["ok"]
    assert net.phone("1000", "hangup")["ok"]

    expected = ["ServiceInitiated", "Originated", "Delivered", "Established",
                "ConnectionCleared", "ConnectionCleared"]
    assert net.event_names("1000") == expected
    assert net.event_names("2000") == expected[2:]  # 2000 joins the call when it rings
    delivered = net.events("2000")[0]
    assert delivered["calling"] == "1000" and delivered["called"] == "2000" and delivered["alerting"] == "2000"
    assert states(delivered) == {"1000": "connected", "2000": "alerting"}
    established = net.events("2000")[1]
    assert established["answering"] == "2000"
    assert states(established) == {"1000": "connected", "2000": "connected"}
    first_clear, second_clear = net.events("2000")[2:]
    assert first_clear["dropped"] == "1000" and first_clear["cause"] == "normalClearing"
    assert states(first_clear) == {"2000": "connected"}
    assert second_clear["dropped"] == "2000" and states(second_clear) == {}
    call_events = [b["event"] for t, b in net.published if t == f"c:{call_id}|"]
    assert call_events[-1] == "CallCleared"
    assert all(not core.calls for core in net.cores.values())
    assert all(not core.calls_of for core in net.cores.values())


def test_call_the_other_way_released_by_called_party(net):
    call_id = net.phone("2001", "dial", digits="1001")["call_id"]  # dial goes off hook first
    assert call_id.startswith("002")  # the controlling LIM is in the call ID
    net.phone("1001", "offhook")  # going off hook while ringing answers
    assert net.cores[1].calls[call_id].controller == 2
    assert net.phone("1001", "onhook")["ok"]
    assert net.event_names("2001") == ["ServiceInitiated", "Originated", "Delivered", "Established",
                                       "ConnectionCleared", "ConnectionCleared"]
    assert net.events("2001")[4]["dropped"] == "1001"
    assert not net.cores[1].calls and not net.cores[2].calls


def test_mirror_follows_the_controller(net):
    call_id = net.phone("1000", "dial", digits="2000")["call_id"]
    mirror = net.cores[2].calls[call_id]
    assert mirror.controller == 1 and mirror.state_of("2000") == "alerting"
    net.phone("2000", "answer")
    assert net.cores[2].calls[call_id].state_of("1000") == "connected"
    assert net.cores[2].calls[call_id].state_of("2000") == "connected"


def test_busy_called_party_fails_the_call(net):
    net.phone("2000", "offhook")
    net.phone("1000", "dial", digits="2000")
    failed = net.events("1000")[-1]
    assert failed["event"] == "Failed" and failed["cause"] == "busy" and failed["failing"] == "2000"
    assert states(failed) == {"1000": "fail"}
    assert net.event_names("2000") == ["ServiceInitiated"]
    # The caller hears busy tone until it hangs up.
    assert net.phone("1000", "dial", digits="2001")["error"] == "busy"
    net.phone("1000", "hangup")
    assert net.event_names("1000")[-1] == "ConnectionCleared"
    assert not net.cores[1].calls


def test_calling_a_device_with_no_terminal_fails(net):
    net.phone("2000", "dial", digits="1009")
    failed = net.events("2000")[-1]
    assert failed["event"] == "Failed" and failed["cause"] == "destNotObtainable"


def test_unknown_number_is_refused_and_changes_nothing(net):
    reply = net.phone("1000", "dial", digits="4444")
    assert reply == {"ok": False, "error": "unknown_number", "message": "number 4444 is not allocated"}
    assert net.events("1000") == [] and not net.cores[1].calls


def test_dialling_from_out_of_service_device_is_refused(net):
    reply = net.phone("1009", "dial", digits="1000")
    assert reply["error"] == "out_of_service"
    assert net.published == []


def test_answering_a_phone_that_is_not_ringing_is_refused(net):
    assert net.phone("2000", "answer")["error"] == "not_alerting"
    net.phone("1000", "dial", digits="2000")
    net.phone("2000", "answer")
    assert net.phone("2000", "answer")["error"] == "not_alerting"
    assert net.phone("2001", "hangup")["error"] == "idle"
    assert net.phone("1000", "offhook")["error"] == "busy"


def test_bad_digits_and_unknown_action(net):
    assert net.phone("1000", "dial", digits="12ab")["error"] == "bad_digits"
    assert net.phone("1000", "juggle")["error"] == "unknown_action"
    assert net.phone("9999", "offhook")["error"] == "unknown_number"
    assert net.phone("5000", "offhook")["error"] == "not_a_phone"


def test_no_answer_releases_the_call_after_the_timer(net):
    net.phone("1000", "dial", digits="2000")
    net.advance(29.9)
    assert net.event_names("2000") == ["Delivered"]
    net.advance(0.2)
    assert net.event_names("2000")[-2:] == ["ConnectionCleared", "ConnectionCleared"]
    assert net.events("2000")[-1]["cause"] == "callNotAnswered"
    assert not net.cores[1].calls and not net.cores[2].calls


def test_answer_before_the_timer_cancels_it(net):
    net.phone("1000", "dial", digits="2000")
    net.phone("2000", "answer")
    net.advance(60)
    assert net.event_names("2000") == ["Delivered", "Established"]


def test_caller_hangs_up_while_ringing(net):
    net.phone("1000", "dial", digits="2000")
    net.phone("1000", "hangup")
    assert net.event_names("2000") == ["Delivered", "ConnectionCleared", "ConnectionCleared"]
    assert not net.cores[2].calls_of
    assert net.phone("2000", "answer")["error"] == "not_alerting"


def test_call_within_one_lim_uses_no_bus_messages(net):
    net.phone("1000", "dial", digits="1001")
    net.phone("1001", "answer")
    assert net.event_names("1001") == ["Delivered", "Established"]
    assert net.cores[1].calls  # both parties local


def test_outgoing_trunk_call_reaches_the_network(net):
    call_id = net.phone("2000", "dial", digits="0701234567")["call_id"]
    names = net.event_names("2000")
    assert names == ["ServiceInitiated", "Originated", "NetworkReached", "Delivered"]
    assert net.phone("0701234567", "answer")["ok"]
    assert net.event_names("2000")[-1] == "Established"
    net.phone("0701234567", "hangup")
    assert "0701234567" not in net.cores[1].devices  # the channel is free again
    assert not net.cores[2].calls and call_id not in net.cores[1].calls


def test_incoming_trunk_call(net):
    net.phone("0812345", "dial", digits="2000")
    delivered = net.events("2000")[0]
    assert delivered["event"] == "Delivered" and delivered["calling"] == "0812345"
    net.phone("2000", "answer")
    net.phone("2000", "hangup")
    assert not net.cores[1].devices.get("0812345")


def test_trunk_channels_run_out(net):
    net.phone("2000", "dial", digits="071")
    net.phone("2001", "dial", digits="072")
    net.phone("2002", "dial", digits="073")
    failed = net.events("2002")[-1]
    assert failed["event"] == "Failed" and failed["cause"] == "trunksBusy"
    assert net.phone("099", "dial", digits="1000")["error"] == "trunks_busy"


def test_trunk_auto_answer():
    net = FakeNetwork(make_topology(trunks=(TrunkRoute("pstn", "0", 1, answer_after_s=2.0),)))
    net.phone("2000", "dial", digits="0555")
    net.advance(2.5)
    assert net.event_names("2000")[-1] == "Established"


def test_lim_failure_releases_calls_on_surviving_lims(net):
    net.phone("1000", "dial", digits="2000")   # controlled by LIM 1
    net.phone("2000", "answer")
    net.phone("2001", "dial", digits="3000")   # controlled by LIM 2, party on LIM 3
    net.phone("3001", "dial", digits="2002")   # controlled by LIM 3, party on LIM 2
    net.kill_lim(3)
    net.run()
    assert net.events("2001")[-1]["event"] == "ConnectionCleared"
    assert net.events("2001")[-1]["cause"] == "networkNotObtainable"
    assert net.events("2002")[-1]["event"] == "ConnectionCleared"
    assert net.events("2002")[-1]["cause"] == "networkNotObtainable"
    assert "2001" not in net.cores[2].calls_of and "2002" not in net.cores[2].calls_of
    # The call between LIM 1 and LIM 2 is untouched.
    assert net.cores[1].calls and net.events("2000")[-1]["event"] == "Established"


def test_call_to_a_dead_lim_fails(net):
    net.kill_lim(2)
    net.phone("1000", "dial", digits="2000")
    failed = net.events("1000")[-1]
    assert failed["event"] == "Failed" and failed["cause"] == "networkNotObtainable"


def test_logoff_and_logon_persist_and_report(net, tmp_path):
    store = Store(tmp_path / "lim-1.db")
    net.start_lim(1, store)
    net.phone("1000", "dial", digits="2000")
    assert net.phone("1000", "logoff")["logged_on"] is False
    assert net.event_names("1000")[-1] == "OutOfService"
    assert net.event_names("2000")[-1] == "ConnectionCleared"  # its call was released
    assert net.phone("1000", "offhook")["error"] == "out_of_service"
    store.close()
    restarted = net.start_lim(1, Store(tmp_path / "lim-1.db"))
    assert restarted.devices["1000"].logged_on is False
    assert restarted.incarnation == 2
    assert net.phone("1000", "logon")["ok"]
    assert net.event_names("1000")[-1] == "BackInService"
    assert net.phone("1008", "logon")["error"] == "virtual"


def test_rejoin_drops_every_call_and_takes_a_new_incarnation(net):
    net.phone("1000", "dial", digits="2000")
    old = net.cores[2].incarnation
    assert net.cores[2].rejoin() == old + 1
    assert not net.cores[2].calls and not net.cores[2].calls_of


def test_malformed_bus_request_gets_an_error_not_a_crash(net):
    replies = []
    net.client.request("lim-1", "call.op", {"nothing": 1}, replies.append)
    net.client.request("lim-1", "no.such.thing", {}, replies.append)
    net.run()
    assert replies[0]["error"] == "bad_request" and replies[1]["error"] == "unknown_request"


def test_call_ids_are_unique_across_lims_and_restarts(net, tmp_path):
    net.start_lim(1, Store(tmp_path / "lim-1.db"))
    ids = {net.phone("1000", "offhook")["call_id"], net.phone("2000", "offhook")["call_id"]}
    net.phone("1000", "onhook")
    net.start_lim(1, Store(tmp_path / "lim-1.db"))  # a restart: same store, next incarnation
    ids.add(net.phone("1001", "offhook")["call_id"])
    assert len(ids) == 3


def test_transfer_to_a_target_on_the_held_calls_lim_leaves_no_stale_mirror(net):
    """2000 (LIM 2) calls 1000 (LIM 1); 1000 consults 2001 (LIM 2, the held call's controller) and
    transfers. LIM 2 must not keep its mirror of the consultation call: 2001 is idle after the call
    (found by `mxone traffic`: the next call to 2001 was refused busy)."""
    call_id = net.phone("2000", "dial", digits="1000")["call_id"]
    net.phone("1000", "answer")
    consult_id = net.phone("1000", "consult", digits="2001")["call_id"]
    net.phone("2001", "answer")
    assert net.phone("1000", "transfer")["ok"]
    lim2 = net.cores[2]
    assert consult_id not in lim2.calls
    assert lim2.calls_of.get("2001") == [call_id]
    net.phone("2001", "hangup")
    assert not lim2.calls_of and not lim2.calls and not net.cores[1].calls_of
    assert net.phone("2000", "dial", digits="2001")["ok"]
    assert net.phone("2001", "answer")["ok"]  # rings, not busy
