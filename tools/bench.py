"""`mxone bench`: start a generated exchange, drive cross-LIM calls through the bus, watch them
through each LIM's CSTA server, and measure.

Each call: the caller (on LIM i) dials, the callee (on LIM i+1) answers, the caller hangs up. Both
are monitored through their own LIM's CSTA server, so each call is expected to give

    caller: ServiceInitiated, Originated, Delivered, Established, ConnectionCleared, ConnectionCleared
    callee: Delivered, Established, ConnectionCleared, ConnectionCleared

(the sequences of tests/integration/test_csta_server.py). Latency runs from the physical action
(taken just before its bus request is sent) to the matching event at the CSTA client (stamped when
the client's event queue hands it over): Delivered at the callee for the dial, Established at both
for the answer, the first ConnectionCleared at both for the hangup.

The baseline, measured in the same run: the bus round trip alone (`Exchange.members()`).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import yaml

from cluster.exchange import running_exchange
from csta_front.client import CstaClient, event_name
from lim.phone import Exchange
from tools import report
from tools.bench_driver import Call, Sightings, drive_load
from tools.measure import (
    CALLEE_EVENTS,
    CALLER_EVENTS,
    call_id_of,
    cpu_used,
    kind_of,
    percentile,
    process_sample,
    rss_mb,
)
from topology.generate import generate_topology
from topology.ports import move_to_free_ports

QUICK = {"lims": 2, "extensions_per_lim": 20, "calls": 100, "rate": 100.0}
FULL = {"lims": 4, "extensions_per_lim": 50, "calls": 1000, "rate": 200.0}
BASELINE_REQUESTS = 200
EVENT_TIMEOUT_S = 10.0  # after the load, how long missing events may still arrive
IDLE_SAMPLE_S = 1.0  # CPU with no calls, measured just before the load


KINDS = ("broker", "lim", "csta", "driver")  # process kinds in the tables' order (driver: this process)
DEFAULT_SWEEP = (50.0, 100.0, 200.0, 400.0, 800.0)  # --sweep's rates: up to past this 2-core machine's ~500/s


def log(message: str) -> None:
    report.say(f"bench: {message}")


# -- topology ----------------------------------------------------------------------------------------
def write_topology_file(path: Path, lims: int, extensions_per_lim: int) -> Path:
    """generate_topology on free broker ports, then every LIM's CSTA server on a free port too."""

    data = yaml.safe_load(generate_topology(lims, extensions_per_lim))
    for lim in data["lims"]:
        lim["csta"] = {"server_type": "XML", "port": 8882}  # an XML server on every LIM, moved just below
    data["live_view"] = {"enabled": False}  # a web page watching every event would be measured too
    path.write_text(yaml.safe_dump(move_to_free_ports(data), sort_keys=False))
    return path


