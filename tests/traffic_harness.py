"""The traffic engine (tools/traffic.py) wired to the LIMs' real logic on the fake bus
(tests/fakes.py) with a fake clock: for the unit tests of `mxone traffic` and `mxone chaos`."""
from __future__ import annotations

from broker.protocol import device_address
from tests.fakes import FakeNetwork
from topology.model import AcdGroup, BrokerSettings, Extension, Lim, Timers, Topology, TrunkRoute
from tools.traffic import TrafficEngine


def small_topology() -> Topology:
    exts = [Extension(str(n), "ip", 1, True) for n in range(1000, 1006)]
    exts += [Extension(str(n), "ip", 2, True) for n in range(2000, 2006)]
    return Topology(name="t", broker=BrokerSettings(), lims=(Lim(1, "127.0.1.1"), Lim(2, "127.0.1.2")),
                    extensions=tuple(exts), acd_groups=(AcdGroup("5000", 1, ("1001", "2001"), wrapup_s=3.0),),
                    trunks=(TrunkRoute("pstn", "0", 1, channels=30),), timers=Timers(no_answer_s=30))


class Harness:
    """The engine wired to a FakeNetwork: its actions are bus requests, its events what the LIMs
    publish (each once; the fake's wall clock makes every event's time unique)."""

    def __init__(self, options, topology=None):
        self.net = FakeNetwork(topology or small_topology())
        self.engine = TrafficEngine(self.net.topology, options, self.net.timers, self.act)
        self.cursor = 0

    def act(self, device, kind, body, on_reply):
        self.net.client.request(device_address(device), kind, body, on_reply, timeout=3.0)

    def pump(self):
        self.net.run()
        while self.cursor < len(self.net.published):
            topic, body = self.net.published[self.cursor]
            self.cursor += 1
            if topic.startswith("d:"):
                self.engine.on_event(body, key=body["time"])
            self.net.run()

    def run(self, limit_s=600.0, step=0.05):
        self.engine.start()
        self.pump()
        t = 0.0
        while not self.engine.finished():
            assert t < limit_s, f"the run did not end: {self.engine.progress()}"
            self.net.clock.advance(step, self.net.timers)
            self.pump()
            t += step
        return self.engine.summary()

    def idle(self):
        return not any(core.calls for core in self.net.cores.values())

    def events(self, name):
        return [b for t, b in self.net.published if t.startswith("c:") and b["event"] == name]


def login_agents(h: Harness):
    for agent in ("1001", "2001"):
        assert h.net.agent(agent, "login", agent_id=f"A{agent}", group="5000")["ok"]
    h.pump()
