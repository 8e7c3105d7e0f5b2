"""`mxone soak`: hours of steady traffic on a throwaway exchange, sampled for what grows.

The workload, all at once for `duration` seconds:
- call-centre traffic (tools/traffic.py's callcentre profile: external callers to the ACD group,
  agents answer, wrap up) and office traffic (extensions calling each other across LIMs, no
  transfers, so every call has the fixed event sequences of tools/measure.py), each in its own
  traffic driver thread;
- every office phone monitored through its own LIM's CSTA server for the whole run (tools/chaos.py's
  Monitors): their events are checked call by call at the end (lost, duplicated);
- churn: CSTA sessions that connect (with an ECMA-354 application session), start monitors on
  agents and extensions, stop some, and leave (some by just closing the connection);
- features changed and read back through CSTA (do not disturb, forwarding) on devices kept out of
  the traffic.

Every `interval` seconds a sample: each program's RSS, file descriptors and threads (/proc, pids
from supervisord), supervisord's own, the sizes of the files in data/ (sqlite and its WAL) and of
each log, the events received at the monitors, and CSTA latencies (a SnapshotDevice probe, the
churn's MonitorStart). tools/soak_verdict.py judges the samples after the warm-up.
"""
from __future__ import annotations

import asyncio
import configparser
import math
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cluster.control import Cluster
from cluster.exchange import running_exchange
from csta_front.client import CstaClient, CstaError
from tools.chaos import Monitors, analyse, setting_devices
from tools.measure import percentile, proc_stats
from tools.soak_verdict import DEFAULT_PCT_PER_HOUR, judge, slopes_by_kind, to_csv, verdict
from tools.traffic import make_options, resources_for
from tools.traffic_run import TrafficDriver
from topology.loader import default_topology_path, load_topology
from topology.ports import move_to_free_ports

import yaml

CHURN_EVERY_S = 2.0        # a new churn session this often
CHURN_HOLD_S = (1.0, 4.0)  # how long a churn session stays
FEATURE_EVERY_S = 3.0      # a feature changed this often
SETTLE_S = 5.0             # after the traffic, how long the last CSTA events may take
LOG_SLACK = 1.1            # a log may pass its rotation size by a little before supervisord rotates it


def log(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SoakOptions:
    duration: float = 3600.0
    interval: float = 60.0
    warmup: float | None = None       # default: a tenth of the duration, at least two intervals
    rate: float = 1.0                 # office calls per second
    callcentre_rate: float = 0.3      # callers per second to the ACD group
    pct_per_hour: float = DEFAULT_PCT_PER_HOUR
    seed: int = 0

    @property
    def warmup_s(self) -> float:
        if self.warmup is not None:
            return self.warmup
        return max(2 * self.interval, self.duration / 10)


def make_soak_options(duration: float | None = None, interval: float | None = None, warmup: float | None = None,
                      rate: float | None = None, callcentre_rate: float | None = None,
                      pct_per_hour: float | None = None, seed: int | None = None) -> SoakOptions:
    """Checked options; ValueError in one line naming the option."""
    d = SoakOptions()
    duration = d.duration if duration is None else duration
    interval = d.interval if interval is None else interval
    if not 10 <= duration < math.inf:
        raise ValueError(f"--duration must be at least 10 seconds, not {duration:g}")
    if not 0.5 <= interval <= duration / 3:
        raise ValueError(f"--interval must be from 0.5 s to a third of --duration, not {interval:g}")
    if warmup is not None and not 0 <= warmup < duration:
        raise ValueError(f"--warmup must be from 0 to below --duration, not {warmup:g}")
    for name, value in (("--rate", rate), ("--callcentre-rate", callcentre_rate)):
        if value is not None and not 0 <= value <= 50:
            raise ValueError(f"{name} must be from 0 to 50 calls per second, not {value:g}")
    if pct_per_hour is not None and not 0 < pct_per_hour < math.inf:
        raise ValueError(f"--max-growth must be above 0 (% of the mean per hour), not {pct_per_hour:g}")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 10**6)
    return SoakOptions(duration=duration, interval=interval, warmup=warmup,
                       rate=d.rate if rate is None else rate,
                       callcentre_rate=d.callcentre_rate if callcentre_rate is None else callcentre_rate,
                       pct_per_hour=d.pct_per_hour if pct_per_hour is None else pct_per_hour, seed=seed)


