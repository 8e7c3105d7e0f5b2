"""The pytest plugin, as a user's test suite meets it: installed with the package, found through its
`pytest11` entry point, handing a test a running exchange and stopping it afterwards."""
from __future__ import annotations

pytest_plugins = ["pytester"]


def test_a_users_suite_gets_an_exchange(pytester):
    pytester.makepyfile(test_users_app='''
        import asyncio

        from csta_front.client import CstaClient, event_name, field


        def test_screen_pop(mxone_exchange):
            host, port = mxone_exchange.csta_endpoint(1)

            async def scenario():
                async with await CstaClient.connect(host, port) as csta:
                    await csta.monitor_start("2000")
                    call_id = mxone_exchange.phone("1000").dial("2000")["call_id"]
                    event = await csta.next_event()
                    assert event_name(event) == "DeliveredEvent"
                    assert field(event, "connection", "callID") == call_id
            asyncio.run(scenario())
            assert [c["call_id"] for c in mxone_exchange.calls()]
    ''')
    # A subprocess, so that the plugin is found the standard way: through the installed entry point.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_topology_by_marker(pytester, tmp_path):
    from topology.generate import generate_topology
    lab = tmp_path / "lab.yaml"
    lab.write_text(generate_topology(3, 10))
    pytester.makepyfile(test_lab=f'''
        import pytest


        @pytest.mark.mxone_topology({str(lab)!r})
        def test_three_lims(mxone_exchange):
            assert [lim.number for lim in mxone_exchange.topology.lims] == [1, 2, 3]
            assert all(member["state"] == "up" for member in mxone_exchange.exchange.members())
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
