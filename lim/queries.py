"""Questions about this LIM and its devices: `device.get`, `call.get`, `lim.status`. Read only."""
from __future__ import annotations

from broker.envelope import Envelope
from broker.protocol import Refusal
from lim.errors import Refused
from lim.state import LimState, Reply


class Queries:
    """Answers from the state as it is; changes nothing and calls no other part."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self) -> None:
        pass

    def on_device_get(self, env: Envelope, respond: Reply) -> None:
        number = self.state.target(env)
        queue = self.state.queues.get(number)
        if queue is not None:
            respond({"ok": True, "device": number, "type": "acd", "lim": self.state.lim,
                     "queue": list(queue.queue), "calls": self._queued_calls(number),
                     "agents": [{"device": a.device, "agent_id": a.agent_id, "state": a.state, "lim": a.lim,
                                 "pending": a.pending} for a in queue.agents.values()]})
            return
        if number in self.state.hunt_groups:
            group = self.state.hunt_groups[number]
            respond({"ok": True, "device": number, "type": "hunt", "mode": group.mode, "lim": self.state.lim,
                     "members": list(group.all_members())})
            return
        if number in self.state.route_points:  # a route point: the calls waiting there
            point = self.state.route_points[number]
            respond({"ok": True, "device": number, "type": "route", "lim": self.state.lim, "default": point.default,
                     "calls": [{"call_id": c.call_id, "state": str(c.state_of(number)),
                                "connections": c.connections()} for c in self.state.calls_for(number)]})
            return
        device = self.state.devices.get(number)
        if device is None:
            raise Refused(Refusal.UNKNOWN_NUMBER, f"{number} is not a device of LIM {self.state.lim}")
        respond({"ok": True, "device": number, "type": device.type, "logged_on": device.logged_on,
                 "lim": self.state.lim,
                 "features": self.state.features[number].to_store() if number in self.state.features else {},
                 "calls": [{"call_id": c.call_id, "state": str(c.state_of(number)),
                            "connections": c.connections()} for c in self.state.calls_for(number)]})

    def _queued_calls(self, group: str) -> list[dict]:
        """The calls waiting at an ACD group, next to be served first: what SnapshotDevice lists."""
        now = self.state.timers.now()
        calls = []
        for waiting in self.state.queues[group].waiting():
            call = self.state.calls.get(waiting.call_id)  # the group's LIM mirrors each queued call
            calls.append({"call_id": waiting.call_id, "state": "queued", "position": waiting.position,
                          "waiting_s": round(max(0.0, now - waiting.since), 3),
                          "calling": call.calling if call else None,
                          "connections": call.connections() if call else []})
        return calls

    def on_call_get(self, env: Envelope, respond: Reply) -> None:
        call = self.state.calls.get(env.body["call_id"])
        if call is None or call.controller != self.state.lim:
            raise Refused(Refusal.NO_SUCH_CALL, f"call {env.body['call_id']} is not in progress")
        respond({"ok": True, **call.to_wire()})

    def on_status(self, env: Envelope, respond: Reply) -> None:
        respond({"ok": True, "lim": self.state.lim, "incarnation": self.state.incarnation,
                 "devices": len(self.state.devices),
                 **self.state.store.status(),  # persist: ok, or failing (reason): the LIM runs on in memory
                 "queues": {g: list(q.queue) for g, q in self.state.queues.items()},
                 "logged_off": [n for n, d in self.state.devices.items() if not d.logged_on],  # the live view
                 "calls": [{"call_id": c.call_id, "controller": c.controller,
                            "connections": [{"device": d, "state": str(p.state), "lim": p.lim, "hunt": p.hunt}
                                            for d, p in c.parties.items()]}
                           for c in self.state.calls.values() if c.controller == self.state.lim]})
