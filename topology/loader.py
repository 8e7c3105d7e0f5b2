"""Load a topology file into a `Topology` and validate it.

The YAML is composed into PyYAML nodes (with libyaml's `yaml.CSafeLoader` when present, else
`yaml.SafeLoader`) rather than loaded into plain
values, so that every problem names the line it is on; the walk over the nodes follows the format
(see default.yaml) and rejects every key it does not know, so a typo never loads silently. Loading stops at the
first problem found: checks of single values come first (in file order), then the checks across
the whole number plan.
"""
from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from topology.model import (
    CSTA_SERVER_TYPES,
    EXTENSION_TYPES,
    HUNT_MODES,
    AcdGroup,
    BrokerEndpoint,
    BrokerSettings,
    CstaSettings,
    ExtensionBlock,
    Extensions,
    HuntGroup,
    Lim,
    LiveView,
    RoutePoint,
    Timers,
    Topology,
    TrunkRoute,
)

GROUP_KINDS = ("acd", "hunt", "route")

__all__ = ["TopologyError", "load_topology", "parse_topology", "default_topology_path",
           "load_default_topology"]


class TopologyError(Exception):
    """A topology that cannot be used: `file`, `line` (1-based, None if unknown) and `problem`."""

    def __init__(self, file: str, line: int | None, problem: str):
        super().__init__(file, line, problem)  # all three in args, so the error pickles
        self.file = file
        self.line = line
        self.problem = problem

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.problem}"


def default_topology_path() -> Path:
    """The built-in topology shipped with the package."""
    return Path(__file__).with_name("default.yaml")


def load_default_topology() -> Topology:
    return load_topology(default_topology_path())


def load_topology(path: str | os.PathLike) -> Topology:
    """Read, parse and validate a topology file; the topology's name defaults to the file stem."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TopologyError(source, None, f"cannot read topology file: {reason}") from None
    return parse_topology(text, source)


def parse_topology(text: str, source: str = "<string>") -> Topology:
    """Parse and validate topology YAML; `source` names the text in errors and in `Topology.source`."""
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context
        if exc.problem and exc.context and exc.context_mark:
            problem = f"{exc.problem} ({exc.context}, line {exc.context_mark.line + 1})"
        raise TopologyError(source, mark.line + 1 if mark else None, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(source, None, f"YAML syntax error: {exc}") from None
    if root is None:
        raise TopologyError(source, None, "the file is empty; a topology needs at least 'lims'")
    try:
        return _Builder(source).build(root)
    except _Problem as problem:
        raise TopologyError(source, problem.line, problem.message) from None


# -- internals ---------------------------------------------------------------------------------------
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)  # libyaml: every process of a 64-LIM exchange loads the file


def _compose(text: str) -> yaml.Node | None:
    """The document's nodes, with their marks. libyaml when present (about ten times faster); a text
    it refuses is composed again by PyYAML, so that syntax errors read the same with or without it."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


_INT, _FLOAT, _BOOL, _STR, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "str", "null"))
_DIGITS = re.compile(r"[0-9]+")
_RANGE = re.compile(r"([0-9]+)-([0-9]+)")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_REQUIRED = object()


class _Problem(Exception):
    """One problem at a line; `parse_topology` turns it into a TopologyError naming the file."""

    def __init__(self, line: int | None, message: str):
        super().__init__(line, message)
        self.line = line
        self.message = message


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL)


def _got(node: yaml.Node) -> str:
    """The value as written, for messages; quotes matter, as they turn 8882 into text."""
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')  # only scalars have a style
    return f"{node.value!r} in quotes" if quoted else repr(node.value)


_KINDS: dict[type[yaml.Node], str] = {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}


def _kind_of(node: yaml.Node) -> str:
    return _KINDS.get(type(node), repr(node.value))


@dataclass(frozen=True)
class _Span:
    """A number or an inclusive range of numbers of one digit count, as written at `line`."""
    first: str
    last: str
    line: int

    @property
    def width(self) -> int:
        return len(self.first)

    @property
    def lo(self) -> int:
        return int(self.first)

    @property
    def hi(self) -> int:
        return int(self.last)

    @property
    def is_range(self) -> bool:
        return self.first != self.last

    def number(self, value: int) -> str:
        return str(value).zfill(self.width)

    def numbers(self) -> Iterator[str]:
        width = self.width  # once: a generated block has a thousand numbers
        return (str(n).zfill(width) for n in range(self.lo, self.hi + 1))

    def __str__(self) -> str:
        return f"{self.first}-{self.last}" if self.is_range else self.first