# -- the calls ---------------------------------------------------------------------------------------
def pair_slots(topology, lims: int) -> list[tuple[str, str]]:
    """(caller on LIM i, callee on LIM i+1) pairs; no extension is in two pairs. Only extensions
    with a terminal logged on, and none of the groups' members."""
    in_groups = {m for g in topology.acd_groups for m in g.agents}
    in_groups |= {m for g in topology.hunt_groups for m in g.all_members()}
    usable = {}
    for lim in topology.lims:
        usable[lim.number] = [e.number for e in topology.extensions_on(lim.number)
                              if e.logged_on and e.number not in in_groups]
    callers = {n: exts[:len(exts) // 2] for n, exts in usable.items()}
    callees = {n: exts[len(exts) // 2:] for n, exts in usable.items()}
    numbers = [lim.number for lim in topology.lims]
    slots = []
    for i, n in enumerate(numbers):
        m = numbers[(i + 1) % len(numbers)]
        slots += list(zip(callers[n], callees[m]))
    return slots


def bus_baseline(topology, n: int = BASELINE_REQUESTS) -> list[float]:
    times = []
    with Exchange(topology) as exchange:
        exchange.members()  # connected and warm
        for _ in range(n):
            t = time.monotonic()
            exchange.members()
            times.append((time.monotonic() - t) * 1000)
    return times


# -- processes ---------------------------------------------------------------------------------------


# -- CSTA side ---------------------------------------------------------------------------------------
@dataclass
class Watch:
    """Every event every client got: (monotonic time, device, name, call ID)."""
    events: list[tuple[float, str, str, str | None]] = dc_field(default_factory=list)
    unmatched: int = 0


async def consume(client, devices_by_xref: dict[str, str], watch: Watch, sightings: Sightings | None = None) -> None:
    while True:
        event = await client.events.get()
        now = time.monotonic()
        if event is None:
            return
        device = devices_by_xref.get((event.findtext("{*}monitorCrossRefID") or "").strip())
        if device is None:
            watch.unmatched += 1
            continue
        name, call_id = event_name(event).removesuffix("Event"), call_id_of(event)
        watch.events.append((now, device, name, call_id))
        if sightings is not None:
            sightings.saw(call_id, device, name)


def analyse(calls: list[Call], watch: Watch) -> dict[str, Any]:
    got: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for t, device, name, call_id in watch.events:
        got.setdefault((call_id, device), []).append((t, name))
    lost = duplicated = 0
    latencies: list[float] = []
    known = set()
    for call in calls:
        if call.call_id is None:
            continue
        for device, expected in ((call.caller, CALLER_EVENTS), (call.callee, CALLEE_EVENTS)):
            known.add((call.call_id, device))
            events = got.get((call.call_id, device), [])
            have, want = Counter(n for _, n in events), Counter(expected)
            lost += sum((want - have).values())
            duplicated += sum((have - want).values())
            first: dict[str, float] = {}
            for t, name in events:
                first.setdefault(name, t)
            pairs = [("Established", call.answer_t), ("ConnectionCleared", call.hangup_t)]
            if device == call.callee:
                pairs.append(("Delivered", call.dial_t))
            for name, action_t in pairs:
                if name in first and action_t is not None:
                    latencies.append((first[name] - action_t) * 1000)
    stray = sum(len(v) for k, v in got.items() if k not in known)
    return {"lost_events": lost, "duplicated_events": duplicated, "unexpected_events": stray + watch.unmatched,
            "latencies": latencies}


async def measure(cluster, topology, args) -> dict[str, Any]:
    slots = pair_slots(topology, len(topology.lims))
    if not slots:
        raise RuntimeError("no pair of logged-on extensions to call between; give more --extensions-per-lim")
    servers = cluster.csta_servers(topology)
    clients: dict[int, Any] = {}
    watch = Watch()
    tasks = []
    try:
        for lim in topology.lims:
            clients[lim.number] = await CstaClient.connect(lim.address, servers[lim.number].port)
        lim_of = {e.number: e.lim for e in topology.extensions}
        devices_by_xref: dict[int, dict[str, str]] = {n: {} for n in clients}
        for caller, callee in slots:
            for device in (caller, callee):
                n = lim_of[device]
                xref = await clients[n].monitor_start(device)
                devices_by_xref[n][xref] = device
        sightings = Sightings()
        tasks = [asyncio.create_task(consume(c, devices_by_xref[n], watch, sightings)) for n, c in clients.items()]
        baseline = await asyncio.to_thread(bus_baseline, topology)
        # What each kind burns with no calls (heartbeats, polling), to tell it from the calls' cost.
        idle_start, t_idle = process_sample(cluster), time.monotonic()
        await asyncio.sleep(IDLE_SAMPLE_S)
        before = process_sample(cluster)
        idle_rate = {kind: cpu_used(before, idle_start, kind) / (time.monotonic() - t_idle) for kind in before}
        workers = max(1, min(args.workers, len(slots)))
        log(f"{args.calls} calls at up to {args.rate:g}/s over {len(slots)} caller/callee pairs, "
            f"at most {workers} at a time, {sum(len(d) for d in devices_by_xref.values())} monitored devices")
        progress, label, t_load = report.current(), getattr(args, "progress_label", "bench"), time.monotonic()
        progress.show(report.format_progress(label, 0, args.calls, 0.0), force=True)
        calls, start, end = await drive_load(
            topology, slots, args.calls, args.rate, workers, sightings,
            lambda n: progress.show(report.format_progress(label, n, args.calls, time.monotonic() - t_load),
                                    force=n == args.calls))
        expected = sum(len(CALLER_EVENTS) + len(CALLEE_EVENTS) for c in calls if c.call_id)
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while len(watch.events) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # CPU up to the last event: a backlog of events still being built and sent belongs to the calls.
        after, t_after = process_sample(cluster), time.monotonic()
        await asyncio.sleep(0.2)  # duplicates, if any, show up too
        memory: dict[str, float] = {}
        for p in cluster.processes():
            if p["pid"]:
                try:
                    kind = kind_of(p["name"])
                    memory[kind] = max(memory.get(kind, 0.0), rss_mb(p["pid"]))
                except OSError:
                    pass
    finally:
        for task in tasks:
            task.cancel()
        for client in clients.values():
            await client.close()
    duration = end - start
    completed = sum(1 for c in calls if c.done)
    events_in_load = sum(1 for t, *_ in watch.events if t <= end + EVENT_TIMEOUT_S)
    result = analyse(calls, watch)
    latencies = result.pop("latencies")
    cpu, busy = {}, {}
    for kind in after:
        used = cpu_used(after, before, kind)
        cpu[kind] = round(used / completed, 6) if completed else None
        net = used - idle_rate.get(kind, 0.0) * (t_after - start)
        busy[kind] = round(max(0.0, net) / completed, 6) if completed else None
    last_event = max((t for t, *_ in watch.events), default=end)
    r3 = lambda v: None if v is None else round(v, 3)  # noqa: E731
    return {
        "lims": len(topology.lims), "extensions_per_lim": args.extensions_per_lim, "calls": args.calls,
        "rate_limit": args.rate, "calls_completed": completed,
        "call_errors": sorted(Counter(c.error for c in calls if c.error).items()),
        "duration_s": r3(duration),
        "calls_per_second": r3(completed / duration),
        "events_per_second": r3(events_in_load / max(duration, last_event - start)),
        "events_received": len(watch.events), "events_expected": expected,
        "event_latency_p50_ms": r3(percentile(latencies, 50)),
        "event_latency_p99_ms": r3(percentile(latencies, 99)),
        "event_latency_max_ms": r3(max(latencies, default=None) if latencies else None),
        **result,
        "cpu_seconds_per_call": cpu,
        "cpu_busy_seconds_per_call": busy,
        "idle_cpu_per_second": {k: round(v, 4) for k, v in idle_rate.items()},
        "memory_mb": {k: round(v, 1) for k, v in memory.items()},
        "baseline_bus_round_trip_p50_ms": r3(percentile(baseline, 50)),
        "baseline_bus_round_trip_p99_ms": r3(percentile(baseline, 99)),
        "baseline_requests": len(baseline),
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine is shared: how busy it was (us included)
    }


# -- the command -------------------------------------------------------------------------------------
def settings(args) -> None:
    """Fill in what was not given: --quick's small figures, or the full defaults."""
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def run_bench(args) -> dict[str, Any]:
    settings(args)
    write = lambda run_dir: write_topology_file(run_dir / "bench-topology.yaml", args.lims, args.extensions_per_lim)
    with running_exchange(write, args.run_dir, prefix="mxone-bench-", log=log) as running:
        result = asyncio.run(measure(running.cluster, running.topology, args))
        result["startup_s"] = round(running.startup_s, 3)
        return result


def run_sweep(args, rates: list[float]) -> dict[str, Any]:
    """The same load at each rate in turn, on one exchange: the latency-throughput curve. Each
    point is a whole `mxone bench` measurement (its own monitors, baseline and idle sample)."""
    settings(args)
    write = lambda run_dir: write_topology_file(run_dir / "bench-topology.yaml", args.lims, args.extensions_per_lim)
    machine = report.load_note()
    points = []
    with running_exchange(write, args.run_dir, prefix="mxone-bench-", log=log) as running:
        for i, rate in enumerate(rates, 1):
            point_args = argparse.Namespace(**{**vars(args), "rate": rate,
                                               "progress_label": f"bench: rate {rate:g}/s ({i} of {len(rates)})"})
            result = asyncio.run(measure(running.cluster, running.topology, point_args))
            result["startup_s"] = round(running.startup_s, 3)
            points.append(result)
            log(f"rate {rate:g}/s: {result['calls_per_second']:.1f} calls/s, p50 / p99 "
                f"{result['event_latency_p50_ms']} / {result['event_latency_p99_ms']} ms")
    return {"command": getattr(args, "command_line", "mxone bench --sweep"), "machine_before": machine,
            "machine_after": report.load_note(), "lims": args.lims, "extensions_per_lim": args.extensions_per_lim,
            "calls": args.calls, "workers": args.workers, "rates": rates, "points": points}


def parse_rates(text: str) -> list[float]:
    """`--sweep 50,100,200`: positive rates, in the order given."""
    try:
        rates = [float(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise ValueError(f"--sweep: {text!r} is not a comma-separated list of calls per second") from None
    if not rates or any(not 0 < r < float("inf") for r in rates):
        raise ValueError("--sweep: every rate must be a positive number of calls per second")
    return rates


# -- tables for machines: CSV rows, and the latency-throughput chart ----------------------------------
ROW_KEYS = ("lims", "extensions_per_lim", "calls", "rate_limit", "calls_completed", "duration_s", "calls_per_second",
            "events_per_second", "event_latency_p50_ms", "event_latency_p99_ms", "event_latency_max_ms",
            "lost_events", "duplicated_events", "unexpected_events", "baseline_bus_round_trip_p50_ms",
            "baseline_bus_round_trip_p99_ms")


def csv_row(r: dict[str, Any]) -> dict[str, Any]:
    """One measurement as a CSV row: the figures, and per process kind the CPU per call (ms, as
    measured and less idle) and the largest RSS; the 1-minute load average at its end."""
    row = {k: r.get(k) for k in ROW_KEYS}
    ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    for kind in KINDS:
        row[f"cpu_ms_per_call_{kind}"] = ms(r["cpu_seconds_per_call"].get(kind))
    known = [v for v in r["cpu_seconds_per_call"].values() if v is not None]
    row["cpu_ms_per_call_total"] = ms(sum(known)) if known else None
    for kind in KINDS:
        row[f"cpu_busy_ms_per_call_{kind}"] = ms(r["cpu_busy_seconds_per_call"].get(kind))
    for kind in KINDS[:3]:
        row[f"memory_mb_{kind}"] = r["memory_mb"].get(kind)
    row["load_average_1min"] = r.get("load_average_1min")
    return row


def csv_document(result: dict[str, Any]) -> str:
    """A sweep's points, or one bench run, as CSV under `#` lines naming the command and the load."""
    points = result["points"] if "points" in result else [result]
    comments = [result.get("command", "mxone bench")]
    if "machine_before" in result:
        comments += [f"before: {result['machine_before']}", f"after: {result['machine_after']}"]
    else:
        comments.append(report.load_note())
    return report.csv_text([csv_row(p) for p in points], comments=comments)


def sweep_chart(result: dict[str, Any], path) -> None:
    """Latency (p50, p99) against the calls per second achieved, one point per rate asked."""
    points = result["points"]
    xs = [p["calls_per_second"] for p in points]
    title = (f"event latency against throughput, {result['lims']} LIMs x {result['extensions_per_lim']} extensions, "
             f"{result['calls']} calls per point\n{result['command']}\nbefore: {result['machine_before']}; "
             f"after: {result['machine_after']}")
    report.line_chart(path, title, "calls per second (achieved)", "ms from action to CSTA event",
                      [("p50", xs, [p["event_latency_p50_ms"] for p in points]),
                       ("p99", xs, [p["event_latency_p99_ms"] for p in points])], log_y=True,
                      notes=[f"asked {p['rate_limit']:g}/s" for p in points])


def format_sweep(r: dict[str, Any]) -> str:
    head = (f"{'rate':>7} {'calls/s':>8} {'done':>9} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  "
            + " ".join(f"{k:>7}" for k in KINDS) + f" {'total':>7}  {'load':>5}")
    lines = [f"{r['command']}", f"{r['lims']} LIMs x {r['extensions_per_lim']} extensions, {r['calls']} calls per "
             f"rate, {r['workers']} at a time; CPU in ms per call per process kind",
             f"before: {r['machine_before']}; after: {r['machine_after']}", head]
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for p in r["points"]:
        row = csv_row(p)
        lines.append(f"{p['rate_limit']:>7g} {p['calls_per_second']:>8.1f} "
                     f"{str(p['calls_completed']) + '/' + str(p['calls']):>9} {p['lost_events']:>5} "
                     f"{f(p['event_latency_p50_ms'], '.2f'):>7} {f(p['event_latency_p99_ms'], '.2f'):>7} "
                     f"{f(p['event_latency_max_ms'], '.2f'):>7}  "
                     + " ".join(f"{f(row[f'cpu_ms_per_call_{k}'], '.2f'):>7}" for k in KINDS)
                     + f" {f(row['cpu_ms_per_call_total'], '.2f'):>7}  {f(p['load_average_1min'], '.1f'):>5}")
    return "\n".join(lines)


def format_table(r: dict[str, Any]) -> str:
    def ms(v):
        return "-" if v is None else f"{v:.2f} ms"
    rows = [
        ("exchange", f"{r['lims']} LIMs x {r['extensions_per_lim']} extensions (up in {r['startup_s']:.1f} s)"),
        ("calls", f"{r['calls_completed']} of {r['calls']} completed, at most {r['rate_limit']:g}/s asked"),
        ("calls per second", f"{r['calls_per_second']:.1f}"),
        ("CSTA events per second", f"{r['events_per_second']:.1f} ({r['events_received']} of {r['events_expected']} expected)"),
        ("lost / duplicated / unexpected", f"{r['lost_events']} / {r['duplicated_events']} / {r['unexpected_events']}"),
        ("event latency p50 / p99 / max", f"{ms(r['event_latency_p50_ms'])} / {ms(r['event_latency_p99_ms'])} / "
                                          f"{ms(r['event_latency_max_ms'])}"),
        ("baseline: bus round trip p50 / p99", f"{ms(r['baseline_bus_round_trip_p50_ms'])} / "
                                               f"{ms(r['baseline_bus_round_trip_p99_ms'])} "
                                               f"({r['baseline_requests']} Exchange.members())"),
    ]
    for kind in [k for k in KINDS if k in r["cpu_seconds_per_call"]]:
        cpu, busy = r["cpu_seconds_per_call"][kind], r["cpu_busy_seconds_per_call"].get(kind)
        rss = f", {r['memory_mb'][kind]:.1f} MB" if kind in r["memory_mb"] else ""
        rows.append((f"{kind}: CPU per call (less idle){', max RSS' if rss else ''}",
                     f"{ms(None if cpu is None else cpu * 1000)} ({ms(None if busy is None else busy * 1000)}){rss}"))
    known = [v for v in r["cpu_seconds_per_call"].values() if v is not None]
    if known:
        rows.append(("total: CPU per call", ms(sum(known) * 1000)))
    if r.get("load_average_1min") is not None:
        rows.append(("load average (1 min) at the end", f"{r['load_average_1min']:.2f}"))
    if r["call_errors"]:
        rows.append(("call errors", ", ".join(f"{e} x{n}" for e, n in r["call_errors"])))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
