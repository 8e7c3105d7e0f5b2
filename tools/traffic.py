"""Traffic profiles: who calls whom, when, and how the people at the phones behave. Pure: no bus,
no sockets; the clock is a TimerQueue and the phones are reached through an injected `act`.

Two profiles:
  - callcentre: external callers come in over a trunk to an ACD group; the agent whose phone rings
    answers after a ring time; caller and agent talk; one of them hangs up; the agent's wrap-up is
    drawn too (it ends the exchange's wrap-up timer early with `agent ready`). A share of callers
    is impatient and hangs up before anyone answers (abandoned).
  - office: an extension calls another (a share on another LIM); the callee answers after a ring
    time; a share of calls is transferred (the callee consults a third extension, which answers,
    and transfers the caller to it).

`plan_calls` draws every call's figures from one seeded random.Random in a fixed order, so a
seed gives the same arrivals, parties' choices and times on every run. `TrafficEngine` plays
the plan: it schedules arrivals and the people's actions on the TimerQueue, follows each call
through the exchange's events (fed to `on_event`), and counts outcomes for the summary.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypedDict

from broker.protocol import Kind, Refusal
from broker.timers import TimerQueue
from topology.model import Topology

PROFILES = ("callcentre", "office")
ARRIVALS = ("poisson", "even")  # Poisson arrivals, or evenly spaced ones
EXP_CAP = 5.0          # an exponential draw is capped at 5x its mean, so that a run ends
STALL_S = 10.0         # a call that waits this long (beyond its own timers) for an event is stalled
FAILURE_CAUSE = "networkNotObtainable"  # a LIM holding a party failed
AGENT_STATE_EVENTS = {"AgentReady", "AgentNotReady", "AgentBusy", "AgentWorkingAfterCall", "AgentLoggedOn",
                      "AgentLoggedOff"}


# -- distributions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    """A duration in seconds: exp:MEAN (exponential, capped at 5x the mean), fixed:V, uniform:A-B."""
    kind: str
    a: float
    b: float = 0.0

    def draw(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return min(rng.expovariate(1.0 / self.a), EXP_CAP * self.a) if self.a > 0 else 0.0

    @property
    def mean(self) -> float:
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "exp":
            return self.a * (1 - math.exp(-EXP_CAP))  # the cap takes a little off
        return self.a

    @property
    def max(self) -> float:
        return {"fixed": self.a, "uniform": self.b}.get(self.kind, EXP_CAP * self.a)

    def __str__(self) -> str:
        return f"uniform:{self.a:g}-{self.b:g}" if self.kind == "uniform" else f"{self.kind}:{self.a:g}"

    @classmethod
    def parse(cls, text: str, what: str) -> "Dist":
        """'8' or 'exp:8', 'fixed:8', 'uniform:2-5'; ValueError naming `what` otherwise."""
        text = str(text).strip()
        kind, _, value = text.partition(":") if ":" in text else ("exp", "", text)
        try:
            if kind == "uniform":
                low, high = (float(v) for v in re.split(r"(?<=[0-9.])-", value, maxsplit=1))
                if not 0 <= low <= high or math.isinf(high):
                    raise ValueError
                return cls("uniform", low, high)
            if kind in ("exp", "fixed"):
                number = float(value)
                if not 0 <= number < math.inf:
                    raise ValueError
                return cls(kind, number)
        except ValueError:
            pass
        raise ValueError(f"{what}: {text!r} is not a duration: give seconds (exponential mean), "
                         f"exp:MEAN, fixed:SECONDS or uniform:MIN-MAX")


# -- options -------------------------------------------------------------------------------------------
class ProfileDefaults(TypedDict):
    rate: float   # calls per second
    talk: str     # durations as Dist.parse reads them
    ring: str
    wrapup: str


DEFAULTS: dict[str, ProfileDefaults] = {
    "callcentre": {"rate": 0.3, "talk": "exp:8", "ring": "uniform:1-3", "wrapup": "uniform:1-5"},
    "office": {"rate": 2.0, "talk": "exp:5", "ring": "uniform:0.5-2", "wrapup": "fixed:0"},
}


@dataclass(frozen=True)
class TrafficOptions:
    profile: str = "callcentre"
    rate: float = 0.3                 # calls per second (arrivals)
    duration: float | None = 60.0     # arrivals stop after this many seconds ...
    calls: int | None = None          # ... or after this many calls
    seed: int = 0
    arrivals: str = "poisson"         # poisson (exponential gaps) or even (1/rate apart)
    talk: Dist = Dist("exp", 8.0)
    ring: Dist = Dist("uniform", 1.0, 3.0)
    wrapup: Dist = Dist("uniform", 1.0, 5.0)
    abandon_share: float = 0.05       # callcentre: callers who hang up before an answer
    cross_lim: float = 0.5            # office: callees on another LIM than the caller
    transfer_share: float = 0.1       # office: calls the callee transfers to a third extension
    group: str | None = None          # callcentre: the ACD group (default: the first)
    trunk: str | None = None          # callcentre: the trunk callers come in on (default: the first)
    route_point: str | None = None    # callcentre: callers dial this route point, not the group
    drain: float = 60.0               # after the arrivals, how long calls in progress may take


def rate_from(rate: float | None, bhca: float | None) -> float | None:
    """Calls per second from --rate or --bhca (busy-hour call attempts: calls in one hour)."""
    if rate is not None and bhca is not None:
        raise ValueError("give --rate or --bhca, not both")
    if bhca is not None:
        if not 0 < bhca < math.inf:
            raise ValueError(f"--bhca must be above 0, not {bhca:g}")
        return bhca / 3600.0
    if rate is not None and not 0 < rate < math.inf:
        raise ValueError(f"--rate must be above 0 (calls per second), not {rate:g}")
    return rate


def make_options(profile: str = "callcentre", *, rate: float | None = None, bhca: float | None = None,
                 duration: float | None = None, calls: int | None = None, seed: int | None = None,
                 talk: str | None = None, ring: str | None = None, wrapup: str | None = None,
                 abandon_share: float | None = None, cross_lim: float | None = None,
                 transfer_share: float | None = None, arrivals: str = "poisson",
                 group: str | None = None, trunk: str | None = None, drain: float | None = None,
                 route_point: str | None = None) -> TrafficOptions:
    """Checked options with the profile's defaults filled in; ValueError (one line) if one is wrong."""
    if profile not in PROFILES:
        raise ValueError(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    defaults = DEFAULTS[profile]
    rate = rate_from(rate, bhca)
    if duration is not None and calls is not None:
        raise ValueError("give --duration or --calls, not both")
    if duration is not None and not 0 < duration < math.inf:
        raise ValueError(f"--duration must be above 0 seconds, not {duration:g}")
    if calls is not None and calls < 1:
        raise ValueError(f"--calls must be at least 1, not {calls}")
    if arrivals not in ARRIVALS:
        raise ValueError(f"--arrivals must be poisson or even, not {arrivals!r}")
    for name, share in (("--abandon-share", abandon_share), ("--cross-lim", cross_lim),
                        ("--transfer-share", transfer_share)):
        if share is not None and not 0 <= share <= 1:
            raise ValueError(f"{name} must be a share from 0 to 1, not {share:g}")
    if route_point is not None and profile != "callcentre":
        raise ValueError("--route-point is for the callcentre profile (its callers dial the route point)")
    if drain is not None and not 0 <= drain < math.inf:
        raise ValueError(f"--drain must be 0 or more seconds, not {drain:g}")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 10**6)  # printed in the summary, to repeat the run
    ring_dist = Dist.parse(ring or defaults["ring"], "--ring-time")
    if ring_dist.max > 25:
        raise ValueError("--ring-time: at most 25 s, or the exchange's no-answer timer may end the ringing first")
    return TrafficOptions(
        profile=profile, rate=rate or defaults["rate"],
        duration=None if calls is not None else (duration if duration is not None else 60.0),
        calls=calls, seed=seed, arrivals=arrivals,
        talk=Dist.parse(talk or defaults["talk"], "--talk-time"), ring=ring_dist,
        wrapup=Dist.parse(wrapup or defaults["wrapup"], "--wrapup"),
        abandon_share=0.05 if abandon_share is None else abandon_share,
        cross_lim=0.5 if cross_lim is None else cross_lim,
        transfer_share=0.1 if transfer_share is None else transfer_share,
        group=group, trunk=trunk, drain=60.0 if drain is None else drain, route_point=route_point)


