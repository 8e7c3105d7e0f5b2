"""`mxone traffic`: play a traffic profile (tools/traffic.py) at the phones of a running exchange.

One bus client, one thread: the engine's timers share the client's TimerQueue, its actions are
asynchronous bus requests (`BusNode.request` with a callback), and the events of the phones it
uses arrive on the client's SUB socket (each event once per topic it is published on; the engine
drops the copies by (source, incarnation, sequence number)). With a broker pair, a request that
times out or meets the passive broker moves the client to the other broker; as a client that does
not register, it gets no replay of the events published meanwhile (a call that misses one stalls).

The exchange is the running one in the run directory, or one started for the run (`--topology
FILE`, or the built-in topology when none is running), on free ports, stopped afterwards.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from broker.client import BusClient, BusError
from broker.protocol import BROKER, Kind, Refusal, device_address
from cluster.control import Cluster
from cluster.exchange import running_exchange
from lim.phone import Exchange
from tools.traffic import (
    Resources,
    TrafficEngine,
    TrafficOptions,
    make_options,
    resources_for,
)
from topology.loader import load_topology

PROGRESS_EVERY_S = 0.5
REQUEST_TIMEOUT_S = 3.0
SWITCH_GAP_S = 1.0       # a broker pair: after moving to the other broker, give it this long
BROKER_CHECK_S = 0.5     # a broker pair: how often to ask our broker whether it is active


class TrafficDriver:
    """The engine wired to a running exchange's bus."""

    def __init__(self, topology, options: TrafficOptions, resources: Resources | None = None):
        self.topology = topology
        self.options = options
        self.client = BusClient(topology.broker, name="traffic")
        self.node = self.client.node
        self.engine = TrafficEngine(topology, options, self.client.timers, self.act,
                                    resources or resources_for(topology, options))
        self.changed_agents: dict[str, str] = {}  # agent -> what to do at the end to restore it
        self.switched_at = 0.0
        self.switches: list[float] = []  # when this client moved to the other broker of a pair
        res = self.engine.res
        if options.profile == "callcentre":
            topics = [f"d:{a}|" for a in res.agents] + [f"d:{res.trunk_prefix}7"]  # every caller of ours
        else:
            topics = [f"d:{p}|" for phones in res.phones.values() for p in phones]
        for topic in topics:
            self.client.subscribe(topic)
        self.client.sync()  # with the client's own event handler: it waits for its probe
        self.node.on_event = lambda topic, env: self.engine.on_event(env.body, (env.src, env.incarnation, env.seq))

    def act(self, device: str, kind: str, body: dict, on_reply: Callable[[dict], None]) -> None:
        # The node sends the request again itself (the same request: the LIM serves it once)
        # when a broker fails under it; what comes back here is final.
        endpoint = self.node.endpoint

        def replied(reply: dict) -> None:
            if reply.get("error") == Refusal.TIMEOUT:
                self._switch_broker(endpoint, wait=True)
            on_reply(reply)
        self.node.request(device_address(device), kind, body, replied, timeout=REQUEST_TIMEOUT_S)

    def _switch_broker(self, failed, wait: bool = False) -> None:
        """Move to the other broker of a pair, once for all the requests that failed together
        (after a timeout, not again before the other broker had a chance)."""
        now = time.monotonic()
        if len(self.node.endpoints) < 2 or self.node.endpoint is not failed:
            return
        if wait and now - self.switched_at < SWITCH_GAP_S:
            return
        self.switched_at = now
        self.switches.append(now)
        self.node.move_to_other_broker()

    def _check_broker(self) -> None:
        """A broker pair: ask ours now and then whether it is active, and move if it is not (a
        client hears no heartbeats, and a passive broker forwards no events)."""
        if len(self.node.endpoints) < 2:
            return
        endpoint = self.node.endpoint

        def answered(reply: dict) -> None:
            if reply.get("error") == Refusal.TIMEOUT or reply.get("state") == "passive":
                self._switch_broker(endpoint, wait=True)  # a passive one may be about to take over
        self.node.request(BROKER, Kind.STATUS, {}, answered, timeout=BROKER_CHECK_S)
        self.client.timers.call_later(BROKER_CHECK_S, self._check_broker)

    # -- agents ----------------------------------------------------------------------------------------
    def prepare_agents(self, out: Callable[[str], None]) -> int:
        """Log the group's agents on (and make them ready); returns how many are ready."""
        res = self.engine.res
        ready = 0
        for agent in res.agents:
            try:
                features = self.client.request(device_address(agent), Kind.DEVICE_GET)["features"]
                state, group = features.get("agent_state"), features.get("agent_group")
                if state == "agentNull":
                    self.client.request(device_address(agent), Kind.AGENT,
                                        {"action": "login", "agent_id": f"T{agent}"[:16], "group": res.group})
                    self.changed_agents[agent] = "logout"
                elif group != res.group:
                    out(f"agent position {agent} is logged on to group {group}: not used")
                    continue
                elif state == "agentNotReady":
                    self.client.request(device_address(agent), Kind.AGENT, {"action": "ready"})
                    self.changed_agents[agent] = "notready"
                ready += 1
            except BusError as exc:
                out(f"agent position {agent}: {exc.message} ({exc.code}): not used")
        return ready

    def restore_agents(self) -> None:
        for agent, action in self.changed_agents.items():
            try:
                self.client.request(device_address(agent), Kind.AGENT, {"action": action})
            except BusError:
                pass  # its LIM is gone; nothing to restore there

    # -- the run ---------------------------------------------------------------------------------------
    def run(self, progress: Callable[[str], None] | None = None, until: Callable[[], bool] | None = None) -> dict:
        """Play the profile to the end; `until` (checked as it runs) can end the arrivals early.
        Ctrl-C ends the arrivals, a second one cuts off the calls in progress."""
        engine = self.engine
        engine.start()
        self._check_broker()
        last = 0.0
        interrupts = 0
        while True:
            try:
                while not engine.finished():
                    self.node.poll_once(0.05)
                    if until is not None and until():
                        engine.stop_arrivals()
                    if progress is not None and time.monotonic() - last >= PROGRESS_EVERY_S:
                        last = time.monotonic()
                        progress(engine.progress())
                break
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts > 2:
                    raise
                engine.stop_arrivals()
                if interrupts == 2:
                    engine.drain_deadline = engine.timers.now()
        if progress is not None:
            progress(engine.progress())
        return engine.summary()

    def close(self) -> None:
        self.client.close()