_Model = TypeVar("_Model", bound="AcdGroup | HuntGroup | RoutePoint", covariant=True)


@dataclass(frozen=True)
class _Group(Generic[_Model]):
    """A group as built, with its agents or members as written (their lines are for messages)."""
    model: _Model
    fields: _Fields
    spans: list[_Span]


@dataclass(frozen=True)
class _Internal:
    """A span of the internal number plan and what owns it, for the checks across the plan."""
    span: _Span
    kind: str  # "extension", "ACD group", "hunt group" or "route point"


class _Fields:
    """The entries of one YAML mapping, checked against the keys its part of the format allows."""

    def __init__(self, builder: _Builder, node: yaml.Node, what: str, allowed: tuple[str, ...]):
        if not isinstance(node, yaml.MappingNode):
            raise _Problem(_line(node), f"{what} must be a mapping, got {_kind_of(node)}")
        self.builder = builder
        self.what = what
        self.line = _line(node)
        self.entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        own = {id(key_node) for key_node, _ in node.value}
        try:
            builder.constructor.flatten_mapping(node)  # `<<: *anchor` merge keys: merged entries come first
        except ConstructorError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else self.line
            raise _Problem(line, f"{what}: {exc.problem}") from None
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                raise _Problem(_line(key_node), self._unknown(key, allowed))
            earlier = self.entries.get(key)
            if earlier and id(earlier[0]) in own and id(key_node) in own:
                raise _Problem(_line(key_node), f"{what}: key '{key}' given twice (first on line {_line(earlier[0])})")
            self.entries.pop(key, None)  # a key written here overrides a merged one
            self.entries[key] = (key_node, value_node)
        # An aliased mapping is walked again: leave it flattened, so the merge is not taken for duplicates.
        node.value = list(self.entries.values())

    def _unknown(self, key: Any, allowed: tuple[str, ...]) -> str:
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(allowed)}"
        return f"{self.what}: unknown key '{key}'{hint}"

    def node(self, key: str) -> yaml.Node | None:
        """The value of `key`, None if absent or null."""
        entry = self.entries.get(key)
        return None if entry is None or _is_null(entry[1]) else entry[1]

    def line_of(self, key: str) -> int:
        """Line of the value of `key`, or of the mapping when the key is absent (a default was used)."""
        entry = self.entries.get(key)
        return _line(entry[1]) if entry else self.line

    def get(self, key: str, convert: Callable[[yaml.Node, str], Any], default: Any = _REQUIRED) -> Any:
        node = self.node(key)
        if node is None:
            if default is _REQUIRED:
                raise _Problem(self.line_of(key), f"{self.what}: '{key}' is required")
            return default
        return convert(node, f"{self.what}: {key}")

    def given(self, spec: dict[str, Callable[[yaml.Node, str], Any]]) -> dict[str, Any]:
        """Keyword arguments for a model class from optional keys: absent keys keep the model's default."""
        return {key: self.get(key, convert) for key, convert in spec.items() if self.node(key) is not None}

    def items(self, key: str) -> list[yaml.Node]:
        """The items of the list under `key`; absent or null is an empty list."""
        node = self.node(key)
        return [] if node is None else self.builder.items(node, f"{self.what}: {key}")