# -- what the topology offers --------------------------------------------------------------------------
@dataclass(frozen=True)
class Resources:
    """The numbers a profile uses on one topology."""
    group: str | None = None
    group_wrapup_s: float = 0.0
    agents: tuple[str, ...] = ()
    trunk_prefix: str | None = None
    dial: str | None = None           # callcentre: the number callers dial (the group, or a route point)
    phones: dict[int, tuple[str, ...]] = field(default_factory=dict)  # office: LIM -> extensions


def resources_for(topology: Topology, options: TrafficOptions, exclude: frozenset[str] = frozenset()) -> Resources:
    """What the profile needs from the topology, or ValueError in one line saying what is missing."""
    if options.profile == "callcentre":
        group_number = options.group
        if options.route_point is not None:
            group_number = _route_point_group(topology, options)
        groups = [g for g in topology.acd_groups if group_number in (None, g.number)]
        trunks = [t for t in topology.trunks if options.trunk in (None, t.name)]
        logged_on = {e.number for e in topology.extensions if e.logged_on}
        missing = []
        if not trunks:
            missing.append(f"a trunk{' named ' + options.trunk if options.trunk else ''} (external callers come in on it)")
        if not groups:
            missing.append(f"an ACD group{' ' + group_number if group_number else ''}")
        elif not [a for a in groups[0].agents if a in logged_on]:
            missing.append(f"agents with a terminal logged on in ACD group {groups[0].number}")
        if missing:
            raise ValueError(f"the call-centre profile needs {' and '.join(missing)}; topology "
                             f"{topology.name!r} ({topology.source}) has none")
        group = groups[0]
        return Resources(group=group.number, group_wrapup_s=group.wrapup_s,
                         agents=tuple(a for a in group.agents if a in logged_on and a not in exclude),
                         trunk_prefix=trunks[0].prefix, dial=options.route_point or group.number)
    phones: dict[int, tuple[str, ...]] = {}
    for lim in topology.lims:
        usable = tuple(e.number for e in topology.extensions_on(lim.number)
                       if e.logged_on and e.type != "virtual" and e.number not in exclude)
        if usable:
            phones[lim.number] = usable
    if sum(len(p) for p in phones.values()) < 2:
        raise ValueError(f"the office profile needs at least two extensions with a terminal logged on; "
                         f"topology {topology.name!r} ({topology.source}) has fewer")
    return Resources(phones=phones)


