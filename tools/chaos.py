"""`mxone chaos`: kill LIMs, CSTA servers and the active broker (SIGKILL through supervisord) at
seeded random times while office traffic runs on a throwaway exchange, and report what survived.

Set-up: the built-in topology (or `--topology FILE`) on free ports under its own supervisord;
persistent settings on a few devices per LIM kept out of the traffic (do not disturb, message
waiting, forwarding all/busy/no answer, an agent logged on and not ready); every traffic phone
monitored through its own LIM's CSTA server (a client reconnects and monitors again when its
server dies); the office profile of `mxone traffic` (tools/traffic.py), without transfers, so
that every completed call has the fixed event sequences `mxone bench` checks.

Each kill waits until the exchange is whole again: every LIM and every CSTA server registered
with the broker, the killed LIM or server as a new incarnation, a killed CSTA server accepting
connections, a killed broker answering. That time is the kill's recovery time.

The report: calls attempted, completed, released by failure (a party's LIM died), failed (with
reasons); events lost and duplicated at the CSTA monitors, over every completed call whose two
monitors were open throughout (those on a killed CSTA server's connection are not checked, and
said so); calls stalled (the traffic generator's own bus subscription missed an event for 10 s);
persistent settings lost; each kill with its recovery time. Lost events are attributed to the kills
whose outage overlapped their call: until the broker pair with event replay exists, events
published while the broker is down are lost, and this report counts them.
"""
from __future__ import annotations

import asyncio
import math
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from broker.client import BusClient, BusError
from broker.protocol import (
    BROKER,
    Kind,
    csta_node,
    device_address,
    is_lim_node,
    lim_node,
    lim_number_of,
)
from cluster.control import ClusterError
from cluster.exchange import running_exchange
from csta_front.client import CstaClient, CstaError, event_name
from csta_front.client import field as xml_field
from lim.phone import Exchange
from tools import report as reporting  # `report` is the chaos report's name here
from tools.measure import CALLEE_EVENTS, CALLER_EVENTS, call_id_of
from tools.traffic import make_options, resources_for
from tools.traffic_run import TrafficDriver
from topology.loader import default_topology_path, load_topology
from topology.ports import move_to_free_ports

KINDS = ("lim", "csta", "broker")
SETTLE_S = 5.0           # after the traffic, how long missing CSTA events may still arrive
POLL_S = 0.02            # recovery polling interval
STATUS_TIMEOUT_S = 0.3
MOVE_MARGIN_S = 1.0      # a stall this close to the generator's move between brokers is explained by it


def log(message: str) -> None:
    reporting.say(f"chaos: {message}")


# -- options and the plan (pure) --------------------------------------------------------------------------
@dataclass(frozen=True)
class ChaosOptions:
    duration: float = 30.0        # seconds of traffic arrivals; the kills fall inside
    kills: int = 3
    targets: tuple[str, ...] = KINDS
    seed: int = 0
    rate: float = 3.0             # office calls per second
    cross_lim: float = 0.5
    recover_timeout: float = 30.0


def make_chaos_options(duration: float | None = None, kills: int | None = None, targets: str | None = None,
                       seed: int | None = None, rate: float | None = None, cross_lim: float | None = None,
                       recover_timeout: float | None = None) -> ChaosOptions:
    """Checked options; ValueError in one line naming the option."""
    if duration is not None and not 5 <= duration < math.inf:
        raise ValueError(f"--duration must be at least 5 seconds, not {duration:g}")
    if kills is not None and not 0 <= kills <= 100:
        raise ValueError(f"--kills must be 0 to 100, not {kills}")
    chosen = KINDS
    if targets is not None:
        chosen = tuple(dict.fromkeys(t.strip() for t in targets.split(",") if t.strip()))
        bad = [t for t in chosen if t not in KINDS]
        if bad or not chosen:
            raise ValueError(f"--targets: {', '.join(bad) or '(none)'}: choose from {','.join(KINDS)}")
    if rate is not None and not 0 < rate <= 200:
        raise ValueError(f"--rate must be above 0 and at most 200 calls per second, not {rate:g}")
    if cross_lim is not None and not 0 <= cross_lim <= 1:
        raise ValueError(f"--cross-lim must be a share from 0 to 1, not {cross_lim:g}")
    if recover_timeout is not None and not 1 <= recover_timeout <= 600:
        raise ValueError(f"--recover-timeout must be 1 to 600 seconds, not {recover_timeout:g}")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 10**6)
    defaults = ChaosOptions()
    return ChaosOptions(duration=defaults.duration if duration is None else duration,
                        kills=defaults.kills if kills is None else kills, targets=chosen, seed=seed,
                        rate=defaults.rate if rate is None else rate,
                        cross_lim=defaults.cross_lim if cross_lim is None else cross_lim,
                        recover_timeout=defaults.recover_timeout if recover_timeout is None else recover_timeout)