# -- the command -----------------------------------------------------------------------------------------
@contextmanager
def exchange_for(run_dir: Path, topology_file: Path | None, out: Callable[[str], None]) -> Iterator[Any]:
    """The topology of the running exchange in `run_dir`, or of one started for the run (from
    `topology_file`, or the built-in one when nothing runs there); stopped afterwards."""
    if topology_file is None and Cluster(run_dir).is_running():
        yield Cluster(run_dir).topology()
        return
    out(f"starting an exchange ({topology_file or 'the built-in topology'}) ...")
    with running_exchange(topology_file, prefix="mxone-traffic-", free_ports=True, log=out) as running:
        yield running.topology


def run_traffic(options: TrafficOptions, run_dir: Path, topology_file: Path | None = None,
                out: Callable[[str], None] = lambda line: print(f"traffic: {line}", file=sys.stderr, flush=True),
                show_progress: bool | None = None) -> dict[str, Any]:
    """Check the profile against the topology (ValueError, before anything starts), run it, and
    return the summary (with the exchange's calls left over, which should be none)."""
    if topology_file is not None:
        resources_for(load_topology(topology_file), options)  # say what is missing before starting
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    progress = (lambda line: print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)) if show_progress else None
    with exchange_for(run_dir, topology_file, out) as topology:
        resources = resources_for(topology, options)
        driver = TrafficDriver(topology, options, resources)
        try:
            if options.profile == "callcentre":
                ready = driver.prepare_agents(out)
                if not ready:
                    raise ValueError(f"no agent of ACD group {resources.group} could be made ready")
                out(f"{ready} agents ready in ACD group {resources.group}")
            summary = driver.run(progress)
            if progress is not None:
                print(file=sys.stderr)
        finally:
            driver.restore_agents()
            driver.close()
        with Exchange(topology) as exchange:
            summary["exchange_calls_left"] = len([c for c in exchange.calls()])
    return summary


def format_summary(s: dict[str, Any]) -> str:
    def counts(d: dict) -> str:
        return ", ".join(f"{k} x{v}" for k, v in d.items())
    limit = f"{s['arrival_phase_s']:.1f} s"
    rows = [
        ("profile", f"{s['profile']} (seed {s['seed']}), {s['rate_asked']:g} calls/s asked, arrivals for {limit}"
                    + (f", through route point {s['route_point']}" if s.get("route_point") else "")),
        ("attempted", f"{s['attempted']} ({s['calls_per_second']:.2f} calls/s achieved)"
                      + (f"; skipped {counts(s['skipped'])}" if s["skipped"] else "")),
        ("answered", f"{s['answered']} ({s['completed']} completed normally)"
                     + (f"; answer delay p50 {s['answer_delay_p50_s']:.2f} s, max {s['answer_delay_max_s']:.2f} s"
                        if s["answer_delay_p50_s"] is not None else "")),
        ("abandoned", str(s["abandoned"])),
        ("transferred", str(s["transferred"]) + (f"; consultation failed: {counts(s['transfer_failures'])}"
                                                   if s["transfer_failures"] else "")),
        ("failed", str(s["failed"]) + (f": {counts(s['failure_reasons'])}" if s["failure_reasons"] else "")),
        ("released by failure", str(s["released_by_failure"])),
    ]
    if s["action_errors"]:
        rows.append(("refused actions", counts(s["action_errors"])))
    if s.get("exchange_calls_left"):
        rows.append(("calls left in the exchange", str(s["exchange_calls_left"])))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def options_from_args(args) -> TrafficOptions:
    """The command line's words, checked (ValueError in one line naming the option)."""

    def number(option: str, kind: type = float):
        return parse_number(getattr(args, option.lstrip("-").replace("-", "_")), option, kind)
    return make_options(
        args.profile, rate=number("--rate"), bhca=number("--bhca"), duration=number("--duration"),
        calls=number("--calls", int), seed=number("--seed", int), talk=args.talk_time, ring=args.ring_time,
        wrapup=args.wrapup, abandon_share=number("--abandon-share"), cross_lim=number("--cross-lim"),
        transfer_share=number("--transfer-share"), arrivals=args.arrivals, group=args.group, trunk=args.trunk,
        drain=number("--drain"), route_point=getattr(args, "route_point", None))


def parse_number(text: str | None, option: str, kind: type = float):
    """A command line number (None stays None); ValueError in one line naming the option."""
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if kind is float and value != value:
        raise ValueError(f"{option}: {text!r} is not a number")
    return value
