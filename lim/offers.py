"""May a number of this LIM take a call? The answer to `call.offer`, decided where the number lives.

The reply tells the controller what happens: the device rings (`ok`, perhaps with a no-answer
forward to arm), an ACD group or a route point queues the call (`ok`, `queued`), the call is forwarded (`forward`:
number and cause), a hunt group's members are to be rung (`hunt`), or a refusal with its ECMA-269
cause (busy, doNotDisturb, destNotObtainable, trunksBusy).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.envelope import Envelope
from broker.protocol import Refusal
from lim.calls import Call, Cause, ConnState, Party
from lim.errors import Refused
from lim.features import MAX_FORWARD_HOPS
from lim.state import LimState

if TYPE_CHECKING:
    from lim.agents import Agents
    from lim.control import Controller
    from lim.index import CallIndex
    from lim.routes import Routes


class Offers:
    """Whether a number of this LIM takes a call offered to it, and what happens instead.

    Changes `hunt_next`, the ACD queues of this LIM (a call enqueued) and the first mirror of a
    call offered here, indexed through `index`. Sets timers that call `agents` (distribute a
    queued call, overflow) and the `controller` (an external party answers by itself). A call
    offered to a route point waits there while `routes` asks an application."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, index: CallIndex, agents: Agents, controller: Controller, routes: Routes) -> None:
        self.index = index
        self.agents = agents
        self.controller = controller
        self.routes = routes

    def on_offer(self, env: Envelope, respond) -> None:
        respond(self.accept(env.body))

    def accept(self, body: dict[str, Any]) -> dict[str, Any]:
        number = body["called"]
        if number in self.state.hunt_groups:
            return {"ok": False, "hunt": self._hunt_spec(number)}
        if number in self.state.queues:
            return self._enqueue(number, body)
        if number in self.state.route_points:
            self._join_mirror(body, number, ConnState.QUEUED)
            return self.routes.arrive(body)
        external, behaviour = False, None
        if number not in self.state.devices:
            # The public network's script decides first: a busy or unknown number takes no channel.
            behaviour = self.state.pstn.behaviour(number) if self.state.trunk_for(number) else None
            if behaviour is not None and behaviour.kind in ("busy", "invalid"):
                return {"ok": False, "cause": Cause.BUSY if behaviour.kind == "busy" else Cause.NUMBER_UNALLOCATED}
            try:
                self.state.device(number, create_external=True)
            except Refused as refusal:
                cause = Cause.TRUNKS_BUSY if refusal.code == Refusal.TRUNKS_BUSY else Cause.DEST_NOT_OBTAINABLE
                return {"ok": False, "cause": cause}
            external = True
        device = self.state.devices[number]
        features = self.state.features.get(number)
        busy = bool(self.state.calls_of.get(number))
        diverted_from = body.get("diverted_from") or []
        # Forwarding first: a virtual extension (no terminal) forwards all its calls. A hunt or
        # ACD offer to a member ignores the member's forwarding, as group calls do.
        if features and not body.get("hunt") and len(diverted_from) < MAX_FORWARD_HOPS:
            divert = features.divert_when_offered(busy)
            if divert and divert[0] not in diverted_from and divert[0] != number:
                return {"ok": False, "cause": divert[1], "forward": list(divert)}
        if not device.logged_on:
            return {"ok": False, "cause": Cause.DEST_NOT_OBTAINABLE}
        if features and features.dnd:
            return {"ok": False, "cause": Cause.DO_NOT_DISTURB}
        if busy:
            return {"ok": False, "cause": Cause.BUSY}
        self._join_mirror(body, number, ConnState.ALERTING)
        call_id = body["call_id"]
        if behaviour is not None:
            if behaviour.kind in ("answer", "machine"):
                machine = behaviour.kind == "machine"
                self.state.timers.call_later(behaviour.after_s, lambda: self._auto_answer(number, call_id, machine))
        elif device.trunk is not None and device.trunk.answer_after_s is not None:
            self.state.timers.call_later(device.trunk.answer_after_s, lambda: self._auto_answer(number, call_id))
        reply: dict[str, Any] = {"ok": True, "lim": self.state.lim, "external": external}
        if features and features.forward_noanswer and not body.get("hunt") \
                and features.forward_noanswer not in diverted_from:
            reply["no_answer"] = {"to": features.forward_noanswer, "after_s": features.forward_noanswer_s}
        return reply

    def _join_mirror(self, body: dict[str, Any], number: str, state: ConnState) -> None:
        """Our number joins a call controlled elsewhere: keep a mirror until the updates come."""
        if body["controller"] == self.state.lim:
            return  # the controller indexes it itself
        call_id = body["call_id"]
        mirror = self.state.calls.get(call_id)
        if mirror is None:
            mirror = self.state.calls[call_id] = Call(call_id, body["controller"], body["calling"], number)
        mirror.parties[number] = Party(state, self.state.lim, body.get("hunt"))
        self.index.add(mirror, number)

    def _hunt_spec(self, number: str) -> dict[str, Any]:
        group = self.state.hunt_groups[number]
        members = list(group.members)
        if group.mode == "circular" and members:
            start = self.state.hunt_next.get(number, 0) % len(members)
            members = members[start:] + members[:start]
            self.state.hunt_next[number] = start + 1  # the next call starts one member further on
        return {"mode": group.mode, "members": members,
                "steps": [list(step) for step in group.steps], "step_s": group.step_timeout_s}

    def _enqueue(self, number: str, body: dict[str, Any]) -> dict[str, Any]:
        queue = self.state.queues[number]
        call_id = body["call_id"]
        now = self.state.timers.now()
        if body.get("front"):
            queue.requeue_first(call_id, now)
        position = queue.enqueue(call_id, now)
        self._join_mirror(body, number, ConnState.QUEUED)
        group = queue.group
        if group.overflow_to and not body.get("front"):  # a requeued call keeps its first deadline
            self.state.timers.call_later(group.queue_timeout_s, lambda: self.agents.overflow(number, call_id))
        # Later, not now: the controller records the queued party when this reply reaches it.
        self.state.timers.call_later(0, lambda: self.agents.distribute(number))
        return {"ok": True, "lim": self.state.lim, "queued": True, "position": position, **queue.counts(call_id)}

    def _auto_answer(self, number: str, call_id: str, machine: bool = False) -> None:
        call = self.state.calls.get(call_id)
        if call is not None and call.state_of(number) == ConnState.ALERTING and number in self.state.devices:
            self.controller.request_op(call, "answer", number, lambda reply: None,
                                       **({"machine": True} if machine else {}))
