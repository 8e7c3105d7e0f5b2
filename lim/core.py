"""The LIM: its devices and its side of every call. Pure logic; the bus and clock are injected.

Inputs are bus requests (`handle`), membership changes (`on_member`/`on_members`) and timers.
Outputs go through the injected bus: requests to other LIMs, one-way call updates, replies, and
events published on the topics of every device in the call (and the call's own topic).

Who does what in a call across LIMs:
  - the LIM where a call starts controls it: it changes connection states, publishes every
    ECMA-269 event of the call and sends the new connections to every other LIM in the call;
  - the LIM of a device decides whether the device can take a call (logged on, idle, do not
    disturb, forwarding, groups) and checks every physical action on it before forwarding it to
    the controller;
  - features and ACD agents live with their device; an ACD group's queue lives on the group's LIM.

`LimCore` is a facade over parts that share one `LimState` (lim/state.py: the devices, calls,
index, features, queues, bus, timers, store; its docstring says which part may change what).
Each part holds the state and references to the parts it may call, nothing else, so every call
from one part to another reads `self.<part>.<method>(...)`:

  part             module                  answers                            may call
  controller       lim/control.py          call.op, call.handover             index, offers, agents
  offers           lim/offers.py           call.offer                         index, agents, controller, routes
  phone            lim/physical.py         phone, call.clear                  controller
  index            lim/index.py            call.update                        agents, routes
  agents           lim/agents.py           agent, acd.agent                   controller
  routes           lim/routes.py           route                              controller
  device_features  lim/device_features.py  feature, feature.get               (none)
  queries          lim/queries.py          device.get, call.get, lim.status   (none)
  predictive       lim/predictive.py       call.predictive                    controller
  network          lim/network.py          network                            (none)

  - controller: the calls begun on this LIM (connection states, events, updates to other LIMs,
    hunting, transfer and conference joins, the failure of another LIM); `request_op` is the
    one way to ask for an operation on a call, run here or sent to its controller as `call.op`;
  - offers: may a number of this LIM take a call: ring, queue, forward, hunt or refuse;
  - phone: physical actions at a phone, checked against this LIM's view, then `request_op`;
  - index: `calls_of` (which calls each device is in) and the mirrors of calls controlled
    elsewhere; a device's first call starting and last call ending is news for its agent;
  - agents: ACD agents of this LIM's extensions, and the queues of its ACD groups;
  - routes: the route points of this LIM: applications registered (from any LIM's CSTA server)
    and routeing dialogues; a call offered to a route point waits there while one is asked;
  - device_features: do not disturb, forwarding, message waiting;
  - queries: read-only answers.

The cycles among controller, offers, agents, routes and index are one LIM talking to itself: where the
other side of a request is this LIM, the part calls the other part at once instead of sending a
message (an offer to our own number, a call operation on a call we control, an agent report to
our own group, a route point handing on a call we control), or a timer set by one part fires in another. No other cycle exists, and
`PARTS` below is the whole graph; tests/unit/test_lim_parts.py checks the code against it.

The facade builds the parts, dispatches each bus request by kind to one part, keeps the LIM's
membership view and drops everything on rejoin.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from broker.envelope import RELEASED_TOPIC, Envelope
from broker.protocol import Kind, Refusal, lim_number_of
from broker.timers import TimerQueue
from lim.agents import Agents
from lim.calls import Call, ConnState
from lim.control import Controller
from lim.device_features import DeviceFeatures
from lim.errors import Refused
from lim.features import Features
from lim.index import CallIndex
from lim.offers import Offers
from lim.network import Network
from lim.physical import PhoneActions
from lim.predictive import Predictive
from lim.queries import Queries
from lim.routes import Routes
from lim.state import Bus, Device, LimState, Reply
from lim.store import Store
from topology.model import Topology

log = logging.getLogger("lim")

# part -> the parts it may call (the keyword arguments of its `connect`).
PARTS: dict[str, tuple[str, ...]] = {
    "controller": ("index", "offers", "agents"),
    "offers": ("index", "agents", "controller", "routes"),
    "phone": ("controller",),
    "index": ("agents", "routes"),
    "agents": ("controller",),
    "routes": ("controller",),
    "device_features": (),
    "queries": (),
    "predictive": ("controller",),
    "network": (),
}


class LimCore:
    def __init__(self, topology: Topology, lim: int, bus: Bus, timers: TimerQueue, store: Store,
                 incarnation: int, wall_clock: Callable[[], float] = time.time):
        self.state = LimState(topology, lim, bus, timers, store, incarnation, wall_clock)
        self.controller = Controller(self.state)
        self.offers = Offers(self.state)
        self.phone = PhoneActions(self.state)
        self.index = CallIndex(self.state)
        self.agents = Agents(self.state)
        self.device_features = DeviceFeatures(self.state)
        self.queries = Queries(self.state)
        self.predictive = Predictive(self.state)
        self.network = Network(self.state)
        self.routes = Routes(self.state)
        self.controller.connect(index=self.index, offers=self.offers, agents=self.agents)
        self.offers.connect(index=self.index, agents=self.agents, controller=self.controller, routes=self.routes)
        self.phone.connect(controller=self.controller)
        self.index.connect(agents=self.agents, routes=self.routes)
        self.agents.connect(controller=self.controller)
        self.routes.connect(controller=self.controller)
        self.device_features.connect()
        self.queries.connect()
        self.predictive.connect(controller=self.controller)
        self.network.connect()
        self._handler_table = self._handlers()  # built once: every bus request looks it up
        self._restored: int | None = None  # the incarnation whose agent states were made consistent

    # -- what the process and the tests read --------------------------------------------------------
    @property
    def lim(self) -> int:
        return self.state.lim

    @property
    def incarnation(self) -> int:
        return self.state.incarnation

    @property
    def devices(self) -> dict[str, Device]:
        return self.state.devices

    @property
    def features(self) -> dict[str, Features]:
        return self.state.features

    @property
    def calls(self) -> dict[str, Call]:
        return self.state.calls

    @property
    def calls_of(self) -> dict[str, list[str]]:
        return self.state.calls_of

    @property
    def queues(self) -> dict[str, Any]:
        return self.state.queues

    @property
    def lim_states(self) -> dict[int, str]:
        return self.state.lim_states

    # -- requests ------------------------------------------------------------------------------
    def handle(self, env: Envelope) -> None:
        respond: Reply = lambda body: self.state.bus.reply(env, body)
        handler = self._handler_table.get(env.kind)
        if handler is None:
            respond({"ok": False, "error": Refusal.UNKNOWN_REQUEST,
                     "message": f"LIM {self.state.lim} does not serve {env.kind!r}"})
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
            Kind.PHONE: self.phone.on_phone,
            Kind.CALL_CLEAR: self.phone.on_call_clear,
            Kind.CALL_DATA: self.phone.on_call_data,
            Kind.FEATURE: self.device_features.on_feature,
            Kind.FEATURE_GET: self.device_features.on_feature_get,
            Kind.AGENT: self.agents.on_agent,
            Kind.ACD_AGENT: self.agents.on_acd_agent,
            Kind.DEVICE_GET: self.queries.on_device_get,
            Kind.LIM_STATUS: self.queries.on_status,
            Kind.CALL_GET: self.queries.on_call_get,
            Kind.CALL_OFFER: self.offers.on_offer,
            Kind.CALL_OP: self.controller.on_call_op,
            Kind.CALL_HANDOVER: self.controller.on_handover,
            Kind.CALL_UPDATE: self.index.on_update,
            Kind.CALL_PREDICTIVE: self.predictive.on_predictive,
            Kind.NETWORK: self.network.on_network,
            Kind.ROUTE: self.routes.on_route,
        }

    # -- membership --------------------------------------------------------------------------------
    def on_members(self, members: list[dict]) -> None:
        for member in members:
            self.on_member(member)

    def on_member(self, change: dict) -> None:
        if change.get("role") != "lim" or change.get("lim") is None:
            return
        lim, state = change["lim"], change["state"]
        if lim != self.state.lim and isinstance(change.get("incarnation"), int):
            if change["incarnation"] < self.state.lim_incarnations.get(lim, -1):
                return  # about an incarnation we already know is gone (see on_peer)
            self.state.lim_incarnations[lim] = change["incarnation"]
        previous = self.state.lim_states.get(lim)
        self.state.lim_states[lim] = state
        if state == "dead" and previous != "dead" and lim != self.state.lim:
            self.controller.lim_failed(lim)
            # After the release's events on the same bus path: the CSTA servers know they are out.
            self.state.bus.publish([RELEASED_TOPIC], Kind.EVENT, {"event": "LimReleased", "lim": lim,
                                                                  "by": self.state.lim})
        first = lim == self.state.lim and state == "up" and self._restored != self.state.incarnation
        if first:
            # Our first word from the broker as this incarnation (a start, a rejoin): the bus
            # carries our events now, and no call of an earlier incarnation is left.
            self._restored = self.state.incarnation
            self.agents.restore()
        if state == "up" and (previous in (None, "dead") or first):
            self.agents.report_to(lim)

    def on_peer(self, node: str, incarnation: int) -> None:
        """A message from another LIM (a request or a reply), before it is served. One from a newer
        incarnation than we know proves the old one dead, and it may overtake the broker's word
        of that (membership comes on another socket): release what the old one held now, before
        serving the new one, so the late word cannot release the new incarnation's calls or agents."""
        lim = lim_number_of(node)
        if lim is None or lim == self.state.lim:
            return
        known = self.state.lim_incarnations.get(lim)
        if known is None:
            self.state.lim_incarnations[lim] = incarnation  # membership tells us its state
        elif incarnation > known:
            if self.state.lim_states.get(lim) != "dead":
                self.on_member({"role": "lim", "lim": lim, "state": "dead", "incarnation": known, "node": node})
            self.on_member({"role": "lim", "lim": lim, "state": "up", "incarnation": incarnation, "node": node})

    def rejoin(self) -> int:
        """The broker declared this LIM dead (it hung): the rest of the exchange has released our
        calls, so drop them without a word and come back as a new incarnation."""
        for call in self.state.calls.values():
            call.cancel_timers()
        self.state.calls.clear()
        self.state.calls_of.clear()
        for queue in self.state.queues.values():
            queue.queue.clear()
            queue.entered.clear()
            queue.agents.clear()
        self.routes.drop()
        self.state.devices = {n: d for n, d in self.state.devices.items() if d.type != "external"}
        self.state.incarnation = self.state.store.next_incarnation()
        return self.state.incarnation


__all__ = ["LimCore", "Refused", "ConnState"]
