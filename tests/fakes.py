"""In-process fakes for the pure cores: a bus that connects several LimCores, and a fake clock.

Messages are queued and delivered by `run()`, never re-entrantly, so a test sees the same
interleaving the real bus would give for one sender (per-pair FIFO order).
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Callable

from broker.directory import Directory
from broker.envelope import Envelope
from broker.protocol import BROKER, Kind, Refusal, device_address, lim_node, lim_number_of, number_of_device_address
from broker.timers import FakeClock, TimerQueue
from lim.core import LimCore
from lim.store import Store
from topology.model import Topology


class FakePort:
    """What one node sees of the bus (the same methods as broker.node.BusNode)."""

    def __init__(self, network: "FakeNetwork", node_id: str):
        self.network = network
        self.node_id = node_id
        self._ids = itertools.count(1)
        self.pending: dict[int, Callable | None] = {}
        self.incarnation = 0  # a LIM's port: its core's, carried on every message as the real bus does

    def request(self, dst, kind, body, on_reply=None, timeout=2.0):
        msg_id = next(self._ids)
        self.pending[msg_id] = on_reply
        self.network.queue.append(Envelope(kind, self.node_id, dst, body, msg_id=msg_id,
                                           incarnation=self.incarnation))
        self.network.timers.call_later(timeout, lambda: self._expire(msg_id))
        return msg_id

    def _expire(self, msg_id):
        handler = self.pending.pop(msg_id, None)
        if handler:
            handler({"ok": False, "error": Refusal.TIMEOUT, "message": "no reply"})

    def send(self, dst, kind, body):
        self.network.queue.append(Envelope(kind, self.node_id, dst, body, incarnation=self.incarnation))

    def reply(self, request, body):
        if request.msg_id:
            self.network.queue.append(Envelope(Kind.REPLY, self.node_id, request.src, body,
                                               reply_to=request.msg_id, incarnation=self.incarnation))

    def publish(self, topics, kind, body):
        for topic in topics:
            self.network.published.append((topic, dict(body)))


class FakeNetwork:
    def __init__(self, topology: Topology):
        self.topology = topology
        self.clock = FakeClock()
        self.timers = TimerQueue(self.clock)
        self.directory = Directory(topology)
        self.queue: deque[Envelope] = deque()
        self.published: list[tuple[str, dict]] = []
        self.ports: dict[str, FakePort] = {}
        self.cores: dict[int, LimCore] = {}
        self.down: set[str] = set()
        self.nodes: dict[str, Callable[[Envelope], None]] = {}  # other nodes a test plays (a CSTA server)
        self.wall = itertools.count(1)
        for lim in topology.lims:
            self.start_lim(lim.number)
        self.client = self.port("cli-test")

    def port(self, node_id: str) -> FakePort:
        self.ports[node_id] = FakePort(self, node_id)
        return self.ports[node_id]

    def start_lim(self, number: int, store: Store | None = None) -> LimCore:
        store = store or Store(":memory:")
        port = self.port(lim_node(number))
        core = LimCore(self.topology, number, port, self.timers, store,
                       incarnation=store.next_incarnation(), wall_clock=lambda: float(next(self.wall)))
        port.incarnation = core.incarnation
        self.cores[number] = core
        self.down.discard(lim_node(number))
        return core

    def kill_lim(self, number: int) -> None:
        """The LIM vanishes; the others hear it is dead (as the broker would tell them)."""
        self.down.add(lim_node(number))
        self.queue = deque(e for e in self.queue if e.dst != lim_node(number))
        for other, core in self.cores.items():
            if other != number and lim_node(other) not in self.down:
                core.on_member({"role": "lim", "lim": number, "state": "dead", "node": lim_node(number),
                                "incarnation": self.ports[lim_node(number)].incarnation})

    def run(self) -> None:
        while self.queue:
            env = self.queue.popleft()
            dst = env.dst
            number = number_of_device_address(dst)
            if number is not None:
                owner = self.directory.owner(number)
                if owner is None:
                    self._bounce(env, Refusal.UNKNOWN_NUMBER)
                    continue
                dst = lim_node(owner)
            if dst in self.down:
                self._bounce(env, Refusal.LIM_DOWN)
                continue
            core = self.cores.get(lim_number_of(dst) or 0)
            if core is not None and env.src != BROKER:
                core.on_peer(env.src, env.incarnation)
            if env.reply_to:
                port = self.ports.get(dst)
                handler = port.pending.pop(env.reply_to, None) if port else None
                if handler:
                    handler(env.body)
                continue
            if dst in self.nodes:
                self.nodes[dst](env)
                continue
            self.cores[lim_number_of(dst)].handle(env)

    def _bounce(self, env: Envelope, code: str) -> None:
        if env.msg_id and not env.reply_to:
            self.queue.append(Envelope(Kind.REPLY, BROKER, env.src, {"ok": False, "error": code, "message": code},
                                       reply_to=env.msg_id))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds, self.timers)
        self.run()

    # -- the physical side, as a test writes it --------------------------------------------------------
    def request(self, dst: str, kind: str, **body: Any) -> dict[str, Any]:
        replies: list[dict] = []
        self.client.request(dst, kind, body, replies.append)
        self.run()
        assert replies, f"no reply to {kind} for {dst}"
        return replies[0]

    def phone(self, number: str, action: str, **fields: Any) -> dict[str, Any]:
        return self.request(device_address(number), Kind.PHONE, action=action, **fields)

    def feature(self, number: str, feature: str, **fields: Any) -> dict[str, Any]:
        return self.request(device_address(number), Kind.FEATURE, feature=feature, **fields)

    def agent(self, number: str, action: str, **fields: Any) -> dict[str, Any]:
        return self.request(device_address(number), Kind.AGENT, action=action, **fields)

    def events(self, device: str) -> list[dict]:
        return [body for topic, body in self.published if topic == f"d:{device}|"]

    def event_names(self, device: str) -> list[str]:
        return [e["event"] for e in self.events(device)]

    def calls_in(self, lim: int) -> dict:
        return self.cores[lim].calls
