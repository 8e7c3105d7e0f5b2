"""The LIM: its devices and its side of every call. Pure logic; the bus and clock are injected.

Inputs are bus requests (`handle`), membership changes (`on_member`/`on_members`) and timers.
Outputs go through the injected bus: requests to other LIMs, one-way call updates, replies, and
events published on the topics of every device in the call (and the call's own topic).

Who does what in a call across LIMs:
  - the LIM of the calling device controls the call (see lim/calls.py);
  - the LIM of a device decides whether the device can take part (logged on, idle) and checks
    every physical action on it, then forwards the action to the controller;
  - the controller changes the connection states, publishes the ECMA-269 event and sends the
    new set of connections to every other LIM in the call.
"""
from __future__ import annotations

import itertools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from broker.directory import Directory
from broker.envelope import Envelope, call_topic, device_topic
from broker.timers import TimerQueue
from lim.calls import Call, Cause, ConnState, Party
from lim.store import Store
from topology.model import Topology, TrunkRoute

log = logging.getLogger("lim")

DIGITS = re.compile(r"^[0-9*#]{1,32}$")
PHYSICAL_ACTIONS = ("offhook", "onhook", "dial", "answer", "hangup", "logon", "logoff")

Reply = Callable[[dict[str, Any]], None]


class Bus(Protocol):
    def request(self, dst: str, kind: str, body: dict, on_reply=None, timeout: float = 2.0) -> int: ...
    def send(self, dst: str, kind: str, body: dict) -> None: ...
    def reply(self, request: Envelope, body: dict) -> None: ...
    def publish(self, topics: list[str], kind: str, body: dict) -> None: ...


