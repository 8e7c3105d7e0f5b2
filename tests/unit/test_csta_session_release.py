"""A closed CSTA session is garbage at once (issue 18's soak: each closed session stayed in memory
for a day, held by its cancelled ECMA-354 session timer; ~2.4 kB a session on a real server)."""
from __future__ import annotations

import gc
import weakref

from csta_front.codec import ACSE_NS
from tests.csta_fakes import FakeClient, FakeFront

ED4 = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"


def open_and_close(front: FakeFront, number: int) -> weakref.ref:
    client = FakeClient(front, peer=f"churn {number}")
    answer = client.ask(1, f'<StartApplicationSession xmlns="{ACSE_NS}"><applicationInfo>'
                           f'<applicationID>churn</applicationID></applicationInfo><requestedProtocolVersions>'
                           f'<protocolVersion>{ED4}</protocolVersion></requestedProtocolVersions>'
                           f'</StartApplicationSession>')
    assert b"StartApplicationSessionPosResponse" in answer.xml, answer.xml
    client.session.close()
    return weakref.ref(client.session)


def test_closed_sessions_are_not_kept_by_their_session_timers():
    front = FakeFront()
    gone = [open_and_close(front, n) for n in range(100)]
    gc.collect()
    kept = sum(ref() is not None for ref in gone)
    assert kept == 0, f"{kept} of 100 closed sessions are still in memory"
    assert front.timers.waiting() == 0  # their session timers were cancelled, none waits for a day