def plan_kills(options: ChaosOptions) -> list[tuple[float, str]]:
    """(seconds after the traffic starts, kind) for each kill, in time order: within 15-75 % of the
    duration; with at least as many kills as kinds, every kind is hit at least once."""
    rng = random.Random(f"chaos-{options.seed}")
    kinds = list(options.targets) if options.kills >= len(options.targets) else []
    kinds += [rng.choice(options.targets) for _ in range(options.kills - len(kinds))]
    rng.shuffle(kinds)
    times = sorted(rng.uniform(0.15, 0.75) * options.duration for _ in kinds)
    return list(zip(times, kinds))


def active_broker_program(replies: dict[str, dict | None]) -> str | None:
    """The supervisord program of the active broker, from each broker program's `status` reply
    (None: it did not answer). A pair's replies carry `state` active|passive; a single broker's
    has no `state` and is the program `broker`."""
    for program, reply in replies.items():
        if reply and reply.get("state") == "active":
            return program
    single = replies.get("broker")
    if single is not None and "state" not in single:
        return "broker"
    if set(replies) == {"broker"}:
        return "broker"  # a single broker that does not answer (being restarted): still the one
    return None


def exchange_whole(members: list[dict], wanted: set[tuple[str, int]], node: str | None = None,
                   old_incarnation: int | None = None) -> bool:
    """Every wanted (role, lim) is up, and `node` (the process killed) is up as a new incarnation."""
    up = {(m["role"], m["lim"]) for m in members if m["state"] == "up"}
    if not wanted <= up:
        return False
    if node is None:
        return True
    return any(m["node"] == node and m["state"] == "up" and m["incarnation"] != old_incarnation for m in members)


@dataclass
class Kill:
    kind: str
    planned_s: float
    program: str | None = None
    at: float | None = None           # monotonic, just before the signal
    recovered_s: float | None = None  # from the signal to the exchange whole again
    failover_s: float | None = None   # a broker pair: from the signal to the other broker active
    error: str | None = None

    @property
    def lim(self) -> int | None:
        if self.program and is_lim_node(self.program):
            return lim_number_of(self.program)
        return None

    def outage(self, timeout: float) -> tuple[float, float]:
        if self.at is None:
            return (math.inf, math.inf)
        return self.at, self.at + (self.recovered_s if self.recovered_s is not None else timeout)


# -- the analysis (pure) ------------------------------------------------------------------------------------
@dataclass
class MonitorLog:
    """CSTA events per monitored device, and when each device's monitor was open."""
    events: dict[tuple[str, str], list[str]] = field(default_factory=dict)   # (call ID, device) -> names
    windows: dict[str, list[list[float]]] = field(default_factory=dict)      # device -> [[open, closed]]

    def covered(self, device: str, start: float, end: float) -> bool:
        return any(w[0] <= start and end <= w[1] for w in self.windows.get(device, ()))


