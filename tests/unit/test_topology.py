"""Topology files: the built-in default, validation with line numbers, generation and description."""
from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import pytest
import yaml

from topology.describe import describe_topology
from topology.generate import generate_topology, lim_address
from topology.loader import (
    TopologyError,
    default_topology_path,
    load_default_topology,
    load_topology,
    parse_topology,
)
from topology.model import EXTENSION_TYPES, Topology
from topology.numberplan import NumberPlan

MARK = "# <--"  # marks the line an error must name

# Two LIMs with ten ip extensions each; tests append groups and trunks or edit it.
BASE = """\
name: t
lims:
  - number: 1
    address: 127.0.1.1
    extensions:
      - numbers: 1000-1009
        type: ip
  - number: 2
    address: 127.0.1.2
    extensions:
      - numbers: 2000-2009
        type: ip
"""


def marked_line(text: str) -> int:
    [line] = [n for n, row in enumerate(text.splitlines(), 1) if MARK in row]
    return line


def error_of(text: str) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "t.yaml")
    return info.value


def assert_error(text: str, *words: str) -> TopologyError:
    """Loading `text` fails on the marked line with a message containing every word."""
    err = error_of(text)
    assert err.file == "t.yaml"
    assert err.line == marked_line(text), str(err)
    for word in words:
        assert word in err.problem, str(err)
    return err


# -- the built-in default --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default() -> Topology:
    return load_default_topology()


def test_default_path_is_package_data():
    path = default_topology_path()
    assert path.name == "default.yaml" and path.parent == Path(__file__).parents[2] / "topology"
    assert path.is_file()


def test_default_lims_and_csta(default):
    assert default.name == "default"
    assert default.source == str(default_topology_path())
    assert [(lim.number, lim.address) for lim in default.lims] == [(1, "127.0.1.1"), (2, "127.0.1.2")]
    for lim in default.lims:
        assert lim.csta is not None
        assert (lim.csta.server_type, lim.csta.port, lim.csta.tls_port) == ("XML", 8882, None)


def test_default_extensions(default):
    for lim, base in ((1, 1000), (2, 2000)):
        numbers = [e.number for e in default.extensions_on(lim)]
        assert numbers == [str(n) for n in range(base, base + 50)]
        assert {e.type for e in default.extensions_on(lim)} == set(EXTENSION_TYPES)
    by_number = {e.number: e for e in default.extensions}
    assert len(by_number) == 100
    for number in ("1000", "1001", "2000", "2001"):
        assert by_number[number].type == "ip" and by_number[number].logged_on
    assert not any(e.logged_on for e in default.extensions if e.type == "virtual")


def test_default_groups(default):
    by_number = {e.number: e for e in default.extensions}
    [acd] = default.acd_groups
    assert (acd.number, acd.lim) == ("5000", 1)
    assert {by_number[a].lim for a in acd.agents} == {1, 2}
    assert all(by_number[a].type == "ip" and by_number[a].logged_on for a in acd.agents)
    linear, cascade = default.hunt_groups
    assert (linear.number, linear.lim, linear.mode) == ("6000", 1, "linear")
    assert {by_number[m].lim for m in linear.members} == {1, 2}
    assert (cascade.number, cascade.lim, cascade.mode) == ("6100", 2, "cascade")
    assert cascade.steps == (("2004",), ("1004", "1008"), ("2008", "2009"))
    assert cascade.step_timeout_s == 10
    assert cascade.all_members() == ("2004", "1004", "1008", "2008", "2009")


def test_default_trunk_broker_and_lookups(default):
    [trunk] = default.trunks
    assert (trunk.name, trunk.prefix, trunk.lim, trunk.channels, trunk.answer_after_s) == ("pstn", "0", 1, 30, None)
    broker = default.broker
    ep = broker.primary
    assert (ep.address, ep.router_port, ep.pub_port, ep.sub_port) == ("127.0.0.1", 7800, 7801, 7802)
    assert (broker.heartbeat_interval_ms, broker.dead_after_ms, broker.backup) == (100, 600, None)
    directory = default.directory()
    assert directory["1000"] == 1 and directory["2049"] == 2 and directory["5000"] == 1 and directory["6100"] == 2
    plan = NumberPlan(default)
    assert plan.trunk_for("0701234567") is trunk and plan.trunk_for("1000") is None


