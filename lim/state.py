"""What every part of a LIM shares: one `LimState` per LIM (see lim/core.py for the parts).

The state holds the LIM's data and the injected bus, clock and store, plus a few helpers that
only read the data, check a request or publish an event. None of its helpers calls a part; the
parts (lim/control.py, lim/offers.py, lim/physical.py, lim/index.py, lim/agents.py,
lim/device_features.py, lim/queries.py) all hold the same `LimState` and call each other only
through the references the facade gives them.
"""
from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from broker.directory import Directory
from broker.envelope import Envelope, call_topic, device_topic
from broker.protocol import Kind, Refusal, number_of_device_address
from broker.timers import TimerQueue
from lim.acd import AcdQueue
from lim.calls import Call
from lim.errors import Refused
from lim.features import Features
from lim.pstn import NetworkScript
from lim.route_table import RouteTable
from lim.store import Store
from topology.model import Topology, TrunkRoute

DIGITS = re.compile(r"^[0-9*#]{1,32}$")

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


# Who changes the state's own attributes directly ("core": the facade, lim/core.py). Changes made
# through an object taken out of the state (a Call, a device's Features, an AcdQueue) follow the
# LimState docstring. tests/unit/test_lim_parts.py checks the code against this table.
WRITES: dict[str, tuple[str, ...]] = {
    "devices": ("phone", "index", "core"),
    "calls": ("controller", "offers", "index", "core"),
    "calls_of": ("index", "core"),
    "hunt_next": ("offers",),
    "agent_timers": ("agents",),
    "route_table": ("routes",),
    "lim_states": ("core",),
    "lim_incarnations": ("core",),
    "incarnation": ("core",),
}