class Refused(Exception):
    """A request the exchange refuses; nothing has changed."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, "message": self.message}


@dataclass
class Device:
    number: str
    type: str               # an extension type, or "external" for a party on the public network
    logged_on: bool
    trunk: TrunkRoute | None = None  # external parties: the trunk they use


class LimCore:
    def __init__(self, topology: Topology, lim: int, bus: Bus, timers: TimerQueue, store: Store,
                 incarnation: int, wall_clock: Callable[[], float] = time.time):
        self.topology = topology
        self.lim = lim
        self.bus = bus
        self.timers = timers
        self.store = store
        self.incarnation = incarnation
        self.wall_clock = wall_clock
        self.directory = Directory(topology)
        self.trunks = [t for t in topology.trunks if t.lim == lim]
        self.no_answer_s = topology.timers.no_answer_s
        saved = store.device_state()
        self.devices: dict[str, Device] = {}
        for ext in topology.extensions_on(lim):
            logged_on = saved.get(ext.number, {}).get("logged_on", ext.logged_on)
            self.devices[ext.number] = Device(ext.number, ext.type, bool(logged_on))
        self.groups = {g.number for g in (*topology.acd_groups, *topology.hunt_groups) if g.lim == lim}
        self.calls: dict[str, Call] = {}           # controlled here, or mirrors of our devices' calls
        self.calls_of: dict[str, list[str]] = {}   # our device -> ids of the calls it is in
        self.lim_states: dict[int, str] = {}
        self._call_numbers = itertools.count(1)

    # -- requests ------------------------------------------------------------------------------
    def handle(self, env: Envelope) -> None:
        respond: Reply = lambda body: self.bus.reply(env, body)
        handler = self._handlers().get(env.kind)
        if handler is None:
            respond({"ok": False, "error": "unknown_request", "message": f"LIM {self.lim} does not serve {env.kind!r}"})
            return
        try:
            handler(env, respond)
        except Refused as refusal:
            respond(refusal.reply())
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("bad %s from %s: %r", env.kind, env.src, exc)
            respond({"ok": False, "error": "bad_request", "message": f"malformed {env.kind}: {exc!r}"})

    def _handlers(self) -> dict[str, Callable[[Envelope, Reply], None]]:
        return {
            "phone": self._on_phone,
            "device.get": self._on_device_get,
            "lim.status": self._on_status,
            "call.offer": self._on_offer,
            "call.answer": self._on_answer,
            "call.release": self._on_release,
            "call.update": self._on_update,
        }

    def _target(self, env: Envelope) -> str:
        if not env.dst.startswith("dev:"):
            raise Refused("bad_request", f"{env.kind} must be addressed to a device")
        return env.dst[4:]

    # -- the physical side -----------------------------------------------------------------------
    def _on_phone(self, env: Envelope, respond: Reply) -> None:
        number = self._target(env)
        action = env.body.get("action")
        if action not in PHYSICAL_ACTIONS:
            raise Refused("unknown_action", f"unknown phone action {action!r}; use one of {', '.join(PHYSICAL_ACTIONS)}")
        device = self._device(number, create_external=action in ("offhook", "dial"))
        try:
            self._act(device, action, env, respond)
        finally:
            if device.type == "external" and not self.calls_of.get(number):
                self.devices.pop(number, None)  # a refused action leaves no trunk channel taken

    def _act(self, device: Device, action: str, env: Envelope, respond: Reply) -> None:
        if action == "offhook":
            self._offhook(device, respond)
        elif action == "dial":
            self._dial(device, str(env.body.get("digits", "")), respond)
        elif action == "answer":
            self._answer_physical(device, respond)
        elif action in ("onhook", "hangup"):
            self._hangup(device, respond)
        elif action == "logon":
            self._set_logged_on(device, True, respond)
        else:
            self._set_logged_on(device, False, respond)

    def _device(self, number: str, create_external: bool = False) -> Device:
        device = self.devices.get(number)
        if device is not None:
            return device
        if number in self.groups:
            raise Refused("not_a_phone", f"{number} is a group, not a phone")
        trunk = self._trunk_for(number)
        if trunk is None:
            raise Refused("unknown_number", f"number {number} is not on LIM {self.lim}")
        if not create_external:
            raise Refused("idle", f"external party {number} is not in a call")
        if not DIGITS.match(number):
            raise Refused("bad_digits", f"{number!r} is not a dialable number")
        if self._channels_in_use(trunk) >= trunk.channels:
            raise Refused("trunks_busy", f"all {trunk.channels} channels of trunk {trunk.name} are busy")
        device = Device(number, "external", True, trunk)
        self.devices[number] = device
        return device

    def _trunk_for(self, number: str) -> TrunkRoute | None:
        best = None
        for trunk in self.trunks:
            if number.startswith(trunk.prefix) and len(number) > len(trunk.prefix):
                if best is None or len(trunk.prefix) > len(best.prefix):
                    best = trunk
        return best

    def _channels_in_use(self, trunk: TrunkRoute) -> int:
        return sum(1 for d in self.devices.values() if d.trunk is trunk)

    def _calls(self, number: str) -> list[Call]:
        return [self.calls[c] for c in self.calls_of.get(number, ())]

    def _offhook(self, device: Device, respond: Reply) -> None:
        self._check_in_service(device)
        calls = self._calls(device.number)
        if any(c.state_of(device.number) == ConnState.ALERTING for c in calls):
            self._answer_physical(device, respond)
            return
        if calls:
            raise Refused("busy", f"{device.number} is already in a call")
        call = self._new_call(device.number)
        respond({"ok": True, "device": device.number, "call_id": call.call_id, "state": "initiated"})

    def _check_in_service(self, device: Device) -> None:
        if not device.logged_on:
            raise Refused("out_of_service", f"{device.number} has no terminal logged on")

    def _dial(self, device: Device, digits: str, respond: Reply) -> None:
        if not DIGITS.match(digits):
            raise Refused("bad_digits", f"{digits!r} is not a number to dial")
        if self.directory.owner(digits) is None:
            raise Refused("unknown_number", f"number {digits} is not allocated")
        self._check_in_service(device)
        calls = self._calls(device.number)
        if not calls:
            call = self._new_call(device.number)
        elif len(calls) == 1 and calls[0].state_of(device.number) == ConnState.INITIATED:
            call = calls[0]
        else:
            raise Refused("busy", f"{device.number} is in a call; it can dial only after going off hook")
        call.called = digits
        call.parties[device.number].state = ConnState.CONNECTED
        self._emit(call, "Originated", device.number, Cause.NEW_CALL)
        self._offer(call, digits)
        respond({"ok": True, "device": device.number, "call_id": call.call_id, "state": "connected"})

    def _answer_physical(self, device: Device, respond: Reply) -> None:
        call = next((c for c in self._calls(device.number)
                     if c.state_of(device.number) == ConnState.ALERTING), None)
        if call is None:
            raise Refused("not_alerting", f"{device.number} is not ringing")
        if call.controller == self.lim:
            self._answer(call, device.number)
            respond({"ok": True, "device": device.number, "call_id": call.call_id, "state": "connected"})
        else:
            self.bus.request(f"lim-{call.controller}", "call.answer",
                             {"call_id": call.call_id, "device": device.number}, respond)

    def _hangup(self, device: Device, respond: Reply) -> None:
        calls = self._calls(device.number)
        if not calls:
            raise Refused("idle", f"{device.number} is not in a call")
        # The active connection goes first; a held one would follow with telephony features.
        call = calls[-1]
        if call.controller == self.lim:
            self._release(call, device.number, Cause.NORMAL)
            respond({"ok": True, "device": device.number, "call_id": call.call_id, "state": "null"})
        else:
            self.bus.request(f"lim-{call.controller}", "call.release",
                             {"call_id": call.call_id, "device": device.number, "cause": Cause.NORMAL},
                             respond)

    def _set_logged_on(self, device: Device, logged_on: bool, respond: Reply) -> None:
        if device.type == "external":
            raise Refused("not_a_terminal", f"{device.number} is on the public network")
        if device.type == "virtual" and logged_on:
            raise Refused("virtual", f"{device.number} is a virtual extension: no terminal can log on")
        if device.logged_on != logged_on:
            if not logged_on:
                for call in list(self._calls(device.number)):
                    self._leave_call(call, device.number, Cause.NORMAL)
            device.logged_on = logged_on
            self.store.set_device_state(device.number, "logged_on", logged_on)
            self._emit_device(device.number, "BackInService" if logged_on else "OutOfService")
        respond({"ok": True, "device": device.number, "logged_on": logged_on})

    def _leave_call(self, call: Call, number: str, cause: str) -> None:
        if call.controller == self.lim:
            self._release(call, number, cause)
        else:
            self.bus.request(f"lim-{call.controller}", "call.release",
                             {"call_id": call.call_id, "device": number, "cause": cause})

    # -- the controller's side ------------------------------------------------------------------
    def _new_call(self, number: str) -> Call:
        call_id = f"{self.lim:03d}{self.incarnation % 1_000_000:06d}{next(self._call_numbers):015d}"
        call = Call(call_id=call_id, controller=self.lim, calling=number)
        call.parties[number] = Party(ConnState.INITIATED, self.lim)
        self.calls[call_id] = call
        self._index(call, number)
        self._emit(call, "ServiceInitiated", number, Cause.NEW_CALL)
        return call

    def _offer(self, call: Call, number: str) -> None:
        body = {"call_id": call.call_id, "controller": self.lim, "calling": call.calling, "called": number}
        owner = self.directory.owner(number)
        if owner == self.lim:
            self._offer_result(call, number, self._accept_offer(body))
        else:
            self.bus.request(f"dev:{number}", "call.offer", body,
                             lambda reply: self._offer_result(call, number, reply))

    def _offer_result(self, call: Call, number: str, reply: dict[str, Any]) -> None:
        if reply.get("ok"):
            if call.cleared:  # the caller gave up while the offer travelled to another LIM
                self.bus.send(f"lim-{reply['lim']}", "call.update", {**call.to_wire(), "cleared": True})
                return
            call.parties[number] = Party(ConnState.ALERTING, reply["lim"])
            if reply["lim"] == self.lim:
                self._index(call, number)
            if reply.get("external"):
                self._emit(call, "NetworkReached", number, Cause.NETWORK_SIGNAL)
            self._emit(call, "Delivered", number, Cause.NEW_CALL, alerting=number)
            self._sync(call)
            call.timer = self.timers.call_later(self.no_answer_s, lambda: self._no_answer(call, number))
            return
        if call.cleared:
            return
        cause = reply.get("cause") or {"lim_down": Cause.NETWORK_NOT_OBTAINABLE,
                                       "timeout": Cause.NETWORK_NOT_OBTAINABLE}.get(reply.get("error"),
                                                                                   Cause.DEST_NOT_OBTAINABLE)
        call.parties[call.calling].state = ConnState.FAIL
        self._emit(call, "Failed", call.calling, cause, failing=number)

    def _no_answer(self, call: Call, number: str) -> None:
        if not call.cleared and call.state_of(number) == ConnState.ALERTING:
            self._release(call, number, Cause.NOT_ANSWERED)

    def _answer(self, call: Call, number: str) -> None:
        if call.state_of(number) != ConnState.ALERTING:
            raise Refused("not_alerting", f"{number} is not ringing in call {call.call_id}")
        if call.timer:
            call.timer.cancel()
        call.parties[number].state = ConnState.CONNECTED
        self._emit(call, "Established", number, Cause.NEW_CALL, answering=number)
        self._sync(call)

    def _release(self, call: Call, number: str, cause: str) -> None:
        """Clear one connection; a call left with one party is cleared altogether."""
        if number not in call.parties:
            raise Refused("idle", f"{number} is not in call {call.call_id}")
        gone = {number: call.parties.pop(number)}
        self._emit(call, "ConnectionCleared", number, cause, dropped=number, extra=[number])
        if len(call.parties) <= 1:
            if call.timer:
                call.timer.cancel()
            for other in list(call.parties):
                gone[other] = call.parties.pop(other)
                self._emit(call, "ConnectionCleared", other, cause, dropped=other, extra=list(gone))
            call.cleared = True
            self._emit(call, "CallCleared", None, cause, extra=[])
        self._sync(call, also={p.lim for p in gone.values()})
        for device, party in gone.items():
            if party.lim == self.lim:
                self._unindex(call.call_id, device)
        if call.cleared:
            self.calls.pop(call.call_id, None)

    def _sync(self, call: Call, also: set[int] = frozenset()) -> None:
        wire = call.to_wire()
        for lim in (call.lims() | set(also)) - {self.lim}:
            self.bus.send(f"lim-{lim}", "call.update", wire)

    # -- messages between LIMs ------------------------------------------------------------------
    def _on_offer(self, env: Envelope, respond: Reply) -> None:
        respond(self._accept_offer(env.body))

    def _accept_offer(self, body: dict[str, Any]) -> dict[str, Any]:
        """May a device of ours join this call? If so it starts alerting."""
        number = body["called"]
        external = False
        if number in self.groups:
            return {"ok": False, "cause": Cause.DEST_NOT_OBTAINABLE}
        if number not in self.devices:
            try:
                self._device(number, create_external=True)
            except Refused as refusal:
                cause = Cause.TRUNKS_BUSY if refusal.code == "trunks_busy" else Cause.DEST_NOT_OBTAINABLE
                return {"ok": False, "cause": cause}
            external = True
        device = self.devices[number]
        if not device.logged_on:
            return {"ok": False, "cause": Cause.DEST_NOT_OBTAINABLE}
        if self.calls_of.get(number):
            return {"ok": False, "cause": Cause.BUSY}
        call_id = body["call_id"]
        if body["controller"] != self.lim:
            mirror = Call(call_id, body["controller"], body["calling"], number)
            mirror.parties[number] = Party(ConnState.ALERTING, self.lim)
            self.calls[call_id] = mirror
            self._index(mirror, number)
        if device.trunk is not None and device.trunk.answer_after_s is not None:
            self.timers.call_later(device.trunk.answer_after_s, lambda: self._auto_answer(number, call_id))
        return {"ok": True, "lim": self.lim, "external": external}

    def _auto_answer(self, number: str, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.state_of(number) == ConnState.ALERTING and number in self.devices:
            try:
                self._answer_physical(self.devices[number], lambda reply: None)
            except Refused:
                pass  # the call changed meanwhile; the simulated party just stops ringing

    def _controlled(self, body: dict[str, Any]) -> Call:
        call = self.calls.get(body["call_id"])
        if call is None or call.controller != self.lim:
            raise Refused("no_such_call", f"call {body['call_id']} is not in progress")
        return call

    def _on_answer(self, env: Envelope, respond: Reply) -> None:
        call = self._controlled(env.body)
        self._answer(call, env.body["device"])
        respond({"ok": True, "device": env.body["device"], "call_id": call.call_id, "state": "connected"})

    def _on_release(self, env: Envelope, respond: Reply) -> None:
        call = self._controlled(env.body)
        self._release(call, env.body["device"], env.body.get("cause", Cause.NORMAL))
        respond({"ok": True, "device": env.body["device"], "call_id": call.call_id, "state": "null"})

    def _on_update(self, env: Envelope, respond: Reply) -> None:
        self._apply_mirror(Call.from_wire(env.body))

    def _apply_mirror(self, update: Call) -> None:
        old = self.calls.get(update.call_id)
        if old is not None and old.controller == self.lim:
            return  # never let a stale message overwrite the authoritative copy
        before = {d for d, p in (old.parties.items() if old else ()) if p.lim == self.lim}
        after = set() if update.cleared else {d for d, p in update.parties.items() if p.lim == self.lim}
        if update.cleared or not after:
            self.calls.pop(update.call_id, None)
        else:
            self.calls[update.call_id] = update
        for device in before - after:
            self._unindex(update.call_id, device)
        for device in after - before:
            self._index(update, device)

    def _index(self, call: Call, number: str) -> None:
        ids = self.calls_of.setdefault(number, [])
        if call.call_id not in ids:
            ids.append(call.call_id)

    def _unindex(self, call_id: str, number: str) -> None:
        ids = self.calls_of.get(number)
        if ids and call_id in ids:
            ids.remove(call_id)
        if not ids:
            self.calls_of.pop(number, None)
            device = self.devices.get(number)
            if device is not None and device.type == "external":
                del self.devices[number]  # the trunk channel is free again

    # -- membership --------------------------------------------------------------------------------
    def on_members(self, members: list[dict]) -> None:
        for member in members:
            self.on_member(member)

    def on_member(self, change: dict) -> None:
        if change.get("role") != "lim" or change.get("lim") is None:
            return
        lim, state = change["lim"], change["state"]
        previous = self.lim_states.get(lim)
        self.lim_states[lim] = state
        if state == "dead" and previous != "dead" and lim != self.lim:
            self._lim_failed(lim)

    def _lim_failed(self, lim: int) -> None:
        """Release every connection that depended on a LIM that just failed."""
        for call in list(self.calls.values()):
            if call.cleared:
                continue
            if call.controller == self.lim:
                for device in [d for d, p in call.parties.items() if p.lim == lim]:
                    if not call.cleared and device in call.parties:
                        self._release(call, device, Cause.NETWORK_NOT_OBTAINABLE)
            elif call.controller == lim:
                # The controller is gone: we report the end of the call for our own devices.
                ours = [d for d, p in call.parties.items() if p.lim == self.lim]
                for device in ours:
                    call.parties.pop(device)
                    self._emit(call, "ConnectionCleared", device, Cause.NETWORK_NOT_OBTAINABLE,
                               dropped=device, extra=[device])
                    self._unindex(call.call_id, device)
                self.calls.pop(call.call_id, None)

    def rejoin(self) -> int:
        """The broker declared this LIM dead (it hung): the rest of the exchange has released our
        calls, so drop them without a word and come back as a new incarnation."""
        for call in self.calls.values():
            if call.timer:
                call.timer.cancel()
        self.calls.clear()
        self.calls_of.clear()
        self.devices = {n: d for n, d in self.devices.items() if d.type != "external"}
        self.incarnation = self.store.next_incarnation()
        return self.incarnation

    # -- events ------------------------------------------------------------------------------------
    def _emit(self, call: Call, event: str, device: str | None, cause: str, *,
              extra: list[str] | None = None, **fields: str) -> None:
        """Publish an event of `call` on the topics of every device in it (plus `extra`, devices
        that just left) and on the call's topic."""
        body = {"event": event, "call_id": call.call_id, "device": device, "cause": cause,
                "calling": call.calling, "called": call.called, "connections": call.connections(),
                "lim": self.lim, "time": self.wall_clock(), **fields}
        devices = list(call.parties) + [d for d in (extra or ()) if d not in call.parties]
        if device is not None and device not in devices:
            devices.append(device)
        self.bus.publish([device_topic(d) for d in devices] + [call_topic(call.call_id)], "event", body)

    def _emit_device(self, number: str, event: str) -> None:
        body = {"event": event, "call_id": None, "device": number, "cause": None, "connections": [],
                "lim": self.lim, "time": self.wall_clock()}
        self.bus.publish([device_topic(number)], "event", body)

    # -- queries -------------------------------------------------------------------------------------
    def _on_device_get(self, env: Envelope, respond: Reply) -> None:
        number = self._target(env)
        device = self.devices.get(number)
        if device is None:
            raise Refused("unknown_number", f"{number} is not a device of LIM {self.lim}")
        respond({"ok": True, "device": number, "type": device.type, "logged_on": device.logged_on,
                 "lim": self.lim,
                 "calls": [{"call_id": c.call_id, "state": str(c.state_of(number)),
                            "connections": c.connections()} for c in self._calls(number)]})

    def _on_status(self, env: Envelope, respond: Reply) -> None:
        respond({"ok": True, "lim": self.lim, "incarnation": self.incarnation,
                 "devices": len(self.devices),
                 "calls": [{"call_id": c.call_id, "controller": c.controller,
                            "connections": [{"device": d, "state": str(p.state), "lim": p.lim}
                                            for d, p in c.parties.items()]}
                           for c in self.calls.values() if c.controller == self.lim]})
