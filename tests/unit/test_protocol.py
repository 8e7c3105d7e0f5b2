"""The bus protocol's vocabulary (broker/protocol.py): addresses built and parsed, and the enums
on the wire as the plain strings they replace."""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import msgpack
from broker.envelope import Envelope, decode
from broker.protocol import (BROKER, PHYSICAL_ACTIONS, Kind, Refusal, csta_node, device_address,
                             is_device_address, is_lim_node, is_server_node, lim_node, lim_number_of,
                             number_of_device_address, view_node)
from csta_front.services import LIM_ERRORS
from lim.errors import Refused


def test_device_addresses():
    assert device_address("1000") == "dev:1000"
    assert device_address("0046812345") == "dev:0046812345"  # leading zeros are part of the number
    assert number_of_device_address("dev:1000") == "1000"
    assert number_of_device_address(device_address("007")) == "007"
    assert is_device_address("dev:1000") and not is_device_address("lim-1")
    for other in ("lim-1", "csta-1", BROKER, "1000", "d:1000|", "DEV:1000"):
        assert number_of_device_address(other) is None


def test_node_ids():
    assert lim_node(1) == "lim-1" and lim_node(12) == "lim-12"
    assert csta_node(3) == "csta-3"
    assert view_node(4242) == "view-4242"
    assert BROKER == "broker"
    assert lim_number_of("lim-1") == 1 and lim_number_of(lim_node(12)) == 12
    for other in ("csta-1", "lim-", "lim-x", "lim-1a", "broker", "dev:1000", "view-1", "slim-1"):
        assert lim_number_of(other) is None
    assert is_lim_node("lim-2") and not is_lim_node("csta-2")
    assert is_server_node("lim-2") and is_server_node("csta-2")
    assert not any(is_server_node(n) for n in ("broker", "dev:1000", "view-1", "cli-1-ab"))


def test_enums_are_their_strings_on_the_wire():
    # The envelope packs a kind and a body's error code with msgpack: the same bytes as before.
    assert msgpack.packb(Kind.CALL_OFFER) == msgpack.packb("call.offer")
    assert msgpack.packb({"ok": False, "error": Refusal.BUSY}) == msgpack.packb({"ok": False, "error": "busy"})
    enum_env = Envelope(Kind.PHONE, src=lim_node(1), dst=device_address("2000"),
                        body={"error": Refusal.NOT_ALERTING}, msg_id=3)
    plain_env = Envelope("phone", src="lim-1", dst="dev:2000", body={"error": "not_alerting"}, msg_id=3)
    assert enum_env.frames() == plain_env.frames()
    assert decode(enum_env.frames()) == plain_env
    # ... and as JSON (the live view, `mxone ... --json`), and in text.
    assert json.dumps({"error": Refusal.TIMEOUT}) == '{"error": "timeout"}'
    assert f"{Refusal.LIM_DOWN} {Kind.LIM_STATUS}" == "lim_down lim.status"
    # A code or kind that arrives as a plain string finds its enum key, and the other way round.
    assert LIM_ERRORS["busy"] == LIM_ERRORS[Refusal.BUSY]
    assert {("dev:1000", "phone"): 1}[(device_address("1000"), Kind.PHONE)] == 1
    assert Refused(Refusal.IDLE, "x").reply() == {"ok": False, "error": "idle", "message": "x"}


def test_every_mapped_refusal_is_a_protocol_code():
    assert set(LIM_ERRORS) <= set(Refusal)
    # Codes the CSTA front end leaves to operation/generic, on purpose (tests/unit/test_csta_golden.py).
    unmapped = set(Refusal) - set(LIM_ERRORS)
    # The routeing codes are mapped where they arise (csta_front/services_routeing.py, its own errors).
    assert unmapped == {Refusal.NOT_CONNECTED, Refusal.NOT_HELD, Refusal.REFUSED, Refusal.CLEARED,
                        Refusal.PASSIVE, Refusal.REJOIN, Refusal.NOT_A_ROUTE_POINT, Refusal.NO_SUCH_ROUTE}


def test_enum_values_are_unique_and_lowercase():
    for enum in (Kind, Refusal):
        values = [m.value for m in enum]
        assert len(values) == len(set(values))
        assert all(v == v.lower() and " " not in v for v in values)


def test_physical_actions():
    assert {a for a, takes_number in PHYSICAL_ACTIONS.items() if takes_number} == {
        "dial", "consult", "deflect", "sst", "digits"}
    import lim.physical
    assert lim.physical.PHYSICAL_ACTIONS is PHYSICAL_ACTIONS  # the LIM checks against the same table


def test_protocol_is_a_leaf_module():
    """Importable by everything: it imports the standard library only."""
    source = Path(__file__).resolve().parents[2] / "broker" / "protocol.py"
    tree = ast.parse(source.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}