def analyse(engine, monitors: MonitorLog, kills: list[Kill], lim_of: dict[str, int], timeout: float,
            end_margin: float = 1.0, client_moves: list[float] = ()) -> dict[str, Any]:
    """`client_moves`: when the traffic generator's bus client moved to the other broker of a
    pair (it gets no replay: a call waiting for an event then may stall, which that explains)."""
    records = [r for r in engine.records if r.done]
    outcomes = Counter(engine.outcome(r) for r in records)
    lost = duplicated = checked = not_checked = 0
    lost_by: Counter = Counter()
    lost_no_broker = 0   # lost in calls that no broker outage overlapped: no excuse at all
    details: list[str] = []

    def overlapping(start: float, end: float) -> list[Kill]:
        """The kills whose outage (from the signal to the exchange whole again) overlaps a call."""
        return [k for k in kills if k.outage(timeout)[0] <= end and start <= k.outage(timeout)[1]]

    for r in records:
        if engine.outcome(r) != "answered" or r.transferred or r.main_call is None:
            continue
        lims = {lim_of[r.caller], lim_of[r.callee]}
        if any(k.kind == "lim" and k.lim in lims for k in overlapping(r.dialled_at, r.ended_at)):
            continue  # a LIM of the call died meanwhile: not a surviving device
        for device, expected in ((r.caller, CALLER_EVENTS), (r.callee, CALLEE_EVENTS)):
            if not monitors.covered(device, r.dialled_at, r.ended_at + end_margin):
                not_checked += 1
                continue
            checked += 1
            have = Counter(monitors.events.get((r.main_call, device), []))
            want = Counter(expected)
            missing, extra = want - have, have - want
            lost += sum(missing.values())
            duplicated += sum(extra.values())
            if missing:
                blamed = overlapping(r.dialled_at, r.ended_at + end_margin)
                for kind in {k.kind for k in blamed} or {"no kill"}:
                    lost_by[kind] += sum(missing.values())
                if not any(k.kind == "broker" for k in blamed):
                    lost_no_broker += sum(missing.values())
                if len(details) < 20:
                    details.append(f"call {r.main_call} {device}: missing {', '.join(sorted(missing.elements()))}")
    stalled = 0
    stalled_by: Counter = Counter()
    stalled_detail: list[str] = []
    stalled_explained = 0
    stalled_no_broker = 0
    t0 = engine.start_t or 0.0
    for r in records:
        if not (r.failure or "").startswith("stalled"):
            continue
        lims = {lim_of.get(d) for d in (r.caller, r.callee) if d in lim_of}
        # Up to when its event was due: a LIM of the call killed by then explains the silence.
        blamed = overlapping(r.dialled_at, r.event_due_at + end_margin)
        explained = [k for k in blamed if k.kind == "lim" and k.lim in lims]
        if len(stalled_detail) < 20:
            stalled_detail.append(f"call {r.main_call} {r.caller}->{r.callee} waited from {r.event_due_at - t0:.1f} s"
                                  + (f" (not counted: {explained[0].program} killed)" if explained else ""))
        if explained:
            stalled_explained += 1
            continue
        stalled += 1
        moved = any(r.dialled_at - end_margin <= t <= r.event_due_at + MOVE_MARGIN_S for t in client_moves)
        kinds = {k.kind for k in blamed} | ({"the generator's move to the other broker"} if moved else set())
        for kind in kinds or {"no kill"}:
            stalled_by[kind] += 1
        if not moved and not any(k.kind == "broker" for k in blamed):
            stalled_no_broker += 1
    reasons = Counter(r.failure for r in records if engine.outcome(r) in ("failed", "released by failure")
                      and r.failure)
    return {
        "calls_attempted": len(engine.records),
        "calls_completed": outcomes["answered"],
        "calls_released_by_failure": outcomes["released by failure"],
        "calls_failed_otherwise": outcomes["failed"],
        "calls_unanswered": outcomes["abandoned"],
        "failure_reasons": dict(sorted(reasons.items())),
        "monitored_call_sides_checked": checked,
        "monitored_call_sides_not_checked": not_checked,
        "events_lost": lost,
        "events_duplicated": duplicated,
        "events_lost_by_kill": dict(sorted(lost_by.items())),
        "events_lost_outside_broker_outages": lost_no_broker,
        "events_lost_detail": details,
        "calls_stalled": stalled,
        "calls_stalled_by_kill": dict(sorted(stalled_by.items())),
        "calls_stalled_unexplained": stalled_no_broker,
        "calls_stalled_detail": stalled_detail,
        "calls_stalled_explained_by_lim_death": stalled_explained,
    }


