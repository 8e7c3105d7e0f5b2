"""ACD agents and queues.

Agent side (the LIM of the agent's extension): log on with an agent ID to a group the extension
belongs to, ready / not ready / working after call, busy while in a call and working after call
for the group's wrap-up time afterwards. The state is persisted with the device's features, and
every change is reported to the group's LIM (`acd.agent`).

Group side (the group's LIM): the queue (lim/acd.py). A queued call goes to the longest-ready
agent through the call's controller (`call.op` distribute); a call that waits longer than the
group's queue timeout overflows to `overflow_to`.
"""
from __future__ import annotations

import re
from typing import Any

from broker.envelope import Envelope
from broker.protocol import Kind, Refusal, device_address
from lim.calls import Cause, ConnState
from lim.errors import Refused
from lim.features import (AGENT_BUSY, AGENT_EVENTS, AGENT_NOT_READY, AGENT_NULL, AGENT_READY,
                          AGENT_WORKING_AFTER_CALL)

AGENT_ID = re.compile(r"^[0-9A-Za-z]{1,16}$")
AGENT_ACTIONS = ("login", "logout", "ready", "notready", "wrapup")


class AgentMixin:
    # -- the agent's LIM ---------------------------------------------------------------------------
    def _on_agent(self, env: Envelope, respond) -> None:
        number = self._target(env)
        action = env.body.get("action")
        if action not in AGENT_ACTIONS:
            raise Refused(Refusal.UNKNOWN_ACTION, f"unknown agent action {action!r}; use one of {', '.join(AGENT_ACTIONS)}")
        features = self.features.get(number)
        if features is None or self.devices[number].type == "external":
            raise Refused(Refusal.NOT_AN_EXTENSION, f"{number} is not an extension of LIM {self.lim}")
        if action == "login":
            self._agent_login(number, str(env.body.get("agent_id") or ""), str(env.body.get("group") or ""))
        elif features.agent_state == AGENT_NULL:
            raise Refused(Refusal.NOT_LOGGED_ON, f"no agent is logged on at {number}")
        elif action == "logout":
            group, agent_id = features.agent_group, features.agent_id
            self._agent_state(number, AGENT_NULL)
            features.agent_group = features.agent_id = None
            self._save_features(number)
            self._emit_device(number, "AgentLoggedOff", also=[group], group=group, agent_id=agent_id)
        else:
            wanted = {"ready": AGENT_READY, "notready": AGENT_NOT_READY, "wrapup": AGENT_WORKING_AFTER_CALL}[action]
            if wanted == AGENT_READY and self.calls_of.get(number):
                wanted = AGENT_BUSY  # ready, but on a call: busy until it ends
            self._agent_state(number, wanted)
        respond({"ok": True, "device": number, "agent_state": features.agent_state,
                 "agent_id": features.agent_id, "group": features.agent_group})

    def _agent_login(self, number: str, agent_id: str, group_number: str) -> None:
        features = self.features[number]
        group = self.acd_groups.get(group_number)
        if group is None:
            raise Refused(Refusal.UNKNOWN_GROUP, f"{group_number or '(none)'} is not an ACD group")
        if number not in group.agents:
            raise Refused(Refusal.NOT_A_MEMBER, f"{number} is not an agent position of group {group_number}")
        if not AGENT_ID.match(agent_id):
            raise Refused(Refusal.BAD_AGENT_ID, f"agent ID {agent_id!r} must be 1-16 letters or digits")
        if features.agent_state != AGENT_NULL:
            raise Refused(Refusal.ALREADY_LOGGED_ON, f"agent {features.agent_id} is already logged on at {number}")
        if not self.devices[number].logged_on:
            raise Refused(Refusal.OUT_OF_SERVICE, f"{number} has no terminal logged on")
        features.agent_group, features.agent_id = group_number, agent_id
        self._emit_device(number, "AgentLoggedOn", also=[group_number], agent_id=agent_id, group=group_number)
        self._agent_state(number, AGENT_BUSY if self.calls_of.get(number) else AGENT_READY)

    def _agent_state(self, number: str, state: str) -> None:
        features = self.features[number]
        timer = self.agent_timers.pop(number, None)
        if timer:
            timer.cancel()
        features.agent_state = state
        self._save_features(number)
        group = features.agent_group
        if state in AGENT_EVENTS:
            self._emit_device(number, AGENT_EVENTS[state], also=[group] if group else [],
                              agent_id=features.agent_id, group=group, agent_state=state)
        if state == AGENT_WORKING_AFTER_CALL and group:
            wrapup = self.acd_groups[group].wrapup_s
            self.agent_timers[number] = self.timers.call_later(wrapup, lambda: self._wrapup_over(number))
        self._agent_report(number, group)

    def _agent_not_answering(self, number: str) -> None:
        if self.features[number].agent_state != AGENT_NULL:
            self._agent_state(number, AGENT_NOT_READY)

    def _wrapup_over(self, number: str) -> None:
        if self.features[number].agent_state == AGENT_WORKING_AFTER_CALL:
            self._agent_state(number, AGENT_READY)

    def _agent_report(self, number: str, group: str | None) -> None:
        if group is None:
            return
        features = self.features[number]
        body = {"group": group, "device": number, "agent_id": features.agent_id, "lim": self.lim,
                "state": features.agent_state, "since": self.timers.now()}
        if self.directory.owner(group) == self.lim:
            self._acd_agent(body)
        else:
            self.bus.send(device_address(group), Kind.ACD_AGENT, body)

    def _agent_call_started(self, number: str) -> None:
        features = self.features.get(number)
        if features and features.agent_state == AGENT_READY:
            self._agent_state(number, AGENT_BUSY)

    def _agent_calls_ended(self, number: str) -> None:
        features = self.features.get(number)
        if features and features.agent_state == AGENT_BUSY:
            self._agent_state(number, AGENT_WORKING_AFTER_CALL)

    def _agents_report_to(self, lim: int) -> None:
        """A LIM came up: tell it (again) about our agents in its groups. Its queue starts empty
        after a restart; for our own start, every group hears from us."""
        for number, features in self.features.items():
            group = features.agent_group
            if group and (lim == self.lim or self.directory.owner(group) == lim):
                self._agent_report(number, group)

    # -- the group's LIM ---------------------------------------------------------------------------
    def _on_acd_agent(self, env: Envelope, respond) -> None:
        self._acd_agent(env.body)

    def _acd_agent(self, body: dict[str, Any]) -> None:
        queue = self.queues.get(body["group"])
        if queue is None:
            return
        queue.agent_update(body["device"], body["lim"], body.get("agent_id"), body["state"], body["since"])
        self._distribute(body["group"])

    def _distribute(self, group: str) -> None:
        queue = self.queues[group]
        while (assignment := queue.next_assignment()) is not None:
            call_id, agent = assignment
            call = self.calls.get(call_id)
            if call is None or call.state_of(group) != ConnState.QUEUED:
                queue.release(agent)
                continue

            def result(reply: dict, call_id=call_id, agent=agent) -> None:
                if reply.get("ok"):
                    return  # the agent's LIM reports it busy soon, which settles the reservation
                # The agent could not take it: keep the agent reserved until its LIM reports
                # again (so we do not try it at once), and give the next agent a chance.
                self.timers.call_later(0, lambda: self._distribute(group))
            self._to_controller(call, "distribute", group, result, to=agent, cause=Cause.DISTRIBUTED)

    def _overflow(self, group: str, call_id: str) -> None:
        queue = self.queues[group]
        call = self.calls.get(call_id)
        if call is None or not queue.remove(call_id) or call.state_of(group) != ConnState.QUEUED:
            return
        self._to_controller(call, "distribute", group, lambda reply: None, to=queue.group.overflow_to,
                            cause=Cause.OVERFLOW)