# -- sampling ------------------------------------------------------------------------------------------------
def log_caps(conf: Path) -> dict[str, int]:
    """log file name -> its rotation size, from the supervisord config."""
    parser = configparser.RawConfigParser()
    parser.read(conf)
    caps: dict[str, int] = {}
    for section in parser.sections():
        for key, size_key in (("stdout_logfile", "stdout_logfile_maxbytes"), ("logfile", "logfile_maxbytes")):
            if parser.has_option(section, key) and parser.has_option(section, size_key):
                caps[Path(parser.get(section, key)).name] = _bytes(parser.get(section, size_key))
    return caps


def _bytes(text: str) -> int:
    text = text.strip().upper()
    for suffix, factor in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3)):
        if text.endswith(suffix):
            return int(float(text[:-2]) * factor)
    return int(text)


class Sampler:
    """One flat sample of the cluster (see tools/soak_verdict.py for the names), and the restarts
    seen between samples (a program whose pid changed)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.pids: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self.caps = log_caps(cluster.conf)
        self.over_cap: set[str] = set()

    def sample(self, t: float, extra: dict[str, float | None]) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(t, 3)}
        pids = {p["name"]: p["pid"] for p in self.cluster.processes() if p["pid"]}
        supervisord = self.cluster.supervisord_pid()
        if supervisord:
            pids["supervisord"] = supervisord
        for name, pid in sorted(pids.items()):
            if self.pids.get(name, pid) != pid:
                self.restarts[name] = self.restarts.get(name, 0) + 1
            self.pids[name] = pid
            try:
                for metric, value in proc_stats(pid).items():
                    out[f"proc:{name}:{metric}"] = value
            except OSError:
                pass  # gone between the listing and the read: the next sample says more
        run = self.cluster.run_dir
        for path in sorted((run / "data").glob("*")):
            if path.is_file():
                out[f"file:data/{path.name}:bytes"] = path.stat().st_size
        total = 0
        for path in sorted((run / "logs").glob("*")):
            if not path.is_file():
                continue
            size = path.stat().st_size
            total += size
            if path.name in self.caps:  # the live file; rotated ones (NAME.log.1) count in the total
                out[f"log:{path.stem}:bytes"] = size
                if size > self.caps[path.name] * LOG_SLACK:
                    self.over_cap.add(path.name)
        out["log:all:bytes"] = total
        out.update(extra)
        return out


# -- the workload ---------------------------------------------------------------------------------------------
class Activity:
    """What the CSTA side did (churn, features, latency probes), counted for the samples."""

    def __init__(self):
        self.sessions_opened = self.sessions_closed = self.monitors_started = self.monitors_stopped = 0
        self.abrupt_leaves = 0
        self.errors: dict[str, int] = {}
        self.monitor_start_ms: list[float] = []   # since the last sample
        self.feature_changes = self.settings_lost = 0
        self.settings_lost_detail: list[str] = []

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def churn(topology, servers: dict[int, Any], devices: list[str], activity: Activity,
                rng: random.Random, stop: asyncio.Event) -> None:
    """Sessions that come and go, each in a task of its own, one started every CHURN_EVERY_S."""
    tasks: set[asyncio.Task] = set()

    async def one(lim: int) -> None:
        address, port = topology.lim(lim).address, servers[lim].port
        try:
            client = await CstaClient.connect(address, port, timeout=5.0)
        except (OSError, asyncio.TimeoutError):
            activity.error("connect")
            return
        activity.sessions_opened += 1
        try:
            await client.start_application_session(f"soak churn {lim}")
            xrefs = []
            for device in rng.sample(devices, min(len(devices), rng.randint(1, 4))):
                started = time.monotonic()
                xrefs.append(await client.monitor_start(device))
                activity.monitor_start_ms.append((time.monotonic() - started) * 1000)
                activity.monitors_started += 1
            hold_until = time.monotonic() + rng.uniform(*CHURN_HOLD_S)
            while time.monotonic() < hold_until and not stop.is_set():
                try:  # read what the monitors report, as a client does
                    await asyncio.wait_for(client.events.get(), max(0.01, hold_until - time.monotonic()))
                except asyncio.TimeoutError:
                    pass
            if rng.random() < 0.7:  # most stop their monitors; the rest just leave
                for xref in xrefs:
                    await client.monitor_stop(xref)
                    activity.monitors_stopped += 1
            else:
                activity.abrupt_leaves += 1
        except (OSError, ConnectionError, asyncio.TimeoutError, CstaError) as exc:
            activity.error(type(exc).__name__)
        finally:
            await client.close()
            activity.sessions_closed += 1

    while not stop.is_set():
        task = asyncio.create_task(one(rng.choice(sorted(servers))))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        try:
            await asyncio.wait_for(stop.wait(), CHURN_EVERY_S)
        except asyncio.TimeoutError:
            pass
    await asyncio.gather(*tasks, return_exceptions=True)


async def features(topology, servers: dict[int, Any], plain: dict[int, list[str]], activity: Activity,
                   rng: random.Random, stop: asyncio.Event) -> None:
    """Do not disturb and forwarding switched on and off through one CSTA session per LIM, each
    change read back (a setting the exchange reports wrong counts as lost)."""
    clients: dict[int, CstaClient] = {}
    try:
        for lim in servers:
            if len(plain.get(lim, [])) >= 2:
                clients[lim] = await CstaClient.connect(topology.lim(lim).address, servers[lim].port)
        if not clients:
            return
        while not stop.is_set():
            lim = rng.choice(sorted(clients))
            client, (d0, d1) = clients[lim], plain[lim][:2]
            try:
                if rng.random() < 0.5:
                    on = rng.random() < 0.5
                    await client.set_do_not_disturb(d0, on)
                    got: Any = await client.get_do_not_disturb(d0)
                    want: Any = on
                else:
                    to = rng.choice([d0, None])
                    await client.set_forwarding(d1, "forwardImmediate", to)
                    got = (await client.get_forwarding(d1)).get("forwardImmediate")
                    want = to
                activity.feature_changes += 1
                if got != want:
                    activity.settings_lost += 1
                    if len(activity.settings_lost_detail) < 20:
                        activity.settings_lost_detail.append(f"{d0 if isinstance(want, bool) else d1}: set {want!r}, read {got!r}")
            except (OSError, ConnectionError, asyncio.TimeoutError, CstaError) as exc:
                activity.error(f"feature {type(exc).__name__}")
            try:
                await asyncio.wait_for(stop.wait(), FEATURE_EVERY_S)
            except asyncio.TimeoutError:
                pass
    finally:
        for client in clients.values():
            await client.close()


async def snapshot_ms(topology, servers: dict[int, Any], device: str) -> float | None:
    """The median of five SnapshotDevice round trips on a fresh connection to LIM 1's (the first) server."""
    lim = sorted(servers)[0]
    try:
        async with await CstaClient.connect(topology.lim(lim).address, servers[lim].port) as client:
            times = []
            for _ in range(5):
                started = time.monotonic()
                await client.snapshot_device(device)
                times.append((time.monotonic() - started) * 1000)
            return round(sorted(times)[2], 3)
    except (OSError, ConnectionError, asyncio.TimeoutError, CstaError):
        return None


