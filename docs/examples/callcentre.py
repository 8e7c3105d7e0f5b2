"""A small call-centre application: routes the calls of a route point, attaches the customer to
each call, and pops the agents' screens.

    make run                                              # the exchange, in another terminal
    .venv/bin/python docs/examples/callcentre.py          # LIM 1's CSTA server, route point 7000
    .venv/bin/mxone phone 0701234567 dial 7000            # a customer calls ... watch the pop

What it does, over ECMA-323 CSTA XML (docs/conformance.md), with the bundled asyncio client:
  - RouteRegister for the route point; for each RouteRequest it looks the caller up in CUSTOMERS,
    attaches the customer's name to the call (AssociateData, correlatorData) and chooses the agent
    (RouteSelect): callers from the public network (numbers starting with 0) go to the agents on
    LIM 2, internal callers to the agents on LIM 1; when every one of them is busy, the call goes
    to the ACD group. A destination that does not take the call comes back as ReRoute: the next
    agent is tried, then the group.
  - MonitorStart on every agent: it knows who is busy, and when an agent's phone rings it prints
    the screen pop: the agent, who is calling, the number dialled, and the customer (the call's
    correlatorData, on the agent's Delivered event).
Runs until Ctrl-C (or SIGTERM), then cancels its registration and monitors and exits 0.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import dataclass, field

from csta_front.client import CstaClient, CstaError, device_field, event_name, field as xml_field

# Who the callers are: the customer data the agent sees. Correlator data holds at most 32 octets.
CUSTOMERS = {
    "0701234567": "Acme AB, gold",
    "0709876543": "Nordic Freight, silver",
    "1000": "Reception (internal)",
    "2000": "Sales desk (internal)",
}
CORRELATOR_OCTETS = 32


def customer_of(caller: str | None) -> str:
    return CUSTOMERS.get(caller or "", f"new customer {caller or 'unknown'}")


def to_correlator(text: str) -> str:
    """A customer as correlator data: UTF-8 octets in hex (xs:hexBinary), cut to the bound."""
    raw = text.encode()[:CORRELATOR_OCTETS]
    return raw.decode(errors="ignore").encode().hex().upper()  # never half a character


def from_correlator(hex_text: str | None) -> str | None:
    if not hex_text:
        return None
    try:
        return bytes.fromhex(hex_text).decode(errors="replace")
    except ValueError:
        return f"(data {hex_text})"


@dataclass
class Router:
    """The routeing table and what the application knows of its agents. Pure: no I/O."""
    public_agents: list[str]      # for callers from the public network
    internal_agents: list[str]    # for internal callers
    fallback: str                 # the ACD group, when every agent of the caller's kind is busy
    public_prefix: str = "0"
    calls_of: dict[str, set[str]] = field(default_factory=dict)   # agent -> calls it is in
    reserved: dict[str, str] = field(default_factory=dict)        # agent -> dialogue routed to it
    tried: dict[str, set[str]] = field(default_factory=dict)      # dialogue -> agents tried

    @property
    def agents(self) -> list[str]:
        return list(dict.fromkeys(self.public_agents + self.internal_agents))

    def choose(self, xref: str, caller: str | None) -> str:
        """The first idle agent for this caller not tried yet in this dialogue; else the group."""
        table = self.public_agents if (caller or "").startswith(self.public_prefix) else self.internal_agents
        tried = self.tried.setdefault(xref, set())
        for agent in table:
            if agent not in tried and not self.calls_of.get(agent) and agent not in self.reserved:
                tried.add(agent)
                self.reserved[agent] = xref
                return agent
        return self.fallback

    def dialogue_over(self, xref: str) -> None:
        self.tried.pop(xref, None)
        for agent in [a for a, x in self.reserved.items() if x == xref]:
            del self.reserved[agent]

    def connection(self, agent: str, call_id: str | None, state: str | None) -> None:
        """An agent's connection changed (its monitor's localConnectionInfo)."""
        if not call_id:
            return
        calls = self.calls_of.setdefault(agent, set())
        if state in (None, "null"):
            calls.discard(call_id)
        else:
            calls.add(call_id)
            self.reserved.pop(agent, None)  # the call it was kept for has arrived


def say(line: str) -> None:
    print(line, flush=True)


class CallCentre:
    def __init__(self, csta: CstaClient, router: Router, route_point: str):
        self.csta = csta
        self.router = router
        self.route_point = route_point
        self.register_id: str | None = None
        self.monitors: dict[str, str] = {}   # agent -> monitorCrossRefID
        self.tasks: set[asyncio.Task] = set()
        self.last_caller: dict[str, str | None] = {}  # dialogue -> its caller, for ReRoute

    async def start(self) -> None:
        for agent in self.router.agents:
            self.monitors[agent] = await self.csta.monitor_start(agent)
            for call_id, state in await self.csta.snapshot_device(agent):  # calls it is in already
                self.router.connection(agent, call_id, state or "connected")
        self.register_id = await self.csta.route_register(self.route_point)

    async def stop(self) -> None:
        """Leave cleanly: calls waiting for us go to the route point's default destination."""
        for task in self.tasks:
            task.cancel()
        try:
            if self.register_id is not None:
                await self.csta.route_register_cancel(self.register_id)
            for xref in self.monitors.values():
                await self.csta.monitor_stop(xref)
        except (CstaError, ConnectionError, asyncio.TimeoutError):
            pass  # the server is gone already: nothing to cancel

    # -- routeing ---------------------------------------------------------------------------------
    async def serve_requests(self) -> None:
        while True:
            invoke_id, doc = await self.csta.next_server_request(timeout=None)
            name = event_name(doc)
            xref = xml_field(doc, "crossRefIdentifier") or ""
            if name == "RouteRequest":
                self._spawn(self.route(doc, xref))
            elif name == "ReRoute":
                self._spawn(self.select(xref, self.last_caller.get(xref), again=True))
            elif name == "RouteEnd":
                self.router.dialogue_over(xref)
                self.last_caller.pop(xref, None)
                error = doc.find("{*}errorValue")
                reason = error[0] if error is not None and len(error) else None
                if reason is not None and event_name(reason) != "unspecified":  # not routed as we chose
                    say(f"ROUTE END   dialogue {xref}: {event_name(reason)} {(reason.text or '').strip()}".rstrip())
            elif name == "CSTAErrorCode":
                say(f"REFUSED     request {invoke_id}: {next(iter(doc)).text if len(doc) else 'unknown'}")
            # RouteUsed (we do not ask for it) and SystemStatus need nothing from us here.

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def route(self, doc, xref: str) -> None:
        caller = device_field(doc, "callingDevice")
        call_id = xml_field(doc, "routedCall", "callID")
        self.last_caller[xref] = caller
        known = from_correlator(xml_field(doc, "correlatorData", "string"))  # data the call brought
        customer = known or customer_of(caller)
        if not known:
            try:  # before RouteSelect: the agent's Delivered then carries it
                await self.csta.associate_data(call_id, self.route_point, correlator=to_correlator(customer))
            except CstaError as exc:
                say(f"NO DATA     call {call_id}: AssociateData refused ({exc})")
        await self.select(xref, caller, customer=customer, call_id=call_id)

    async def select(self, xref: str, caller: str | None, *, again: bool = False, customer: str | None = None,
                     call_id: str | None = None) -> None:
        destination = self.router.choose(xref, caller)
        await self.csta.route_select(xref, destination)
        if again:
            say(f"REROUTE     dialogue {xref}: caller {caller} -> {destination}")
        else:
            say(f"ROUTE       call {call_id} from {caller} ({customer}) -> {destination}")

    # -- the agents' screens -------------------------------------------------------------------------
    async def watch_agents(self) -> None:
        by_xref = {xref: agent for agent, xref in self.monitors.items()}
        while True:
            event = await self.csta.next_event(timeout=None)
            agent = by_xref.get(xml_field(event, "monitorCrossRefID") or "")
            if agent is None:
                continue
            call_id = xml_field(event, "connection", "callID") or xml_field(event, "droppedConnection", "callID")
            state = xml_field(event, "localConnectionInfo")
            self.router.connection(agent, call_id, state)
            if event_name(event) == "DeliveredEvent" and state == "alerting":
                customer = from_correlator(xml_field(event, "correlatorData", "string")) or "no customer data"
                say(f"SCREEN POP  agent {agent}  caller {device_field(event, 'callingDevice')}  "
                    f"dialled {device_field(event, 'calledDevice')}  customer {customer}  call {call_id}")


