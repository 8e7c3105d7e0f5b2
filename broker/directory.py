"""The number directory: which LIM answers for a number. Pure, built from the topology.

Internal numbers (extensions and groups) map exactly; anything else is routed by the longest trunk
prefix to the LIM that holds that trunk, where the simulated public network lives.
"""
from __future__ import annotations

from topology.model import Topology


class Directory:
    def __init__(self, topology: Topology):
        self.internal = topology.directory()
        self._trunks = sorted(topology.trunks, key=lambda t: len(t.prefix), reverse=True)

    def owner(self, number: str) -> int | None:
        lim = self.internal.get(number)
        if lim is not None:
            return lim
        for trunk in self._trunks:
            if number.startswith(trunk.prefix) and len(number) > len(trunk.prefix):
                return trunk.lim
        return None

    def is_external(self, number: str) -> bool:
        return number not in self.internal and self.owner(number) is not None
