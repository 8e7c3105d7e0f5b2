"""The bus protocol's vocabulary: message kinds, node addresses, refusal codes, phone actions.

Every process of the exchange (broker, LIMs, CSTA servers, live view, tools) speaks this one
protocol, so its names live here once instead of as string literals in each of them. A leaf
module: it imports only the standard library, so anything may import it (the broker, the LIMs,
the front ends, the tools and the tests) without pulling in ZeroMQ or the LIM's logic.

The wire does not change: `Kind` and `Refusal` are `StrEnum`s, whose members are `str`s equal to
(and hashing like) the plain strings, and msgpack packs them as the same bytes. The envelope
itself (header layout, topics) is broker/envelope.py's.
"""
from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """The `kind` of a bus message: what a request, one-way message or event is."""
    # Between a node and the broker.
    REGISTER = "register"        # node -> broker: join as a member (role lim|front)
    HEARTBEAT = "heartbeat"      # both ways: still alive (the broker's carries the membership version)
    STATUS = "status"            # -> broker: its state (active or passive), mode and members
    MEMBERS = "members"          # -> broker: the member list (a node whose membership version is stale)
    REJOIN = "rejoin"            # broker -> node: you were declared dead, rejoin with a new incarnation
    PASSIVE = "passive"          # broker -> node, one-way: this broker of a pair is passive
    MEMBER = "member"            # broker event on the `sys|` topic: a member came up or died
    REPLY = "reply"              # the answer to a request (names it in reply_to)
    # Between any nodes.
    BUS_REPLAY = "bus.replay"    # -> a LIM: the events it published since (after a broker failover)
    PROBE = "probe"              # published to oneself: subscriptions have reached the broker
    EVENT = "event"              # a LIM's published call or device event (ECMA-269 name in the body)
    # Requests a LIM serves (addressed to a device, `dev:<number>`, or to the LIM, `lim-<n>`).
    PHONE = "phone"              # an action at a phone (PHYSICAL_ACTIONS)
    CALL_CLEAR = "call.clear"    # clear a whole call, asked through one of its devices
    CALL_DATA = "call.data"      # attach call data (AssociateData, an IVR), asked through one of its devices
    FEATURE = "feature"          # set do-not-disturb, message waiting, forwarding
    FEATURE_GET = "feature.get"  # read them
    AGENT = "agent"              # an ACD agent's state (login, ready, ...)
    ACD_AGENT = "acd.agent"      # one-way to an ACD group's LIM: an agent's state changed
    DEVICE_GET = "device.get"    # a device's state and calls (CSTA snapshot, monitor start)
    LIM_STATUS = "lim.status"    # a LIM's devices and calls (tools, live view)
    CALL_GET = "call.get"        # a call, asked of its controlling LIM
    CALL_OFFER = "call.offer"    # controller -> a number's LIM: may it take the call?
    CALL_OP = "call.op"          # a device's LIM -> the controller: carry out a checked action
    CALL_HANDOVER = "call.handover"  # controller -> controller: take over the parties of a call you control
                                     # (they join one of mine: a transfer or conference across LIMs)
    CALL_UPDATE = "call.update"  # one-way, controller -> LIMs in the call: its new connections
    CALL_PREDICTIVE = "call.predictive"  # -> the calling device's LIM: dial the called number first
                                         # (CSTA MakePredictiveCall), connect the caller on its answer
    NETWORK = "network"          # -> a trunk's LIM: script how the public network's numbers behave
    ROUTE = "route"              # a CSTA server -> a route point's LIM: register, cancel, select, end (op)
    ROUTE_DIALOGUE = "route.dialogue"  # a route point's LIM -> the registrant's CSTA server: request,
                                       # reroute (requests), used, end (one-way) (msg)
    # Requests a CSTA server serves (addressed to `csta-<n>`).
    CSTA_STATUS = "csta.status"  # sessions, monitors, settings
    CSTA_RECORD = "csta.record"  # start/stop recording its CSTA traffic (`mxone record`)
    CSTA_FAULT = "csta.fault"    # inject faults (`mxone fault`)


