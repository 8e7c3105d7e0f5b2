"""The LIM: its devices and its side of every call. Pure logic; the bus and clock are injected.

Inputs are bus requests (`handle`), membership changes (`on_member`/`on_members`) and timers.
Outputs go through the injected bus: requests to other LIMs, one-way call updates, replies, and
events published on the topics of every device in the call (and the call's own topic).

Who does what in a call across LIMs:
  - the LIM where a call starts controls it (lim/control.py): it changes connection states,
    publishes every ECMA-269 event of the call and sends the new connections to every other LIM
    in the call;
  - the LIM of a device decides whether the device can take a call (lim/offers.py: logged on,
    idle, do not disturb, forwarding, groups) and checks every physical action on it
    (lim/physical.py) before forwarding it to the controller;
  - features and ACD agents live with their device (lim/device_features.py, lim/agents.py);
    an ACD group's queue lives on the group's LIM.

This module holds what they share: the devices, the index of calls per device, mirrors of calls
controlled elsewhere, events, membership and queries.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from broker.directory import Directory
from broker.envelope import Envelope, call_topic, device_topic
from broker.protocol import Kind, Refusal, is_device_address, number_of_device_address
from broker.timers import TimerQueue
from lim.acd import AcdQueue
from lim.agents import AgentMixin
from lim.calls import Call, ConnState
from lim.control import ControlMixin
from lim.device_features import FeatureMixin
from lim.errors import Refused
from lim.features import Features
from lim.offers import OfferMixin
from lim.physical import DIGITS, PhysicalMixin
from lim.store import Store
from topology.model import Topology, TrunkRoute

log = logging.getLogger("lim")

Reply = Callable[[dict[str, Any]], None]


class Bus(Protocol):
    def request(self, dst: str, kind: str, body: dict, on_reply=None, timeout: float = 2.0) -> int: ...
    def send(self, dst: str, kind: str, body: dict) -> None: ...
    def reply(self, request: Envelope, body: dict) -> None: ...
    def publish(self, topics: list[str], kind: str, body: dict) -> None: ...


@dataclass
class Device:
    number: str
    type: str               # an extension type, or "external" for a party on the public network
    logged_on: bool
    trunk: TrunkRoute | None = None  # external parties: the trunk they use


class LimCore(PhysicalMixin, ControlMixin, OfferMixin, FeatureMixin, AgentMixin):
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
        self.features: dict[str, Features] = {}
        for ext in topology.extensions_on(lim):
            state = saved.get(ext.number, {})
            self.devices[ext.number] = Device(ext.number, ext.type, bool(state.get("logged_on", ext.logged_on)))
            self.features[ext.number] = Features.from_store(state.get("features", {}))
        self.hunt_groups = {g.number: g for g in topology.hunt_groups if g.lim == lim}
        self.acd_groups = {g.number: g for g in topology.acd_groups}  # every LIM: agents log on to them
        self.queues = {g.number: AcdQueue(g) for g in topology.acd_groups if g.lim == lim}
        self.hunt_next: dict[str, int] = {}       # circular hunting: where the next call starts
        self.calls: dict[str, Call] = {}          # controlled here, or mirrors of our devices' calls
        self.calls_of: dict[str, list[str]] = {}  # our device (or group) -> calls it is in, oldest first
        self.lim_states: dict[int, str] = {}
        self._call_numbers = itertools.count(1)
        self.agent_timers: dict[str, Any] = {}
        self._handler_table = self._handlers()  # built once: every bus request looks it up

    # -- requests ------------------------------------------------------------------------------
    def handle(self, env: Envelope) -> None:
        respond: Reply = lambda body: self.bus.reply(env, body)
        handler = self._handler_table.get(env.kind)
        if handler is None:
            respond({"ok": False, "error": Refusal.UNKNOWN_REQUEST, "message": f"LIM {self.lim} does not serve {env.kind!r}"})
            return
        try:
            handler(env, respond)
        except Refused as refusal:
            respond(refusal.reply())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("bad %s from %s: %r", env.kind, env.src, exc)
            respond({"ok": False, "error": Refusal.BAD_REQUEST, "message": f"malformed {env.kind}: {exc!r}"})

    def _handlers(self) -> dict[str, Callable[[Envelope, Reply], None]]:
        return {
            Kind.PHONE: self._on_phone,
            Kind.CALL_CLEAR: self._on_call_clear,
            Kind.FEATURE: self._on_feature,
            Kind.FEATURE_GET: self._on_feature_get,
            Kind.AGENT: self._on_agent,
            Kind.ACD_AGENT: self._on_acd_agent,
            Kind.DEVICE_GET: self._on_device_get,
            Kind.LIM_STATUS: self._on_status,
            Kind.CALL_GET: self._on_call_get,
            Kind.CALL_OFFER: self._on_offer,
            Kind.CALL_OP: self._on_call_op,
            Kind.CALL_HANDOVER: self._on_handover,
            Kind.CALL_UPDATE: self._on_update,
        }

    def _target(self, env: Envelope) -> str:
        if not is_device_address(env.dst):
            raise Refused(Refusal.BAD_REQUEST, f"{env.kind} must be addressed to a device")
        return number_of_device_address(env.dst)

    # -- devices -------------------------------------------------------------------------------
    def _device(self, number: str, create_external: bool = False) -> Device:
        device = self.devices.get(number)
        if device is not None:
            return device
        if number in self.hunt_groups or number in self.queues:
            raise Refused(Refusal.NOT_A_PHONE, f"{number} is a group, not a phone")
        trunk = self._trunk_for(number)
        if trunk is None:
            raise Refused(Refusal.UNKNOWN_NUMBER, f"number {number} is not on LIM {self.lim}")
        if not create_external:
            raise Refused(Refusal.IDLE, f"external party {number} is not in a call")
        if not DIGITS.match(number):
            raise Refused(Refusal.BAD_DIGITS, f"{number!r} is not a dialable number")
        if self._channels_in_use(trunk) >= trunk.channels:
            raise Refused(Refusal.TRUNKS_BUSY, f"all {trunk.channels} channels of trunk {trunk.name} are busy")
        device = Device(number, "external", True, trunk)
        self.devices[number] = device
        return device

    def _trunk_for(self, number: str) -> TrunkRoute | None:
        """The trunk an external number of this LIM leaves by: the number plan's, as the broker routes
        it (a number the plan gives to another LIM's longer prefix is not ours, though ours starts it)."""
        trunk = self.directory.trunk_for(number)
        return trunk if trunk is not None and trunk.lim == self.lim else None

    def _channels_in_use(self, trunk: TrunkRoute) -> int:
        return sum(1 for d in self.devices.values() if d.trunk is trunk)

    def _calls(self, number: str) -> list[Call]:
        return [self.calls[c] for c in self.calls_of.get(number, ())]

    def _save_features(self, number: str) -> None:
        self.store.set_device_state(number, "features", self.features[number].to_store())

    # -- the index of calls per device, and mirrors ----------------------------------------------
    def _index(self, call: Call, number: str) -> None:
        ids = self.calls_of.setdefault(number, [])
        if call.call_id not in ids:
            ids.append(call.call_id)
            self._agent_call_started(number)

    def _unindex(self, call_id: str, number: str) -> None:
        ids = self.calls_of.get(number)
        if ids and call_id in ids:
            ids.remove(call_id)
        queue = self.queues.get(number)
        if queue is not None:
            queue.remove(call_id)
        if not ids:
            self.calls_of.pop(number, None)
            device = self.devices.get(number)
            if device is not None and device.type == "external":
                del self.devices[number]  # the trunk channel is free again
            self._agent_calls_ended(number)

    def _on_update(self, env: Envelope, respond: Reply) -> None:
        self._apply_mirror(Call.from_wire(env.body), env.body.get("replaces"))

    def _apply_mirror(self, update: Call, replaces: str | None = None) -> None:
        if replaces:  # a transfer or conference merged that call into this one
            old = self.calls.get(replaces)
            if old is not None and old.controller != self.lim:
                self.calls.pop(replaces)
                for device, party in old.parties.items():
                    if party.lim == self.lim:
                        self._unindex(replaces, device)
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
        if state == "up" and previous in (None, "dead"):
            self._agents_report_to(lim)

    def _lim_failed(self, lim: int) -> None:
        """Release every connection that depended on a LIM that just failed."""
        for queue in self.queues.values():
            queue.forget_lim(lim)
        for call in list(self.calls.values()):
            if call.cleared:
                continue
            if call.controller == self.lim:
                for device in [d for d, p in call.parties.items() if p.lim == lim]:
                    if not call.cleared and device in call.parties:
                        self._release(call, device, "networkNotObtainable")
            elif call.controller == lim:
                # The controller is gone: we report the end of the call for our own devices.
                ours = [d for d, p in call.parties.items() if p.lim == self.lim]
                for device in ours:
                    call.parties.pop(device)
                    self._emit(call, "ConnectionCleared", device, "networkNotObtainable",
                               dropped=device, extra=[device])
                self.calls.pop(call.call_id, None)
                for device in ours:
                    self._unindex(call.call_id, device)

    def rejoin(self) -> int:
        """The broker declared this LIM dead (it hung): the rest of the exchange has released our
        calls, so drop them without a word and come back as a new incarnation."""
        for call in self.calls.values():
            call.cancel_timers()
        self.calls.clear()
        self.calls_of.clear()
        for queue in self.queues.values():
            queue.queue.clear()
            queue.agents.clear()
        self.devices = {n: d for n, d in self.devices.items() if d.type != "external"}
        self.incarnation = self.store.next_incarnation()
        return self.incarnation

    # -- events ------------------------------------------------------------------------------------
    def _emit(self, call: Call, event: str, device: str | None, cause: str | None, *,
              extra: list[str] | tuple = (), **fields: Any) -> None:
        """Publish an event of `call` on the topics of every device in it (plus `extra`: devices
        that just left, or a group the call came through) and on the call's topic."""
        body = {"event": event, "call_id": call.call_id, "device": device, "cause": cause,
                "calling": call.calling, "called": call.called, "connections": call.connections(),
                "lim": self.lim, "time": self.wall_clock(), **fields}
        devices = list(call.parties) + [d for d in extra if d not in call.parties]
        if device is not None and device not in devices:
            devices.append(device)
        self.bus.publish([device_topic(d) for d in devices] + [call_topic(call.call_id)], Kind.EVENT, body)

    def _emit_device(self, number: str, event: str, also: list[str] | tuple = (), **fields: Any) -> None:
        body = {"event": event, "call_id": None, "device": number, "cause": None, "connections": [],
                "lim": self.lim, "time": self.wall_clock(), **fields}
        self.bus.publish([device_topic(n) for n in (number, *also)], Kind.EVENT, body)

    # -- queries -------------------------------------------------------------------------------------
    def _on_device_get(self, env: Envelope, respond: Reply) -> None:
        number = self._target(env)
        queue = self.queues.get(number)
        if queue is not None:
            respond({"ok": True, "device": number, "type": "acd", "lim": self.lim,
                     "queue": list(queue.queue),
                     "agents": [{"device": a.device, "agent_id": a.agent_id, "state": a.state, "lim": a.lim}
                                for a in queue.agents.values()]})
            return
        if number in self.hunt_groups:
            group = self.hunt_groups[number]
            respond({"ok": True, "device": number, "type": "hunt", "mode": group.mode, "lim": self.lim,
                     "members": list(group.all_members())})
            return
        device = self.devices.get(number)
        if device is None:
            raise Refused(Refusal.UNKNOWN_NUMBER, f"{number} is not a device of LIM {self.lim}")
        respond({"ok": True, "device": number, "type": device.type, "logged_on": device.logged_on,
                 "lim": self.lim,
                 "features": self.features[number].to_store() if number in self.features else {},
                 "calls": [{"call_id": c.call_id, "state": str(c.state_of(number)),
                            "connections": c.connections()} for c in self._calls(number)]})

    def _on_call_get(self, env: Envelope, respond: Reply) -> None:
        call = self.calls.get(env.body["call_id"])
        if call is None or call.controller != self.lim:
            raise Refused(Refusal.NO_SUCH_CALL, f"call {env.body['call_id']} is not in progress")
        respond({"ok": True, **call.to_wire()})

    def _on_status(self, env: Envelope, respond: Reply) -> None:
        respond({"ok": True, "lim": self.lim, "incarnation": self.incarnation,
                 "devices": len(self.devices),
                 "queues": {g: list(q.queue) for g, q in self.queues.items()},
                 "logged_off": [n for n, d in self.devices.items() if not d.logged_on],  # the live view
                 "calls": [{"call_id": c.call_id, "controller": c.controller,
                            "connections": [{"device": d, "state": str(p.state), "lim": p.lim}
                                            for d, p in c.parties.items()]}
                           for c in self.calls.values() if c.controller == self.lim]})


__all__ = ["LimCore", "Refused", "ConnState"]
