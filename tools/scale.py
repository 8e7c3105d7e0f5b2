"""`mxone scale`: how the exchange behaves as it grows (issue 8).

Three measurements, each on a throwaway exchange on free ports that is always stopped afterwards:

- `curve`: the same total load (calls, rate, and extensions in total) on 1, 2, 4, ... LIMs, through
  `tools.bench.measure` (cross-LIM calls, every device of the load monitored on its own LIM's CSTA
  server). Per size: calls/s, CPU seconds per call per process kind (as measured, and net of the
  exchange's idle work, which is measured before the load), startup time, memory.
- `startup`: `mxone up --detach` on a generated topology, timed from the command to every LIM
  registered and every CSTA server accepting a TCP connection; CPU spent by each process kind to get
  there, memory.
- `monitors`: one front end (LIM 1's CSTA server) holds N monitored devices spread over every LIM:
  MonitorStart for all of them over S sessions, one more refused with overallMonitorLimitExceeded
  when the server's max_monitors is N, then calls between a sample of them with every expected event
  checked at the right monitor and no event at any other.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from broker.client import BusClient, BusError
from broker.protocol import Kind, csta_node
from cluster.exchange import running_exchange
from csta_front.client import CstaClient, CstaError, event_name, field, text
from lim.phone import Exchange
from tools import report
from tools.bench import measure
from tools.measure import (
    CALLEE_EVENTS,
    CALLER_EVENTS,
    call_id_of,
    cpu_seconds,
    kind_of,
    percentile,
    rss_mb,
)
from topology.generate import generate_topology
from topology.ports import move_to_free_ports

MAX_SIZE = 250  # LIM addresses 127.0.1.x: more would leave 127.0.1.0/24, which is fine, but not tested


def log(message: str) -> None:
    report.say(f"scale: {message}")


# -- a throwaway exchange ------------------------------------------------------------------------------
def write_topology(path: Path, lims: int, extensions_per_lim: int, csta_on: str = "all",
                   max_monitors: int | None = None, max_sessions: int | None = None,
                   heartbeat_ms: int | None = None) -> Path:
    """A generated topology on free ports. `csta_on`: "all" (an XML server on every LIM) or "first"
    (on LIM 1 only), with `max_monitors`/`max_sessions` when given. `heartbeat_ms`: the bus
    heartbeat interval instead of the generated 100 ms, with dead_after_ms six times it (as 100/600)."""

    data = yaml.load(generate_topology(lims, extensions_per_lim, csta=False, heartbeat_ms=heartbeat_ms or 100),
                     Loader=_loader())
    for lim in data["lims"]:
        if csta_on == "all" or lim["number"] == 1:
            server: dict[str, Any] = {"server_type": "XML", "port": 8882}
            if max_monitors is not None:
                server["max_monitors"] = max_monitors
            if max_sessions is not None:
                server["max_sessions"] = max_sessions
            lim["csta"] = server
    data["live_view"] = {"enabled": False}  # a web page watching every event would be measured too
    path.write_text(yaml.dump(move_to_free_ports(data), Dumper=_dumper(), sort_keys=False))
    return path


def _loader():
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _dumper():
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@contextmanager
def exchange(lims: int, extensions_per_lim: int, *, run_dir: Path | None = None, timeout: float | None = None,
             **topology_options) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """Start a generated exchange with `mxone up --detach` (a child process, timed: the command a
    user runs) and yield (cluster, topology, startup figures); stop it afterwards, timed too. The
    run directory is removed after a clean run when it was made here, kept with its logs otherwise."""
    startup: dict[str, Any] = {}
    write = lambda run_dir: write_topology(run_dir / "scale-topology.yaml", lims, extensions_per_lim,
                                           **topology_options)
    launcher = lambda cluster, topo_file, _: startup.update(start(cluster, topo_file, timeout or 60 + 2.0 * lims))
    running = None
    try:
        with running_exchange(write, run_dir, prefix="mxone-scale-", launcher=launcher, shutdown_timeout=60,
                              log=log) as running:
            yield running.cluster, running.topology, startup
    finally:
        if running is not None and running.shutdown_s is not None:
            startup["shutdown_s"] = running.shutdown_s  # `mxone down`'s work


def start(cluster, topo_file: Path, timeout: float) -> dict[str, Any]:
    """Run `mxone up --detach` and wait for every CSTA server to accept a connection. Figures:
    seconds to `up` returning and to every server accepting; CPU seconds spent so far per process
    kind (supervisord's own, and the `mxone up` command's, included); RSS per kind."""
    cmd = [sys.executable, "-m", "cli.main", "up", str(topo_file), "--detach", "--run-dir", str(cluster.run_dir),
           "--timeout", str(timeout)]
    load_before = os.getloadavg()[0]  # the machine is shared: how busy it was before we started
    before = os.times()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60)
    up_s = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mxone up failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    topology = cluster.topology()
    servers = cluster.csta_servers(topology)
    waiting = {n: (topology.lim(n).address, s.port) for n, s in servers.items()}
    deadline = time.monotonic() + timeout
    while waiting:
        for n, address in list(waiting.items()):
            try:
                with socket.create_connection(address, timeout=1):
                    del waiting[n]
            except OSError:
                pass
        if waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"CSTA servers of LIMs {sorted(waiting)} not accepting after {timeout:.0f} s")
            time.sleep(0.05)
    ready_s = time.monotonic() - t0
    after = os.times()
    cpu: dict[str, float] = {"mxone up": (after.children_user + after.children_system)
                                         - (before.children_user + before.children_system)}
    memory: dict[str, list[float]] = {}
    pid = cluster.supervisord_pid()
    if pid:
        cpu["supervisord"] = cpu_seconds(pid)
        memory["supervisord"] = [rss_mb(pid)]
    for p in cluster.processes():
        if p["pid"]:
            try:
                kind = kind_of(p["name"])
                cpu[kind] = cpu.get(kind, 0.0) + cpu_seconds(p["pid"])
                memory.setdefault(kind, []).append(rss_mb(p["pid"]))
            except OSError:
                pass
    return {"lims": len(topology.lims), "extensions": len(topology.extensions), "csta_servers": len(servers),
            "load_average_1min_before": round(load_before, 2),
            "up_s": round(up_s, 3), "startup_s": round(ready_s, 3),
            "startup_cpu_s": {k: round(v, 3) for k, v in cpu.items()},
            "memory_mb_max": {k: round(max(v), 1) for k, v in memory.items()},
            "memory_mb_total": {k: round(sum(v), 1) for k, v in memory.items()}}


def cpu_sample(cluster) -> dict[tuple[str, int], float]:
    """CPU seconds so far of every supervised process, by (kind, pid)."""
    sample = {}
    for p in cluster.processes():
        if p["pid"]:
            try:
                sample[(kind_of(p["name"]), p["pid"])] = cpu_seconds(p["pid"])
            except OSError:
                pass
    return sample


def cpu_used(before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]) -> dict[str, float]:
    """CPU seconds per kind between two samples, over the processes in both (a CSTA server that is
    not initiated exits just after startup; a restarted process starts again from zero)."""
    used: dict[str, float] = {}
    for (kind, pid), value in after.items():
        if (kind, pid) in before:
            used[kind] = used.get(kind, 0.0) + value - before[(kind, pid)]
    return used


# -- startup -------------------------------------------------------------------------------------------
def run_startup(args) -> dict[str, Any]:
    with exchange(args.lims, args.extensions_per_lim, run_dir=args.run_dir, timeout=args.timeout,
                  csta_on=args.csta, heartbeat_ms=args.heartbeat_ms) as (cluster, _, fig):
        log(f"{args.lims} LIMs x {args.extensions_per_lim} extensions up in {fig['startup_s']:.1f} s")
        fig["idle_cpu_per_s"] = idle_cpu(cluster, 2.0)  # what the exchange costs once up, doing nothing
        return fig


def idle_cpu(cluster, seconds: float) -> dict[str, float]:
    """CPU seconds per second per process kind over `seconds` of doing nothing."""
    a = cpu_sample(cluster)
    t = time.monotonic()
    time.sleep(seconds)
    b = cpu_sample(cluster)
    elapsed = time.monotonic() - t
    return {k: round(v / elapsed, 4) for k, v in cpu_used(a, b).items()}


# -- the curve -----------------------------------------------------------------------------------------
def run_curve(args) -> dict[str, Any]:
    rows = []
    machine = report.load_note()
    for i, size in enumerate(args.sizes, 1):
        per_lim = max(2, args.total_extensions // size)
        log(f"size {size}: {size} LIMs x {per_lim} extensions, {args.calls} calls at <= {args.rate:g}/s")
        report.current().show(f"scale: {size} LIMs ({i} of {len(args.sizes)}): starting", force=True)
        with exchange(size, per_lim, heartbeat_ms=args.heartbeat_ms) as (cluster, topology, startup):
            rows.append(curve_point(cluster, topology, startup, per_lim, args,
                                    label=f"scale: {size} LIMs ({i} of {len(args.sizes)})"))
    return {"command": getattr(args, "command_line", "mxone scale curve"), "machine_before": machine,
            "machine_after": report.load_note(), "total_extensions": args.total_extensions, "calls": args.calls,
            "rate": args.rate, "workers": args.workers, "heartbeat_ms": args.heartbeat_ms or 100, "points": rows}


def curve_point(cluster, topology, startup: dict[str, Any], per_lim: int, args, label: str = "scale") -> dict[str, Any]:
    # The exchange's idle work (heartbeats, liveness) grows with its size: measured first, so that
    # what a call costs can be told apart from what standing still costs.
    idle_per_s = idle_cpu(cluster, args.idle_s)
    bench_args = argparse.Namespace(lims=len(topology.lims), extensions_per_lim=per_lim, calls=args.calls,
                                    rate=args.rate, workers=args.workers, progress_label=label)
    r = asyncio.run(measure(cluster, topology, bench_args))
    done = r["calls_completed"] or 1
    per_call = {k: v for k, v in r["cpu_seconds_per_call"].items() if v is not None}
    net = {k: max(0.0, v - idle_per_s.get(k, 0.0) * r["duration_s"] / done) for k, v in per_call.items()}
    return {
        "lims": len(topology.lims), "extensions_per_lim": per_lim, "startup_s": startup["startup_s"],
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine is shared: how busy it was (us included)
        "calls_completed": r["calls_completed"], "calls_per_second": r["calls_per_second"],
        "lost_events": r["lost_events"], "duplicated_events": r["duplicated_events"],
        "event_latency_p50_ms": r["event_latency_p50_ms"], "event_latency_p99_ms": r["event_latency_p99_ms"],
        "cpu_ms_per_call": {k: round(v * 1000, 3) for k, v in per_call.items()},
        "cpu_ms_per_call_total": round(sum(per_call.values()) * 1000, 3),
        "idle_cpu_per_s": {k: round(v, 4) for k, v in idle_per_s.items()},
        "cpu_ms_per_call_net_of_idle": {k: round(v * 1000, 3) for k, v in net.items()},
        "cpu_ms_per_call_net_total": round(sum(net.values()) * 1000, 3),
        "memory_mb": r["memory_mb"],
    }


# -- one front end, many monitors ----------------------------------------------------------------------
async def monitor_many(cluster, topology, devices: int, sessions: int, in_flight: int,
                       sample_calls: int) -> dict[str, Any]:
    server = cluster.csta_servers(topology)[1]
    lim1 = topology.lim(1)
    targets = [e.number for e in topology.extensions][:devices]
    if len(targets) < devices:
        raise RuntimeError(f"the topology has only {len(targets)} extensions, {devices} asked")
    csta_pid = next(p["pid"] for p in cluster.processes() if p["name"] == csta_node(1))
    rss_before = rss_mb(csta_pid)
    cpu_before = cpu_sample(cluster)
    clients = [await CstaClient.connect(lim1.address, server.port) for _ in range(sessions)]
    xref_of: dict[str, str] = {}
    client_of: dict[str, Any] = {}
    errors: Counter = Counter()  # refused or lost MonitorStarts, by reason: counted, not fatal
    try:
        t0 = time.monotonic()

        async def monitor_share(client, share: list[str]) -> None:
            gate = asyncio.Semaphore(in_flight)  # pipelined, as a CTI server at startup does

            async def one(device: str) -> None:
                async with gate:
                    try:
                        xref_of[device] = await monitor_start(client, device)
                        client_of[device] = client
                    except CstaError as exc:
                        errors[f"{exc.category}/{exc.value}"] += 1
                    except (ConnectionError, asyncio.TimeoutError) as exc:
                        errors[type(exc).__name__] += 1
            await asyncio.gather(*(one(d) for d in share))

        await asyncio.gather(*(monitor_share(c, targets[i::sessions]) for i, c in enumerate(clients)))
        start_s = time.monotonic() - t0
        cpu_after = cpu_sample(cluster)
        rss_after = rss_mb(csta_pid)
        held = await asyncio.to_thread(server_status, topology)
        refused = None
        if server.max_monitors <= devices:
            extra = next((e.number for e in topology.extensions[devices:]), targets[0])
            try:
                await clients[0].monitor_start(extra)
                refused = "accepted"
            except CstaError as exc:
                refused = f"{exc.category}/{exc.value}"
        events = await sample_events(topology, clients, xref_of, client_of, sample_calls)
    finally:
        for client in clients:
            await client.close()
    cpu = {k: round(v, 3) for k, v in cpu_used(cpu_before, cpu_after).items()}
    return {"devices": devices, "sessions": sessions, "in_flight_per_session": in_flight,
            "max_monitors": server.max_monitors, "monitors_started": len(xref_of),
            "monitor_start_errors": dict(errors), "monitor_start_s": round(start_s, 3),
            "monitor_starts_per_s": round(devices / start_s, 1), "cpu_s_during_monitor_start": cpu,
            "server_sessions": held["sessions"], "server_monitored_devices": len(held["monitored_devices"]),
            "csta_rss_mb_before": round(rss_before, 1), "csta_rss_mb_after": round(rss_after, 1),
            "one_more_monitor_start": refused, **events}


def server_status(topology) -> dict[str, Any]:
    """What LIM 1's CSTA server itself says it holds (`csta.status` over the bus)."""
    with BusClient(topology.broker) as client:
        return client.request(csta_node(1), Kind.CSTA_STATUS, timeout=10.0)


