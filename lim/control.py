"""The controller's side of a call: connection states change here, and only here, and each change
is published as its ECMA-269 event and sent to every other LIM in the call.

Operations (`call.op` with `op`) arrive from the LIM of the device acting: answer, release, hold,
retrieve, deflect, sst, digits, transfer, conference, and distribute (from an ACD group's or a
route point's LIM).
Offers go out to the LIM of the number offered (lim/offers.py decides there); its answer may be
to ring, to queue, to forward elsewhere, to hunt through a group, or a refusal with a cause.
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, AbstractSet, Any, Callable, Sequence

from broker.envelope import Envelope
from broker.protocol import MAX_CONFERENCE_PARTIES, Kind, Refusal, device_address, lim_node
from lim.calls import Call, Cause, ConnState, Party, checked_data, merged_data
from lim.errors import Refused
from lim.features import MAX_FORWARD_HOPS
from lim.state import LimState, Reply

if TYPE_CHECKING:
    from lim.agents import Agents
    from lim.index import CallIndex
    from lim.offers import Offers

OfferDone = Callable[[str | None], None]  # None: the offer rang or queued; else the failure cause

IN_CALL = (ConnState.CONNECTED, ConnState.HOLD)
# An offer refused by the bus itself (no LIM to take it), by its refusal code: the caller's cause.
UNREACHABLE: dict[str | None, str] = {Refusal.LIM_DOWN: Cause.NETWORK_NOT_OBTAINABLE,
                                      Refusal.TIMEOUT: Cause.NETWORK_NOT_OBTAINABLE,
                                      Refusal.BROKER_FAILOVER: Cause.NETWORK_NOT_OBTAINABLE}


class Controller:
    """The calls begun on this LIM: their connection states, events and updates to other LIMs.

    Changes the calls it controls (and, on a hand-over, a merge or the failure of a LIM, our
    mirrors); the index through `index`. Asks `offers` directly when the number offered is ours,
    and `agents` about an agent of ours who did not answer; everything else goes over the bus."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, index: CallIndex, offers: Offers, agents: Agents) -> None:
        self.index = index
        self.offers = offers
        self.agents = agents

    # -- creating and offering --------------------------------------------------------------------------
    def new_call(self, number: str, cause: str = Cause.NEW_CALL, data: dict[str, str] | None = None, *,
                 join: bool = True) -> Call:
        """A new call from `number`. `data`: call data the call starts with (a consultation call
        inherits the held call's). `join=False`: the exchange places it for `number`, which is not in
        it yet (MakePredictiveCall) and follows it as an observer."""
        call_id = f"{self.state.lim:03d}{self.state.incarnation % 1_000_000:06d}{next(self.state.call_numbers):015d}"
        call = Call(call_id=call_id, controller=self.state.lim, calling=number, data=dict(data or {}))
        self.state.calls[call_id] = call
        if not join:
            call.observers.append(number)
            return call
        call.parties[number] = Party(ConnState.INITIATED, self.state.lim)
        self.index.add(call, number)
        self.state.emit(call, "ServiceInitiated", number, cause)
        return call

    def fail_placed_call(self, call: Call, number: str, cause: str) -> None:
        """A call the exchange placed (no party yet) that `number` refused: the called connection
        fails (Failed), and the call ends (ConnectionCleared, CallCleared)."""
        call.parties[number] = Party(ConnState.FAIL, self.state.lim)
        self.state.emit(call, "Failed", number, cause, failing=number)
        call.parties.pop(number)
        self.state.emit(call, "ConnectionCleared", number, cause, dropped=number, extra=[number])
        call.cleared = True
        call.cancel_timers()
        self.state.emit(call, "CallCleared", None, cause)
        self.state.calls.pop(call.call_id, None)

    def release(self, call: Call, number: str, cause: str) -> None:
        """Clear `number`'s connection of a call controlled here, if it is still there."""
        if not call.cleared and number in call.parties:
            self._release(call, number, cause)

    def offer(self, call: Call, number: str, cause: str = Cause.NEW_CALL, *,
              diverted_from: Sequence[str] = (), last_redirection: str | None = None,
              hunt: str | None = None, front: bool = False, on_done: OfferDone | None = None) -> None:
        """Offer the call to `number`; `on_done` hears the outcome (default: fail the caller)."""
        def fail_caller(failure: str | None) -> None:
            if failure:
                self._offer_failed(call, number, failure)
        done = on_done or fail_caller
        body = {"call_id": call.call_id, "controller": self.state.lim, "calling": call.calling,
                "called": number, "diverted_from": list(diverted_from), "hunt": hunt, "front": front}
        context = (cause, list(diverted_from), last_redirection, hunt, done, on_done)
        call.offers += 1
        if self.state.directory.owner(number) == self.state.lim:
            self._offer_result(call, number, self.offers.accept(body), context)
        else:
            self.state.bus.request(device_address(number), Kind.CALL_OFFER, body,
                                   lambda reply: self._offer_result(call, number, reply, context))

    def _offer_result(self, call: Call, number: str, reply: dict[str, Any], context) -> None:
        cause, diverted_from, last_redirection, hunt, done, on_done = context
        call.offers -= 1
        if call.cleared:  # the call ended while the offer travelled
            if reply.get("ok"):
                self._send_update(reply["lim"], {**call.to_wire(), "cleared": True}, call, number)
            done(Cause.NORMAL)
            return
        if reply.get("ok"):
            queued = bool(reply.get("queued"))
            call.parties[number] = Party(ConnState.QUEUED if queued else ConnState.ALERTING, reply["lim"], hunt,
                                         last_redirection)
            if reply["lim"] == self.state.lim:
                self.index.add(call, number)
            redirect = {"last_redirection": last_redirection} if last_redirection else {}
            via = [hunt] if hunt else []
            if reply.get("external"):
                self.state.emit(call, "NetworkReached", number, Cause.NETWORK_SIGNAL, **redirect)
            if queued:
                self.state.emit(call, "Queued", number, Cause.ENTERING_DISTRIBUTION, queued=number,
                                queue_position=reply.get("position"), number_queued=reply.get("number_queued"),
                                calls_in_front=reply.get("calls_in_front"), **redirect)
            else:
                self.state.emit(call, "Delivered", number, cause, alerting=number, extra=via, **redirect)
                no_answer = reply.get("no_answer")
                if no_answer and len(diverted_from) < MAX_FORWARD_HOPS:
                    call.timers.append(self.state.timers.call_later(
                        no_answer["after_s"], lambda: self._forward_no_answer(call, number, no_answer["to"], diverted_from)))
                call.timers.append(self.state.timers.call_later(self.state.no_answer_s,
                                                                lambda: self._no_answer(call, number)))
            self._sync(call)
            done(None)
            return
        forward = reply.get("forward")
        if forward:
            to, forward_cause = forward
            self.state.emit(call, "Diverted", number, forward_cause, diverted_to=to, extra=[number])
            # The caller's own handler, if any, hears the outcome; else the failure names the
            # device that refused, wherever the forwarding chain ended.
            self.offer(call, to, forward_cause, diverted_from=[*diverted_from, number],
                       last_redirection=number, hunt=hunt, on_done=on_done)
            return
        if reply.get("hunt"):
            self._hunt(call, number, reply["hunt"], done)
            return
        done(reply.get("cause") or UNREACHABLE.get(reply.get("error"), Cause.DEST_NOT_OBTAINABLE))

    def _offer_failed(self, call: Call, number: str, cause: str) -> None:
        """Nobody took the call: the party waiting for it hears the failure (ECMA-269 Failed)."""
        if call.cleared or call.offers or any(
                p.state in (ConnState.ALERTING, ConnState.QUEUED) for p in call.parties.values()):
            return
        waiting = call.calling if call.calling in call.parties else next(iter(call.parties), None)
        if waiting is None:
            return
        call.parties[waiting].state = ConnState.FAIL
        self.state.emit(call, "Failed", waiting, cause, failing=number)
        self._sync(call)

    def _send_update(self, lim: int, wire: dict, call: Call, number: str) -> None:
        if lim == self.state.lim:
            self.index.remove(call.call_id, number)
        else:
            self.state.bus.send(lim_node(lim), Kind.CALL_UPDATE, wire)

    # -- groups ---------------------------------------------------------------------------------------
    def _hunt(self, call: Call, group: str, spec: dict[str, Any], done: OfferDone) -> None:
        """Ring a hunt group's members: one after another (linear, circular), all at once
        (parallel), or step by step with earlier steps ringing on (cascade)."""
        if spec["mode"] in ("linear", "circular"):
            members = list(spec["members"])

            def try_next(failure: str | None) -> None:
                if failure is None or call.cleared:
                    done(failure)
                elif members:
                    self.offer(call, members.pop(0), Cause.DISTRIBUTED, last_redirection=group, hunt=group,
                               on_done=try_next)
                else:
                    done(Cause.BUSY)
            try_next(Cause.BUSY)
            return
        steps = [list(spec["members"])] if spec["mode"] == "parallel" else [list(s) for s in spec["steps"]]
        state = {"rang": False}

        def ring_step(index: int) -> None:
            if call.cleared or any(p.hunt == group and p.state == ConnState.CONNECTED for p in call.parties.values()):
                return
            pending = {"n": len(steps[index])}

            def member_done(failure: str | None) -> None:
                pending["n"] -= 1
                state["rang"] |= failure is None
                if pending["n"] == 0 and not any(p.hunt == group for p in call.parties.values()):
                    if index + 1 < len(steps):
                        ring_step(index + 1)  # nobody rings in this step: go on at once
                    else:
                        done(Cause.BUSY)
            if index + 1 < len(steps):
                call.timers.append(self.state.timers.call_later(spec["step_s"], lambda: ring_step(index + 1)))
            for member in steps[index]:
                if member not in call.parties:
                    self.offer(call, member, Cause.DISTRIBUTED, last_redirection=group, hunt=group,
                               on_done=member_done)
                else:
                    member_done(Cause.BUSY)
        ring_step(0)

    def _op_distribute(self, call: Call, group: str, body: dict, respond: Reply) -> None:
        """An ACD group hands a queued call to an agent (or overflows it to another number)."""
        if call.state_of(group) != ConnState.QUEUED:
            raise Refused(Refusal.NOT_QUEUED, f"call {call.call_id} is not queued at {group}")
        to, cause = body["to"], body.get("cause", Cause.DISTRIBUTED)
        party = call.parties.pop(group)
        self.state.emit(call, "Diverted", group, cause, diverted_to=to, extra=[group])
        self._sync(call, also={party.lim})
        if party.lim == self.state.lim:
            self.index.remove(call.call_id, group)

        def offered(failure: str | None) -> None:
            if failure is None or call.cleared:
                respond({"ok": failure is None, "error": Refusal.CLEARED, "message": "the call ended"}
                        if failure else {"ok": True, "call_id": call.call_id, "to": to})
                return
            respond({"ok": False, "error": Refusal.REFUSED, "message": f"{to} did not take the call ({failure})"})
            if cause == Cause.DISTRIBUTED or body.get("back"):
                # Back to the head of the queue (a route point: its application is asked again).
                self.offer(call, group, Cause.ENTERING_DISTRIBUTION, front=True)
            else:
                self._offer_failed(call, to, failure)
        self.offer(call, to, cause, last_redirection=group, hunt=group if cause == Cause.DISTRIBUTED else None,
                   on_done=offered)

    # -- timers ---------------------------------------------------------------------------------------
    def _no_answer(self, call: Call, number: str) -> None:
        party = call.parties.get(number)
        if call.cleared or party is None or party.state != ConnState.ALERTING:
            return
        if party.hunt in self.state.acd_groups:
            # An agent who does not answer: the call goes back to the head of the queue, and the
            # agent is made not ready, so the next call does not go to an empty seat.
            self._drop(call, number, Cause.NOT_ANSWERED)
            if party.lim == self.state.lim:
                self.agents.not_answering(number)
            else:
                self.state.bus.request(device_address(number), Kind.AGENT, {"action": "notready"})
            self.offer(call, party.hunt, Cause.ENTERING_DISTRIBUTION, front=True)
            return
        self._release(call, number, Cause.NOT_ANSWERED)

    def _forward_no_answer(self, call: Call, number: str, to: str, diverted_from: list[str]) -> None:
        party = call.parties.get(number)
        if call.cleared or party is None or party.state != ConnState.ALERTING:
            return
        self._drop(call, number, Cause.FORWARD_NO_ANSWER, event="Diverted", diverted_to=to)
        self.offer(call, to, Cause.FORWARD_NO_ANSWER, diverted_from=[*diverted_from, number],
                   last_redirection=number, hunt=party.hunt)

    # -- operations ----------------------------------------------------------------------------------
    def request_op(self, call: Call, op: str, device: str, respond: Reply, **args: Any) -> None:
        """Ask the controller of `call` (this LIM or another) to carry out `op` for `device`."""
        body = {"call_id": call.call_id, "op": op, "device": device, **args}
        if call.controller == self.state.lim:
            try:
                self._run_op(body, respond)
            except Refused as refusal:
                respond(refusal.reply())
        else:
            self.state.bus.request(lim_node(call.controller), Kind.CALL_OP, body, respond)

    def on_call_op(self, env: Envelope, respond: Reply) -> None:
        self._run_op(env.body, respond)

    def _run_op(self, body: dict[str, Any], respond: Reply) -> None:
        call = self.state.calls.get(body["call_id"])
        if call is None or call.controller != self.state.lim or call.cleared:
            raise Refused(Refusal.NO_SUCH_CALL, f"call {body['call_id']} is not in progress")
        op = getattr(self, f"_op_{body['op']}", None)
        if op is None:
            raise Refused(Refusal.UNKNOWN_REQUEST, f"unknown call operation {body['op']!r}")
        op(call, body["device"], body, respond)

    def _ok(self, respond: Reply, call: Call, device: str) -> None:
        respond({"ok": True, "device": device, "call_id": call.call_id, "state": str(call.state_of(device))})

    def _require(self, call: Call, device: str, state: ConnState, what: str) -> None:
        if call.state_of(device) != state:
            raise Refused(Refusal(f"not_{what}"), f"{device} is not {what} in call {call.call_id}"
                          if what != "alerting" else f"{device} is not ringing")

    def _op_answer(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._require(call, device, ConnState.ALERTING, "alerting")
        party = call.parties[device]
        party.state = ConnState.CONNECTED
        # Ringing siblings (a hunt group ringing several members) stop ringing.
        for other, sibling in list(call.parties.items()):
            if other != device and party.hunt and sibling.hunt == party.hunt and sibling.state == ConnState.ALERTING:
                self._drop(call, other, Cause.NORMAL)
        if not any(p.state == ConnState.ALERTING for p in call.parties.values()):
            call.cancel_timers()
        machine = bool(body.get("machine"))  # the public network's answering machine took the call
        # ECMA-269: the answered call still names the device it was last redirected from (a
        # screen pop on answer shows the group or route point as the Delivered did).
        redirect: dict[str, Any] = {"last_redirection": party.redirected_from} if party.redirected_from else {}
        self.state.emit(call, "Established", device, Cause.DEST_DETECTED if machine else Cause.NEW_CALL,
                        answering=device, **redirect)
        self._sync(call)
        self._ok(respond, call, device)
        if call.on_answer is not None:
            call.on_answer(device, machine)

    def _op_release(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        if device not in call.parties:
            raise Refused(Refusal.IDLE, f"{device} is not in call {call.call_id}")
        self._release(call, device, body.get("cause", Cause.NORMAL))
        respond({"ok": True, "device": device, "call_id": call.call_id, "state": "null"})

    def _op_hold(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._require(call, device, ConnState.CONNECTED, "connected")
        call.parties[device].state = ConnState.HOLD
        self.state.emit(call, "Held", device, body.get("cause", Cause.KEY_OPERATION), holding=device)
        self._sync(call)
        self._ok(respond, call, device)

    def _op_retrieve(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._require(call, device, ConnState.HOLD, "held")
        call.parties[device].state = ConnState.CONNECTED
        self.state.emit(call, "Retrieved", device, body.get("cause", Cause.KEY_OPERATION), retrieving=device)
        self._sync(call)
        self._ok(respond, call, device)

    def _op_digits(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._require(call, device, ConnState.CONNECTED, "connected")
        # Published to every party of the call: the far side "hears" the digits.
        self.state.emit(call, "DigitsGenerated", device, Cause.DTMF, digits=body["digits"])
        self._ok(respond, call, device)

    def _op_associate(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        """AssociateData: the call keeps the items given (replacing earlier values of the same
        items) and reports them in a CallInformation event; every later event carries them."""
        if device not in call.parties:
            raise Refused(Refusal.NO_SUCH_CONNECTION, f"{device} is not in call {call.call_id}")
        try:
            data = checked_data(body.get("data"))
        except ValueError as exc:
            raise Refused(Refusal.BAD_REQUEST, str(exc)) from None
        call.data = {**call.data, **data}
        self.state.emit(call, "CallInformation", device, None)
        self._sync(call)
        self._ok(respond, call, device)

    def _op_deflect(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._require(call, device, ConnState.ALERTING, "alerting")
        to = body["to"]
        hunt = call.parties[device].hunt
        self._drop(call, device, Cause.REDIRECTED, event="Diverted", diverted_to=to)
        self.offer(call, to, Cause.REDIRECTED, diverted_from=[device], last_redirection=device, hunt=hunt)
        respond({"ok": True, "device": device, "call_id": call.call_id, "state": "null"})

    def _op_sst(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        """Single-step transfer: `device` leaves, the rest of the call is offered to `to`."""
        self._require(call, device, ConnState.CONNECTED, "connected")
        to = body["to"]
        call.parties.pop(device)
        remaining = [d for d, p in call.parties.items() if p.state in IN_CALL]
        if not remaining:
            call.parties[device] = Party(ConnState.CONNECTED, self._lim_of(device))
            raise Refused(Refusal.BAD_REQUEST, f"{device} has nobody to transfer")
        call.calling = remaining[0]  # the transferred party now calls `to`
        self.state.emit(call, "Transferred", device, Cause.SINGLE_STEP_TRANSFER, transferring=device,
                        transferred=remaining[0], transferred_to=to, extra=[device])
        self._forget(call, device)
        call.called = to
        self.offer(call, to, Cause.SINGLE_STEP_TRANSFER, last_redirection=device)
        respond({"ok": True, "device": device, "call_id": call.call_id, "state": "null"})

    def _lim_of(self, device: str) -> int:
        return self.state.directory.owner(device) or self.state.lim

    # -- transfer and conference: joining two calls ------------------------------------------------------
    def _op_transfer(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._join(call, device, body, respond, conference=False)

    def _op_conference(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        self._join(call, device, body, respond, conference=True)

    def _join(self, held: Call, device: str, body: dict, respond: Reply, conference: bool) -> None:
        """Join the held call (controlled here) and the device's other call (controlled here or on
        another LIM, which hands its parties over) into the held call."""
        self._require(held, device, ConnState.HOLD, "held")
        other_id = body["other"]
        if conference and len(held.parties) + body.get("other_size", 0) - 1 > MAX_CONFERENCE_PARTIES:
            raise Refused(Refusal.CONFERENCE_FULL, f"a conference holds at most {MAX_CONFERENCE_PARTIES} parties")
        if body["other_controller"] == self.state.lim:
            other = self.state.calls.get(other_id)
            if other is None or other.controller != self.state.lim or device not in other.parties:
                raise Refused(Refusal.NO_SUCH_CALL, f"call {other_id} is not in progress")
            data = other.data
            parties = self._hand_over(other, device, held.call_id, self.state.lim)
            self._merge(held, device, other_id, parties, conference, respond, data)
            return

        def handed(reply: dict) -> None:
            if not reply.get("ok"):
                respond(reply)
                return
            if held.cleared or held.state_of(device) != ConnState.HOLD:
                respond({"ok": False, "error": Refusal.NO_SUCH_CALL, "message": f"call {held.call_id} changed meanwhile"})
                return
            parties = [(d, Party(ConnState(s), lim, hunt)) for d, s, lim, hunt in reply["parties"]]
            self._merge(held, device, other_id, parties, conference, respond, reply.get("data") or {})
        self.state.bus.request(lim_node(body['other_controller']), Kind.CALL_HANDOVER,
                         {"call_id": other_id, "into": held.call_id, "controller": self.state.lim, "device": device},
                               handed)

    def on_handover(self, env: Envelope, respond: Reply) -> None:
        """Another LIM takes over the parties of a call we control (a transfer or conference)."""
        body = env.body
        call = self.state.calls.get(body["call_id"])
        if call is None or call.controller != self.state.lim or call.cleared:
            raise Refused(Refusal.NO_SUCH_CALL, f"call {body['call_id']} is not in progress")
        if call.state_of(body["device"]) != ConnState.CONNECTED:
            raise Refused(Refusal.NOT_CONNECTED, f"{body['device']} is not connected in call {call.call_id}")
        parties = self._hand_over(call, body["device"], body["into"], body["controller"])
        respond({"ok": True, "parties": [[d, str(p.state), p.lim, p.hunt] for d, p in parties], "data": call.data})

    def _hand_over(self, call: Call, device: str, into: str, controller: int) -> list[tuple[str, Party]]:
        """Give up control of `call`, whose parties join call `into` (controlled by `controller`).
        Our own devices stay indexed under `into` until its controller's update arrives, so they
        never look idle in between."""
        parties = list(call.parties.items())
        call.cancel_timers()
        self.state.calls.pop(call.call_id, None)
        target = self.state.calls.get(into)
        for number, party in parties:
            if party.lim != self.state.lim:
                continue
            self.index.remove(call.call_id, number)
            if number == device:
                continue
            if target is None:
                target = self.state.calls[into] = Call(into, controller, call.calling, call.called)
            target.parties[number] = party
            self.index.add(target, number)
        return parties

    def _merge(self, held: Call, device: str, other_id: str, parties: list[tuple[str, Party]],
               conference: bool, respond: Reply, other_data: dict[str, str]) -> None:
        if other_data:
            held.data = merged_data(held.data, other_data)
        added = []
        for number, party in parties:
            if number == device:
                continue
            held.parties[number] = party
            added.append(number)
            if party.lim == self.state.lim:
                self.index.add(held, number)
            if party.state == ConnState.ALERTING:
                held.timers.append(self.state.timers.call_later(self.state.no_answer_s,
                                                                partial(self._no_answer, held, number)))
        old = self.state.calls.get(other_id)
        if old is not None and old.controller != self.state.lim:
            # Our mirror of the call merged in (its controller was another LIM): our devices in it
            # are now in the held call, which no update to ourselves would tell us.
            self.state.calls.pop(other_id)
            for number, party in old.parties.items():
                if party.lim == self.state.lim:
                    self.index.remove(other_id, number)
        fields: dict[str, Any] = {"primary_old_call": held.call_id, "secondary_old_call": other_id}
        if conference:
            held.parties[device].state = ConnState.CONNECTED
            self.state.emit(held, "Conferenced", device, Cause.CONFERENCE, conferencing=device, added=added,
                            moved=added, **fields)
        else:
            remaining = [d for d in held.parties if d != device and d not in added]
            held.parties.pop(device)
            self.state.emit(held, "Transferred", device, Cause.TRANSFER, transferring=device,
                            transferred=remaining[0] if remaining else None,
                            transferred_to=added[0] if added else None, moved=added, extra=[device], **fields)
            self._forget(held, device)
            if remaining:
                held.calling = remaining[0]
        self._sync(held, also={self._lim_of(device)}, replaces=other_id)
        respond({"ok": True, "device": device, "call_id": held.call_id,
                 "state": str(held.state_of(device))})

    # -- leaving calls --------------------------------------------------------------------------------
    def lim_failed(self, lim: int) -> None:
        """Release every connection that depended on a LIM that just failed."""
        for queue in self.state.queues.values():
            queue.forget_lim(lim)
        for call in list(self.state.calls.values()):
            if call.cleared:
                continue
            if call.controller == self.state.lim:
                for device in [d for d, p in call.parties.items() if p.lim == lim]:
                    if not call.cleared and device in call.parties:
                        self._release(call, device, Cause.NETWORK_NOT_OBTAINABLE)
            elif call.controller == lim:
                self._orphaned(call, lim)

    def _orphaned(self, mirror: Call, dead: int) -> None:
        """Our mirror of a call whose controller `dead` just died: the call is lost. One surviving
        LIM of the call (the lowest-numbered) reports its end as the controller would have, so that
        every monitor sees one ordered account: the dead LIM's parties cleared, then the rest, then
        CallCleared. Every other LIM of the call only forgets its devices' part in it."""
        gone = {d: p for d, p in mirror.parties.items() if p.lim == dead or self._is_dead(p.lim)}
        alive = {p.lim for d, p in mirror.parties.items() if d not in gone}
        ours = [d for d, p in mirror.parties.items() if p.lim == self.state.lim]
        if alive and min(alive) == self.state.lim:
            for device in gone:
                mirror.parties.pop(device)
                self.state.emit(mirror, "ConnectionCleared", device, Cause.NETWORK_NOT_OBTAINABLE,
                                dropped=device, extra=[device])
            self._clear_rest(mirror, Cause.NETWORK_NOT_OBTAINABLE, dict(gone))  # forgets ours too
            return
        self.state.calls.pop(mirror.call_id, None)
        for device in ours:
            self.index.remove(mirror.call_id, device)

    def _is_dead(self, lim: int) -> bool:
        return lim != self.state.lim and self.state.lim_states.get(lim) == "dead"

    def _drop(self, call: Call, number: str, cause: str, event: str = "ConnectionCleared", **fields: Any) -> None:
        """Take one connection out of the call (no clearing of the rest)."""
        party = call.parties.pop(number)
        if event == "ConnectionCleared":
            fields["dropped"] = number
        self.state.emit(call, event, number, cause, extra=[number], **fields)
        self._sync(call, also={party.lim})
        if party.lim == self.state.lim:
            self.index.remove(call.call_id, number)

    def _forget(self, call: Call, number: str) -> None:
        """`number` has left the call (already reported): its LIM must hear of it."""
        lim = self._lim_of(number)
        if lim == self.state.lim:
            self.index.remove(call.call_id, number)
        else:
            self.state.bus.send(lim_node(lim), Kind.CALL_UPDATE, call.to_wire())

    def _release(self, call: Call, number: str, cause: str) -> None:
        """Clear one connection; a call left with nobody talking (fewer than two parties, or only
        ringing and queued ones) is cleared altogether."""
        if number not in call.parties:
            raise Refused(Refusal.IDLE, f"{number} is not in call {call.call_id}")
        gone = {number: call.parties.pop(number)}
        self.state.emit(call, "ConnectionCleared", number, cause, dropped=number, extra=[number])
        if len(call.parties) < 2 or not any(p.state in IN_CALL for p in call.parties.values()):
            self._clear_rest(call, cause, gone)
        else:
            self._finish_release(call, gone)

    def _op_clear(self, call: Call, device: str, body: dict, respond: Reply) -> None:
        """Clear the whole call (CSTA ClearCall), whoever is in it."""
        if device not in call.parties:
            raise Refused(Refusal.IDLE, f"{device} is not in call {call.call_id}")
        self._clear_rest(call, Cause.NORMAL, {})
        respond({"ok": True, "device": device, "call_id": call.call_id, "state": "null"})

    def _clear_rest(self, call: Call, cause: str, gone: dict[str, Party]) -> None:
        for other in list(call.parties):
            gone[other] = call.parties.pop(other)
            self.state.emit(call, "ConnectionCleared", other, cause, dropped=other, extra=list(gone))
        call.cleared = True
        call.cancel_timers()
        self.state.emit(call, "CallCleared", None, cause)
        self._finish_release(call, gone)

    def _finish_release(self, call: Call, gone: dict[str, Party]) -> None:
        self._sync(call, also={p.lim for p in gone.values()})
        for device, party in gone.items():
            if party.lim == self.state.lim:
                self.index.remove(call.call_id, device)
        if call.cleared:
            self.state.calls.pop(call.call_id, None)

    def _sync(self, call: Call, also: AbstractSet[int] = frozenset(), replaces: str | None = None) -> None:
        wire = call.to_wire()
        if replaces:
            wire["replaces"] = replaces
        for lim in (call.lims() | set(also)) - {self.state.lim}:
            self.state.bus.send(lim_node(lim), Kind.CALL_UPDATE, wire)
