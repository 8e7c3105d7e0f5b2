"""Calls and connections as ECMA-269 models them. Pure data, no I/O.

A call is a set of connections, one per device taking part, each with an ECMA-269 connection
state. The LIM where a call starts controls it: its copy is authoritative and it publishes every
event of the call. Every other LIM with a device in the call keeps a mirror, refreshed by
`call.update` messages, so it can check a physical action locally before forwarding it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable

from broker.protocol import CALL_DATA_OCTETS


class ConnState(StrEnum):
    NULL = "null"
    INITIATED = "initiated"
    ALERTING = "alerting"
    CONNECTED = "connected"
    HOLD = "hold"
    QUEUED = "queued"
    FAIL = "fail"


# ECMA-269 event causes used by the exchange (the name on the wire).
class Cause:
    NEW_CALL = "newCall"
    NORMAL = "normalClearing"
    BUSY = "busy"
    NOT_ANSWERED = "callNotAnswered"
    DEST_NOT_OBTAINABLE = "destNotObtainable"   # no terminal logged on, or nothing to ring
    TRUNKS_BUSY = "trunksBusy"
    NETWORK_NOT_OBTAINABLE = "networkNotObtainable"  # the LIM holding a party failed
    NETWORK_SIGNAL = "networkSignal"             # the call left the exchange over a trunk
    DO_NOT_DISTURB = "doNotDisturb"
    FORWARD_IMMEDIATE = "callForwardImmediate"
    FORWARD_BUSY = "callForwardBusy"
    FORWARD_NO_ANSWER = "callForwardNoAnswer"
    REDIRECTED = "redirected"                    # deflected while alerting
    DISTRIBUTED = "distributed"                  # a group handed the call to a member or agent
    OVERFLOW = "overflow"                        # an ACD queue gave up and sent the call on
    ENTERING_DISTRIBUTION = "enteringDistribution"  # queued at an ACD group
    CONSULTATION = "consultation"
    TRANSFER = "transfer"
    SINGLE_STEP_TRANSFER = "singleStepTransfer"
    CONFERENCE = "conference"
    ALTERNATE = "alternate"
    KEY_OPERATION = "keyOperation"               # hold / retrieve at the phone or by request
    DTMF = "dTMFDigitDetected"
    MAKE_PREDICTIVE_CALL = "makePredictiveCall"  # the exchange placed the call (CSTA MakePredictiveCall)
    DEST_DETECTED = "destDetected"               # destination detection: an answering machine answered
    NUMBER_UNALLOCATED = "numberUnallocated"     # the public network does not know the number


# What a call's data may hold (broker/protocol.py CALL_DATA_OCTETS), each an octet string kept as hex.
DATA_FIELDS = tuple(CALL_DATA_OCTETS)
DATA_MAX_OCTETS = CALL_DATA_OCTETS
HEX = frozenset("0123456789abcdefABCDEF")


def checked_data(data: Any) -> dict[str, str]:
    """Call data as a request gives it, checked: known items, each an octet string in hex (kept in
    upper case, xs:hexBinary's canonical form) within its bound. ValueError says what is wrong."""
    if not isinstance(data, dict) or not data:
        raise ValueError("call data needs at least one of " + ", ".join(DATA_FIELDS))
    out = {}
    for key, value in data.items():
        if key not in DATA_MAX_OCTETS:
            raise ValueError(f"{key!r} is not call data; use {', '.join(DATA_FIELDS)}")
        if not isinstance(value, str) or len(value) % 2 or any(c not in HEX for c in value):
            raise ValueError(f"{key} must be an octet string in hex (an even number of 0-9, A-F)")
        if len(value) // 2 > DATA_MAX_OCTETS[key]:
            raise ValueError(f"{key} holds at most {DATA_MAX_OCTETS[key]} octets")
        out[key] = value.upper()
    return out


def merged_data(kept: dict[str, str], other: dict[str, str]) -> dict[str, str]:
    """The data of two calls joined into `kept`'s call: `kept`'s items win, `other` fills the gaps
    (the customer's held call keeps its correlator when the consultation call brought another)."""
    return {**other, **kept}


@dataclass
class Party:
    state: ConnState
    lim: int
    hunt: str | None = None  # the group this party was offered the call for (siblings ring together)
    # The device or group the call last came from when it was offered to this party (ECMA-269's
    # lastRedirectionDevice of its Delivered and Established). The controller's copy only.
    redirected_from: str | None = None


@dataclass
class Call:
    call_id: str
    controller: int                   # the LIM whose copy is authoritative
    calling: str                      # the device that started the call
    called: str | None = None         # the number dialled
    parties: dict[str, Party] = field(default_factory=dict)  # device -> connection, in join order
    cleared: bool = False
    timers: list = field(default_factory=list)  # the controller's timers for this call
    offers: int = 0                   # offers still travelling (hunting waits for all of them)
    # Call data (AssociateData, an IVR): `DATA_FIELDS` -> hex string; every later event carries it.
    data: dict[str, str] = field(default_factory=dict)
    # Devices that follow every event of the call without being in it: the originator of a
    # predictive call, whose monitors see the call from its first event (controller only).
    observers: list[str] = field(default_factory=list)
    on_answer: Callable[[str, bool], None] | None = None  # hears each answer (device, by a machine?)

    def state_of(self, device: str) -> ConnState:
        party = self.parties.get(device)
        return party.state if party else ConnState.NULL

    def connections(self) -> list[list[str]]:
        return [[device, str(p.state)] for device, p in self.parties.items()]

    def lims(self) -> set[int]:
        return {p.lim for p in self.parties.values()}

    def to_wire(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "controller": self.controller, "calling": self.calling,
                "called": self.called, "cleared": self.cleared,
                "parties": [[d, str(p.state), p.lim, p.hunt] for d, p in self.parties.items()],
                "data": self.data}

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> "Call":
        call = cls(call_id=body["call_id"], controller=body["controller"], calling=body["calling"],
                   called=body.get("called"), cleared=bool(body.get("cleared")),
                   data=dict(body.get("data") or {}))
        for device, state, lim, hunt in body["parties"]:
            call.parties[device] = Party(ConnState(state), lim, hunt)
        return call

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