def _route_point_group(topology: Topology, options: TrafficOptions) -> str:
    """The ACD group whose agents answer the calls of a route point: its default destination.
    Calls wait at the route point for a routeing application (a CSTA client: RouteRegister), or go
    to the default at once when none is registered; either way the group's agents answer them."""
    points = {r.number: r for r in topology.route_points}
    point = points.get(str(options.route_point))
    if point is None:
        known = ", ".join(sorted(points)) or "none"
        raise ValueError(f"--route-point: {options.route_point} is not a route point of topology "
                         f"{topology.name!r} (route points: {known})")
    if point.default not in {g.number for g in topology.acd_groups}:
        raise ValueError(f"--route-point: the default destination of {point.number} is {point.default}, "
                         f"not an ACD group: the call-centre profile needs its agents")
    if options.group is not None and options.group != point.default:
        raise ValueError(f"--route-point {point.number} sends its calls to ACD group {point.default}, "
                         f"not --group {options.group}")
    return point.default


# -- the plan --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedCall:
    index: int
    at: float                    # seconds after the start
    ring_s: float                # the answering person picks up after this much ringing
    talk_s: float
    wrapup_s: float              # callcentre: the agent's wrap-up after the call
    caller_hangs_up: bool        # else the answering side ends the call
    abandon_after_s: float | None = None   # callcentre: an impatient caller gives up after this
    cross_lim: bool = False      # office: the callee is on another LIM
    transfer: bool = False       # office: the callee transfers the caller to a third extension
    picks: tuple[float, float, float] = (0.0, 0.0, 0.0)  # office: uniform draws choosing caller, callee, target
    consult_s: float = 0.0       # office, transfer: the callee talks this long before consulting ...
    announce_s: float = 0.0      # ... and announces the caller for this long before transferring


