"""A CstaSession driven by whole documents instead of frames: the SOAP side's way into a session.

Each SOAP request is fed to the session under an invoke ID of its own and the answer on that ID
goes back to the request's callback; whatever else the session sends (events) goes elsewhere.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

from csta_front.session import CstaSession

log = logging.getLogger("csta")

CLIENT_INVOKE_IDS = 9000       # SOAP requests use invoke IDs 1-8999 in their sessions


class SessionPort:
    """A CstaSession fed documents: each request gets a fresh invoke ID (below 9000: the session
    numbers its own requests, such as SystemStatus, from 9000) and its answer goes to its callback;
    every other document (events and SwitchingFunctionDevices on 9999, SystemStatus) goes to
    `on_event`."""

    def __init__(self, front: Any, owner: str, peer: str, on_event: Callable[[bytes], None],
                 on_closed: Callable[[], None]):
        self.front = front
        self.owner = owner
        self.on_event = on_event
        self.on_closed = on_closed
        self.closed = False
        self._waiting: dict[int, Callable[[bytes], None]] = {}
        self._invoke = itertools.cycle(range(1, CLIENT_INVOKE_IDS))
        self.session = CstaSession(front, None, self._session_closed, peer, send_document=self._document)
        # Authenticated by the Linux login: ECMA-354's "authentication mandatory" asks no more of it.
        self.session.app_session = f"linux:{owner}"
        front.sessions.add(self.session)

    def request(self, xml: bytes, answer: Callable[[bytes], None]) -> int:
        invoke_id = next(self._invoke)
        self._waiting[invoke_id] = answer
        self.session.frame_received(invoke_id, xml)
        return invoke_id

    def cancel(self, invoke_id: int) -> None:
        self._waiting.pop(invoke_id, None)

    def _document(self, invoke_id: int, xml: bytes) -> None:
        if invoke_id >= CLIENT_INVOKE_IDS:
            self.on_event(xml)
            return
        answer = self._waiting.pop(invoke_id, None)
        if answer is not None:
            answer(xml)
        else:  # the answer to a request given up on (its HTTP request timed out or went away)
            log.debug("soap: session %d: a late answer on invoke ID %d dropped", self.session.id, invoke_id)

    def close(self) -> None:
        self.session.close()  # calls _session_closed

    def _session_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._waiting.clear()
        self.front.sessions.discard(self.session)
        self.on_closed()