class LimState:
    """The data of one LIM, shared by its parts, and who may change what:

      devices      the extensions, built here from the topology and the store, and the external
                   parties in calls: `device()` adds an external party (for phone actions and
                   offers); the index drops it when its last call ends; phone actions drop it
                   when a refused action leaves it in no call; the facade drops them all on
                   rejoin. Phone actions change an extension's `logged_on`.
      calls        the calls controlled here: the controller only (the facade drops them all on
                   rejoin). Mirrors of calls controlled elsewhere: the index (`call.update`),
                   offers (the first mirror of a call offered here) and the controller (a
                   hand-over or merge, the failure of the controlling LIM).
      calls_of     the index only (the facade clears it on rejoin).
      features     device features: device_features (do not disturb, forwarding, message
                   waiting); agents (the agent's group, ID and state).
      queues       the ACD queues of this LIM's groups: offers enqueue a call; agents update
                   agents and take calls out to hand them over; the index takes a call out when
                   the group leaves it; the controller forgets the agents of a failed LIM; the
                   facade empties them on rejoin.
      route_table  routes (registrations, routeing dialogues; the facade has it drop the
                   dialogues on rejoin).
      hunt_next    offers (circular hunting).
      agent_timers agents (wrap-up).
      pstn         the public network's script: network (`network` requests); offers draw from it.
      call_numbers the controller (new call IDs).
      lim_states, incarnation   the facade (membership, rejoin).
    Configuration (topology, lim, directory, groups, route points, no_answer_s) and the injected bus,
    timers, store and wall clock are never replaced. The helpers below read the state, check a
    request or publish an event; none of them calls a part. `WRITES` lists the direct writes.
    """

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
        self.route_points = {r.number: r for r in topology.route_points if r.lim == lim}
        self.all_route_points = frozenset(r.number for r in topology.route_points)
        self.route_table = RouteTable()           # applications registered here, routeing dialogues
        self.hunt_next: dict[str, int] = {}       # circular hunting: where the next call starts
        self.calls: dict[str, Call] = {}          # controlled here, or mirrors of our devices' calls
        self.calls_of: dict[str, list[str]] = {}  # our device (or group) -> calls it is in, oldest first
        self.lim_states: dict[int, str] = {}
        self.lim_incarnations: dict[int, int] = {}  # the newest incarnation heard of each other LIM
        self.call_numbers = itertools.count(1)
        self.agent_timers: dict[str, Any] = {}
        self.pstn = NetworkScript()               # the public network behind our trunks, as scripted

    # -- requests ------------------------------------------------------------------------------
    def target(self, env: Envelope) -> str:
        number = number_of_device_address(env.dst)
        if number is None:
            raise Refused(Refusal.BAD_REQUEST, f"{env.kind} must be addressed to a device")
        return number

    def check_number(self, digits: str) -> None:
        if not DIGITS.match(digits):
            raise Refused(Refusal.BAD_DIGITS, f"{digits!r} is not a number to dial")
        if self.directory.owner(digits) is None:
            raise Refused(Refusal.UNKNOWN_NUMBER, f"number {digits} is not allocated")

    # -- devices -------------------------------------------------------------------------------
    def device(self, number: str, create_external: bool = False) -> Device:
        device = self.devices.get(number)
        if device is not None:
            return device
        if number in self.hunt_groups or number in self.queues or number in self.route_points:
            raise Refused(Refusal.NOT_A_PHONE, f"{number} is a group, not a phone")
        trunk = self.trunk_for(number)
        if trunk is None:
            raise Refused(Refusal.UNKNOWN_NUMBER, f"number {number} is not on LIM {self.lim}")
        if not create_external:
            raise Refused(Refusal.IDLE, f"external party {number} is not in a call")
        if not DIGITS.match(number):
            raise Refused(Refusal.BAD_DIGITS, f"{number!r} is not a dialable number")
        if self.channels_in_use(trunk) >= trunk.channels:
            raise Refused(Refusal.TRUNKS_BUSY, f"all {trunk.channels} channels of trunk {trunk.name} are busy")
        device = Device(number, "external", True, trunk)
        self.devices[number] = device
        return device

    def trunk_for(self, number: str) -> TrunkRoute | None:
        """The trunk an external number of this LIM leaves by: the number plan's, as the broker routes
        it (a number the plan gives to another LIM's longer prefix is not ours, though ours starts it)."""
        trunk = self.directory.trunk_for(number)
        return trunk if trunk is not None and trunk.lim == self.lim else None

    def topology_trunks_here(self) -> bool:
        return any(t.lim == self.lim for t in self.topology.trunks)

    def channels_in_use(self, trunk: TrunkRoute) -> int:
        return sum(1 for d in self.devices.values() if d.trunk is trunk)

    def calls_for(self, number: str) -> list[Call]:
        """The calls `number` is in, oldest first."""
        return [self.calls[c] for c in self.calls_of.get(number, ())]

    def save_features(self, number: str) -> None:
        self.store.set_device_state(number, "features", self.features[number].to_store())

    # -- events ------------------------------------------------------------------------------------
    def emit(self, call: Call, event: str, device: str | None, cause: str | None, *,
             extra: list[str] | tuple = (), **fields: Any) -> None:
        """Publish an event of `call` on the topics of every device in it (plus `extra`: devices
        that just left, or a group the call came through) and on the call's topic."""
        body = {"event": event, "call_id": call.call_id, "device": device, "cause": cause,
                "calling": call.calling, "called": call.called, "connections": call.connections(),
                "lim": self.lim, "time": self.wall_clock(), **fields}
        if call.calling and self.directory.is_external(call.calling):
            body["calling_public"] = True  # the CSTA servers type the caller's number (implicitPublic)
        if call.data:  # a call without data costs one test here and nothing on the way to clients
            body["data"] = dict(call.data)
        # Observers (a predictive call's originator) follow the call's events; CallCleared, like
        # every call's, goes to the call's topic only.
        observers = call.observers if device is not None else ()
        devices = list(dict.fromkeys([*call.parties, *extra, *observers]))
        if device is not None and device not in devices:
            devices.append(device)
        self.bus.publish([device_topic(d) for d in devices] + [call_topic(call.call_id)], Kind.EVENT, body)

    def emit_device(self, number: str, event: str, also: list[str] | tuple = (), **fields: Any) -> None:
        body = {"event": event, "call_id": None, "device": number, "cause": None, "connections": [],
                "lim": self.lim, "time": self.wall_clock(), **fields}
        self.bus.publish([device_topic(n) for n in (number, *also)], Kind.EVENT, body)
