"""What a person does at a phone of this LIM: checked here, carried out by the call's controller.

Every action arrives as a `phone` request addressed to `dev:<number>`. The device's LIM checks it
against its own view (is the phone ringing? is there a held call?) and refuses it with nothing
changed, or hands it to the controller part (lim/control.py, `request_op`), which runs it at once
when this LIM controls the call and else sends it to the call's controller as a `call.op`. CSTA
requests (the CSTA front end) use the same path.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from broker.envelope import Envelope
from broker.protocol import PHYSICAL_ACTIONS, Refusal
from lim.calls import Call, Cause, ConnState
from lim.errors import Refused
from lim.state import LimState, Reply

if TYPE_CHECKING:
    from lim.control import Controller

DTMF = re.compile(r"^[0-9*#A-Da-d]{1,64}$")


def then(respond: Reply, next_step: Callable[[dict], None]) -> Reply:
    """A reply handler that goes on with `next_step` on success and reports a failure as is."""
    def handler(reply: dict) -> None:
        if reply.get("ok"):
            next_step(reply)
        else:
            respond(reply)
    return handler


class PhoneActions:
    """Physical actions at this LIM's phones, and ClearCall asked through one of them.

    Reads the state (devices, the index, mirrors); changes only `devices` (an external party left
    in no call by a refused action; `logged_on`). Calls only the controller."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, controller: Controller) -> None:
        self.controller = controller

    def on_phone(self, env: Envelope, respond: Reply) -> None:
        number = self.state.target(env)
        action = env.body.get("action")
        if action not in PHYSICAL_ACTIONS:
            raise Refused(Refusal.UNKNOWN_ACTION, f"unknown phone action {action!r}; use one of {', '.join(PHYSICAL_ACTIONS)}")
        argument = str(env.body.get("digits") or "")
        if PHYSICAL_ACTIONS[action] and not argument:
            raise Refused(Refusal.BAD_REQUEST, f"{action} needs a number")
        # A CSTA request names the calls it acts on; a person at a phone acts on what is in hand.
        calls = {k: env.body[k] for k in ("call_id", "other_call_id") if env.body.get(k)}
        device = self.state.device(number, create_external=action in ("offhook", "dial"))
        try:
            getattr(self, f"_phone_{action}")(device, argument, respond, **calls)
        finally:
            if device.type == "external" and not self.state.calls_of.get(number):
                self.state.devices.pop(number, None)  # a refused action leaves no trunk channel taken

    def on_call_clear(self, env: Envelope, respond: Reply) -> None:
        """Clear a whole call (CSTA ClearCall), asked through one of its devices."""
        number = self.state.target(env)
        call_id = env.body.get("call_id")
        calls = [c for c in self.state.calls_for(number) if call_id in (None, c.call_id)]
        if not calls:
            raise Refused(Refusal.IDLE, f"{number} is not in {'call ' + call_id if call_id else 'a call'}")
        self.controller.request_op(calls[-1], "clear", number, respond)

    def on_call_data(self, env: Envelope, respond: Reply) -> None:
        """Attach call data to a call (CSTA AssociateData, an IVR), asked through one of its
        devices; the call's controller checks and keeps it."""
        number = self.state.target(env)
        call_id = env.body.get("call_id")
        calls = [c for c in self.state.calls_for(number) if call_id in (None, c.call_id)]
        if not calls:
            raise Refused(Refusal.NO_SUCH_CONNECTION, f"{number} is not in {'call ' + call_id if call_id else 'a call'}")
        self.controller.request_op(calls[-1], "associate", number, respond, data=env.body.get("data"))

    # -- helpers -------------------------------------------------------------------------------------
    def _check_in_service(self, device) -> None:
        if not device.logged_on:
            raise Refused(Refusal.OUT_OF_SERVICE, f"{device.number} has no terminal logged on")

    def _call_in_state(self, number: str, *states: ConnState, call_id: str | None = None) -> Call | None:
        """The newest call in which `number`'s connection is in one of `states` (the call named
        `call_id`, if one is named)."""
        for call in reversed(self.state.calls_for(number)):
            if call.state_of(number) in states and call_id in (None, call.call_id):
                return call
        if call_id is not None and call_id not in self.state.calls_of.get(number, ()):
            raise Refused(Refusal.NO_SUCH_CONNECTION, f"{number} is not in call {call_id}")
        return None

    def _active_call(self, number: str, call_id: str | None = None) -> Call:
        call = self._call_in_state(number, ConnState.CONNECTED, call_id=call_id)
        if call is None:
            raise Refused(Refusal.NO_ACTIVE_CALL, f"{number} has no connected call")
        return call

    def _held_call(self, number: str, call_id: str | None = None) -> Call:
        call = self._call_in_state(number, ConnState.HOLD, call_id=call_id)
        if call is None:
            raise Refused(Refusal.NO_HELD_CALL, f"{number} has no held call")
        return call

    # -- basic calls ---------------------------------------------------------------------------------
    def _phone_offhook(self, device, _: str, respond: Reply, call_id: str | None = None) -> None:
        self._check_in_service(device)
        if self._call_in_state(device.number, ConnState.ALERTING):
            self._phone_answer(device, "", respond, call_id)
            return
        if any(c.state_of(device.number) != ConnState.HOLD for c in self.state.calls_for(device.number)):
            raise Refused(Refusal.BUSY, f"{device.number} is already in a call")
        call = self.controller.new_call(device.number)
        respond({"ok": True, "device": device.number, "call_id": call.call_id, "state": "initiated"})

    def _phone_dial(self, device, digits: str, respond: Reply, cause: str = Cause.NEW_CALL,
                    data: dict[str, str] | None = None) -> None:
        self.state.check_number(digits)
        self._check_in_service(device)
        pending = [c for c in self.state.calls_for(device.number) if c.state_of(device.number) != ConnState.HOLD]
        if not pending:
            call = self.controller.new_call(device.number, cause, data)  # off hook first (or a new call beside a held one)
        elif len(pending) == 1 and pending[0].state_of(device.number) == ConnState.INITIATED:
            call = pending[0]
        else:
            raise Refused(Refusal.BUSY, f"{device.number} is in a call; it can dial only after going off hook")
        call.called = digits
        call.parties[device.number].state = ConnState.CONNECTED
        self.state.emit(call, "Originated", device.number, cause)
        self.controller.offer(call, digits)
        respond({"ok": True, "device": device.number, "call_id": call.call_id, "state": "connected"})

    def _phone_answer(self, device, _: str, respond: Reply, call_id: str | None = None) -> None:
        call = self._call_in_state(device.number, ConnState.ALERTING, call_id=call_id)
        if call is None:
            raise Refused(Refusal.NOT_ALERTING, f"{device.number} is not ringing")
        self.controller.request_op(call, "answer", device.number, respond)

    def _phone_hangup(self, device, _: str, respond: Reply, call_id: str | None = None) -> None:
        calls = [c for c in self.state.calls_for(device.number) if call_id in (None, c.call_id)]
        if not calls:
            raise Refused(Refusal.IDLE, f"{device.number} is not in {'call ' + call_id if call_id else 'a call'}")
        # Going on hook clears the call in hand; a held call stays held.
        call = next((c for c in reversed(calls) if c.state_of(device.number) != ConnState.HOLD), calls[-1])
        self.controller.request_op(call, "release", device.number, respond, cause=Cause.NORMAL)

    _phone_onhook = _phone_hangup

    def _phone_logon(self, device, _: str, respond: Reply) -> None:
        self._set_logged_on(device, True, respond)

    def _phone_logoff(self, device, _: str, respond: Reply) -> None:
        self._set_logged_on(device, False, respond)

    def _set_logged_on(self, device, logged_on: bool, respond: Reply) -> None:
        if device.type == "external":
            raise Refused(Refusal.NOT_A_TERMINAL, f"{device.number} is on the public network")
        if device.type == "virtual" and logged_on:
            raise Refused(Refusal.VIRTUAL, f"{device.number} is a virtual extension: no terminal can log on")
        if device.logged_on != logged_on:
            if not logged_on:
                for call in list(self.state.calls_for(device.number)):
                    self.controller.request_op(call, "release", device.number, lambda reply: None, cause=Cause.NORMAL)
            device.logged_on = logged_on
            self.state.store.set_device_state(device.number, "logged_on", logged_on)
            self.state.emit_device(device.number, "BackInService" if logged_on else "OutOfService")
        respond({"ok": True, "device": device.number, "logged_on": logged_on})

    # -- supplementary services ------------------------------------------------------------------------
    def _phone_hold(self, device, _: str, respond: Reply, call_id: str | None = None) -> None:
        self.controller.request_op(self._active_call(device.number, call_id), "hold", device.number, respond)

    def _phone_retrieve(self, device, _: str, respond: Reply, call_id: str | None = None) -> None:
        if self._call_in_state(device.number, ConnState.CONNECTED, ConnState.INITIATED):
            raise Refused(Refusal.BUSY, f"{device.number} has a call in hand: alternate, reconnect or hang up first")
        self.controller.request_op(self._held_call(device.number, call_id), "retrieve", device.number, respond)

    def _phone_consult(self, device, number: str, respond: Reply, call_id: str | None = None) -> None:
        """Hold the call in hand and call a third party (ECMA-269 consultation call)."""
        self.state.check_number(number)
        active = self._active_call(device.number, call_id)
        if self._call_in_state(device.number, ConnState.HOLD):
            raise Refused(Refusal.BUSY, f"{device.number} already has a held call")

        def dial(_: dict) -> None:
            # The consultation call starts with the held call's data: the consulted party's
            # screen pops with the customer's data (our mirror of it is current: hold just synced).
            held = self.state.calls.get(active.call_id, active)
            try:
                self._phone_dial(device, number, respond, cause=Cause.CONSULTATION, data=held.data)
            except Refused as refusal:
                respond(refusal.reply())
        self.controller.request_op(active, "hold", device.number, then(respond, dial), cause=Cause.CONSULTATION)

    def _held_and_active(self, number: str, held_id: str | None, active_id: str | None) -> tuple[Call, Call]:
        held = self._held_call(number, held_id)
        active = self._call_in_state(number, ConnState.CONNECTED, call_id=active_id)
        if active is None or active is held:
            raise Refused(Refusal.NO_ACTIVE_CALL, f"{number} needs a held call and a call in hand")
        return held, active

    def _phone_transfer(self, device, _: str, respond: Reply, call_id: str | None = None,
                       other_call_id: str | None = None) -> None:
        held, active = self._held_and_active(device.number, call_id, other_call_id)
        self.controller.request_op(held, "transfer", device.number, respond, other=active.call_id,
                                   other_controller=active.controller, other_size=len(active.parties))

    def _phone_conference(self, device, _: str, respond: Reply, call_id: str | None = None,
                       other_call_id: str | None = None) -> None:
        held, active = self._held_and_active(device.number, call_id, other_call_id)
        self.controller.request_op(held, "conference", device.number, respond, other=active.call_id,
                                   other_controller=active.controller, other_size=len(active.parties))

    def _phone_alternate(self, device, _: str, respond: Reply, call_id: str | None = None,
                       other_call_id: str | None = None) -> None:
        held, active = self._held_and_active(device.number, call_id, other_call_id)
        retrieve = lambda _: self.controller.request_op(held, "retrieve", device.number, respond, cause=Cause.ALTERNATE)
        self.controller.request_op(active, "hold", device.number, then(respond, retrieve), cause=Cause.ALTERNATE)

    def _phone_reconnect(self, device, _: str, respond: Reply, call_id: str | None = None,
                       other_call_id: str | None = None) -> None:
        held, active = self._held_and_active(device.number, call_id, other_call_id)
        retrieve = lambda _: self.controller.request_op(held, "retrieve", device.number, respond)
        self.controller.request_op(active, "release", device.number, then(respond, retrieve), cause=Cause.NORMAL)

    def _phone_deflect(self, device, number: str, respond: Reply, call_id: str | None = None) -> None:
        self.state.check_number(number)
        call = self._call_in_state(device.number, ConnState.ALERTING, call_id=call_id)
        if call is None:
            raise Refused(Refusal.NOT_ALERTING, f"{device.number} is not ringing: only a ringing call can be deflected")
        if number == device.number:
            raise Refused(Refusal.BAD_REQUEST, f"{device.number} cannot deflect a call to itself")
        self.controller.request_op(call, "deflect", device.number, respond, to=number)

    def _phone_sst(self, device, number: str, respond: Reply, call_id: str | None = None) -> None:
        self.state.check_number(number)
        call = self._active_call(device.number, call_id)
        if len(call.parties) < 2:
            raise Refused(Refusal.BAD_REQUEST, f"{device.number} has nobody to transfer")
        self.controller.request_op(call, "sst", device.number, respond, to=number)

    def _phone_digits(self, device, digits: str, respond: Reply, call_id: str | None = None) -> None:
        if not DTMF.match(digits):
            raise Refused(Refusal.BAD_DIGITS, f"{digits!r} are not DTMF digits (0-9, *, #, A-D)")
        self.controller.request_op(self._active_call(device.number, call_id), "digits", device.number, respond,
                                   digits=digits)