# -- the run ---------------------------------------------------------------------------------------------------
async def soak(cluster: Cluster, topology, options: SoakOptions,
               on_sample: Callable[[list[dict[str, Any]]], None] = lambda samples: None) -> dict[str, Any]:
    servers = cluster.csta_servers(topology)
    if not servers:
        raise ValueError("no CSTA server is initiated in this topology: the soak monitors through CSTA")
    rng = random.Random(f"soak-{options.seed}")
    plain, _ = setting_devices(topology, per_lim=2)
    kept_out = frozenset(d for ds in plain.values() for d in ds)
    centre = make_options("callcentre", rate=options.callcentre_rate or 0.01, duration=options.duration,
                          seed=options.seed, drain=30)
    office = make_options("office", rate=options.rate or 0.01, duration=options.duration, seed=options.seed + 1,
                          talk="uniform:1-4", ring="uniform:0.3-1.5", transfer_share=0, drain=30)
    centre_res = resources_for(topology, centre, exclude=kept_out)
    office_res = resources_for(topology, office, exclude=kept_out | set(centre_res.agents))
    monitored = {lim: list(p) for lim, p in office_res.phones.items() if lim in servers}
    churn_devices = list(centre_res.agents) + [p for ps in office_res.phones.values() for p in ps]
    monitors = Monitors(topology, servers, monitored)
    readiness = {lim: asyncio.Event() for lim in monitored}
    keepers = [asyncio.create_task(monitors.keep(lim, readiness[lim])) for lim in monitored]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readiness.values())), 30)
    log(f"{options.duration:g} s: office {options.rate:g} calls/s over {sum(map(len, monitored.values()))} "
        f"monitored phones, call centre {options.callcentre_rate:g} calls/s to group {centre_res.group}, "
        f"CSTA churn and feature changes; a sample every {options.interval:g} s, warm-up {options.warmup_s:g} s; "
        f"seed {options.seed}")

    holder: dict[str, Any] = {}
    drivers: dict[str, TrafficDriver] = {}
    ended = threading.Event()

    def traffic(name: str, opts, res) -> None:
        driver = TrafficDriver(topology, opts, res)
        drivers[name] = driver
        try:
            if name == "callcentre" and not driver.prepare_agents(log):
                raise ValueError(f"no agent of ACD group {res.group} could be made ready")
            holder[name] = driver.run(until=ended.is_set)
            holder[f"{name}_engine"] = driver.engine
        finally:
            if name == "callcentre":
                driver.restore_agents()
            driver.close()

    activity = Activity()
    stop = asyncio.Event()
    workers = [asyncio.create_task(churn(topology, servers, churn_devices, activity, rng, stop)),
               asyncio.create_task(features(topology, servers, plain, activity, rng, stop))]
    flows = []
    if options.callcentre_rate > 0:
        flows.append(asyncio.create_task(asyncio.to_thread(traffic, "callcentre", centre, centre_res)))
    if options.rate > 0:
        flows.append(asyncio.create_task(asyncio.to_thread(traffic, "office", office, office_res)))

    sampler = Sampler(cluster)
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    last_events, last_t = 0, start
    probe_device = next(iter(kept_out), churn_devices[0])
    try:
        k = 0
        while True:
            due = start + k * options.interval
            if due > start + options.duration + 1e-6:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for flow in flows:
                if flow.done() and flow.exception() is not None:
                    raise flow.exception()  # type: ignore[misc]
            now = time.monotonic()
            events = sum(len(v) for v in monitors.log.events.values())
            starts, activity.monitor_start_ms = activity.monitor_start_ms, []
            extra = {
                "count:events:n": events,
                "count:events:per_s": round((events - last_events) / max(1e-6, now - last_t), 3) if k else None,
                "count:churn_sessions:n": activity.sessions_opened,
                "latency:snapshot_device:ms": await snapshot_ms(topology, servers, probe_device),
                "latency:monitor_start_p50:ms": None if not starts else round(percentile(starts, 50), 3),
            }
            last_events, last_t = events, now
            samples.append(await asyncio.to_thread(sampler.sample, now - start, extra))
            on_sample(samples)
            k += 1
    finally:
        stop.set()
        ended.set()  # arrivals end (they end by themselves at the duration too); calls drain
        await asyncio.gather(*flows, return_exceptions=True)
    for flow in flows:
        if flow.exception() is not None:
            raise flow.exception()  # type: ignore[misc]
    for outcome in await asyncio.gather(*workers, return_exceptions=True):
        if isinstance(outcome, Exception):  # churn or features gave up (a server refused at the start)
            activity.error(f"{type(outcome).__name__}: {outcome}")
    # The last CSTA events of the office calls: until none is missing, or SETTLE_S.
    lim_of = {e.number: e.lim for e in topology.extensions}
    engine = holder.get("office_engine")
    loss: dict[str, Any] = {"events_lost": 0, "events_duplicated": 0}
    if engine is not None:
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            loss = analyse(engine, monitors.log, [], lim_of, 30.0)
            if loss["events_lost"] == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)
        loss = analyse(engine, monitors.log, [], lim_of, 30.0)
    await monitors.close()
    for task in keepers:
        task.cancel()
    trends = judge(samples, options.warmup_s, options.pct_per_hour)
    restarts = {k: v for k, v in sampler.restarts.items() if v}
    result = verdict(trends, events_lost=loss["events_lost"], events_duplicated=loss["events_duplicated"],
                     restarts=restarts, logs_over_cap=sorted(sampler.over_cap), settings_lost=activity.settings_lost)
    return {
        "verdict": result,
        "options": {"duration_s": options.duration, "interval_s": options.interval, "warmup_s": options.warmup_s,
                    "office_rate": options.rate, "callcentre_rate": options.callcentre_rate,
                    "max_growth_pct_per_hour": options.pct_per_hour, "seed": options.seed},
        "samples": len(samples),
        "slopes_per_hour_by_kind": slopes_by_kind(trends),
        "growing": [t.as_dict() for t in trends if t.growing],
        "trends": [t.as_dict() for t in trends],
        "events": {k: loss.get(k) for k in ("monitored_call_sides_checked", "events_lost", "events_duplicated",
                                             "events_lost_detail", "calls_stalled", "calls_stalled_detail")},
        "restarts": restarts,
        "logs_over_rotation_size": sorted(sampler.over_cap),
        "csta": {"churn_sessions": activity.sessions_opened, "monitors_started": activity.monitors_started,
                 "monitors_stopped": activity.monitors_stopped, "left_without_stopping": activity.abrupt_leaves,
                 "feature_changes": activity.feature_changes, "settings_lost": activity.settings_lost,
                 "settings_lost_detail": activity.settings_lost_detail, "errors": activity.errors},
        "traffic": {name: holder.get(name) for name in ("office", "callcentre")},
        "_samples": samples,
    }


def soak_topology(source: Path, target: Path) -> Path:
    target.write_text(yaml.safe_dump(move_to_free_ports(yaml.safe_load(Path(source).read_text())), sort_keys=False))
    return target


def run_soak(options: SoakOptions, topology_file: Path | None = None, run_dir: Path | None = None,
             csv_file: Path | None = None) -> dict[str, Any]:
    """Start the throwaway exchange (on free ports), soak it, stop it; the report. With `csv_file`,
    the samples are written there after every sample (an interrupted run keeps what it measured)."""
    source = topology_file or default_topology_path()
    load_topology(source)  # a broken file is refused before anything starts

    def write_csv(samples: list[dict[str, Any]]) -> None:
        if csv_file is not None:
            tmp = csv_file.with_name(csv_file.name + ".tmp")
            tmp.write_text(to_csv(samples))
            tmp.replace(csv_file)

    with running_exchange(lambda d: soak_topology(source, d / "soak-topology.yaml"), run_dir,
                          prefix="mxone-soak-", log=log) as running:
        report = asyncio.run(soak(running.cluster, running.topology, options, write_csv))
    report["topology"] = str(source)
    return report
