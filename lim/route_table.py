"""A LIM's routeing table: applications registered for its route points, and the routeing
dialogues in progress. Pure data, no bus, no clock (lim/routes.py drives it)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Registration:
    register_id: str
    node: str              # the CSTA server the application is on
    device: str | None     # a route point, or None: every route point
    seq: int               # registration order on this LIM


@dataclass
class Dialogue:
    xref: str               # ECMA-269 routeing cross-reference ID
    call_id: str
    route_point: str
    registration: Registration | None
    state: str = "asking"   # asking (RouteRequest or ReRoute out), routing (sent on), ended
    timer: Any = None
    reroutes: int = 0
    route_used_req: bool = False


@dataclass
class RouteTable:
    registrations: list[Registration] = field(default_factory=list)
    dialogues: dict[str, Dialogue] = field(default_factory=dict)  # xref -> dialogue
    _seq: Any = field(default_factory=lambda: itertools.count(1))
    _xrefs: Any = field(default_factory=lambda: itertools.count(1))

    def register(self, register_id: str, node: str, device: str | None) -> None:
        """Registering the same ID again replaces the registration (and goes to the back)."""
        self.remove(node, register_id)
        self.registrations.append(Registration(register_id, node, device, next(self._seq)))

    def remove(self, node: str, register_id: str) -> list[Registration]:
        gone = [r for r in self.registrations if r.node == node and r.register_id == register_id]
        self.registrations = [r for r in self.registrations if r not in gone]
        return gone

    def forget(self, registration: Registration) -> None:
        self.registrations = [r for r in self.registrations if r is not registration]

    def registrant(self, number: str) -> Registration | None:
        """Who is asked about a call at route point `number`: a registration for it before one
        for every route point, then the earliest."""
        candidates = [r for r in self.registrations if r.device in (number, None)]
        return min(candidates, key=lambda r: (r.device is None, r.seq), default=None)

    def open(self, prefix: str, call_id: str, route_point: str) -> Dialogue:
        dialogue = Dialogue(f"{prefix}-{next(self._xrefs)}", call_id, route_point, self.registrant(route_point))
        self.dialogues[dialogue.xref] = dialogue
        return dialogue

    def of_call(self, call_id: str, route_point: str) -> Dialogue | None:
        return next((d for d in self.dialogues.values() if d.call_id == call_id and d.route_point == route_point),
                    None)

    def close(self, dialogue: Dialogue) -> bool:
        """End a dialogue; False if it had ended already."""
        if dialogue.timer:
            dialogue.timer.cancel()
        dialogue.state = "ended"
        return self.dialogues.pop(dialogue.xref, None) is not None

    def clear(self) -> None:
        for dialogue in list(self.dialogues.values()):
            self.close(dialogue)
