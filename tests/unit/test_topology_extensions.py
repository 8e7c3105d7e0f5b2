"""topology/extensions.py: the extensions held as blocks answer as the expanded list would."""
from __future__ import annotations

import pytest

from topology.extensions import Extension, ExtensionBlock, Extensions
from topology.loader import parse_topology
from topology.numberplan import NumberPlan

BLOCKS = Extensions([ExtensionBlock("1000", "1049", "ip", 1, True),
                     ExtensionBlock("0100", "0199", "dect", 2, True),   # leading zeros: width 4
                     ExtensionBlock("100", "100", "virtual", 3, False),  # a single number of width 3
                     ExtensionBlock("2000", "2000", "analog", 2, True)])


@pytest.mark.parametrize("number, lim", [("1000", 1), ("1049", 1), ("1050", None), ("0999", None),
                                         ("0100", 2), ("0199", 2), ("100", 3), ("0100", 2), ("2000", 2),
                                         ("199", None), ("00100", None), ("10000", None), ("", None),
                                         ("10a0", None), ("１０００", None), ("²", None), ("-1000", None)])
def test_owner_is_the_lim_of_the_block_holding_the_number_of_that_width(number, lim):
    assert BLOCKS.owner(number) == lim


def test_the_sequence_is_the_expanded_list_in_topology_order():
    expanded = ([Extension(str(n), "ip", 1, True) for n in range(1000, 1050)]
                + [Extension(f"{n:04d}", "dect", 2, True) for n in range(100, 200)]
                + [Extension("100", "virtual", 3, False), Extension("2000", "analog", 2, True)])
    assert len(BLOCKS) == len(expanded) == 152
    assert list(BLOCKS) == expanded
    assert BLOCKS[50] == expanded[50] and BLOCKS[-1] == expanded[-1]
    assert BLOCKS == tuple(expanded) and BLOCKS == Extensions.of(expanded)
    assert hash(BLOCKS) == hash(Extensions.of(expanded))
    assert list(BLOCKS.numbers()) == [e.number for e in expanded]
    assert BLOCKS.on_lim(2) == tuple(e for e in expanded if e.lim == 2)


def test_one_lims_extensions_are_expanded_without_the_rest():
    extensions = Extensions([ExtensionBlock("100000", "100999", "ip", 1, True),
                             ExtensionBlock("101000", "101999", "ip", 2, True)])
    assert len(extensions.on_lim(2)) == 1000
    assert extensions._all is None  # the whole list was never made


def test_a_loaded_topology_keeps_its_blocks_and_the_number_plan_answers_from_them():
    topology = parse_topology("""
lims:
  - number: 1
    address: 127.0.1.1
    extensions:
      - {numbers: "1000-1999", type: ip}
  - number: 2
    address: 127.0.1.2
    extensions:
      - {numbers: "2000-2999", type: dect}
      - {numbers: "3000", type: virtual}
groups:
  acd:
    - {number: "5000", lim: 2, agents: ["2000-2004"]}
trunks:
  - {name: pstn, prefix: "0", lim: 1}
""")
    assert len(topology.extensions.blocks) == 3 and len(topology.extensions) == 2001
    plan = NumberPlan(topology)
    assert [plan.owner(n) for n in ("1999", "2000", "3000", "3001", "5000", "0709")] == [1, 2, 2, None, 2, 1]
    assert "2500" in plan.internal and "3001" not in plan.internal and plan.internal.get("5000") == 2
    assert len(plan.internal) == 2002 and set(plan.internal) == set(topology.directory())
    assert plan.is_external("0709") and not plan.is_external("2500")
