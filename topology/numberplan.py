"""The number plan: which LIM owns a number, and which trunk route an external number leaves by.

One lookup for every process (the broker's directory, the LIMs, the CSTA servers, the live view,
the tools): internal numbers (extensions, ACD and hunt groups) map exactly to their LIM; any other
number belongs to the trunk route with the longest prefix that starts it, on that trunk's LIM,
where the simulated public network lives.

A number is external only if it has digits after the prefix: the prefix alone is not a number one
can call (`0` on a trunk with prefix `0` is nobody). Pure; imports only topology.model.
"""
from __future__ import annotations

from itertools import chain
from typing import Iterable, Iterator, Mapping

from topology.extensions import Extensions
from topology.model import Topology, TrunkRoute


def trunk_for(trunks: Iterable[TrunkRoute], number: str) -> TrunkRoute | None:
    """The trunk of `trunks` with the longest prefix that starts `number` (the first such in
    `trunks` if two prefixes are as long: the loader allows no two equal prefixes). A number no
    longer than the prefix is not external (None)."""
    best = None
    for trunk in trunks:
        if number.startswith(trunk.prefix) and len(number) > len(trunk.prefix):
            if best is None or len(trunk.prefix) > len(best.prefix):
                best = trunk
    return best


class InternalNumbers(Mapping[str, int]):
    """Every internal number -> its LIM, answered from the extension blocks and the groups without
    expanding the blocks (topology/extensions.py)."""

    def __init__(self, extensions: Extensions, groups: dict[str, int]):
        self.extensions = extensions
        self.groups = groups

    def __getitem__(self, number: str) -> int:
        lim = self.groups.get(number)
        if lim is None:
            lim = self.extensions.owner(number)
        if lim is None:
            raise KeyError(number)
        return lim

    def get(self, number: str, default: int | None = None) -> int | None:  # type: ignore[override]
        lim = self.groups.get(number)
        if lim is None:
            lim = self.extensions.owner(number)
        return default if lim is None else lim

    def __contains__(self, number: object) -> bool:
        return isinstance(number, str) and self.get(number) is not None

    def __iter__(self) -> Iterator[str]:
        return chain(self.extensions.numbers(), self.groups)

    def __len__(self) -> int:
        return len(self.extensions) + len(self.groups)


class NumberPlan:
    """Number -> owning LIM for one topology, built once: exact for internal numbers, the longest
    trunk prefix for external ones."""

    def __init__(self, topology: Topology):
        self.internal = InternalNumbers(topology.extensions, topology.group_owners())
        self.trunks = topology.trunks
        self.ddi = topology.ddi  # E.164 prefixes of the exchange's DDI numbers (csta_front/teluri.py)

    def owner(self, number: str) -> int | None:
        """The LIM that answers for `number`, or None if the exchange knows no such number."""
        lim = self.internal.get(number)
        if lim is not None:
            return lim
        trunk = self.trunk_for(number)
        return trunk.lim if trunk is not None else None

    def trunk_for(self, number: str) -> TrunkRoute | None:
        """The trunk route an external number is reached by (None for the bare prefix or no match).
        Internal numbers are not looked up first: ask `owner` or `is_external` for those."""
        return trunk_for(self.trunks, number)

    def is_external(self, number: str) -> bool:
        """A number on the public network, reached through a trunk."""
        return number not in self.internal and self.trunk_for(number) is not None