class Refusal(StrEnum):
    """The `error` code of a refusal reply: `{"ok": False, "error": code, "message": text}`.

    Most come from a LIM (lim/errors.py's `Refused`), having changed nothing; the broker and
    the bus node add their own (routing, liveness, timeouts). The CSTA front end maps each to a
    CSTAErrorCode (csta_front/services.py's LIM_ERRORS; those it leaves out become operation/generic)
    and the live view to an HTTP status."""
    # The request itself.
    UNKNOWN_REQUEST = "unknown_request"
    BAD_REQUEST = "bad_request"
    BAD_DIGITS = "bad_digits"
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_FEATURE = "unknown_feature"
    # What it names.
    UNKNOWN_NUMBER = "unknown_number"
    NO_SUCH_CALL = "no_such_call"
    NO_SUCH_CONNECTION = "no_such_connection"
    NOT_A_PHONE = "not_a_phone"
    NOT_AN_EXTENSION = "not_an_extension"
    NOT_A_TERMINAL = "not_a_terminal"
    VIRTUAL = "virtual"
    FORWARD_TO_SELF = "forward_to_self"
    FORWARD_LOOP = "forward_loop"
    UNKNOWN_GROUP = "unknown_group"
    NOT_A_MEMBER = "not_a_member"
    BAD_AGENT_ID = "bad_agent_id"
    ALREADY_LOGGED_ON = "already_logged_on"
    NOT_LOGGED_ON = "not_logged_on"
    NOT_A_ROUTE_POINT = "not_a_route_point"
    NO_SUCH_ROUTE = "no_such_route"      # no routeing dialogue (or registration) by that ID awaits it
    # The state of a device or call.
    BUSY = "busy"
    NOT_ALERTING = "not_alerting"
    NOT_CONNECTED = "not_connected"
    NOT_HELD = "not_held"
    IDLE = "idle"
    NO_ACTIVE_CALL = "no_active_call"
    NO_HELD_CALL = "no_held_call"
    NOT_QUEUED = "not_queued"
    OUT_OF_SERVICE = "out_of_service"
    TRUNKS_BUSY = "trunks_busy"
    CONFERENCE_FULL = "conference_full"
    REFUSED = "refused"          # the agent (or overflow number) given a queued call did not take it
    CLEARED = "cleared"          # the call ended while it was being handed on
    # The bus: the broker's routing and liveness, the node's own timeout.
    LIM_DOWN = "lim_down"
    UNREACHABLE = "unreachable"
    BROKER_FAILOVER = "broker_failover"  # the broker (re)started or took over just now and the node
                                         # has not reached it yet: the node is not known to be down
    TIMEOUT = "timeout"
    PASSIVE = "passive"
    REJOIN = "rejoin"


# -- node addresses ---------------------------------------------------------------------------------
# A request's `dst` is a node id (the ZeroMQ identity of the node's DEALER) or a device address,
# which the broker routes to the LIM that owns the number (broker/directory.py).
BROKER = "broker"          # the broker itself (the active one of a pair)
DEVICE_PREFIX = "dev:"
LIM_PREFIX = "lim-"
CSTA_PREFIX = "csta-"
VIEW_PREFIX = "view-"


def device_address(number: str) -> str:
    """The address of a device: the broker delivers it to the LIM that owns `number`."""
    return f"{DEVICE_PREFIX}{number}"


def is_device_address(address: str) -> bool:
    return address.startswith(DEVICE_PREFIX)


def number_of_device_address(address: str) -> str | None:
    """`dev:1000` -> "1000"; None for an address that is not a device's."""
    return address[len(DEVICE_PREFIX):] if address.startswith(DEVICE_PREFIX) else None


def lim_node(lim: int) -> str:
    """The node id of LIM `lim`."""
    return f"{LIM_PREFIX}{lim}"


def lim_number_of(node: str) -> int | None:
    """`lim-3` -> 3; None for any other node id."""
    if node.startswith(LIM_PREFIX) and node[len(LIM_PREFIX):].isdigit():
        return int(node[len(LIM_PREFIX):])
    return None


def is_lim_node(node: str) -> bool:
    return node.startswith(LIM_PREFIX)


def csta_node(lim: int) -> str:
    """The node id of the CSTA server installed on LIM `lim`."""
    return f"{CSTA_PREFIX}{lim}"


def is_server_node(node: str) -> bool:
    """A LIM or a CSTA server: a registered member whose liveness the broker knows, so a request to
    one that is out of service is refused at once rather than left to time out."""
    return node.startswith((LIM_PREFIX, CSTA_PREFIX))


def view_node(pid: int) -> str:
    """The node id of a live view process (it registers nothing: one per process)."""
    return f"{VIEW_PREFIX}{pid}"


# -- phone actions ----------------------------------------------------------------------------------
# What a person does at a phone: the `action` of a `phone` request (lim/physical.py carries them
# out; the CLI, the live view and the CSTA front end send them). Action -> does it take a number
# (or DTMF digits, for `digits`) in the `digits` field?
MAX_CONFERENCE_PARTIES = 8  # the exchange's limit; CSTA capability exchange reports it too

# A `call.data` request's items (the call's data: ECMA-269 correlator data, user data, account and
# authorisation codes), each an octet string in hex, and the most octets each may hold (ECMA-269
# bounds correlator data at 32 octets).
CALL_DATA_OCTETS = {"correlator": 32, "user": 256, "account": 32, "auth": 32}

PHYSICAL_ACTIONS = {
    "offhook": False, "onhook": False, "dial": True, "answer": False, "hangup": False,
    "logon": False, "logoff": False, "hold": False, "retrieve": False, "consult": True,
    "transfer": False, "conference": False, "alternate": False, "reconnect": False,
    "deflect": True, "sst": True, "digits": True,
}
