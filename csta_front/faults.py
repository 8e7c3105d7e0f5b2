"""Faults for the client's sake (`mxone fault`): a CSTA server that misbehaves on purpose, so a QA
engineer can watch their CTI application cope. Explicit, per server, never on by default.

Kinds (each optionally limited to one service by name):
  delay    responses wait `ms` before they are sent
  error    requests are answered with a CSTAErrorCode (`category`/`value`, default
           systemResourceAvailibility/resourceBusy) instead of being served
  events   events wait `ms` before they are sent (slow delivery)
  burst    events are held and sent in bursts every `ms`
A connection reset is an action, not a state: `reset` closes every client connection at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("delay", "error", "events", "burst")


@dataclass(frozen=True)
class Fault:
    kind: str
    service: str | None = None   # None: every service (delay, error)
    ms: int = 0
    category: str = "systemResourceAvailibility"
    value: str = "resourceBusy"

    def describe(self) -> str:
        what = {"delay": f"responses delayed {self.ms} ms", "error": f"answered {self.category}/{self.value}",
                "events": f"events delayed {self.ms} ms", "burst": f"events held and sent every {self.ms} ms"}[self.kind]
        return f"{what}{' for ' + self.service if self.service else ''}"


def parse_fault(body: dict[str, Any]) -> Fault:
    kind = body.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault kind {kind!r}: use one of {', '.join(KINDS)}")
    ms = body.get("ms", 0)
    if not isinstance(ms, int) or not 0 <= ms <= 600_000:
        raise ValueError("ms must be 0 to 600000")
    if kind in ("delay", "events", "burst") and ms <= 0:
        raise ValueError(f"a {kind} fault needs ms > 0")
    service = body.get("service")
    if service is not None and (not isinstance(service, str) or not service.isalnum()):
        raise ValueError("service must be a CSTA service name such as MakeCall")
    return Fault(kind, service, ms, str(body.get("category") or "systemResourceAvailibility"),
                 str(body.get("value") or "resourceBusy"))


class Faults:
    """The faults in force on one server."""

    def __init__(self) -> None:
        self.active: dict[str, Fault] = {}

    def set(self, fault: Fault) -> None:
        self.active[fault.kind] = fault

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self.active.clear()
        else:
            self.active.pop(kind, None)

    def _for(self, kind: str, service: str | None) -> Fault | None:
        fault = self.active.get(kind)
        if fault is None or (fault.service is not None and fault.service != service):
            return None
        return fault

    def error_for(self, service: str) -> Fault | None:
        return self._for("error", service)

    def delay_for(self, service: str) -> float:
        fault = self._for("delay", service)
        return fault.ms / 1000.0 if fault else 0.0

    def describe(self) -> list[str]:
        return [f.describe() for f in self.active.values()]