# -- the exchange ---------------------------------------------------------------------------------------------
def setting_devices(topology, per_lim: int = 3) -> tuple[dict[int, list[str]], dict[int, str]]:
    """Per LIM: extensions for persistent features (logged on, in no group), and one ACD agent
    position (logged on) for a persistent agent state; all kept out of the traffic."""
    in_groups = {m for g in topology.acd_groups for m in g.agents}
    in_groups |= {m for g in topology.hunt_groups for m in g.all_members()}
    plain: dict[int, list[str]] = {}
    agents: dict[int, str] = {}
    logged_on = {e.number for e in topology.extensions if e.logged_on}
    for lim in topology.lims:
        usable = [e.number for e in topology.extensions_on(lim.number)
                  if e.logged_on and e.type != "virtual" and e.number not in in_groups]
        plain[lim.number] = usable[-per_lim:] if len(usable) > per_lim + 2 else []
        for group in topology.acd_groups:
            mine = [a for a in group.agents if a in logged_on and topology.directory().get(a) == lim.number]
            if mine and lim.number not in agents:
                agents[lim.number] = mine[0]
    return plain, agents


def set_settings(client, topology) -> dict[str, dict[str, Any]]:
    """Persistent settings on the chosen devices; returns each device's features as the exchange
    then reports them (what must still be there at the end)."""
    plain, agents = setting_devices(topology)
    expected: dict[str, dict[str, Any]] = {}
    for lim, devices in plain.items():
        if len(devices) < 3:
            continue
        d0, d1, d2 = devices[:3]
        client.request(device_address(d0), Kind.FEATURE, {"feature": "dnd", "on": True})
        client.request(device_address(d0), Kind.FEATURE, {"feature": "mwi", "on": True})
        client.request(device_address(d1), Kind.FEATURE, {"feature": "forward", "type": "all", "to": d0, "after_s": None})
        client.request(device_address(d2), Kind.FEATURE, {"feature": "forward", "type": "busy", "to": d1, "after_s": None})
        client.request(device_address(d2), Kind.FEATURE, {"feature": "forward", "type": "noanswer", "to": d0, "after_s": 12.0})
    for lim, agent in agents.items():
        group = next(g.number for g in topology.acd_groups if agent in g.agents)
        features = client.request(device_address(agent), Kind.FEATURE_GET)
        if features.get("agent_state") == "agentNull":
            client.request(device_address(agent), Kind.AGENT, {"action": "login", "agent_id": f"C{agent}"[:16], "group": group})
        client.request(device_address(agent), Kind.AGENT, {"action": "notready"})
    for device in [d for ds in plain.values() for d in ds[:3]] + list(agents.values()):
        reply = client.request(device_address(device), Kind.FEATURE_GET)
        expected[device] = {k: v for k, v in reply.items() if k not in ("ok", "device")}
    return expected


def check_settings(client, expected: dict[str, dict[str, Any]]) -> tuple[int, int, list[str]]:
    """(settings checked, settings lost, what was lost)."""
    checked = lost = 0
    what: list[str] = []
    for device, features in expected.items():
        try:
            now = client.request(device_address(device), Kind.FEATURE_GET)
        except BusError as exc:
            now = {}
            what.append(f"{device}: not readable ({exc.code})")
        for key, value in features.items():
            checked += 1
            if now.get(key) != value:
                lost += 1
                what.append(f"{device} {key}: {value!r} -> {now.get(key)!r}")
    return checked, lost, what


def accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