async def run(args: argparse.Namespace) -> None:
    router = Router(public_agents=args.public_agents.split(","), internal_agents=args.internal_agents.split(","),
                    fallback=args.fallback)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with await CstaClient.connect(args.host, args.port) as csta:
        centre = CallCentre(csta, router, args.route_point)
        await centre.start()
        say(f"Routing {args.route_point} on {args.host}:{args.port} (routeRegisterReqID {centre.register_id}); "
            f"public callers -> {','.join(router.public_agents)}, internal -> {','.join(router.internal_agents)}, "
            f"else {router.fallback}")
        workers = [asyncio.create_task(centre.serve_requests()), asyncio.create_task(centre.watch_agents())]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *workers], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopped, *workers]:
            task.cancel()
        for task in done:
            if task is not stopped and task.exception() is not None:
                raise task.exception()  # the connection is gone
        await centre.stop()
        say("Stopped: registration cancelled, monitors stopped")


def main() -> int:
    parser = argparse.ArgumentParser(description="Route a route point's calls to agents, with screen pops.")
    parser.add_argument("--host", default="127.0.1.1", help="CSTA server address (LIM 1: 127.0.1.1)")
    parser.add_argument("--port", type=int, default=8882, help="CSTA server port (8882)")
    parser.add_argument("--route-point", default="7000", help="the route point to serve (7000)")
    parser.add_argument("--public-agents", default="2005,2006,2007",
                        help="agents for callers from the public network, in order (2005,2006,2007: LIM 2)")
    parser.add_argument("--internal-agents", default="1005,1006,1007",
                        help="agents for internal callers, in order (1005,1006,1007: LIM 1)")
    parser.add_argument("--fallback", default="5000", help="where calls go when those agents are busy (ACD 5000)")
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except (OSError, asyncio.TimeoutError, CstaError) as exc:  # OSError covers a closed connection
        print(f"callcentre: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