def test_default_survives_a_yaml_round_trip(tmp_path, default):
    """Tests rewrite the default with yaml.safe_dump (tests/procs.py); the result must still load the same."""
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(default_topology_path().read_text()), sort_keys=False))
    copy = load_topology(path)
    assert copy.extensions == default.extensions and copy.hunt_groups == default.hunt_groups
    assert copy.trunks == default.trunks and copy.lims == default.lims


def test_example_loads():
    topo = load_topology(default_topology_path().parent / "examples" / "small.yaml")
    assert len(topo.lims) == 2 and topo.acd_groups and topo.hunt_groups and len(topo.trunks) == 1


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(BASE.replace("name: t\n", ""))
    topo = load_topology(path)
    assert topo.name == "mine" and topo.source == str(path)
    assert [(e.number, e.lim) for e in topo.extensions][:2] == [("1000", 1), ("1001", 1)]


# -- files and YAML ------------------------------------------------------------------------------------
def test_error_format_and_pickling():
    err = TopologyError("a.yaml", 3, "bad")
    assert str(err) == "a.yaml:3: bad"
    assert str(TopologyError("a.yaml", None, "bad")) == "a.yaml: bad"
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.line, again.problem) == ("a.yaml", 3, "bad")


def test_unreadable_file_has_no_line(tmp_path):
    with pytest.raises(TopologyError) as info:
        load_topology(tmp_path / "missing.yaml")
    assert info.value.line is None and "cannot read" in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "missing.yaml") + ": ")


