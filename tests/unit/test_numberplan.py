"""The number plan (topology/numberplan.py): which LIM owns a number, which trunk an external
number leaves by. Expected values follow from the topology: internal numbers are exact, an
external number is the longest trunk prefix followed by at least one digit."""
from __future__ import annotations

import pytest

from broker.directory import Directory
from tests.fakes import FakeNetwork
from topology.loader import load_default_topology
from topology.model import (
    AcdGroup,
    BrokerSettings,
    Extension,
    HuntGroup,
    Lim,
    Topology,
    TrunkRoute,
)
from topology.numberplan import NumberPlan, trunk_for

PSTN = TrunkRoute("pstn", "0", 1)
INTL = TrunkRoute("intl", "00", 2)
MOBILE = TrunkRoute("mobile", "07", 3)


def plan_topology() -> Topology:
    return Topology(name="plan", broker=BrokerSettings(), lims=(Lim(1, "a"), Lim(2, "b"), Lim(3, "c")),
                    extensions=(Extension("1000", "ip", 1, True), Extension("2000", "ip", 2, True),
                                Extension("3000", "virtual", 3, False)),
                    acd_groups=(AcdGroup("5000", 3, ("1000",)),),
                    hunt_groups=(HuntGroup("6000", 2, "linear", ("1000", "2000")),),
                    trunks=(PSTN, INTL, MOBILE))


@pytest.mark.parametrize("number, lim", [
    ("1000", 1), ("2000", 2), ("3000", 3),  # extensions, a virtual one too
    ("5000", 3), ("6000", 2),               # an ACD group, a hunt group: on their own LIMs
    ("0123", 1),                            # national: the pstn trunk
    ("00441234", 2),                        # international: "00" is longer than "0"
    ("0701234567", 3),                      # mobile: "07" is longer than "0"
    ("01", 1), ("001", 2), ("071", 3),      # one digit after the prefix is enough
    ("00", 1),                              # "0" then the digit 0 on pstn; "00" alone is no number
    ("07", 1),                              # likewise
    ("0", None),                            # a bare prefix is not a number
    ("", None), ("1001", None), ("9", None), ("100", None), ("10000", None),  # not in the plan
])
def test_owner(number, lim):
    plan = NumberPlan(plan_topology())
    assert plan.owner(number) == lim
    assert Directory(plan_topology()).owner(number) == lim  # the broker routes by the same plan


def test_trunk_for_and_is_external():
    plan = NumberPlan(plan_topology())
    assert plan.trunk_for("0123") is PSTN and plan.trunk_for("00441") is INTL and plan.trunk_for("0712") is MOBILE
    assert plan.trunk_for("0") is None and plan.trunk_for("1000") is None
    assert plan.is_external("0123") and plan.is_external("00441")
    assert not plan.is_external("1000") and not plan.is_external("6000")
    assert not plan.is_external("0") and not plan.is_external("4444")


def test_the_order_of_trunks_does_not_matter():
    for order in ((PSTN, INTL, MOBILE), (MOBILE, INTL, PSTN), (INTL, PSTN, MOBILE)):
        assert [trunk_for(order, n) for n in ("0123", "00441", "0712", "00", "0")] == [PSTN, INTL, MOBILE, PSTN, None]


def test_an_internal_number_is_never_routed_to_a_trunk():
    # The loader refuses a number that starts with a trunk prefix; a topology made in code may
    # still have one: the exact entry wins.
    topo = Topology(name="t", broker=BrokerSettings(), lims=(Lim(1, "a"), Lim(2, "b")),
                    extensions=(Extension("0100", "ip", 2, True),), trunks=(PSTN,))
    plan = NumberPlan(topo)
    assert plan.owner("0100") == 2 and not plan.is_external("0100")
    assert plan.owner("0101") == 1


def test_a_lim_takes_only_the_external_numbers_the_plan_gives_it():
    # LIM 1 holds "0", a prefix of "00441" too, but the plan gives that number to LIM 2's "00":
    # each number reaches the LIM whose trunk it leaves by, and only that LIM takes it.
    net = FakeNetwork(plan_topology())
    for number, lim in (("0123", 1), ("00441", 2), ("0712", 3)):
        reply = net.phone("2000", "dial", digits=number)
        assert reply["ok"], reply
        assert number in net.cores[lim].devices and all(
            number not in core.devices for n, core in net.cores.items() if n != lim)
        net.phone("2000", "hangup")


def test_every_number_of_the_default_topology():
    topo = load_default_topology()
    plan = NumberPlan(topo)
    for number, lim in topo.directory().items():
        assert plan.owner(number) == lim and not plan.is_external(number)
    for trunk in topo.trunks:
        assert plan.owner(trunk.prefix + "5551234") == trunk.lim
        assert plan.owner(trunk.prefix) is None
