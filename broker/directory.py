"""The number directory: which LIM answers for a number. Pure, built from the topology.

Internal numbers (extensions and groups) map exactly; anything else is routed by the longest trunk
prefix to the LIM that holds that trunk, where the simulated public network lives. The lookup is
the topology's number plan (topology/numberplan.py), the one the LIMs use too, so the broker routes
a `dev:<number>` request to the very LIM that takes it for its own.
"""
from __future__ import annotations

from topology.numberplan import NumberPlan


class Directory(NumberPlan):
    """The broker's (and every front end's) view of the number plan: `owner` and `is_external`."""