def test_yaml_syntax_error_has_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nlims:\n  - number: 1\n    address: [127.0.1.1\n  extensions: x\n")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert "YAML syntax error" in info.value.problem
    assert info.value.line == 5
    assert str(info.value).startswith(f"{path}:5: ")


def test_document_must_be_a_mapping():
    assert "must be a mapping" in error_of("- 1\n- 2\n").problem
    assert error_of("").line is None


def test_unknown_keys_are_rejected():
    err = assert_error(BASE.replace("        type: ip\n  - number: 2",
                                    "        type: ip\n        loged_on: false   # <--\n  - number: 2"),
                       "unknown key 'loged_on'", "did you mean 'logged_on'")
    assert str(err).startswith("t.yaml:")
    assert_error(BASE + "trunk:   # <--\n  - name: x\n", "unknown key 'trunk'")


def test_duplicate_key_rejected():
    assert_error(BASE.replace("    address: 127.0.1.2\n", "    address: 127.0.1.2\n    address: 127.0.1.3   # <--\n"),
                 "'address' given twice")


def test_anchors_and_merge_keys():
    text = BASE.replace("address: 127.0.1.1\n", "address: 127.0.1.1\n    csta: &csta {server_type: XML, port: 9000}\n")
    text = text.replace("address: 127.0.1.2\n", "address: 127.0.1.2\n    csta: {<<: *csta, max_sessions: 5}\n")
    one, two = parse_topology(text).lims
    assert one.csta.port == two.csta.port == 9000 and two.csta.max_sessions == 5


# -- rule 1: a number used twice -------------------------------------------------------------------
def test_extension_defined_twice():
    text = BASE + "      - numbers: 1005   # <--\n        type: analog\n"
    assert_error(text, "number 1005", "used twice", "line 6")


def test_extension_and_group_share_a_number():
    text = BASE + """\
groups:
  hunt:
    - number: 2003   # <--
      lim: 1
      mode: linear
      members: [1000]
"""
    assert_error(text, "number 2003", "hunt group", "extension", "line 11")


def test_two_groups_share_a_number():
    text = BASE + """\
groups:
  acd:
    - {number: 5000, lim: 1, agents: [1000]}
  hunt:
    - {number: 5000, lim: 2, mode: parallel, members: [2000]}   # <--
"""
    assert_error(text, "number 5000", "ACD group", "line 15")


# -- rule 2: overlapping ranges ------------------------------------------------------------------------
def test_overlapping_ranges():
    text = BASE + "      - numbers: 2005-2019   # <--\n        type: dect\n"
    assert_error(text, "range 2005-2019", "overlaps", "range 2000-2009", "line 11")


def test_number_inside_a_range():
    text = BASE + "groups:\n  acd:\n    - {number: 1009, lim: 1, agents: []}   # <--\n"
    assert_error(text, "number 1009", "range 1000-1009")


def test_same_digits_different_width_do_not_clash():
    topo = parse_topology(BASE + '      - numbers: "01000"\n        type: ip\n')
    assert {"1000", "01000"} <= set(topo.directory())


# -- rule 3: LIMs ---------------------------------------------------------------------------------------
def test_group_on_unknown_lim():
    text = BASE + "groups:\n  acd:\n    - number: 5000\n      lim: 3   # <--\n      agents: [1000]\n"
    assert_error(text, "lim 3 is an unknown LIM")


def test_trunk_on_unknown_lim():
    text = BASE + "trunks:\n  - name: pstn\n    prefix: 9\n    lim: 7   # <--\n"
    assert_error(text, "trunk pstn", "lim 7 is an unknown LIM")


def test_lim_number_twice():
    assert_error(BASE.replace("  - number: 2\n", "  - number: 1   # <--\n"), "LIM 1 is defined twice", "line 3")


@pytest.mark.parametrize("value", ["0", "-1", '"2"', "two", "1.5", "true"])
def test_lim_number_must_be_a_positive_int(value):
    assert_error(BASE.replace("  - number: 2\n", f"  - number: {value}   # <--\n"), "LIM: number", "integer")


@pytest.mark.parametrize("address", ["127.0.1.300", "not an address!", "10", "-host", "a..b"])
def test_bad_lim_address(address):
    assert_error(BASE.replace("    address: 127.0.1.2\n", f"    address: {address}   # <--\n"),
                 "LIM 2: address", "IPv4 or IPv6 address or a host name")


@pytest.mark.parametrize("address", ["::1", "lim2.example.com", "localhost"])
def test_good_lim_addresses(address):
    topo = parse_topology(BASE.replace("address: 127.0.1.2", f"address: '{address}'"))
    assert topo.lim(2).address == address


# -- rule 4: members are extensions ------------------------------------------------------------------
def test_agent_that_is_not_an_extension():
    text = BASE + """\
groups:
  acd:
    - number: 5000
      lim: 1
      agents:
        - 1000
        - 3000-3001   # <--
"""
    assert_error(text, "agent 3000", "not an extension")


def test_member_that_is_a_group():
    text = BASE + """\
groups:
  acd:
    - {number: 5000, lim: 1, agents: [1000]}
  hunt:
    - number: 6000
      lim: 1
      mode: circular
      members: [1001, 5000]   # <--
"""
    assert_error(text, "member 5000", "is a group")


def test_member_listed_twice():
    text = BASE + "groups:\n  hunt:\n    - {number: 6000, lim: 1, mode: linear, members: [1000-1002, 1001]}   # <--\n"
    assert_error(text, "member 1001 is listed twice")


# -- rule 5: types and values ------------------------------------------------------------------------
def test_bad_extension_type():
    assert_error(BASE.replace("        type: ip\n  - number: 2", "        type: sip   # <--\n  - number: 2"),
                 "type must be one of", "'sip'")


def test_bad_hunt_mode():
    text = BASE + """\
groups:
  hunt:
    - number: 6000
      lim: 1
      mode: random   # <--
      members: [1000]
"""
    assert_error(text, "mode must be one of", "random")


def test_bad_csta_server_type():
    text = BASE.replace("    address: 127.0.1.2\n",
                        "    address: 127.0.1.2\n    csta:\n      server_type: SOAP   # <--\n")
    assert_error(text, "LIM 2 csta: server_type", "XML, TR87_uaCSTA")


def test_string_where_an_int_is_required():
    text = BASE.replace("    address: 127.0.1.2\n", '    address: 127.0.1.2\n    csta:\n      port: "8882"   # <--\n')
    assert_error(text, "port must be an integer", "'8882' in quotes")


@pytest.mark.parametrize("port", ["0", "65536", "-5"])
def test_port_out_of_range(port):
    assert_error(f"broker:\n  pub_port: {port}   # <--\n" + BASE, "broker: pub_port", "from 1 to 65535")


@pytest.mark.parametrize("value", ["-1", "0", "soon", ".inf"])
def test_bad_timer(value):
    assert_error(f"timers:\n  no_answer_s: {value}   # <--\n" + BASE, "no_answer_s must be a number of seconds > 0")


def test_negative_queue_timeout():
    text = BASE + """\
groups:
  acd:
    - number: 5000
      lim: 1
      agents: []
      queue_timeout_s: -3   # <--
"""
    assert_error(text, "queue_timeout_s", ">= 0")


def test_dead_after_must_exceed_heartbeat():
    assert_error("broker:\n  heartbeat_interval_ms: 500\n  dead_after_ms: 400   # <--\n" + BASE, "dead_after_ms")


def test_logged_on_must_be_boolean():
    text = BASE.replace("type: ip\n  - number: 2", "type: ip\n        logged_on: 1   # <--\n  - number: 2")
    assert_error(text, "logged_on must be true or false")


def test_lims_must_be_a_list():
    assert_error("lims:\n  number: 1   # <--\n", "lims must be a list")


# -- number syntax ---------------------------------------------------------------------------------------
def test_unquoted_leading_zero_must_be_quoted():
    assert_error(BASE + "      - numbers: 0123   # <--\n        type: ip\n", 'write "0123" in quotes')


def test_quoted_leading_zero_is_kept():
    topo = parse_topology(BASE + '      - numbers: "0123-0125"\n        type: ip\n')
    assert [e.number for e in topo.extensions_on(2)][-3:] == ["0123", "0124", "0125"]


@pytest.mark.parametrize("numbers, words", [
    ("999-1001", ["same number of digits"]),
    ("1050-1040", ["starts after it ends"]),
    ("10a0", ["digits only"]),
    ("1000 - 1010", ["a range like 1000-1049"]),
])
def test_bad_numbers(numbers, words):
    assert_error(BASE + f"      - numbers: {numbers}   # <--\n        type: ip\n", *words)


def test_trunk_prefix_must_be_digits():
    assert_error(BASE + "trunks:\n  - name: pstn\n    prefix: '+'   # <--\n    lim: 1\n", "prefix must be a number")


# -- rule 6: virtual extensions --------------------------------------------------------------------------
def test_virtual_logged_on_is_an_error():
    text = BASE + "      - numbers: 2040-2049\n        type: virtual\n        logged_on: true   # <--\n"
    assert_error(text, "virtual extension has no terminal")


def test_virtual_defaults_to_logged_off():
    topo = parse_topology(BASE + """\
      - numbers: 2040
        type: virtual
      - numbers: 2041
        type: cas
""")
    assert [(e.number, e.logged_on) for e in topo.extensions[-2:]] == [("2040", False), ("2041", True)]


# -- rule 7: hunt group members and steps ----------------------------------------------------------------
def test_cascade_with_members():
    text = BASE + """\
groups:
  hunt:
    - number: 6100
      lim: 2
      mode: cascade
      members: [2000]   # <--
      steps: [[2001]]
"""
    assert_error(text, "cascade group lists its members in 'steps'")


def test_cascade_without_steps():
    text = BASE + "groups:\n  hunt:\n    - number: 6100   # <--\n      lim: 2\n      mode: cascade\n"
    assert_error(text, "needs 'steps'")


def test_cascade_with_an_empty_step():
    text = BASE + """\
groups:
  hunt:
    - number: 6100
      lim: 2
      mode: cascade
      steps: [[2000], []]   # <--
"""
    assert_error(text, "needs 'steps'", "non-empty")


def test_linear_with_steps():
    text = BASE + """\
groups:
  hunt:
    - number: 6000
      lim: 1
      mode: linear
      steps: [[1000]]   # <--
"""
    assert_error(text, "linear group lists its members in 'members'")


def test_parallel_without_members():
    text = BASE + """\
groups:
  hunt:
    - number: 6000
      lim: 1
      mode: parallel
      members: []   # <--
"""
    assert_error(text, "needs a non-empty 'members'")


# -- rule 8: trunk prefixes --------------------------------------------------------------------------------
def test_extension_starting_with_a_trunk_prefix():
    text = BASE + "trunks:\n  - name: pstn\n    prefix: 2\n    lim: 1\n"
    text = text.replace("      - numbers: 2000-2009\n", "      - numbers: 2000-2009   # <--\n")
    assert_error(text, "extension 2000", "prefix 2 of trunk pstn", "ambiguous")


def test_group_starting_with_a_trunk_prefix():
    text = BASE + """\
groups:
  acd:
    - {number: "0500", lim: 1, agents: []}   # <--
trunks:
  - {name: pstn, prefix: "05", lim: 1}
"""
    assert_error(text, "ACD group 0500", "prefix 05")


def test_trunk_prefix_inside_a_range_but_not_its_start():
    text = BASE.replace("1000-1009", "0990-1009   # <--") + "trunks:\n  - {name: x, prefix: '1', lim: 1}\n"
    assert_error(text, "extension 1000 starts with the prefix 1")


def test_duplicate_trunk_prefix():
    text = BASE + "trunks:\n  - {name: a, prefix: '0', lim: 1}\n  - {name: b, prefix: '0', lim: 2}   # <--\n"
    assert_error(text, "prefix 0 is already used")


# -- rule 9: ports ------------------------------------------------------------------------------------------
def test_broker_ports_distinct():
    assert_error("broker:\n  router_port: 7800\n  pub_port: 7800   # <--\n" + BASE, "pub_port 7800", "router_port")


def test_backup_on_the_same_address_needs_other_ports():
    text = """\
broker:
  address: 127.0.0.1
  backup:
    address: 127.0.0.1
    router_port: 7810
    pub_port: 7802   # <--
""" + BASE
    assert_error(text, "broker backup pub_port 7802", "broker sub_port")


def test_the_pair_peer_ports_are_claimed_too():
    text = """\
broker:
  address: 127.0.0.1
  backup:
    address: 127.0.0.1
    router_port: 7810
    pub_port: 7811
    sub_port: 7812
    peer_port: 7803   # <--
""" + BASE
    assert_error(text, "broker backup peer_port 7803", "broker peer_port")
    topo = parse_topology(text.replace("7803", "7820"))
    assert (topo.broker.primary.url("peer"), topo.broker.backup.url("peer")) == (
        "tcp://127.0.0.1:7803", "tcp://127.0.0.1:7820")


def test_backup_on_another_address_may_reuse_ports():
    topo = parse_topology("broker:\n  backup:\n    address: 127.0.0.2\n" + BASE)
    assert topo.broker.backup.address == "127.0.0.2" and topo.broker.backup.router_port == 7800


def test_csta_ports_of_lims_sharing_an_address():
    text = BASE.replace("address: 127.0.1.2\n", "address: 127.0.1.1\n    csta: {port: 9000}   # <--\n")
    text = text.replace("address: 127.0.1.1\n", "address: 127.0.1.1\n    csta: {tls_port: 9000}\n", 1)
    assert_error(text, "LIM 2 csta port 9000", "LIM 1 csta tls_port")


def test_csta_ports_on_different_addresses_may_be_equal():
    text = BASE.replace("address: 127.0.1.2\n", "address: 127.0.1.2\n    csta: {}\n")
    text = text.replace("address: 127.0.1.1\n", "address: 127.0.1.1\n    csta: {}\n", 1)
    topo = parse_topology(text)
    assert topo.lim(1).csta.port == topo.lim(2).csta.port == 8882
    assert parse_topology(BASE).lim(1).csta is None


# -- rule 10: LIMs exist, overflow goes somewhere ---------------------------------------------------------
def test_at_least_one_lim():
    assert_error("name: x\nlims: []   # <--\n", "at least one LIM")
    assert "at least one LIM" in error_of("name: x\n").problem


def test_overflow_to_unknown_number():
    text = BASE + """\
groups:
  acd:
    - number: 5000
      lim: 1
      agents: []
      overflow_to: 7000   # <--
"""
    assert_error(text, "overflow_to 7000")


def test_overflow_to_internal_or_external():
    text = BASE + "groups:\n  acd:\n    - {number: 5000, lim: 1, agents: [], overflow_to: 2001}\n"
    assert parse_topology(text).acd_groups[0].overflow_to == "2001"
    text = BASE + "groups:\n  acd:\n    - {number: 5000, lim: 1, agents: [], overflow_to: '0701'}\n"
    text += "trunks:\n  - {name: pstn, prefix: '0', lim: 1}\n"
    assert parse_topology(text).acd_groups[0].overflow_to == "0701"


# -- generate -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lims, per_lim", [(1, 1), (2, 50), (64, 1000), (200, 10)])
def test_generate_round_trips(lims, per_lim):
    text = generate_topology(lims, per_lim)
    assert text.startswith("# ")
    topo = parse_topology(text)
    assert len(topo.lims) == lims and len(topo.extensions) == lims * per_lim
    assert len({len(number) for number in topo.directory()}) == 1  # one digit count for the whole plan
    assert len({lim.address for lim in topo.lims}) == lims
    [trunk] = topo.trunks
    assert (trunk.prefix, trunk.lim) == ("0", 1)
    for lim in topo.lims[:3]:
        first = topo.extensions_on(lim.number)[:2]
        assert all(e.type == "ip" and e.logged_on for e in first)
        if per_lim >= 8:
            assert {e.type for e in topo.extensions_on(lim.number)} == set(EXTENSION_TYPES)
    [acd], [hunt] = topo.acd_groups, topo.hunt_groups
    if lims >= 2:
        assert {topo.directory()[a] for a in acd.agents} == {1, 2}
        assert {topo.directory()[m] for m in hunt.members} == {1, 2}


def test_generate_large_stays_small():
    text = generate_topology(64, 1000)
    assert len(text) < 64_000
    topo = parse_topology(text)
    assert topo.extensions[0].number == "100000"


def test_generate_options():
    topo = parse_topology(generate_topology(3, 20, first_number=5000, csta=False, broker_ports=(9000, 9001, 9002)))
    assert topo.extensions[0].number == "5000"
    assert all(lim.csta is None for lim in topo.lims)
    assert topo.broker.primary.router_port == 9000


def test_lim_addresses_for_a_thousand_lims():
    addresses = [lim_address(n) for n in range(1, 1001)]
    assert len(set(addresses)) == 1000
    for text in addresses:
        address = ipaddress.ip_address(text)
        assert address in ipaddress.ip_network("127.0.0.0/8")
        assert text.split(".")[-1] not in ("0", "255")


@pytest.mark.parametrize("args, kwargs", [((0, 10), {}), ((2, 0), {}), ((2, 10), {"first_number": 0}),
                                          ((100, 100), {"first_number": 9000}),
                                          ((2, 10), {"broker_ports": (7800, 7800, 7802)}),
                                          ((2, 10), {"heartbeat_ms": 5}), ((2, 10), {"heartbeat_ms": 20_000})])
def test_generate_rejects_bad_arguments(args, kwargs):
    with pytest.raises(ValueError):
        generate_topology(*args, **kwargs)


# -- describe --------------------------------------------------------------------------------------------------
def test_describe_default(default):
    text = describe_topology(default)
    assert "default" in text and str(default_topology_path()) in text
    assert "127.0.0.1 router 7800, pub 7801, sub 7802" in text and "100 ms" in text and "600 ms" in text
    assert "LIM 1 at 127.0.1.1" in text and "XML on port 8882" in text
    assert "1000-1009 ip (logged on)" in text and "2010-2014 ip (logged off)" in text
    assert "2040-2049 virtual" in text
    assert "agents 1005-1007, 2005-2007" in text
    assert "6000 on LIM 1, linear: 1002-1003, 2002-2003" in text
    assert "2004 | 1004, 1008 | 2008-2009" in text
    assert "pstn: prefix 0 on LIM 1, 30 channels" in text


def test_describe_is_compact_for_big_topologies():
    topo = parse_topology(generate_topology(64, 1000))
    text = describe_topology(topo)
    assert len(text.splitlines()) < 64 * 12
    assert "100000-100001 ip (logged on)" in text
    assert "CSTA: none" in describe_topology(parse_topology(BASE))


def test_generate_heartbeat():
    default = parse_topology(generate_topology(2, 10)).broker
    assert (default.heartbeat_interval_ms, default.dead_after_ms) == (100, 600)
    slow = parse_topology(generate_topology(2, 10, heartbeat_ms=500)).broker
    assert (slow.heartbeat_interval_ms, slow.dead_after_ms) == (500, 3000)


def test_syntax_errors_read_the_same_with_libyaml():
    """libyaml composes first; a text it refuses is composed again by PyYAML for the message."""
    with pytest.raises(TopologyError) as err:
        parse_topology("lims:\n  - {number: 1, address: [127.0.0.1\n", "x.yaml")
    with pytest.raises(yaml.MarkedYAMLError) as pure:
        yaml.compose("lims:\n  - {number: 1, address: [127.0.0.1\n", Loader=yaml.SafeLoader)
    assert pure.value.problem in err.value.problem