class Killer:
    """Kills at the planned times and measures each recovery (in its own thread: its own bus
    clients, one per broker endpoint)."""

    def __init__(self, cluster, topology, options: ChaosOptions, servers: dict[int, Any]):
        self.cluster = cluster
        self.topology = topology
        self.options = options
        self.servers = servers
        self.kills = [Kill(kind, at) for at, kind in plan_kills(options)]
        self.rng = random.Random(f"targets-{options.seed}")
        self.wanted = {("lim", lim.number) for lim in topology.lims} | {("front", n) for n in servers}
        self.stop = threading.Event()

    def _clients(self) -> dict[str, Any]:
        settings = self.topology.broker
        clients = {"broker": BusClient(replace(settings, backup=None), name="chaos")}
        if settings.backup is not None:
            clients["broker-backup"] = BusClient(replace(settings, primary=settings.backup, backup=None), name="chaos")
        return clients

    def _statuses(self, clients) -> dict[str, dict | None]:
        replies: dict[str, dict | None] = {}
        for program, client in clients.items():
            try:
                replies[program] = client.request(BROKER, Kind.STATUS, timeout=STATUS_TIMEOUT_S)
            except BusError:
                replies[program] = None
        return replies

    def _members(self, replies: dict[str, dict | None]) -> list[dict] | None:
        program = active_broker_program(replies)
        reply = replies.get(program) if program else None
        return reply["members"] if reply else None

    def run(self, start: float) -> list[Kill]:
        clients = self._clients()
        try:
            for kill in self.kills:
                if self.stop.wait(max(0.0, start + kill.planned_s - time.monotonic())):
                    break
                self._kill(kill, clients, start)
        finally:
            for client in clients.values():
                client.close()
        return self.kills

    def _kill(self, kill: Kill, clients, start: float) -> None:
        """Kill one process of the kind planned (a later kill waits for the last recovery: its
        actual time can be after its planned one)."""
        replies = self._statuses(clients)
        members = self._members(replies) or []
        if kill.kind == "broker":
            kill.program = active_broker_program(replies)
            if kill.program is None:
                kill.error = "no broker says it is active"
                return
        elif kill.kind == "lim":
            kill.program = lim_node(self.rng.choice([lim.number for lim in self.topology.lims]))
        else:
            kill.program = csta_node(self.rng.choice(sorted(self.servers)))
        old = next((m["incarnation"] for m in members if m["node"] == kill.program), None)  # node = program
        kill.at = time.monotonic()
        try:
            self.cluster.signal(kill.program, "KILL")
        except ClusterError as exc:
            kill.error = str(exc)
            return
        log(f"killed {kill.program} at {kill.at - start:.1f} s")
        deadline = kill.at + self.options.recover_timeout
        while time.monotonic() < deadline:
            replies = self._statuses(clients)
            members = self._members(replies)
            now = time.monotonic()
            active = active_broker_program(replies)
            if kill.kind == "broker" and kill.failover_s is None and len(replies) > 1 and active not in (None, kill.program):
                kill.failover_s = now - kill.at
                log(f"{active} active after {kill.failover_s:.2f} s")
            if members is not None and self._whole(kill, replies, members, old):
                kill.recovered_s = now - kill.at
                log(f"{kill.program}: exchange whole again after {kill.recovered_s:.2f} s")
                return
            time.sleep(POLL_S)
        kill.error = f"not whole again after {self.options.recover_timeout:g} s"

    def _whole(self, kill: Kill, replies: dict[str, dict | None], members: list[dict], old: int | None) -> bool:
        if kill.kind == "broker":
            # A pair: the killed broker back (as the standby), and the active one with everybody.
            # A single broker: it answers, and everybody has registered with it again.
            return replies.get(kill.program) is not None and exchange_whole(members, self.wanted)
        if kill.kind == "lim":
            return exchange_whole(members, self.wanted, kill.program, old)
        lim = int(kill.program.split("-")[1])
        return (exchange_whole(members, self.wanted, kill.program, old)
                and accepts(self.topology.lim(lim).address, self.servers[lim].port))


class Monitors:
    """Every traffic phone monitored through its own LIM's CSTA server; a closed connection is
    reopened (and its monitors started again) as soon as the server accepts."""

    def __init__(self, topology, servers: dict[int, Any], devices: dict[int, list[str]]):
        self.topology = topology
        self.servers = servers
        self.devices = devices
        self.log = MonitorLog()
        self.stopping = False
        self.clients: list[Any] = []

    async def keep(self, lim: int, ready: asyncio.Event) -> None:
        address, port = self.topology.lim(lim).address, self.servers[lim].port
        while not self.stopping:
            try:
                client = await CstaClient.connect(address, port, timeout=2.0)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(POLL_S)
                continue
            self.clients.append(client)
            by_xref: dict[str, str] = {}
            opened: list[list[float]] = []
            try:
                for device in self.devices.get(lim, []):
                    by_xref[await client.monitor_start(device)] = device
                    window = [time.monotonic(), math.inf]
                    self.log.windows.setdefault(device, []).append(window)
                    opened.append(window)
                ready.set()
                while True:
                    event = await client.events.get()
                    if event is None:
                        break
                    device = by_xref.get(xml_field(event, "monitorCrossRefID") or "")
                    call_id = call_id_of(event)
                    if device is not None and call_id:
                        self.log.events.setdefault((call_id, device), []).append(event_name(event).removesuffix("Event"))
            except (OSError, ConnectionError, asyncio.TimeoutError, CstaError):
                pass  # the server went away while we monitored: open a new connection
            finally:
                now = time.monotonic()
                for window in opened:
                    window[1] = min(window[1], now)
                await client.close()

    async def close(self) -> None:
        self.stopping = True
        for client in self.clients:
            await client.close()


