"""`call.predictive`: the exchange dials for a device or a group (CSTA MakePredictiveCall).

Addressed to the calling device (`dev:<calling>`), whose LIM controls the call. The exchange
offers the call to the called number first; the calling device is not in the call yet and follows
its events as an observer (ECMA-269: its connection stays null). It is offered the call (an
extension rings, an ACD group queues it for its next ready agent, a hunt group hunts) when the
called party answers, or, with `allocation` "delivered", as soon as the called party alerts.
A refusal (busy, invalid number, trunks busy) fails the called connection and ends the call; no
answer within `alert_s` (else the exchange's no-answer timer) clears it; an answering machine
(destination detection) is cleared or connected as the request's detection actions say.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from broker.envelope import Envelope
from broker.protocol import Refusal
from lim.calls import Call, Cause
from lim.errors import Refused
from lim.state import LimState, Reply

if TYPE_CHECKING:
    from lim.control import Controller

ALLOCATIONS = ("delivered", "established")
DETECTION_ACTIONS = ("clearCalledConnection", "remainConnected")
CONDITIONS = ("humanVoice", "answeringMachine", "facsimileMachine")


class Predictive:
    """Places predictive calls. Changes nothing itself: the controller creates, offers and
    clears the call; this part decides when, through the call's answer hook and its timers."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, controller: Controller) -> None:
        self.controller = controller

    def on_predictive(self, env: Envelope, respond: Reply) -> None:
        calling = self.state.target(env)
        body = env.body
        called = str(body.get("called") or "")
        self.state.check_number(called)
        if called == calling:
            raise Refused(Refusal.BAD_REQUEST, f"{calling} cannot call itself")
        group = calling in self.state.queues or calling in self.state.hunt_groups
        if not group:
            device = self.state.device(calling)  # unknown numbers, other LIMs' groups: refused here
            if device.type == "external":
                raise Refused(Refusal.NOT_A_TERMINAL, f"{calling} is on the public network")
            if not device.logged_on:
                raise Refused(Refusal.OUT_OF_SERVICE, f"{calling} has no terminal logged on")
        allocation = body.get("allocation") or "established"
        if allocation not in ALLOCATIONS:
            raise Refused(Refusal.BAD_REQUEST, f"allocation must be one of {', '.join(ALLOCATIONS)}")
        actions = dict(body.get("detection") or {})
        default_action = body.get("default_action") or "remainConnected"
        if any(c not in CONDITIONS or a not in DETECTION_ACTIONS for c, a in actions.items()) \
                or default_action not in DETECTION_ACTIONS:
            raise Refused(Refusal.BAD_REQUEST, "detection maps humanVoice, answeringMachine or facsimileMachine "
                                               "to clearCalledConnection or remainConnected")
        alert_s = body.get("alert_s")
        if alert_s is not None and (not isinstance(alert_s, (int, float)) or not 0 < alert_s <= 3600):
            raise Refused(Refusal.BAD_REQUEST, "alert_s must be 1 to 3600 seconds")
        detect = bool(body.get("detect"))

        call = self.controller.new_call(calling, Cause.MAKE_PREDICTIVE_CALL, join=False)
        call.called = called
        plan = {"connected": False}

        def connect_caller() -> None:
            if plan["connected"] or call.cleared:
                return
            plan["connected"] = True
            cause = Cause.ENTERING_DISTRIBUTION if calling in self.state.queues else Cause.MAKE_PREDICTIVE_CALL
            self.controller.offer(call, calling, cause, on_done=lambda failure: caller_done(failure))

        def caller_done(failure: str | None) -> None:
            if failure is not None:  # the caller could not take it: the called party is let go
                self.controller.release(call, called, failure)

        def answered(device: str, machine: bool) -> None:
            if device != called or call.cleared:
                return
            detected = "answeringMachine" if machine else "humanVoice"
            action = actions.get(detected, default_action) if detect else "remainConnected"
            if action == "clearCalledConnection":
                self.controller.release(call, called, Cause.DEST_DETECTED)
            else:
                connect_caller()

        def rang(failure: str | None) -> None:
            if failure is not None:
                if not call.cleared:
                    self.controller.fail_placed_call(call, called, failure)
                return
            if alert_s is not None:
                call.timers.append(self.state.timers.call_later(alert_s, lambda: alert_over()))
            if allocation == "delivered":
                connect_caller()

        def alert_over() -> None:
            if not call.cleared and str(call.state_of(called)) == "alerting":
                self.controller.release(call, called, Cause.NOT_ANSWERED)

        call.on_answer = answered
        self.controller.offer(call, called, Cause.MAKE_PREDICTIVE_CALL, on_done=rang)
        respond({"ok": True, "device": calling, "called": called, "call_id": call.call_id,
                 "state": "null" if not self._in_call(call, calling) else str(call.state_of(calling))})

    @staticmethod
    def _in_call(call: Call, number: str) -> bool:
        return number in call.parties