def plan_calls(options: TrafficOptions) -> Iterator[PlannedCall]:
    """Every call of the run, in arrival order (one more than the run starts: where the arrival
    phase ends). The same draws are made for every call in the same order, whatever the profile
    and outcome, so a seed always gives the same plan."""
    rng = random.Random(options.seed)
    t = 0.0
    for index in range(1, 1 + (options.calls + 1 if options.calls is not None else 10**12)):
        gap = rng.expovariate(options.rate) if options.arrivals == "poisson" else 1.0 / options.rate
        t = t + gap if index > 1 else (gap if options.arrivals == "poisson" else 0.0)
        ring, talk, wrapup = options.ring.draw(rng), options.talk.draw(rng), options.wrapup.draw(rng)
        caller_hangs_up = rng.random() < 0.5
        impatient = rng.random() < options.abandon_share
        patience = rng.uniform(0.2, 0.8)  # of the ring time: gone before the agent picks up
        cross, transfer = rng.random() < options.cross_lim, rng.random() < options.transfer_share
        picks = (rng.random(), rng.random(), rng.random())
        split, announce = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.5)
        callcentre = options.profile == "callcentre"
        yield PlannedCall(
            index=index, at=t, ring_s=ring, talk_s=talk, wrapup_s=wrapup if callcentre else 0.0,
            caller_hangs_up=caller_hangs_up,
            abandon_after_s=patience * ring if callcentre and impatient else None,
            cross_lim=cross and not callcentre, transfer=transfer and not callcentre, picks=picks,
            consult_s=split * talk if transfer and not callcentre else 0.0,
            announce_s=announce if transfer and not callcentre else 0.0)
        if options.duration is not None and t >= options.duration:
            return


# -- playing the plan ------------------------------------------------------------------------------------
Act = Callable[[str, str, dict, Callable[[dict], None]], None]  # (device, kind, body, on_reply)


@dataclass
class CallRecord:
    plan: PlannedCall
    caller: str
    callee: str                          # the number dialled (extension or ACD group)
    target: str | None = None            # office transfer: the third extension
    devices: set[str] = field(default_factory=set)   # our phones in this call, still in it
    call_ids: set[str] = field(default_factory=set)
    main_call: str | None = None
    consult_call: str | None = None
    answerer: str | None = None          # who answered (the agent, or the callee)
    dialled_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    event_due_at: float = 0.0            # when the event the call waits for was due (for the watchdog)
    abandon_fired: bool = False
    transferred: bool = False
    transfer_failure: str | None = None
    failure: str | None = None
    released_by_failure: bool = False
    queued: bool = False
    done: bool = False
    timers: list = field(default_factory=list)
    watchdog: Any = None