async def chaos(cluster, topology, options: ChaosOptions) -> dict[str, Any]:

    servers = cluster.csta_servers(topology)
    if "csta" in options.targets and not servers:
        raise ValueError("no CSTA server is initiated in this topology: give --targets without csta")
    expected_settings = await asyncio.to_thread(set_settings_in_thread, topology)
    traffic_options = make_options("office", rate=options.rate, duration=options.duration, seed=options.seed,
                                   talk="uniform:0.5-2", ring="uniform:0.3-1", cross_lim=options.cross_lim,
                                   transfer_share=0, drain=20)
    resources = resources_for(topology, traffic_options, exclude=frozenset(expected_settings))
    monitors = Monitors(topology, servers, {lim: list(p) for lim, p in resources.phones.items()})
    readiness = {lim: asyncio.Event() for lim in servers}
    keepers = [asyncio.create_task(monitors.keep(lim, readiness[lim])) for lim in servers]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readiness.values())), 30)
    killer = Killer(cluster, topology, options, servers)
    log(f"{options.duration:g} s of office traffic at {options.rate:g} calls/s over "
        f"{sum(len(p) for p in resources.phones.values())} monitored phones; kills: "
        + ", ".join(f"{k.kind} at {k.planned_s:.1f} s" for k in killer.kills) + f"; seed {options.seed}")

    holder: dict[str, Any] = {}

    def traffic() -> None:
        driver = TrafficDriver(topology, traffic_options, resources)
        try:
            holder["engine"] = driver.engine
            holder["summary"] = driver.run()
            holder["moves"] = driver.switches
        finally:
            driver.close()

    start = time.monotonic()
    shown = asyncio.create_task(show_progress(reporting.current(), start, options.duration, killer.kills))
    try:
        await asyncio.gather(asyncio.to_thread(traffic), asyncio.to_thread(killer.run, start))
    finally:
        killer.stop.set()
        shown.cancel()
    engine = holder["engine"]
    lim_of = {e.number: e.lim for e in topology.extensions}
    # Let the last CSTA events arrive: until every completed call's expected events are in, or SETTLE_S.
    # The monitors stay open at least 1 s past the last call's end (the margin analyse gives the
    # last events of a call), then until nothing is missing, or SETTLE_S.
    deadline, at_least = time.monotonic() + SETTLE_S, time.monotonic() + 1.2
    while time.monotonic() < deadline:
        report = analyse(engine, monitors.log, killer.kills, lim_of, options.recover_timeout)
        if report["events_lost"] == 0 and time.monotonic() >= at_least:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)  # duplicates, if any, show up too
    await monitors.close()
    for task in keepers:
        task.cancel()
    report = analyse(engine, monitors.log, killer.kills, lim_of, options.recover_timeout,
                     client_moves=holder.get("moves", []))
    report["generator_broker_moves"] = len(holder.get("moves", []))
    checked, lost, lost_what = await asyncio.to_thread(lambda: check_settings_in_thread(topology, expected_settings))
    left = await asyncio.to_thread(calls_left_in_thread, topology)
    report.update({
        "settings_checked": checked, "settings_lost": lost, "settings_lost_detail": lost_what,
        "calls_left_in_exchange": left,
        "kills": [{"kind": k.kind, "program": k.program, "planned_s": round(k.planned_s, 3),
                   "at_s": None if k.at is None else round(k.at - start, 3),
                   "recovered_s": None if k.recovered_s is None else round(k.recovered_s, 3),
                   "failover_s": None if k.failover_s is None else round(k.failover_s, 3), "error": k.error}
                  for k in killer.kills],
        "traffic": holder["summary"],
    })
    return report


