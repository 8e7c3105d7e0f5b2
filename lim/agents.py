"""ACD agents and queues.

Agent side (the LIM of the agent's extension): log on with an agent ID to a group the extension
belongs to, ready / not ready / working after call, busy while in a call and working after call
for the group's wrap-up time afterwards. A state asked for while the agent is busy on a call is
pending (ECMA-269's pending agent state): the agent stays busy, AgentBusy says what is pending,
and the state is taken, with its event, when the call ends. The state is persisted with the
device's features, and every change is reported to the group's LIM (`acd.agent`).

Group side (the group's LIM): the queue (lim/acd.py). A queued call goes to the longest-ready
agent through the call's controller (`call.op` distribute); a call that waits longer than the
group's queue timeout overflows to `overflow_to`.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from broker.envelope import Envelope
from broker.protocol import Kind, Refusal, device_address
from lim.calls import Cause, ConnState
from lim.errors import Refused
from lim.features import (
    AGENT_BUSY,
    AGENT_EVENTS,
    AGENT_NOT_READY,
    AGENT_NULL,
    AGENT_READY,
    AGENT_WORKING_AFTER_CALL,
)
from lim.state import LimState

if TYPE_CHECKING:
    from lim.control import Controller

AGENT_ID = re.compile(r"^[0-9A-Za-z]{1,16}$")
AGENT_ACTIONS = ("login", "logout", "ready", "notready", "wrapup")
REQUESTED = {"logout": AGENT_NULL, "ready": AGENT_READY, "notready": AGENT_NOT_READY,
             "wrapup": AGENT_WORKING_AFTER_CALL}


class Agents:
    """The ACD agents at this LIM's extensions, and the queues of this LIM's ACD groups.

    Changes the agent fields of `features`, `agent_timers` and the ACD queues of this LIM.
    Hands a queued call to an agent through the `controller` of the call."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, controller: Controller) -> None:
        self.controller = controller

    # -- the agent's LIM ---------------------------------------------------------------------------
    def on_agent(self, env: Envelope, respond) -> None:
        number = self.state.target(env)
        action = env.body.get("action")
        if action not in AGENT_ACTIONS:
            raise Refused(Refusal.UNKNOWN_ACTION, f"unknown agent action {action!r}; use one of {', '.join(AGENT_ACTIONS)}")
        features = self.state.features.get(number)
        if features is None or self.state.devices[number].type == "external":
            raise Refused(Refusal.NOT_AN_EXTENSION, f"{number} is not an extension of LIM {self.state.lim}")
        if action == "login":
            self._agent_login(number, str(env.body.get("agent_id") or ""), str(env.body.get("group") or ""))
        elif features.agent_state == AGENT_NULL:
            raise Refused(Refusal.NOT_LOGGED_ON, f"no agent is logged on at {number}")
        elif features.agent_state == AGENT_BUSY and self.state.calls_of.get(number):
            self._agent_pending(number, REQUESTED[action])
        elif action == "logout":
            self._agent_logout(number)
        else:
            wanted = REQUESTED[action]
            if wanted == AGENT_READY and self.state.calls_of.get(number):
                wanted = AGENT_BUSY  # ready, but on a call: busy until it ends
            self._agent_state(number, wanted)
        respond({"ok": True, "device": number, "agent_state": features.agent_state,
                 "agent_id": features.agent_id, "group": features.agent_group,
                 "pending_agent_state": features.agent_pending})

    def _agent_logout(self, number: str) -> None:
        features = self.state.features[number]
        group, agent_id = features.agent_group, features.agent_id
        self._agent_state(number, AGENT_NULL)
        features.agent_group = features.agent_id = None
        self.state.save_features(number)
        also = [group] if group is not None else []  # a logged-on agent always has its group
        self.state.emit_device(number, "AgentLoggedOff", also=also, group=group, agent_id=agent_id)

    def _agent_pending(self, number: str, wanted: str) -> None:
        """A busy agent asked for another state: it stays busy, and AgentBusy says what is pending."""
        features = self.state.features[number]
        features.agent_pending = wanted
        self.state.save_features(number)
        group = features.agent_group
        self.state.emit_device(number, "AgentBusy", also=[group] if group else [], agent_id=features.agent_id,
                               group=group, agent_state=AGENT_BUSY, pending_agent_state=wanted)
        self._agent_report(number, group)

    def _agent_login(self, number: str, agent_id: str, group_number: str) -> None:
        features = self.state.features[number]
        group = self.state.acd_groups.get(group_number)
        if group is None:
            raise Refused(Refusal.UNKNOWN_GROUP, f"{group_number or '(none)'} is not an ACD group")
        if number not in group.agents:
            raise Refused(Refusal.NOT_A_MEMBER, f"{number} is not an agent position of group {group_number}")
        if not AGENT_ID.match(agent_id):
            raise Refused(Refusal.BAD_AGENT_ID, f"agent ID {agent_id!r} must be 1-16 letters or digits")
        if features.agent_state != AGENT_NULL:
            raise Refused(Refusal.ALREADY_LOGGED_ON, f"agent {features.agent_id} is already logged on at {number}")
        if not self.state.devices[number].logged_on:
            raise Refused(Refusal.OUT_OF_SERVICE, f"{number} has no terminal logged on")
        features.agent_group, features.agent_id = group_number, agent_id
        self.state.emit_device(number, "AgentLoggedOn", also=[group_number], agent_id=agent_id, group=group_number)
        self._agent_state(number, AGENT_BUSY if self.state.calls_of.get(number) else AGENT_READY)

    def _agent_state(self, number: str, state: str) -> None:
        features = self.state.features[number]
        timer = self.state.agent_timers.pop(number, None)
        if timer:
            timer.cancel()
        features.agent_state = state
        features.agent_pending = None  # a state taken settles what was pending
        self.state.save_features(number)
        group = features.agent_group
        if state in AGENT_EVENTS:
            self.state.emit_device(number, AGENT_EVENTS[state], also=[group] if group else [],
                                   agent_id=features.agent_id, group=group, agent_state=state)
        if state == AGENT_WORKING_AFTER_CALL:
            self._arm_wrapup(number)
        self._agent_report(number, group)

    def _arm_wrapup(self, number: str) -> None:
        group = self.state.acd_groups.get(self.state.features[number].agent_group or "")
        if group is not None:
            self.state.agent_timers[number] = self.state.timers.call_later(group.wrapup_s,
                                                                           lambda: self._wrapup_over(number))

    def not_answering(self, number: str) -> None:
        if self.state.features[number].agent_state != AGENT_NULL:
            self._agent_state(number, AGENT_NOT_READY)

    def _wrapup_over(self, number: str) -> None:
        if self.state.features[number].agent_state == AGENT_WORKING_AFTER_CALL:
            self._agent_state(number, AGENT_READY)

    def _agent_report(self, number: str, group: str | None) -> None:
        if group is None:
            return
        features = self.state.features[number]
        body = {"group": group, "device": number, "agent_id": features.agent_id, "lim": self.state.lim,
                "state": features.agent_state, "since": self.state.timers.now(), "pending": features.agent_pending}
        if self.state.directory.owner(group) == self.state.lim:
            self._acd_agent(body)
        else:
            self.state.bus.send(device_address(group), Kind.ACD_AGENT, body)

    def call_started(self, number: str) -> None:
        features = self.state.features.get(number)
        if features and features.agent_state == AGENT_READY:
            self._agent_state(number, AGENT_BUSY)

    def calls_ended(self, number: str) -> None:
        features = self.state.features.get(number)
        if not features or features.agent_state != AGENT_BUSY:
            return
        pending = features.agent_pending
        if pending == AGENT_NULL:
            self._agent_logout(number)
        else:
            # A pending state replaces the wrap-up: the agent asked for it during the call.
            self._agent_state(number, pending or AGENT_WORKING_AFTER_CALL)

    def restore(self) -> None:
        """This LIM (re)started with the agent states it persisted, but none of its calls: an agent
        busy with no call has had its call end (its pending state, else working after call), and
        an agent working after call gets its wrap-up timer back (the whole wrap-up time again:
        the time it had left died with the old process)."""
        for number, features in self.state.features.items():
            if features.agent_state == AGENT_BUSY and not self.state.calls_of.get(number):
                self.calls_ended(number)
            elif features.agent_state == AGENT_WORKING_AFTER_CALL and number not in self.state.agent_timers:
                self._arm_wrapup(number)

    def report_to(self, lim: int) -> None:
        """A LIM came up: tell it (again) about our agents in its groups. Its queue starts empty
        after a restart; for our own start, every group hears from us."""
        for number, features in self.state.features.items():
            group = features.agent_group
            if group and (lim == self.state.lim or self.state.directory.owner(group) == lim):
                self._agent_report(number, group)

    # -- the group's LIM ---------------------------------------------------------------------------
    def on_acd_agent(self, env: Envelope, respond) -> None:
        self._acd_agent(env.body)

    def _acd_agent(self, body: dict[str, Any]) -> None:
        queue = self.state.queues.get(body["group"])
        if queue is None:
            return
        queue.agent_update(body["device"], body["lim"], body.get("agent_id"), body["state"], body["since"],
                           body.get("pending"))
        self.distribute(body["group"])

    def distribute(self, group: str) -> None:
        queue = self.state.queues[group]
        while (assignment := queue.next_assignment()) is not None:
            call_id, agent = assignment
            call = self.state.calls.get(call_id)
            if call is None or call.state_of(group) != ConnState.QUEUED:
                queue.release(agent)
                continue

            def result(reply: dict, call_id=call_id, agent=agent) -> None:
                if reply.get("ok"):
                    return  # the agent's LIM reports it busy soon, which settles the reservation
                # The agent could not take it: keep the agent reserved until its LIM reports
                # again (so we do not try it at once), and give the next agent a chance.
                self.state.timers.call_later(0, lambda: self.distribute(group))
            self.controller.request_op(call, "distribute", group, result, to=agent, cause=Cause.DISTRIBUTED)

    def overflow(self, group: str, call_id: str) -> None:
        queue = self.state.queues[group]
        call = self.state.calls.get(call_id)
        if call is None or not queue.remove(call_id) or call.state_of(group) != ConnState.QUEUED:
            return
        self.controller.request_op(call, "distribute", group, lambda reply: None, to=queue.group.overflow_to,
                                   cause=Cause.OVERFLOW)
