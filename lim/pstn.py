"""The simulated public network's script: how an external number behaves when the exchange calls it.

Pure data, no I/O. Tests and load tools script numbers one by one (answer after N s, busy, no
answer, invalid, answering machine) or give a seeded mix for every number not scripted. A number
with no script and no mix behaves as before scripting existed: it rings, and answers by itself
only when its trunk has `answer_after_s`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from broker.protocol import Refusal
from lim.errors import Refused

# What a number of the public network does with a call: answer (a person), machine (an answering
# machine answers), busy, noanswer (rings until the caller gives up), invalid (not allocated).
BEHAVIOURS = ("answer", "machine", "busy", "noanswer", "invalid")
ANSWERING = ("answer", "machine")
MAX_SCRIPTED = 100_000  # per LIM: a runaway script costs a refusal, not the LIM's memory


@dataclass(frozen=True)
class Behaviour:
    kind: str
    after_s: float = 0.0  # answer and machine: seconds of ringing first

    @classmethod
    def parse(cls, kind: object, after_s: object = None) -> "Behaviour":
        if kind not in BEHAVIOURS:
            raise Refused(Refusal.BAD_REQUEST, f"unknown behaviour {kind!r}; use one of {', '.join(BEHAVIOURS)}")
        try:
            if after_s is None:
                after = 0.0
            elif isinstance(after_s, (int, float, str, bytes)):  # what a bus body can hold that float() reads
                after = float(after_s)
            else:
                raise TypeError
        except (TypeError, ValueError):
            raise Refused(Refusal.BAD_REQUEST, f"after_s must be a number of seconds, not {after_s!r}") from None
        if not 0 <= after <= 86_400:
            raise Refused(Refusal.BAD_REQUEST, f"after_s must be 0 to 86400 seconds, not {after}")
        return cls(str(kind), after)

    def to_wire(self) -> dict:
        return {"behaviour": self.kind, "after_s": self.after_s}


class NetworkScript:
    """Per-number behaviours, and a seeded mix drawn for numbers without one."""

    def __init__(self) -> None:
        self.numbers: dict[str, Behaviour] = {}
        self.mix: list[tuple[str, float]] = []  # (behaviour, cumulative share)
        self.mix_after_s = 0.0
        self.seed: int | None = None
        self._random = random.Random()

    def script(self, number: str, behaviour: Behaviour | None) -> None:
        if behaviour is None:
            self.numbers.pop(number, None)
        elif number in self.numbers or len(self.numbers) < MAX_SCRIPTED:
            self.numbers[number] = behaviour
        else:
            raise Refused(Refusal.BAD_REQUEST, f"at most {MAX_SCRIPTED} numbers can be scripted")

    def set_mix(self, shares: dict, seed: int | None, after_s: object = None) -> None:
        """`shares`: behaviour -> weight (any positive scale); empty switches the mix off."""
        total, cumulative = 0.0, []
        for kind, weight in (shares or {}).items():
            Behaviour.parse(kind)
            try:
                weight = float(weight)
            except (TypeError, ValueError):
                raise Refused(Refusal.BAD_REQUEST, f"the share of {kind} must be a number") from None
            if weight < 0 or weight != weight:
                raise Refused(Refusal.BAD_REQUEST, f"the share of {kind} must not be negative")
            total += weight
            cumulative.append((kind, total))
        if shares and total <= 0:
            raise Refused(Refusal.BAD_REQUEST, "the mix's shares add up to nothing")
        self.mix = [(kind, c / total) for kind, c in cumulative] if shares else []
        self.mix_after_s = Behaviour.parse("answer", after_s).after_s
        self.seed = None if seed is None else int(seed)
        self._random = random.Random(self.seed)

    def clear(self) -> None:
        self.numbers.clear()
        self.set_mix({}, None)

    def behaviour(self, number: str) -> Behaviour | None:
        """How `number` treats the call being offered now (a mix draws once per call)."""
        scripted = self.numbers.get(number)
        if scripted is not None or not self.mix:
            return scripted
        draw = self._random.random()
        kind = next((k for k, c in self.mix if draw < c), self.mix[-1][0])
        return Behaviour(kind, self.mix_after_s)

    def to_wire(self) -> dict:
        shares, previous = {}, 0.0
        for kind, c in self.mix:
            shares[kind], previous = round(c - previous, 6), c
        return {"numbers": {n: b.to_wire() for n, b in sorted(self.numbers.items())},
                "mix": shares, "seed": self.seed, "mix_after_s": self.mix_after_s}