def progress_text(elapsed_s: float, duration_s: float, kills: list[Kill]) -> str:
    """`chaos: 12.3 of 30 s of traffic, kills: 1 recovered, 1 recovering, 1 to come`."""
    recovered = sum(1 for k in kills if k.recovered_s is not None)
    failed = sum(1 for k in kills if k.error is not None)
    recovering = sum(1 for k in kills if k.at is not None and k.recovered_s is None and k.error is None)
    waiting = len(kills) - recovered - failed - recovering
    phase = (f"{min(elapsed_s, duration_s):.1f} of {duration_s:g} s of traffic" if elapsed_s < duration_s
             else f"{elapsed_s:.1f} s, calls in progress finishing")
    parts = [f"{n} {what}" for n, what in ((recovered, "recovered"), (recovering, "recovering"),
                                           (failed, "not recovered"), (waiting, "to come")) if n]
    return f"chaos: {phase}, kills: {', '.join(parts) or 'none'}"


async def show_progress(progress, start: float, duration_s: float, kills: list[Kill]) -> None:
    while True:
        progress.show(progress_text(time.monotonic() - start, duration_s, kills))
        await asyncio.sleep(0.25)


# -- tables for machines: CSV, and the recovery times' chart ------------------------------------------
KILL_COLUMNS = ("program", "kind", "planned_s", "at_s", "failover_s", "recovered_s", "error")


def csv_document(r: dict[str, Any], command: str = "mxone chaos") -> str:
    """One row per kill (its recovery time, and a pair's failover); the run's totals in `#` lines."""
    totals = (f"seed {r['seed']}, {r['duration_s']:g} s, calls attempted {r['calls_attempted']}, completed "
              f"{r['calls_completed']}, events lost {r['events_lost']}, duplicated {r['events_duplicated']}, "
              f"settings lost {r['settings_lost']} of {r['settings_checked']}")
    return reporting.csv_text(r["kills"], columns=KILL_COLUMNS,
                           comments=[command, r.get("machine", reporting.load_note()), totals])


def recovery_chart(r: dict[str, Any], path, command: str = "mxone chaos") -> None:
    """Each kill's recovery time (and a broker pair's failover time) as bars, in kill order."""
    labels = [f"{k['program'] or k['kind']} at {k['at_s'] if k['at_s'] is not None else k['planned_s']:.1f} s"
              for k in r["kills"]]
    series = [("exchange whole again", [k["recovered_s"] for k in r["kills"]])]
    if any(k.get("failover_s") is not None for k in r["kills"]):
        series.append(("other broker active", [k.get("failover_s") for k in r["kills"]]))
    title = (f"chaos: recovery time of each kill ({r['topology']}, seed {r['seed']}, {r['duration_s']:g} s)\n"
             f"{command}\n{r.get('machine', '')}")
    reporting.bar_chart(path, title, "seconds after the kill", labels, series)


def set_settings_in_thread(topology) -> dict[str, dict[str, Any]]:
    with BusClient(topology.broker, name="chaos") as client:
        return set_settings(client, topology)


def check_settings_in_thread(topology, expected) -> tuple[int, int, list[str]]:
    with BusClient(topology.broker, name="chaos") as client:
        return check_settings(client, expected)


def calls_left_in_thread(topology) -> int:
    """Calls the exchange still has after the traffic: those whose hang-up met a dead LIM or broker
    and was given up (reported, not a must-be-zero figure: the exchange was told nothing more)."""
    with Exchange(topology) as exchange:
        return len(exchange.calls())


def must_be_zero(report: dict[str, Any]) -> dict[str, int]:
    """Events lost at CSTA monitors (the CSTA servers register and get lost events replayed, also
    after a broker failover or restart); calls stalled outside any broker outage (the traffic
    generator is a plain bus client: no replay for it across a broker outage); settings lost;
    processes that never came back."""
    figures = {"events_lost": report["events_lost"],
               "calls_stalled_unexplained": report["calls_stalled_unexplained"],
               "settings_lost": report["settings_lost"],
               "kills_not_recovered": sum(1 for k in report["kills"] if k["recovered_s"] is None)}
    return {k: v for k, v in figures.items() if v}


