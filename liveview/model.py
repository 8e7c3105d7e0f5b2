"""What the live view shows, folded from the exchange's bus traffic. Pure: no sockets, no clock.

Inputs are the events every LIM publishes (`apply_event`), the broker's membership changes
(`on_member`, `set_members`) and the answers to the periodic questions the server asks
(`apply_lim_status`, `apply_group`, `apply_front`). Outputs are `snapshot()`, the whole view as
JSON-ready data, and `take_patch()`, the parts that changed since the last patch.

Events keep the view live; the periodic answers repair what events cannot tell (calls lost with a
LIM that died, a terminal logged off before the view started, an event lost while the broker
restarted). An answer is older than any event that arrived after its question was sent, so such
an event wins: every call remembers the event count when it last changed (`marker` below), and a
cleared call leaves a tombstone so that a late answer cannot bring it back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.directory import Directory
from topology.model import Topology

# A device in several calls shows the state that matters most to a person at the phone.
STATE_ORDER = ("alerting", "initiated", "connected", "hold", "queued", "fail")
AGENT_STATES = {"AgentReady": "agentReady", "AgentNotReady": "agentNotReady", "AgentBusy": "agentBusy",
                "AgentWorkingAfterCall": "agentWorkingAfterCall"}
MAX_TOMBSTONES = 10_000


@dataclass
class Party:
    device: str
    state: str
    lim: int | None


@dataclass
class CallRow:
    call_id: str
    controller: int | None
    calling: str | None = None
    called: str | None = None
    since: float | None = None        # when the view first saw it (the event's time)
    last_event: str | None = None
    parties: list[Party] = field(default_factory=list)
    changed: int = 0                  # event count at the last change (see the module's docstring)

    def to_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "controller": self.controller, "calling": self.calling,
                "called": self.called, "since": self.since, "last_event": self.last_event,
                "parties": [{"device": p.device, "state": p.state, "lim": p.lim} for p in self.parties]}


@dataclass
class DeviceRow:
    number: str
    lim: int
    type: str
    logged_on: bool


@dataclass
class AcdRow:
    number: str
    lim: int
    positions: tuple[str, ...]
    queue: list[str] = field(default_factory=list)              # call ids, first waiting first
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> agent_id, state
    changed: int = 0


class ViewModel:
    def __init__(self, topology: Topology):
        self.topology = topology
        self.directory = Directory(topology)
        self.events = 0  # events applied so far: the markers of the module's docstring
        self.lims: dict[int, dict[str, Any]] = {
            lim.number: {"number": lim.number, "address": lim.address, "state": "unknown",
                         "incarnation": None, "csta": None} for lim in topology.lims}
        self.devices: dict[str, DeviceRow] = {
            e.number: DeviceRow(e.number, e.lim, e.type, e.logged_on) for e in topology.extensions}
        self.acd: dict[str, AcdRow] = {g.number: AcdRow(g.number, g.lim, g.agents) for g in topology.acd_groups}
        self.calls: dict[str, CallRow] = {}
        self.calls_of: dict[str, set[str]] = {}  # device -> ids of the calls it is in
        self.tombstones: dict[str, int] = {}      # cleared call id -> event count when cleared
        self.broker_reachable: bool | None = None  # None: not asked yet
        self.logged_on_changed: dict[str, int] = {}  # device -> event count of its last (Out|BackIn)Service
        self._dirty: set[str] = set()
        self._dirty_devices: set[str] = set()

    # -- events ------------------------------------------------------------------------------------
    def apply_event(self, body: dict[str, Any]) -> None:
        """One event as a LIM published it (lim/core.py `_emit`, `_emit_device`)."""
        if not isinstance(body, dict) or not isinstance(body.get("event"), str):
            return
        self.events += 1
        name = body["event"]
        call_id = body.get("call_id")
        if isinstance(call_id, str) and call_id:
            self._call_event(name, call_id, body)
        else:
            self._device_event(name, body)

    def _call_event(self, name: str, call_id: str, body: dict[str, Any]) -> None:
        for old in (body.get("secondary_old_call"),):  # a transfer or conference merged that call in
            if isinstance(old, str) and old != call_id:
                self._remove_call(old)
        if call_id in self.tombstones:
            return  # a late report of a call already gone
        connections = body.get("connections") or []
        if name == "CallCleared" or not connections:
            self._remove_call(call_id)
            return
        call = self.calls.get(call_id)
        if call is None:
            call = CallRow(call_id, None, since=_number(body.get("time")))
        parties = []
        for item in connections:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                device, state = str(item[0]), str(item[1])
                parties.append(Party(device, state, self.lim_of(device)))
        if isinstance(body.get("lim"), int) and body["lim"] in self.lims:
            call.controller = body["lim"]
        call.calling = _text(body.get("calling")) or call.calling
        call.called = _text(body.get("called")) or call.called
        call.last_event = name
        self._set_parties(call, parties)
        if name == "Queued" and isinstance(body.get("queued"), str):
            row = self.acd.get(body["queued"])
            if row is not None and call_id not in row.queue:
                row.queue.append(call_id)
                row.changed = self.events
                self._dirty.add("groups")

    def _device_event(self, name: str, body: dict[str, Any]) -> None:
        number = body.get("device")
        device = self.devices.get(number) if isinstance(number, str) else None
        if device is None:
            return
        if name in ("OutOfService", "BackInService"):
            device.logged_on = name == "BackInService"
            self.logged_on_changed[number] = self.events
            self._dirty_devices.add(number)
            return
        group = self.acd.get(body.get("group")) if isinstance(body.get("group"), str) else None
        if group is None:
            return
        if name == "AgentLoggedOff":
            group.agents.pop(number, None)
        elif name == "AgentLoggedOn":
            group.agents[number] = {"agent_id": _text(body.get("agent_id")), "state": None}  # its state follows
        elif name in AGENT_STATES:
            agent = group.agents.setdefault(number, {"agent_id": _text(body.get("agent_id"))})
            agent["state"] = AGENT_STATES[name]
        else:
            return
        group.changed = self.events
        self._dirty.add("groups")
        self._dirty_devices.add(number)

    # -- calls -------------------------------------------------------------------------------------
    def lim_of(self, device: str) -> int | None:
        """The LIM that holds a number: an extension's or group's, or the trunk's for an external one."""
        return self.directory.owner(device)

    def _set_parties(self, call: CallRow, parties: list[Party]) -> None:
        before = {p.device for p in call.parties}
        call.parties = parties
        call.changed = self.events
        self.calls[call.call_id] = call
        after = {p.device for p in parties}
        for device in before - after:
            self._unindex(call.call_id, device)
        for device in after:
            self.calls_of.setdefault(device, set()).add(call.call_id)
        self._dirty_devices |= before | after
        self._dirty.add("calls")
        self._sync_queues(call)

    def _remove_call(self, call_id: str) -> None:
        self.tombstones.pop(call_id, None)  # to the end: the tombstones stay in the order of their counts
        self.tombstones[call_id] = self.events
        if len(self.tombstones) > MAX_TOMBSTONES:  # the oldest first: dicts keep insertion order
            for old in list(self.tombstones)[: MAX_TOMBSTONES // 10]:
                del self.tombstones[old]
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        for party in call.parties:
            self._unindex(call_id, party.device)
            self._dirty_devices.add(party.device)
        call.parties = []
        self._sync_queues(call)
        self._dirty.add("calls")

    def forget_tombstones(self, before: int) -> None:
        """Forget the calls cleared when fewer than `before` events had been applied: the server
        calls this with the count of a while ago, when no late report of them can still come."""
        tombstones = self.tombstones
        while tombstones:
            oldest = next(iter(tombstones))
            if tombstones[oldest] >= before:
                break
            del tombstones[oldest]

    def _unindex(self, call_id: str, device: str) -> None:
        ids = self.calls_of.get(device)
        if ids is not None:
            ids.discard(call_id)
            if not ids:
                del self.calls_of[device]

    def _sync_queues(self, call: CallRow) -> None:
        """A call leaves a group's queue when the group's party is no longer queued."""
        queued = {p.device for p in call.parties if p.state == "queued"}
        for row in self.acd.values():
            if call.call_id in row.queue and row.number not in queued:
                row.queue.remove(call.call_id)
                self._dirty.add("groups")

    # -- membership --------------------------------------------------------------------------------
    def set_broker_reachable(self, reachable: bool) -> None:
        if reachable != self.broker_reachable:
            self.broker_reachable = reachable
            self._dirty.add("broker")

    def set_members(self, members: list[dict[str, Any]]) -> None:
        """The broker's whole list: a LIM it does not list has never registered."""
        seen = set()
        members = [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []
        for member in members:
            if member.get("role") == "lim" and member.get("lim") in self.lims:
                seen.add(member["lim"])
            self.on_member(member)
        for number, lim in self.lims.items():
            if number not in seen and lim["state"] != "down":
                lim.update(state="down", incarnation=None)
                self._dirty.add("lims")

    def on_member(self, change: dict[str, Any]) -> None:
        number = change.get("lim")
        if change.get("role") != "lim" or number not in self.lims:
            return
        lim = self.lims[number]
        state, previous = change.get("state"), lim["state"]
        if (state, change.get("incarnation")) != (previous, lim["incarnation"]):
            lim.update(state=state, incarnation=change.get("incarnation"))
            self._dirty.add("lims")
            self._dirty_devices |= {n for n, d in self.devices.items() if d.lim == number}
        if state == "dead" and previous != "dead":
            # The calls it controlled are lost with it (docs/architecture.md, "When a LIM fails").
            for call_id in [c.call_id for c in self.calls.values() if c.controller == number]:
                self._remove_call(call_id)

    # -- answers to the periodic questions ---------------------------------------------------------
    def apply_lim_status(self, lim: int, reply: dict[str, Any], marker: int) -> None:
        """A LIM's `lim.status`, asked when `events` was `marker`: the calls it controls, its ACD
        queues, its logged-off terminals."""
        calls = reply.get("calls")
        if lim not in self.lims or not isinstance(calls, list):
            return
        reported = set()
        for item in calls:
            call_id = item.get("call_id") if isinstance(item, dict) else None
            if not isinstance(call_id, str) or call_id in self.tombstones:
                continue
            reported.add(call_id)
            call = self.calls.get(call_id)
            if call is not None and call.changed > marker:
                continue  # an event newer than this answer
            parties = [Party(str(c["device"]), str(c["state"]), c.get("lim"))
                       for c in item.get("connections") or [] if isinstance(c, dict) and "device" in c]
            if not parties or (call is not None and call.controller == lim and call.parties == parties):
                continue  # the answer says what the view already shows
            call = call or CallRow(call_id, lim)
            call.controller = lim
            self._set_parties(call, parties)
        for call in [c for c in self.calls.values() if c.controller == lim]:
            if call.call_id not in reported and call.changed <= marker:
                self._remove_call(call.call_id)
        queues = reply.get("queues")
        for group, queue in (queues.items() if isinstance(queues, dict) else ()):
            row = self.acd.get(group)
            if row is not None and row.changed <= marker and isinstance(queue, list) and row.queue != queue:
                row.queue = [str(c) for c in queue]
                self._dirty.add("groups")
        logged_off = reply.get("logged_off")
        if isinstance(logged_off, list):  # an older LIM does not report it
            off = set(map(str, logged_off))
            for device in self.devices.values():
                if device.lim == lim and self.logged_on_changed.get(device.number, -1) <= marker:
                    if device.logged_on == (device.number in off):
                        device.logged_on = device.number not in off
                        self._dirty_devices.add(device.number)

    def apply_group(self, group: str, reply: dict[str, Any], marker: int) -> None:
        """An ACD group's `device.get`: its queue and its agents."""
        row = self.acd.get(group)
        if row is None or row.changed > marker:
            return
        agents, queue = reply.get("agents"), reply.get("queue")
        if not isinstance(agents, list) or not isinstance(queue, list):
            return
        agents = {str(a["device"]): {"agent_id": a.get("agent_id"), "state": a.get("state")}
                  for a in agents if isinstance(a, dict) and "device" in a}
        queue = [str(c) for c in queue]
        if agents != row.agents or queue != row.queue:
            self._dirty_devices |= set(agents) ^ set(row.agents)
            row.agents, row.queue = agents, queue
            self._dirty.add("groups")

    def apply_front(self, lim: int, status: dict[str, Any] | None) -> None:
        """A CSTA server's `csta.status` (None: no server running on that LIM)."""
        if lim not in self.lims:
            return
        csta = None if status is None else {
            "port": status.get("port"), "server_type": status.get("server_type"),
            "sessions": status.get("sessions"), "session_ids": status.get("session_ids") or [],
            "monitored_devices": status.get("monitored_devices") or [],
            "faults": status.get("faults") or [], "recording": status.get("recording"),
            "error": status.get("error")}
        if self.lims[lim]["csta"] != csta:
            self.lims[lim]["csta"] = csta
            self._dirty.add("lims")

    # -- output ------------------------------------------------------------------------------------
    def device_json(self, number: str) -> dict[str, Any]:
        device = self.devices[number]
        states = {}
        for call_id in sorted(self.calls_of.get(number, ())):
            for party in self.calls[call_id].parties:
                if party.device == number:
                    states[call_id] = party.state
        shown = next((s for s in STATE_ORDER if s in states.values()), None)
        lim_state = self.lims[device.lim]["state"]
        if shown is None:
            shown = "idle" if device.logged_on else "outOfService"
        agent = next(({"group": g.number, **g.agents[number]} for g in self.acd.values() if number in g.agents), None)
        return {"number": number, "lim": device.lim, "type": device.type, "logged_on": device.logged_on,
                "state": shown, "calls": states, "lim_up": lim_state == "up", "agent": agent}

    def _section(self, name: str) -> Any:
        if name == "broker":
            return {"reachable": self.broker_reachable}
        if name == "lims":
            return [dict(lim) for lim in self.lims.values()]
        if name == "calls":
            return [c.to_json() for c in sorted(self.calls.values(), key=lambda c: (c.since or 0, c.call_id))]
        return [{"number": g.number, "lim": g.lim, "positions": list(g.positions), "queue": list(g.queue),
                 "agents": [{"device": d, **a} for d, a in sorted(g.agents.items())]} for g in self.acd.values()]

    def snapshot(self) -> dict[str, Any]:
        return {"exchange": self.topology.name, "broker": self._section("broker"),
                "lims": self._section("lims"), "calls": self._section("calls"), "groups": self._section("groups"),
                "devices": [self.device_json(n) for n in self.devices]}

    def take_patch(self) -> dict[str, Any] | None:
        """What changed since the last patch (sections whole, devices one by one), or None."""
        if not self._dirty and not self._dirty_devices:
            return None
        patch: dict[str, Any] = {name: self._section(name) for name in sorted(self._dirty)}
        devices = [self.device_json(n) for n in sorted(self._dirty_devices) if n in self.devices]
        if devices:
            patch["devices"] = devices
        self._dirty.clear()
        self._dirty_devices.clear()
        return patch if len(patch) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