class _Builder:
    """Walks the composed document of one source and builds the Topology."""

    def __init__(self, source: str):
        self.source = source
        self.constructor = SafeConstructor()
        self.internal: list[_Internal] = []  # the whole number plan, in file order
        self.ports: dict[tuple[str, int], tuple[str, int | None]] = {}  # (address, port) -> (user, line)
        self.lims: dict[int, int] = {}  # LIM number -> line

    # -- scalar values -------------------------------------------------------------------------------
    def scalar(self, node: yaml.Node, label: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise _Problem(_line(node), f"{label} must be a single value, got {_kind_of(node)}")
        try:
            return self.constructor.construct_object(node)
        except (ConstructorError, ValueError):  # e.g. an unknown `!tag` or `!!int abc`
            raise _Problem(_line(node), f"{label}: cannot read {node.value!r} as {node.tag}") from None

    def text(self, node: yaml.Node, label: str) -> str:
        self.scalar(node, label)
        if not node.value.strip():
            raise _Problem(_line(node), f"{label} must not be empty")
        return node.value

    def boolean(self, node: yaml.Node, label: str) -> bool:
        value = self.scalar(node, label)
        if node.tag != _BOOL:
            raise _Problem(_line(node), f"{label} must be true or false, got {_got(node)}")
        return value

    def integer(self, minimum: int, maximum: int | None = None) -> Callable[[yaml.Node, str], int]:
        def convert(node: yaml.Node, label: str) -> int:
            value = self.scalar(node, label)
            if node.tag != _INT or (value < minimum or (maximum is not None and value > maximum)):
                span = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
                raise _Problem(_line(node), f"{label} must be an integer {span}, got {_got(node)}")
            return value
        return convert

    def seconds(self, positive: bool) -> Callable[[yaml.Node, str], float]:
        """A duration; zero is allowed unless `positive` (a timer of 0 s would never wait)."""
        def convert(node: yaml.Node, label: str) -> float:
            value = self.scalar(node, label)
            if node.tag not in (_INT, _FLOAT) or not math.isfinite(value) or value < 0 or (positive and value == 0):
                need = "a number of seconds > 0" if positive else "a number of seconds >= 0"
                raise _Problem(_line(node), f"{label} must be {need}, got {_got(node)}")
            return float(value)
        return convert

    def choice(self, options: tuple[str, ...]) -> Callable[[yaml.Node, str], str]:
        def convert(node: yaml.Node, label: str) -> str:
            value = self.scalar(node, label)
            if value not in options:
                raise _Problem(_line(node), f"{label} must be one of {', '.join(options)}, got {node.value!r}")
            return value
        return convert

    def address(self, node: yaml.Node, label: str) -> str:
        value = self.scalar(node, label)
        if node.tag == _STR:
            try:
                return str(ipaddress.ip_address(value))  # normalised, so equal addresses compare equal
            except ValueError:
                labels = value.rstrip(".").split(".")
                # an all-digit last label is a mistyped IPv4 address, never a host name
                if len(value) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in labels) and not labels[-1].isdigit():
                    return value.lower()
        raise _Problem(_line(node), f"{label} must be an IPv4 or IPv6 address or a host name, got {node.value!r}")

    def digits(self, node: yaml.Node, label: str) -> str:
        """A number of the number plan, kept as a string (leading zeros matter)."""
        self.scalar(node, label)
        raw = node.value
        if node.tag == _INT and _DIGITS.fullmatch(raw):
            if len(raw) > 1 and raw.startswith("0"):
                # YAML 1.1 reads an unquoted 0123 as the octal number 83
                raise _Problem(_line(node), f"{label}: write \"{raw}\" in quotes to keep the leading zero")
            return raw
        if node.tag == _STR and _DIGITS.fullmatch(raw):
            return raw
        raise _Problem(_line(node), f"{label} must be a number of digits only, got {raw!r}")

    def span(self, node: yaml.Node, label: str) -> _Span:
        """A number ("1000") or an inclusive range ("1000-1049") of numbers with the same digit count."""
        self.scalar(node, label)
        if node.tag != _STR or "-" not in node.value:
            number = self.digits(node, label)
            return _Span(number, number, _line(node))
        match = _RANGE.fullmatch(node.value)
        if match is None:
            raise _Problem(_line(node), f"{label} must be a number or a range like 1000-1049, got {node.value!r}")
        first, last = match.groups()
        if len(first) != len(last):
            raise _Problem(_line(node), f"{label}: range {node.value} must have the same number of digits at both ends")
        if int(first) > int(last):
            raise _Problem(_line(node), f"{label}: range {node.value} starts after it ends")
        return _Span(first, last, _line(node))

    def items(self, node: yaml.Node, label: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise _Problem(_line(node), f"{label} must be a list, got {_kind_of(node)}")
        return node.value

    def lim_ref(self, node: yaml.Node, label: str) -> int:
        number = self.integer(1)(node, label)
        if number not in self.lims:
            raise _Problem(_line(node), f"{label} {number} is an unknown LIM (the LIMs are "
                                        f"{', '.join(map(str, sorted(self.lims)))})")
        return number

    def claim_port(self, address: str, port: int, user: str, line: int | None) -> None:
        """Two listeners on one address and port cannot both start."""
        taken = self.ports.get((address, port))
        if taken:
            first, first_line = taken
            where = "" if first_line is None else f" (line {first_line})"
            raise _Problem(line, f"{user} {port} on {address} is already used by {first}{where}")
        self.ports[(address, port)] = (user, line)

    # -- parts of the document -----------------------------------------------------------------------
    def build(self, root: yaml.Node) -> Topology:
        top = _Fields(self, root, "topology", ("name", "broker", "timers", "lims", "groups", "trunks",
                                                "live_view", "ddi"))
        name = top.get("name", self.text, Path(self.source).stem)
        broker = self.broker(top.node("broker"))
        timers = Timers()
        if (timers_node := top.node("timers")) is not None:
            timers = Timers(**_Fields(self, timers_node, "timers", ("no_answer_s",)).given(
                {"no_answer_s": self.seconds(positive=True)}))
        lim_nodes = top.items("lims")
        if not lim_nodes:
            raise _Problem(top.line_of("lims"), "the topology needs at least one LIM under 'lims'")
        lims, blocks = [], []
        for node in lim_nodes:
            lim, lim_blocks = self.lim(node)
            lims.append(lim)
            blocks.extend(lim_blocks)
        extensions = Extensions(blocks)
        trunks = [self.trunk(node) for node in top.items("trunks")]
        acd, hunt = self.groups(top.node("groups"))
        routes = self.route_points(top.node("groups"))
        live_view = self.live_view(top.node("live_view"))
        ddi = tuple(self.ddi_prefix(node) for node in top.items("ddi"))
        self.check_number_plan(trunks)
        groups: list[_Group[AcdGroup | HuntGroup]] = [*acd, *hunt]
        self.check_members(extensions, groups, trunks)
        self.check_route_defaults(routes, extensions, groups, trunks)
        return Topology(route_points=tuple(r.model for r in routes), live_view=live_view, name=name, broker=broker, lims=tuple(lims), extensions=extensions,
                        acd_groups=tuple(g.model for g in acd), hunt_groups=tuple(g.model for g in hunt),
                        trunks=tuple(t for t, _ in trunks), timers=timers, ddi=ddi, source=self.source)

    def ddi_prefix(self, node: yaml.Node) -> str:
        """An E.164 prefix in the international form ("+468757"): the exchange's DDI numbers."""
        self.scalar(node, "ddi")
        raw = str(node.value).strip()
        if not re.fullmatch(r"\+[1-9][0-9]{0,13}", raw):
            raise _Problem(_line(node), f"ddi: give an E.164 prefix such as \"+468757\" (quoted), got {raw!r}")
        return raw

    def broker(self, node: yaml.Node | None) -> BrokerSettings:
        if node is None:
            settings = BrokerSettings()
            self.claim_endpoint(settings.primary, "broker", None)
            return settings
        endpoint_keys = ("address", "router_port", "pub_port", "sub_port", "host", "peer_port")
        fields = _Fields(self, node, "broker", endpoint_keys + ("heartbeat_interval_ms", "dead_after_ms", "backup"))
        primary = self.endpoint(fields)
        backup = None
        if (backup_node := fields.node("backup")) is not None:
            backup_fields = _Fields(self, backup_node, "broker backup", endpoint_keys)
            backup = self.endpoint(backup_fields)
            # The pair talks over one more port each (given, or router_port + 3).
            for endpoint, what, where in ((primary, "broker", fields), (backup, "broker backup", backup_fields)):
                self.claim_port(endpoint.address, endpoint.peer, f"{what} peer_port", where.line_of("peer_port"))
        heartbeat = fields.get("heartbeat_interval_ms", self.integer(1), BrokerSettings.heartbeat_interval_ms)
        dead_after = fields.get("dead_after_ms", self.integer(1), BrokerSettings.dead_after_ms)
        if dead_after <= heartbeat:
            raise _Problem(fields.line_of("dead_after_ms"), f"broker: dead_after_ms ({dead_after}) must be "
                                                            f"longer than heartbeat_interval_ms ({heartbeat})")
        return BrokerSettings(primary=primary, backup=backup, heartbeat_interval_ms=heartbeat,
                              dead_after_ms=dead_after)

    def live_view(self, node: yaml.Node | None) -> LiveView | None:
        """The live view's web page (on by default; `enabled: false` leaves it out)."""
        fields = _Fields(self, node, "live_view", ("enabled", "address", "port")) if node is not None else None
        if fields is not None and not fields.get("enabled", self.boolean, True):
            return None
        view = LiveView(**fields.given({"address": self.address, "port": self.integer(1, 65535)})) if fields else LiveView()
        self.claim_port(view.address, view.port, "live_view port", fields.line_of("port") if fields else None)
        return view

    def endpoint(self, fields: _Fields) -> BrokerEndpoint:
        port = self.integer(1, 65535)
        endpoint = BrokerEndpoint(**fields.given({"address": self.address, "router_port": port, "pub_port": port,
                                                  "sub_port": port, "host": self.address, "peer_port": port}))
        self.claim_endpoint(endpoint, fields.what, fields)
        return endpoint

    def claim_endpoint(self, endpoint: BrokerEndpoint, what: str, fields: _Fields | None) -> None:
        for key in ("router_port", "pub_port", "sub_port"):
            self.claim_port(endpoint.address, getattr(endpoint, key), f"{what} {key}",
                            fields.line_of(key) if fields else None)

    def lim(self, node: yaml.Node) -> tuple[Lim, list[ExtensionBlock]]:
        fields = _Fields(self, node, "LIM", ("number", "address", "host", "csta", "extensions"))
        number = fields.get("number", self.integer(1))
        if number in self.lims:
            raise _Problem(fields.line_of("number"), f"LIM {number} is defined twice "
                                                     f"(first on line {self.lims[number]})")
        self.lims[number] = fields.line_of("number")
        fields.what = f"LIM {number}"
        address = fields.get("address", self.address)
        lim = Lim(number=number, address=address, host=fields.get("host", self.address, None),
                  csta=self.csta(fields.node("csta"), f"LIM {number} csta", address))
        return lim, [self.extension_entry(entry, number) for entry in fields.items("extensions")]

    def csta(self, node: yaml.Node | None, what: str, address: str) -> CstaSettings | None:
        if node is None:
            return None  # no CSTA server initiated on this LIM
        port = self.integer(1, 65535)
        spec = {"server_type": self.choice(CSTA_SERVER_TYPES), "port": port, "tls_port": port,
                "system_status_on_connect": self.boolean, "authentication_mandatory": self.boolean,
                "max_sessions": self.integer(1), "max_monitors": self.integer(1),
                "frame_timeout_s": self.seconds(positive=True), "greeting_silence_s": self.seconds(positive=True)}
        fields = _Fields(self, node, what, tuple(spec))
        settings = CstaSettings(**fields.given(spec))
        self.claim_port(address, settings.port, f"{what} port", fields.line_of("port"))
        if settings.tls_port is not None:
            self.claim_port(address, settings.tls_port, f"{what} tls_port", fields.line_of("tls_port"))
        return settings

    def extension_entry(self, node: yaml.Node, lim: int) -> ExtensionBlock:
        fields = _Fields(self, node, f"LIM {lim} extensions", ("numbers", "type", "logged_on"))
        span = fields.get("numbers", self.span)
        fields.what = f"extension {span}"
        kind = fields.get("type", self.choice(EXTENSION_TYPES))
        logged_on = fields.get("logged_on", self.boolean, kind != "virtual")
        if kind == "virtual" and logged_on:
            raise _Problem(fields.line_of("logged_on"), f"extension {span}: a virtual extension has no terminal, "
                                                        f"so it cannot be logged_on")
        self.internal.append(_Internal(span, "extension"))
        return ExtensionBlock(span.first, span.last, kind, lim, logged_on)

    def trunk(self, node: yaml.Node) -> tuple[TrunkRoute, int]:
        fields = _Fields(self, node, "trunk", ("name", "prefix", "lim", "channels", "answer_after_s"))
        name = fields.get("name", self.text)
        fields.what = f"trunk {name}"
        trunk = TrunkRoute(name=name, prefix=fields.get("prefix", self.digits),
                           lim=fields.get("lim", self.lim_ref),
                           **fields.given({"channels": self.integer(1),
                                           "answer_after_s": self.seconds(positive=False)}))
        return trunk, fields.line

    def groups(self, node: yaml.Node | None) -> tuple[list[_Group[AcdGroup]], list[_Group[HuntGroup]]]:
        if node is None:
            return [], []
        fields = _Fields(self, node, "groups", GROUP_KINDS)
        return ([self.acd_group(n) for n in fields.items("acd")], [self.hunt_group(n) for n in fields.items("hunt")])

    def route_points(self, node: yaml.Node | None) -> list[_Group[RoutePoint]]:
        """CTI route points (groups: route): number, lim, default destination, route timeout."""
        if node is None:
            return []
        routes = []
        for item in _Fields(self, node, "groups", GROUP_KINDS).items("route"):
            fields = _Fields(self, item, "route point", ("number", "lim", "default", "timeout_s"))
            number = self.group_number(fields, "route point")
            model = RoutePoint(number=number, lim=fields.get("lim", self.lim_ref), default=fields.get("default", self.digits),
                               **fields.given({"timeout_s": self.seconds(positive=True)}))
            routes.append(_Group(model, fields, []))
        return routes

    def group_number(self, fields: _Fields, kind: str) -> str:
        number = fields.get("number", self.digits)
        self.internal.append(_Internal(_Span(number, number, fields.line_of("number")), kind))
        fields.what = f"{kind} {number}"
        return number

    def acd_group(self, node: yaml.Node) -> _Group[AcdGroup]:
        fields = _Fields(self, node, "ACD group",
                         ("number", "lim", "agents", "queue_timeout_s", "overflow_to", "wrapup_s"))
        number = self.group_number(fields, "ACD group")
        lim = fields.get("lim", self.lim_ref)
        agents = [self.span(item, f"{fields.what}: agents") for item in fields.items("agents")]
        model = AcdGroup(number=number, lim=lim, agents=_expand(agents),
                         **fields.given({"queue_timeout_s": self.seconds(positive=False), "overflow_to": self.digits,
                                         "wrapup_s": self.seconds(positive=False)}))
        return _Group(model, fields, agents)

    def hunt_group(self, node: yaml.Node) -> _Group[HuntGroup]:
        fields = _Fields(self, node, "hunt group", ("number", "lim", "mode", "members", "steps", "step_timeout_s"))
        number = self.group_number(fields, "hunt group")
        lim = fields.get("lim", self.lim_ref)
        mode = fields.get("mode", self.choice(HUNT_MODES))
        step_timeout = fields.get("step_timeout_s", self.seconds(positive=True), HuntGroup.step_timeout_s)
        used, unused = ("steps", "members") if mode == "cascade" else ("members", "steps")
        if fields.node(unused) is not None:
            raise _Problem(_line(fields.entries[unused][0]), f"{fields.what}: a {mode} group lists its members "
                                                             f"in '{used}', not '{unused}'")
        if mode == "cascade":
            steps = [[self.span(item, f"{fields.what}: steps") for item in self.items(step, f"{fields.what}: step")]
                     for step in fields.items("steps")]
            if not steps or not all(steps):
                raise _Problem(fields.line_of("steps"), f"{fields.what}: a cascade group needs 'steps', a list of "
                                                        f"non-empty lists of members")
            spans = [span for step in steps for span in step]
            model = HuntGroup(number=number, lim=lim, mode=mode, steps=tuple(_expand(step) for step in steps),
                              step_timeout_s=step_timeout)
        else:
            spans = [self.span(item, f"{fields.what}: members") for item in fields.items("members")]
            if not spans:
                raise _Problem(fields.line_of("members"), f"{fields.what}: a {mode} group needs a non-empty "
                                                          f"'members' list")
            model = HuntGroup(number=number, lim=lim, mode=mode, members=_expand(spans), step_timeout_s=step_timeout)
        return _Group(model, fields, spans)

    def check_route_defaults(self, routes: list[_Group[RoutePoint]], extensions: Extensions,
                             groups: Sequence[_Group[AcdGroup | HuntGroup]],
                             trunks: list[tuple[TrunkRoute, int]]) -> None:
        """A route point's default destination is a number the exchange can offer a call to, and
        not a route point (two route points defaulting to each other would pass a call round)."""
        groups_numbers = {g.model.number for g in groups}
        points = {r.model.number for r in routes}
        for route in routes:
            target, line = route.model.default, route.fields.line_of("default")
            if target in points:
                raise _Problem(line, f"{route.fields.what}: default {target} is a route point; the default "
                                     f"must be an extension, a group or an external number")
            internal = target in groups_numbers or extensions.owner(target) is not None
            if not internal and not any(target.startswith(t.prefix) for t, _ in trunks):
                raise _Problem(line, f"{route.fields.what}: default {target} is neither an internal number "
                                     f"nor starts with a trunk prefix")

    # -- checks across the number plan ---------------------------------------------------------------
    def check_number_plan(self, trunks: list[tuple[TrunkRoute, int]]) -> None:
        """No internal number is defined twice or starts with a trunk prefix; trunks are distinct."""
        clashes = []
        reach: _Internal | None = None  # among the spans so far of this width, the one reaching highest
        for item in sorted(self.internal, key=lambda i: (i.span.width, i.span.lo, i.span.line)):
            if reach and reach.span.width == item.span.width and item.span.lo <= reach.span.hi:
                clashes.append(sorted((reach, item), key=lambda i: i.span.line))
            if reach is None or reach.span.width != item.span.width or item.span.hi > reach.span.hi:
                reach = item
        if clashes:
            first, later = min(clashes, key=lambda pair: pair[1].span.line)
            raise _Problem(later.span.line, _clash(first, later))
        names: dict[str, int] = {}
        prefixes: dict[str, int] = {}
        for trunk, line in trunks:
            if trunk.name in names:
                raise _Problem(line, f"trunk {trunk.name} is defined twice (first on line {names[trunk.name]})")
            if trunk.prefix in prefixes:
                raise _Problem(line, f"trunk {trunk.name}: prefix {trunk.prefix} is already used by the trunk "
                                     f"on line {prefixes[trunk.prefix]}")
            names[trunk.name] = prefixes[trunk.prefix] = line
        for item in self.internal:
            for trunk, line in trunks:
                number = _first_with_prefix(item.span, trunk.prefix)
                if number is not None:
                    raise _Problem(item.span.line, f"{item.kind} {number} starts with the prefix {trunk.prefix} "
                                                   f"of trunk {trunk.name} (line {line}); the number plan "
                                                   f"would be ambiguous")

    def check_members(self, extensions: Extensions, groups: Sequence[_Group[AcdGroup | HuntGroup]],
                      trunks: list[tuple[TrunkRoute, int]]) -> None:
        """Agents and members are extensions, each listed once per group; overflow goes somewhere."""
        group_numbers = {g.model.number for g in groups}
        for group in groups:
            role = "agent" if isinstance(group.model, AcdGroup) else "member"
            seen: set[str] = set()
            for span in group.spans:
                for number in span.numbers():
                    if extensions.owner(number) is None:
                        what = "a group" if number in group_numbers else "not an extension"
                        raise _Problem(span.line, f"{group.fields.what}: {role} {number} is {what}; "
                                                  f"{role}s must be extensions")
                    if number in seen:
                        raise _Problem(span.line, f"{group.fields.what}: {role} {number} is listed twice")
                    seen.add(number)
        for group in groups:
            target = getattr(group.model, "overflow_to", None)
            if target is None:
                continue
            line = group.fields.line_of("overflow_to")
            if target == group.model.number:
                raise _Problem(line, f"{group.fields.what}: overflow_to is the group itself")
            internal = target in group_numbers or extensions.owner(target) is not None
            if not internal and not any(target.startswith(t.prefix) for t, _ in trunks):
                raise _Problem(line, f"{group.fields.what}: overflow_to {target} is neither an internal number "
                                     f"nor starts with a trunk prefix")


def _expand(spans: list[_Span]) -> tuple[str, ...]:
    return tuple(number for span in spans for number in span.numbers())


def _clash(first: _Internal, later: _Internal) -> str:
    """The message for two spans of the number plan that share numbers; `first` came first in the file."""
    if first.span.is_range and later.span.is_range:
        return (f"range {later.span} ({later.kind}s) overlaps range {first.span} ({first.kind}s) "
                f"defined on line {first.span.line}")
    number = later.span.number(max(first.span.lo, later.span.lo))
    where = f" in range {first.span}" if first.span.is_range else ""
    return (f"number {number} is used twice: as {later.kind} here and as {first.kind}{where} "
            f"first defined on line {first.span.line}")


def _first_with_prefix(span: _Span, prefix: str) -> str | None:
    """The lowest number of `span` that starts with `prefix`, if any."""
    if len(prefix) > span.width:
        return None
    lo = max(span.lo, int(prefix.ljust(span.width, "0")))
    hi = min(span.hi, int(prefix.ljust(span.width, "9")))
    return span.number(lo) if lo <= hi else None
