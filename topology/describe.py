"""A human-readable summary of a topology (`mxone topology show`).

Extensions are shown as ranges of consecutive numbers, so the summary stays a few lines per LIM
however many extensions there are.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from topology.model import EXTENSION_TYPES, BrokerEndpoint, CstaSettings, Topology


def describe_topology(topo: Topology) -> str:
    broker = topo.broker
    lines = [
        f"Topology {topo.name} (from {topo.source})",
        f"Broker: {_endpoint(broker.primary)}",
        f"  backup: {_endpoint(broker.backup) if broker.backup else 'none'}",
        f"  heartbeat every {broker.heartbeat_interval_ms} ms, dead after {broker.dead_after_ms} ms of silence",
        f"Unanswered calls released after {_seconds(topo.timers.no_answer_s)}",
    ]
    for lim in topo.lims:
        extensions = sorted(topo.extensions_on(lim.number), key=lambda e: (len(e.number), int(e.number)))
        counts = Counter(e.type for e in extensions)
        host = f" on host {lim.host}" if lim.host else ""
        lines += [
            f"LIM {lim.number} at {lim.address}{host}",
            f"  CSTA: {_csta(lim.csta)}",
            f"  {len(extensions)} extensions" + (": " if counts else "")
            + ", ".join(f"{counts[t]} {t}" for t in EXTENSION_TYPES if counts[t]),
        ]
        labelled = [(e.number, _state(e.type, e.logged_on)) for e in extensions]
        lines += [f"    {_range(first, last)} {label}" for first, last, label in _runs(labelled)]
    if topo.acd_groups:
        lines.append("ACD groups:")
    for acd in topo.acd_groups:
        lines.append(f"  {acd.number} on LIM {acd.lim}: agents {_numbers(acd.agents) or 'none'}; "
                     f"queue timeout {_seconds(acd.queue_timeout_s)}, overflow to {acd.overflow_to or 'none'}, "
                     f"wrap-up {_seconds(acd.wrapup_s)}")
    if topo.hunt_groups:
        lines.append("Hunt groups:")
    for hunt in topo.hunt_groups:
        if hunt.mode == "cascade":
            steps = " | ".join(_numbers(step) for step in hunt.steps)
            lines.append(f"  {hunt.number} on LIM {hunt.lim}, cascade, {_seconds(hunt.step_timeout_s)} per step: "
                         f"{steps}")
        else:
            lines.append(f"  {hunt.number} on LIM {hunt.lim}, {hunt.mode}: {_numbers(hunt.members)}")
    if topo.trunks:
        lines.append("Trunks:")
    for trunk in topo.trunks:
        answer = ("never answers by itself" if trunk.answer_after_s is None
                  else f"answers after {_seconds(trunk.answer_after_s)}")
        lines.append(f"  {trunk.name}: prefix {trunk.prefix} on LIM {trunk.lim}, {trunk.channels} channels, "
                     f"the external party {answer}")
    return "\n".join(lines)


def _endpoint(ep: BrokerEndpoint) -> str:
    host = f" on host {ep.host}" if ep.host else ""
    return f"{ep.address} router {ep.router_port}, pub {ep.pub_port}, sub {ep.sub_port}{host}"


def _csta(csta: CstaSettings | None) -> str:
    if csta is None:
        return "none"
    tls = f"TLS port {csta.tls_port}" if csta.tls_port is not None else "no TLS"
    flags = [text for on, text in ((csta.authentication_mandatory, "authentication mandatory"),
                                   (csta.system_status_on_connect, "system status on connect")) if on]
    return ", ".join([f"{csta.server_type} on port {csta.port}", tls,
                      f"up to {csta.max_sessions} sessions and {csta.max_monitors} monitors", *flags])


def _state(kind: str, logged_on: bool) -> str:
    if kind == "virtual":
        return kind  # never has a terminal, so "logged off" would say nothing
    return f"{kind} ({'logged on' if logged_on else 'logged off'})"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _range(first: str, last: str) -> str:
    return first if first == last else f"{first}-{last}"


def _runs(items: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(first, last, label) for each run of consecutive numbers, in order, that share a label."""
    runs: list[tuple[str, str, str]] = []
    for number, label in items:
        if runs:
            first, last, run_label = runs[-1]
            if label == run_label and len(number) == len(last) and int(number) == int(last) + 1:
                runs[-1] = (first, number, label)
                continue
        runs.append((number, number, label))
    return runs


def _numbers(numbers: Iterable[str]) -> str:
    """A list of numbers in its own order, consecutive ones as ranges."""
    return ", ".join(_range(first, last) for first, last, _ in _runs((n, "") for n in numbers))
