"""The index of calls per device, and the mirrors of calls controlled on other LIMs.

`calls_of` says which calls each device (or group) of this LIM is in, oldest first: a device with
no entry is idle. Only this part changes it. A device entering its first call or leaving its last
one is news for its ACD agent (lim/agents.py); a route point leaving a call is news for its
routeing dialogue (lim/routes.py). Mirrors are refreshed by `call.update` messages
from the controller of the call.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from broker.envelope import Envelope
from lim.calls import Call
from lim.state import LimState, Reply

if TYPE_CHECKING:
    from lim.agents import Agents
    from lim.routes import Routes


class CallIndex:
    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, agents: Agents, routes: Routes) -> None:
        self.agents = agents
        self.routes = routes

    def add(self, call: Call, number: str) -> None:
        ids = self.state.calls_of.setdefault(number, [])
        if call.call_id not in ids:
            ids.append(call.call_id)
            self.agents.call_started(number)

    def remove(self, call_id: str, number: str) -> None:
        ids = self.state.calls_of.get(number)
        if ids and call_id in ids:
            ids.remove(call_id)
        queue = self.state.queues.get(number)
        if queue is not None:
            queue.remove(call_id)
        if number in self.state.route_points:
            self.routes.call_left(number, call_id)
        if not ids:
            self.state.calls_of.pop(number, None)
            device = self.state.devices.get(number)
            if device is not None and device.type == "external":
                del self.state.devices[number]  # the trunk channel is free again
            self.agents.calls_ended(number)

    # -- mirrors -----------------------------------------------------------------------------------
    def on_update(self, env: Envelope, respond: Reply) -> None:
        self._apply_mirror(Call.from_wire(env.body), env.body.get("replaces"))

    def _apply_mirror(self, update: Call, replaces: str | None = None) -> None:
        if replaces:  # a transfer or conference merged that call into this one
            old = self.state.calls.get(replaces)
            if old is not None and old.controller != self.state.lim:
                self.state.calls.pop(replaces)
                for device, party in old.parties.items():
                    if party.lim == self.state.lim:
                        self.remove(replaces, device)
        old = self.state.calls.get(update.call_id)
        if old is not None and old.controller == self.state.lim:
            return  # never let a stale message overwrite the authoritative copy
        before = {d for d, p in (old.parties.items() if old else ()) if p.lim == self.state.lim}
        after = set() if update.cleared else {d for d, p in update.parties.items() if p.lim == self.state.lim}
        if update.cleared or not after:
            self.state.calls.pop(update.call_id, None)
        else:
            self.state.calls[update.call_id] = update
        for device in before - after:
            self.remove(update.call_id, device)
        for device in after - before:
            self.add(update, device)