class TrafficEngine:
    def __init__(self, topology: Topology, options: TrafficOptions, timers: TimerQueue, act: Act,
                 resources: Resources | None = None):
        self.topology = topology
        self.options = options
        self.timers = timers
        self.act = act
        self.res = resources or resources_for(topology, options)
        self.lim_of = {e.number: e.lim for e in topology.extensions}
        self.plan = plan_calls(options)
        self.records: list[CallRecord] = []
        self.active: list[CallRecord] = []
        self.by_call: dict[str, CallRecord] = {}
        self.owner: dict[str, CallRecord] = {}      # our phone -> the call it is busy with
        self.agent_state: dict[str, str | None] = {}  # None: an agent seen with no state yet
        self.seen: deque = deque(maxlen=20000)
        self.seen_set: set = set()
        self.start_t: float | None = None
        self.arrivals_end_t: float | None = None     # when the arrival phase ended
        self.drain_deadline: float | None = None
        self.skipped: Counter = Counter()
        self.action_errors: Counter = Counter()
        self.stopping = False

    # -- the run -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.start_t = self.timers.now()
        self._schedule_next()

    def _started_at(self) -> float:
        assert self.start_t is not None, "start() sets it before any arrival is planned"
        return self.start_t

    def stop_arrivals(self) -> None:
        """No more calls (Ctrl-C, or chaos has seen enough): the calls in progress finish."""
        if self.arrivals_end_t is None:
            self.arrivals_end_t = self.timers.now()
            self.drain_deadline = self.arrivals_end_t + self.options.drain

    def _schedule_next(self) -> None:
        if self.arrivals_end_t is not None:
            return
        planned = next(self.plan)  # the plan always yields the call that ends the arrival phase
        if (self.options.calls is not None and planned.index > self.options.calls) or \
                (self.options.duration is not None and planned.at >= self.options.duration):
            end = planned.at if self.options.duration is None else self.options.duration
            self.arrivals_end_t = self._started_at() + end
            self.drain_deadline = max(self.timers.now(), self.arrivals_end_t) + self.options.drain
            return
        delay = self._started_at() + planned.at - self.timers.now()
        self.timers.call_later(max(0.0, delay), lambda: self._arrive(planned))

    def finished(self) -> bool:
        """True once the arrival phase is over and every call has ended (calls still going at the
        drain deadline are cut off: hung up and counted as failed)."""
        now = self.timers.now()
        if self.arrivals_end_t is None or now < self.arrivals_end_t:
            return False
        assert self.drain_deadline is not None, "set with arrivals_end_t"
        if self.active and now >= self.drain_deadline and not self.stopping:
            self.stopping = True
            for record in list(self.active):
                self._give_up(record, "cut off at the end of the run")
        return not self.active

    def _arrive(self, planned: PlannedCall) -> None:
        if self.arrivals_end_t is not None:
            return
        self._schedule_next()
        if self.options.profile == "callcentre":
            caller = f"{self.res.trunk_prefix}7{planned.index:08d}"  # one external number per call
            callee = self.res.dial or self.res.group
            assert callee is not None, "resources_for gives the call-centre profile a number to dial"
            record = CallRecord(planned, caller, callee)
        else:
            chosen = self._choose_office(planned)
            if chosen is None:
                self.skipped["no idle extension"] += 1
                return
            record = CallRecord(planned, *chosen)
        self.records.append(record)
        self.active.append(record)
        for device in (record.caller, record.callee if self.options.profile == "office" else None, record.target):
            if device:
                self._own(record, device)
        record.dialled_at = self.timers.now()
        if planned.abandon_after_s is not None:
            self._later(record, planned.abandon_after_s, lambda: self._abandon(record))
        self._arm_watchdog(record)

        def dialled(reply: dict) -> None:
            if reply.get("ok"):
                record.main_call = reply["call_id"]
                self._learn(record, reply["call_id"])
            elif not record.done:
                self._fail(record, f"dial refused: {reply.get('error')}")
        self.act(record.caller, Kind.PHONE, {"action": "dial", "digits": record.callee}, dialled)

    def _choose_office(self, planned: PlannedCall) -> tuple[str, str, str | None] | None:
        idle = {lim: [p for p in phones if p not in self.owner] for lim, phones in self.res.phones.items()}
        everyone = [p for lim in sorted(idle) for p in idle[lim]]
        if len(everyone) < 2:
            return None
        pick = lambda options, u: options[min(len(options) - 1, int(u * len(options)))]  # noqa: E731
        caller = pick(everyone, planned.picks[0])
        lim = self.lim_of[caller]
        others = [p for n in sorted(idle) if n != lim for p in idle[n]]
        same = [p for p in idle[lim] if p != caller]
        candidates = others if planned.cross_lim and others else same or others
        if planned.cross_lim and not others and len(self.res.phones) > 1:
            return None  # every phone of the other LIMs is busy
        callee = pick(candidates, planned.picks[1])
        target = None
        if planned.transfer:
            rest = [p for p in everyone if p not in (caller, callee)]
            if not rest:
                return None
            target = pick(rest, planned.picks[2])
        return caller, callee, target

    # -- bookkeeping ----------------------------------------------------------------------------------
    def _own(self, record: CallRecord, device: str) -> None:
        record.devices.add(device)
        self.owner[device] = record

    def _free(self, record: CallRecord, device: str) -> None:
        record.devices.discard(device)
        if self.owner.get(device) is record:
            del self.owner[device]
        if not record.devices and not record.done:
            self._finish(record)

    def _learn(self, record: CallRecord, call_id: str | None) -> None:
        if call_id and call_id not in record.call_ids:
            record.call_ids.add(call_id)
            self.by_call[call_id] = record

    def _later(self, record: CallRecord, delay: float, fn: Callable[[], None]) -> None:
        def run() -> None:
            if not record.done:
                fn()
        record.timers.append(self.timers.call_later(max(0.0, delay), run))

    def _arm_watchdog(self, record: CallRecord, pending_s: float = 0.0) -> None:
        """Give up on a call that hears nothing for STALL_S beyond the action it waits for (an event
        lost, a request unanswered); a queued call waits for an agent as long as it must."""
        if record.watchdog is not None:
            record.watchdog.cancel()
        record.event_due_at = self.timers.now() + pending_s

        def stalled() -> None:
            if not (record.done or record.queued):
                self._give_up(record, "stalled: events missing")
        record.watchdog = None if record.done else self.timers.call_later(pending_s + STALL_S, stalled)

    def _phone(self, record: CallRecord, device: str, action: str, call_id: str | None = None,
               digits: str | None = None) -> None:
        body: dict[str, Any] = {"action": action}
        if call_id:
            body["call_id"] = call_id
        if digits:
            body["digits"] = digits

        def replied(reply: dict) -> None:
            if not reply.get("ok"):
                self.action_errors[f"{action}: {reply.get('error')}"] += 1
                if reply.get("error") in (Refusal.TIMEOUT, Refusal.LIM_DOWN, Refusal.BROKER_FAILOVER) and not record.done:
                    self._give_up(record, f"{action} not answered ({reply.get('error')})")
        self.act(device, Kind.PHONE, body, replied)

    def _fail(self, record: CallRecord, reason: str) -> None:
        if record.failure is None:
            record.failure = reason
        self._give_up(record, None)

    def _give_up(self, record: CallRecord, reason: str | None) -> None:
        """Hang up every phone of ours still in the call, then call it done."""
        if record.done:
            return
        if reason and record.failure is None:
            record.failure = reason
        devices = list(record.devices)
        if not devices:
            self._finish(record)
            return
        pending = {"n": len(devices)}

        def hung_up(device: str) -> Callable[[dict], None]:
            def handler(reply: dict) -> None:
                pending["n"] -= 1
                if pending["n"] == 0:
                    for d in devices:
                        self._free(record, d)
            return handler
        for device in devices:
            self.act(device, Kind.PHONE, {"action": "hangup"}, hung_up(device))

    def _finish(self, record: CallRecord) -> None:
        record.done = True
        record.ended_at = self.timers.now()
        for timer in record.timers:
            timer.cancel()
        if record.watchdog is not None:
            record.watchdog.cancel()
        for device in list(record.devices):
            self._free(record, device)
        if record in self.active:
            self.active.remove(record)

    # -- the people ------------------------------------------------------------------------------------
    def _abandon(self, record: CallRecord) -> None:
        if record.answered_at is None:
            record.abandon_fired = True
            self._phone(record, record.caller, "hangup", record.main_call)

    def _hang_up_at_end(self, record: CallRecord, talk_s: float, parties: tuple[str, str]) -> None:
        """After `talk_s`, the caller (parties[0]) or the other side (parties[1]) hangs up."""
        who = parties[0] if record.plan.caller_hangs_up else parties[1]
        self._later(record, talk_s, lambda: self._phone(record, who, "hangup", record.main_call))
        self._arm_watchdog(record, talk_s)

    def _agent_wrapup(self, agent: str, wrapup_s: float) -> None:
        """The agent ends wrap-up when done, if that is before the group's wrap-up timer would."""
        if wrapup_s >= self.res.group_wrapup_s:
            return

        def ready() -> None:
            if self.agent_state.get(agent) == "agentWorkingAfterCall" and agent not in self.owner:
                self.act(agent, Kind.AGENT, {"action": "ready"}, lambda reply: None)
        self.timers.call_later(wrapup_s, ready)

    # -- events ------------------------------------------------------------------------------------------
    def on_event(self, body: dict[str, Any], key: Any = None) -> None:
        """One event of the exchange (each once: `key` identifies duplicates from several topics)."""
        if key is not None:
            if key in self.seen_set:
                return
            if len(self.seen) == self.seen.maxlen:
                self.seen_set.discard(self.seen[0])
            self.seen.append(key)
            self.seen_set.add(key)
        name = body.get("event")
        if name in AGENT_STATE_EVENTS:
            device = body.get("device")
            if device is not None:  # an agent's event always names it
                self.agent_state[device] = body.get("agent_state") or (
                    "agentNull" if name == "AgentLoggedOff" else self.agent_state.get(device))
            return
        record = self._route(body)
        if record is None or record.done:
            return
        call_id = body.get("call_id")
        self._learn(record, call_id)
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(record, body, call_id)

    def _route(self, body: dict[str, Any]) -> CallRecord | None:
        call_id = body.get("call_id")
        record = None if call_id is None else self.by_call.get(call_id)
        if record is not None:
            return record
        for device in [body.get("calling"), body.get("device")] + [d for d, _ in body.get("connections") or []]:
            record = None if device is None else self.owner.get(device)
            if record is not None:
                return record
        return None

    def _on_Queued(self, record: CallRecord, body: dict[str, Any], call_id: str | None) -> None:
        record.queued = True

    def _on_Delivered(self, record: CallRecord, body: dict[str, Any], call_id: str | None) -> None:
        alerting = body.get("alerting")
        if alerting is None:  # every Delivered names the alerting device; nothing to answer without one
            return
        plan = record.plan
        if self.options.profile == "callcentre":
            if alerting not in self.res.agents or record.answered_at is not None:
                return
            record.queued = False
            self._own(record, alerting)
            delay = plan.ring_s
        elif alerting == record.callee and record.main_call in (None, call_id):
            delay = plan.ring_s
        elif alerting == record.target:
            record.consult_call = call_id
            delay = plan.ring_s  # the third party is as quick as the callee
        else:
            return
        self._later(record, delay, lambda: self._phone(record, alerting, "answer", call_id))
        self._arm_watchdog(record, delay)

    def _on_Established(self, record: CallRecord, body: dict[str, Any], call_id: str | None) -> None:
        answering = body.get("answering")
        plan = record.plan
        if answering == record.target and record.target is not None:
            self._later(record, plan.announce_s, lambda: self._phone(record, record.callee, "transfer"))
            self._arm_watchdog(record, plan.announce_s)
            return
        if answering not in record.devices or answering == record.caller or record.answered_at is not None:
            return
        record.answerer = answering
        record.answered_at = self.timers.now()
        record.main_call = record.main_call or call_id
        if plan.transfer:
            self._later(record, plan.consult_s,
                        lambda: self._phone(record, record.callee, "consult", record.main_call, digits=record.target))
            self._arm_watchdog(record, plan.consult_s)
        else:
            self._hang_up_at_end(record, plan.talk_s, (record.caller, answering))

    def _on_Transferred(self, record: CallRecord, body: dict[str, Any], call_id: str | None) -> None:
        if body.get("transferring") != record.callee or record.target is None:
            return  # not our callee's transfer (ours always has a target: the third extension)
        record.transferred = True
        record.main_call = call_id
        self._free(record, record.callee)
        self._hang_up_at_end(record, max(0.0, record.plan.talk_s - record.plan.consult_s),
                             (record.caller, record.target))

    def _on_Failed(self, record: CallRecord, body: dict[str, Any], call_id: str | None) -> None:
        cause = body.get("cause") or "unknown"
        if cause == FAILURE_CAUSE:
            record.released_by_failure = True
        if record.target is not None and body.get("failing") == record.target and call_id != record.main_call:
            # The consultation failed: the callee goes back to the caller and the call goes on.
            record.transfer_failure = cause
            self._free(record, record.target)
            self._phone(record, record.callee, "reconnect")
            self._hang_up_at_end(record, max(0.0, record.plan.talk_s - record.plan.consult_s),
                                 (record.caller, record.callee))
            return
        self._fail(record, f"failed: {cause}")

    def _on_ConnectionCleared(self, record: CallRecord, body: dict[str, Any], call_id: str | None) -> None:
        dropped = body.get("dropped") or body.get("device")
        if body.get("cause") == FAILURE_CAUSE:
            record.released_by_failure = True
        if dropped not in record.devices:
            return
        if dropped == record.callee and record.consult_call and call_id == record.consult_call \
                and not record.transferred:
            return  # the callee's consultation call ended; it still has the caller on hold
        was_answerer = dropped == record.answerer
        self._free(record, dropped)
        if was_answerer and self.options.profile == "callcentre":
            self._agent_wrapup(dropped, record.plan.wrapup_s)
        if record.devices and not record.done:
            self._arm_watchdog(record)

    # -- the summary -------------------------------------------------------------------------------------
    def outcome(self, record: CallRecord) -> str:
        if record.released_by_failure:
            return "released by failure"
        if record.failure is not None:
            return "failed"
        if record.answered_at is not None:
            return "answered"
        if record.abandon_fired:
            return "abandoned"
        return "failed"

    def summary(self) -> dict[str, Any]:
        now = self.timers.now()
        end = self.arrivals_end_t if self.arrivals_end_t is not None else now
        window = max(1e-9, end - (self.start_t or now))
        done = [r for r in self.records if r.done]
        outcomes = Counter(self.outcome(r) for r in done)
        reasons = Counter(r.failure or ("unanswered" if self.outcome(r) == "failed" else None) for r in done
                          if self.outcome(r) in ("failed", "released by failure"))
        reasons.pop(None, None)
        waits = sorted(r.answered_at - r.dialled_at for r in done if r.answered_at is not None)
        answered = [r for r in done if r.answered_at is not None]
        return {
            "profile": self.options.profile, "seed": self.options.seed, "route_point": self.options.route_point,
            "rate_asked": round(self.options.rate, 6), "arrival_phase_s": round(window, 3),
            "arrivals": len(self.records) + sum(self.skipped.values()),
            "attempted": len(self.records),
            "skipped": dict(self.skipped),
            "answered": len(answered),
            "completed": sum(1 for r in answered if self.outcome(r) == "answered"),
            "abandoned": outcomes["abandoned"],
            "transferred": sum(1 for r in done if r.transferred),
            "transfer_failures": dict(Counter(r.transfer_failure for r in done if r.transfer_failure)),
            "failed": outcomes["failed"] + outcomes["released by failure"],
            "released_by_failure": outcomes["released by failure"],
            "failure_reasons": dict(sorted(reasons.items())),
            "in_progress": len(self.active),
            "calls_per_second": round(len(self.records) / window, 3),
            "answer_delay_p50_s": round(waits[len(waits) // 2], 3) if waits else None,
            "answer_delay_max_s": round(waits[-1], 3) if waits else None,
            "action_errors": dict(sorted(self.action_errors.items())),
        }

    def progress(self) -> str:
        done = [r for r in self.records if r.done]
        outcomes = Counter(self.outcome(r) for r in done)
        elapsed = self.timers.now() - (self.start_t or self.timers.now())
        answered = sum(1 for r in self.records if r.answered_at is not None)
        return (f"{elapsed:6.1f}s  attempted {len(self.records)}  in progress {len(self.active)}  "
                f"answered {answered}  abandoned {outcomes['abandoned']}  "
                f"transferred {sum(1 for r in done if r.transferred)}  "
                f"failed {outcomes['failed'] + outcomes['released by failure']}")
