"""The exchange as a topology describes it: plain frozen data, no I/O.

`topology.loader` builds a `Topology` from YAML and validates it; every process of the cluster
loads the same file from the run directory, so all of them share one view of the number plan.
Device numbers are strings: leading zeros matter for external numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from topology.extensions import Extension, ExtensionBlock, Extensions

__all__ = ["Extension", "ExtensionBlock", "Extensions"]  # with the classes below: defined here

# Extension types the seed lists as monitorable ("IP/SIP extension, remote extension, cordless
# DECT extension, virtual extension, digital extension, analog extension, CAS extension").
EXTENSION_TYPES = ("ip", "remote", "dect", "virtual", "digital", "analog", "cas")
HUNT_MODES = ("linear", "circular", "parallel", "cascade")
CSTA_SERVER_TYPES = ("XML", "TR87_uaCSTA")


@dataclass(frozen=True)
class CstaSettings:
    """Initial settings of the CSTA server installed on a LIM (`csta -i` changes them later)."""
    server_type: str = "XML"
    port: int = 8882
    tls_port: int | None = None
    system_status_on_connect: bool = False
    authentication_mandatory: bool = False
    max_sessions: int = 100
    max_monitors: int = 5600
    frame_timeout_s: float = 10.0  # a frame begun but not finished for this long closes the connection
    # With system_status_on_connect: a client silent this long after connecting (after the TLS
    # handshake on the TLS port) is greeted; one whose first bytes are a CSTA frame is greeted at once.
    greeting_silence_s: float = 0.3


@dataclass(frozen=True)
class Lim:
    number: int
    address: str
    csta: CstaSettings | None = None
    host: str | None = None


@dataclass(frozen=True)
class AcdGroup:
    number: str
    lim: int
    agents: tuple[str, ...]
    queue_timeout_s: float = 60.0
    overflow_to: str | None = None
    wrapup_s: float = 10.0


@dataclass(frozen=True)
class HuntGroup:
    number: str
    lim: int
    mode: str  # one of HUNT_MODES
    members: tuple[str, ...] = ()
    steps: tuple[tuple[str, ...], ...] = ()  # cascade ring group only
    step_timeout_s: float = 10.0

    def all_members(self) -> tuple[str, ...]:
        if self.mode == "cascade":
            return tuple(m for step in self.steps for m in step)
        return self.members


@dataclass(frozen=True)
class RoutePoint:
    """A CTI route point: a call to it waits there while a CSTA application chooses where it goes
    (ECMA-269 routeing); with no application, or none answering within `timeout_s`, the call goes
    to `default`."""
    number: str
    lim: int
    default: str
    timeout_s: float = 5.0


@dataclass(frozen=True)
class TrunkRoute:
    """A prefix that leaves the exchange to the simulated public network (which can also call in)."""
    name: str
    prefix: str
    lim: int
    channels: int = 30
    answer_after_s: float | None = None  # simulated external party answers by itself after this


@dataclass(frozen=True)
class BrokerEndpoint:
    address: str = "127.0.0.1"
    router_port: int = 7800  # requests and replies between nodes (ROUTER)
    pub_port: int = 7801     # nodes publish events here (XSUB)
    sub_port: int = 7802     # nodes subscribe to events here (XPUB)
    host: str | None = None
    peer_port: int | None = None  # a broker pair only: Binary Star state to the peer (router_port + 3)

    @property
    def peer(self) -> int:
        return self.peer_port if self.peer_port is not None else self.router_port + 3

    def url(self, which: str) -> str:
        port = {"router": self.router_port, "pub": self.pub_port, "sub": self.sub_port, "peer": self.peer}[which]
        host = f"[{self.address}]" if ":" in self.address else self.address  # IPv6 needs brackets
        return f"tcp://{host}:{port}"


@dataclass(frozen=True)
class BrokerSettings:
    primary: BrokerEndpoint = field(default_factory=BrokerEndpoint)
    backup: BrokerEndpoint | None = None  # with a backup, the two form a Binary Star pair

    def endpoints(self) -> tuple[BrokerEndpoint, ...]:
        return (self.primary,) if self.backup is None else (self.primary, self.backup)
    heartbeat_interval_ms: int = 100
    dead_after_ms: int = 600  # no heartbeat for this long: dead (suspect after two missed beats)


@dataclass(frozen=True)
class Timers:
    no_answer_s: float = 30.0  # an alerting call nobody answers is released after this


@dataclass(frozen=True)
class LiveView:
    """The web page that shows the exchange live (liveview/): where it listens."""
    address: str = "127.0.0.1"
    port: int = 8890


@dataclass(frozen=True)
class Topology:
    name: str
    broker: BrokerSettings
    lims: tuple[Lim, ...]
    extensions: Extensions  # a tuple of Extension is taken too (and made an Extensions)
    acd_groups: tuple[AcdGroup, ...] = ()
    hunt_groups: tuple[HuntGroup, ...] = ()
    trunks: tuple[TrunkRoute, ...] = ()
    route_points: tuple[RoutePoint, ...] = ()
    timers: Timers = field(default_factory=Timers)
    live_view: LiveView | None = field(default_factory=LiveView)  # None: no live view process
    # E.164 prefixes ("+468757") that make a global number prefix + internal number name that
    # internal number: the DDI numbers Lync line URIs carry (docs/tr87.md).
    ddi: tuple[str, ...] = ()
    source: str = "<built-in>"  # file the topology came from, for messages

    def lim(self, number: int) -> Lim:
        for lim in self.lims:
            if lim.number == number:
                return lim
        raise KeyError(f"no LIM {number} in topology {self.name}")

    def __post_init__(self) -> None:
        if not isinstance(self.extensions, Extensions):
            object.__setattr__(self, "extensions", Extensions.of(self.extensions))

    def extensions_on(self, lim: int) -> tuple[Extension, ...]:
        return self.extensions.on_lim(lim)

    def group_owners(self) -> dict[str, int]:
        """Every group number (ACD, hunt, route point) and the LIM that owns it."""
        owners = {g.number: g.lim for g in self.acd_groups}
        owners.update({g.number: g.lim for g in self.hunt_groups})
        owners.update({r.number: r.lim for r in self.route_points})
        return owners

    def directory(self) -> dict[str, int]:
        """Every internal number (extensions and groups) and the LIM that owns it, expanded: for
        tools; the processes ask `topology.numberplan.NumberPlan`, which does not expand."""
        owners = {e.number: e.lim for e in self.extensions}
        owners.update({g.number: g.lim for g in self.acd_groups})
        owners.update({g.number: g.lim for g in self.hunt_groups})
        owners.update({r.number: r.lim for r in self.route_points})
        return owners