def chaos_topology(source: Path, target: Path, pair: bool) -> Path:
    """The topology on free ports; with `pair`, a backup broker beside the primary (a Binary Star
    pair) if the file has none."""

    data = yaml.safe_load(Path(source).read_text())
    if pair and not data["broker"].get("backup"):
        data["broker"]["backup"] = {"address": data["broker"].get("address", "127.0.0.1"),
                                    "router_port": 1, "pub_port": 2, "sub_port": 3}  # moved just below
    target.write_text(yaml.safe_dump(move_to_free_ports(data), sort_keys=False))
    return target


def run_chaos(options: ChaosOptions, topology_file: Path | None = None, run_dir: Path | None = None,
              pair: bool = False) -> dict[str, Any]:
    """Start the throwaway exchange, run the chaos, stop the exchange; the report."""
    source = topology_file or default_topology_path()
    load_topology(source)  # a broken file is refused before anything starts
    write = lambda run_dir: chaos_topology(source, run_dir / "chaos-topology.yaml", pair)
    machine = reporting.load_note()  # before our own exchange adds to it
    with running_exchange(write, run_dir, prefix="mxone-chaos-", log=log) as running:
        topology = running.topology
        report = asyncio.run(chaos(running.cluster, topology, options))
        report.update({"seed": options.seed, "duration_s": options.duration, "topology": topology.name,
                       "broker_pair": topology.broker.backup is not None, "machine": machine})
        report["must_be_zero_not_zero"] = must_be_zero(report)
        return report


def format_report(r: dict[str, Any]) -> str:
    rows = [
        ("exchange", f"{r['topology']}{' with a broker pair' if r.get('broker_pair') else ''}, "
                     f"{r['duration_s']:g} s of office traffic, seed {r['seed']}"),
        ("calls attempted", str(r["calls_attempted"])),
        ("calls completed", str(r["calls_completed"])),
        ("calls released by failure", str(r["calls_released_by_failure"])),
        ("calls failed otherwise", str(r["calls_failed_otherwise"])),
        ("why (failed and released)", ", ".join(f"{k} x{v}" for k, v in r["failure_reasons"].items()) or "-"),
        ("events lost (must be 0)", f"{r['events_lost']} over {r['monitored_call_sides_checked']} monitored call "
                                    f"sides checked ({r['monitored_call_sides_not_checked']} not checked: monitor "
                                    f"reconnecting)" + ("; by kill overlapping: "
                                    + ", ".join(f"{k} {v}" for k, v in r["events_lost_by_kill"].items())
                                    if r["events_lost"] else "")),
        ("events duplicated", str(r["events_duplicated"])),
        ("calls stalled", f"{r['calls_stalled']} (unexplained, must be 0: {r['calls_stalled_unexplained']})"
         + (f"; across: {', '.join(f'{k} {v}' for k, v in r['calls_stalled_by_kill'].items())}"
            if r["calls_stalled"] else "")
         + (f"; {r['calls_stalled_explained_by_lim_death']} more whose LIM died, not counted"
            if r["calls_stalled_explained_by_lim_death"] else "")),
        ("settings lost (must be 0)", f"{r['settings_lost']} of {r['settings_checked']}"),
    ]
    if r.get("calls_left_in_exchange"):
        rows.append(("calls left in the exchange", f"{r['calls_left_in_exchange']} (hang-ups given up on)"))
    for kill in r["kills"]:
        got = f"whole again after {kill['recovered_s']:.2f} s" if kill["recovered_s"] is not None else \
            f"NOT RECOVERED: {kill['error']}"
        if kill.get("failover_s") is not None:
            got = f"other broker active after {kill['failover_s']:.2f} s, {got}"
        when = f"{kill['at_s']:.1f} s" if kill["at_s"] is not None else f"(planned {kill['planned_s']:.1f} s)"
        rows.append((f"kill {kill['program'] or kill['kind']} at {when}", got))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if r["events_lost_detail"]:
        lines += ["lost:"] + [f"  {d}" for d in r["events_lost_detail"]]
    if r["settings_lost_detail"]:
        lines += ["settings lost:"] + [f"  {d}" for d in r["settings_lost_detail"]]
    return "\n".join(lines)