async def monitor_start(client, device: str) -> str:
    """CstaClient.monitor_start with a longer timeout: thousands may be queued ahead of this one."""
    E = client.E
    root = await client.request(E.MonitorStart(E.monitorObject(E.deviceObject(device))), timeout=60)
    return text(root, "monitorCrossRefID")


async def sample_events(topology, clients, xref_of: dict[str, str], client_of: dict[str, Any],
                        calls: int) -> dict[str, Any]:
    """Calls between monitored devices on different LIMs, one after the other: every expected event
    at the caller's and the callee's monitor, and nothing at any other monitor."""
    logged_on = {e.number for e in topology.extensions if e.logged_on}
    in_groups = {m for g in topology.acd_groups for m in g.agents} | {m for g in topology.hunt_groups
                                                                      for m in g.all_members()}
    lim_of = {e.number: e.lim for e in topology.extensions}
    usable = [d for d in xref_of if d in logged_on and d not in in_groups]
    # Spread the sample over the whole set: callers from the first half, callees from the second.
    step = max(1, len(usable) // (2 * calls)) if calls else 1
    callers, callees = usable[:len(usable) // 2:step][:calls], usable[len(usable) // 2::step][:calls]
    device_of = {(id(client_of[d]), xref): d for d, xref in xref_of.items()}
    got: list[tuple[str, str, str | None]] = []  # (device, event, call ID)
    index: set[tuple[str, str, str | None]] = set()  # the same, for waiting on one
    stray = 0

    async def drain(client) -> None:
        nonlocal stray
        while True:
            event = await client.events.get()
            if event is None:
                return
            device = device_of.get((id(client), field(event, "monitorCrossRefID") or ""))
            if device is None:
                stray += 1
            else:
                got.append((device, event_name(event).removesuffix("Event"), call_id_of(event)))
                index.add(got[-1])

    readers = [asyncio.create_task(drain(c)) for c in clients]
    made: list[tuple[str, str, str]] = []
    latencies: list[float] = []
    call_errors: Counter = Counter()

    async def seen(device: str, name: str, call_id: str, deadline: float) -> bool:
        while (device, name, call_id) not in index:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.001)
        return True

    try:
        with Exchange(topology) as ex:
            for caller, callee in zip(callers, callees):
                try:
                    call_id = await asyncio.to_thread(lambda: ex.phone(caller).dial(callee)["call_id"])
                    made.append((caller, callee, call_id))
                    deadline = time.monotonic() + 5
                    await seen(callee, "Delivered", call_id, deadline)  # ringing: now it can be answered
                    t = time.monotonic()
                    await asyncio.to_thread(lambda: ex.phone(callee).answer())
                    if await seen(callee, "Established", call_id, deadline):
                        latencies.append((time.monotonic() - t) * 1000)
                    await asyncio.to_thread(lambda: ex.phone(caller).hangup())
                except BusError as exc:  # counted; the events check shows what it cost
                    call_errors[exc.code] += 1
        expected = len(made) * (len(CALLER_EVENTS) + len(CALLEE_EVENTS))
        deadline = time.monotonic() + 10
        while len(got) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything extra shows up too
    finally:
        for task in readers:
            task.cancel()
    lost = extra = 0
    known = set()
    for caller, callee, call_id in made:
        for device, want in ((caller, CALLER_EVENTS), (callee, CALLEE_EVENTS)):
            known.add((device, call_id))
            have = Counter(n for d, n, c in got if d == device and c == call_id)
            lost += sum((Counter(want) - have).values())
            extra += sum((have - Counter(want)).values())
    elsewhere = Counter(n for d, n, c in got if (d, c) not in known)  # by name: OutOfService says a LIM flapped
    return {"sample_calls": len(made), "sample_call_errors": dict(call_errors), "sample_lims": sorted({lim_of[d] for c in made for d in c[:2]}),
            "sample_events_expected": expected, "sample_events_received": len(got),
            "sample_events_lost": lost, "sample_events_duplicated": extra,
            "sample_events_at_other_monitors": sum(elsewhere.values()) + stray,
            "other_events_by_name": dict(elsewhere.most_common()),
            "answer_to_established_p50_ms": round(percentile(latencies, 50) or 0, 3)}


def run_monitors(args) -> dict[str, Any]:
    per_lim = args.extensions_per_lim
    lims = args.lims or -(-(args.devices + 2) // per_lim)  # enough extensions, and one spare for the refusal
    with exchange(lims, per_lim, run_dir=args.run_dir, csta_on="first", heartbeat_ms=args.heartbeat_ms,
                  max_monitors=args.max_monitors or args.devices, max_sessions=max(100, args.sessions)) \
            as (cluster, topology, startup):
        result = asyncio.run(monitor_many(cluster, topology, args.devices, args.sessions, args.in_flight,
                                          args.sample_calls))
        result.update(lims=lims, extensions_per_lim=per_lim, startup_s=startup["startup_s"])
        return result


# -- the command ---------------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--sizes: {text!r} is not a comma-separated list of LIM counts") from None
    if not sizes or any(not 1 <= s <= MAX_SIZE for s in sizes):
        raise ValueError(f"--sizes: every size must be from 1 to {MAX_SIZE}")
    return sizes


def check_args(args) -> None:
    """ValueError naming the first option that cannot be used."""
    positive = {"curve": ("total_extensions", "calls", "workers"), "startup": ("lims", "extensions_per_lim"),
                "monitors": ("devices", "sessions", "in_flight", "extensions_per_lim")}[args.scale_command]
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.scale_command == "curve":
        args.sizes = parse_sizes(args.sizes)
        if args.rate <= 0 or args.idle_s < 0:
            raise ValueError("--rate must be positive and --idle-s not negative")
        if args.total_extensions // max(args.sizes) < 4:
            raise ValueError(f"--total-extensions {args.total_extensions} leaves fewer than 4 extensions per LIM "
                             f"at {max(args.sizes)} LIMs")
    elif args.scale_command == "startup":
        if args.lims > MAX_SIZE:
            raise ValueError(f"--lims must be at most {MAX_SIZE}")
    else:
        if args.sample_calls < 0 or (args.max_monitors is not None and args.max_monitors < 1):
            raise ValueError("--sample-calls must not be negative, --max-monitors at least 1")
        if args.lims is not None and not 1 <= args.lims <= MAX_SIZE:
            raise ValueError(f"--lims must be from 1 to {MAX_SIZE}")
    if args.heartbeat_ms is not None and not 10 <= args.heartbeat_ms <= 10_000:
        raise ValueError("--heartbeat-ms must be from 10 to 10000")


def run(args) -> dict[str, Any]:
    return {"curve": run_curve, "startup": run_startup, "monitors": run_monitors}[args.scale_command](args)


def failures(command: str, r: dict[str, Any]) -> list[str]:
    """What makes a measurement fail (exit status 1), as bench and chaos fail: events lost, calls not
    completed. A startup measures no events: it fails only by not coming up, which raises."""
    found = []
    if command == "curve":
        for p in r["points"]:
            if p["lost_events"]:
                found.append(f"{p['lims']} LIMs: {p['lost_events']} event{'s' * (p['lost_events'] != 1)} lost")
            if p["calls_completed"] < r["calls"]:
                found.append(f"{p['lims']} LIMs: {r['calls'] - p['calls_completed']} of {r['calls']} calls not completed")
    elif command == "monitors" and r.get("sample_events_lost"):
        found.append(f"{r['sample_events_lost']} events of the sample calls lost")
    return found


def format_result(command: str, r: dict[str, Any]) -> str:
    if command == "curve":
        head = (f"{'LIMs':>4} {'ext/LIM':>7} {'up s':>6} {'calls/s':>8} {'lost':>5} {'p99 ms':>7} "
                f"{'CPU ms/call':>11} {'net of idle':>11}  per kind (broker/lim/csta, ms/call)  idle CPU s/s")
        lines = [f"same load at every size: {r['calls']} calls at <= {r['rate']:g}/s, {r['total_extensions']} "
                 f"extensions in all, {r['workers']} threads, bus heartbeat {r['heartbeat_ms']} ms", head]
        for p in r["points"]:
            kinds = "/".join(f"{p['cpu_ms_per_call'].get(k, 0):.2f}" for k in ("broker", "lim", "csta"))
            idle = sum(p["idle_cpu_per_s"].values())
            lines.append(f"{p['lims']:>4} {p['extensions_per_lim']:>7} {p['startup_s']:>6.1f} "
                         f"{p['calls_per_second']:>8.1f} {p['lost_events']:>5} {p['event_latency_p99_ms'] or 0:>7.2f} "
                         f"{p['cpu_ms_per_call_total']:>11.2f} {p['cpu_ms_per_call_net_total']:>11.2f}  "
                         f"{kinds:<34}  {idle:.3f}")
        return "\n".join(lines)
    return "\n".join(f"{k:<28} {json.dumps(v)}" for k, v in r.items())


# -- tables for machines: CSV, and the scale curve's chart -------------------------------------------
KINDS = ("broker", "lim", "csta", "driver")


def curve_row(p: dict[str, Any]) -> dict[str, Any]:
    """One size of the curve as a CSV row (CPU in ms per call, per process kind and in all)."""
    row = {k: p.get(k) for k in ("lims", "extensions_per_lim", "startup_s", "calls_completed", "calls_per_second",
                                 "lost_events", "duplicated_events", "event_latency_p50_ms", "event_latency_p99_ms",
                                 "cpu_ms_per_call_total", "cpu_ms_per_call_net_total")}
    for kind in KINDS:
        row[f"cpu_ms_per_call_{kind}"] = p["cpu_ms_per_call"].get(kind)
    for kind in KINDS:
        row[f"cpu_ms_per_call_net_of_idle_{kind}"] = p.get("cpu_ms_per_call_net_of_idle", {}).get(kind)
    for kind in KINDS[:3]:
        row[f"idle_cpu_per_s_{kind}"] = p["idle_cpu_per_s"].get(kind)
    row["load_average_1min"] = p.get("load_average_1min")
    return row


def csv_document(command: str, r: dict[str, Any]) -> str:
    """The curve: one row per size; startup and monitors: their figures as one row."""
    if command == "curve":
        return report.csv_text([curve_row(p) for p in r["points"]],
                               comments=[r.get("command", "mxone scale curve"), f"before: {r.get('machine_before')}",
                                         f"after: {r.get('machine_after')}"])
    return report.csv_text([report.flatten(r)], comments=[f"mxone scale {command}", report.load_note()])


def curve_chart(r: dict[str, Any], path) -> None:
    """CPU per call against LIMs: in all, net of idle, and per process kind."""
    points = r["points"]
    xs = [p["lims"] for p in points]
    series = [("all processes", xs, [p["cpu_ms_per_call_total"] for p in points]),
              ("all, net of idle", xs, [p["cpu_ms_per_call_net_total"] for p in points])]
    series += [(kind, xs, [p["cpu_ms_per_call"].get(kind) for p in points]) for kind in KINDS]
    title = (f"CPU per call against LIMs: {r['calls']} calls at <= {r['rate']:g}/s, {r['total_extensions']} extensions "
             f"in all, heartbeat {r['heartbeat_ms']} ms\n{r.get('command', 'mxone scale curve')}\n"
             f"before: {r.get('machine_before')}; after: {r.get('machine_after')}")
    report.line_chart(path, title, "LIMs", "CPU ms per call", series, log_x=len(set(xs)) > 1 and min(xs) > 0,
                      x_ticks=sorted(set(xs)))
