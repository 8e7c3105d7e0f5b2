"""The physical side from Python: what a person does at a phone, sent to the LIM that owns it.

    with Exchange.from_run_dir("run") as exchange:
        exchange.phone("1000").dial("2000")
        exchange.phone("2000").answer()

Every action raises `BusError` (code and message) when the exchange refuses it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from broker.client import BusClient, BusError
from broker.protocol import BROKER, Kind, device_address, lim_node
from topology.loader import load_topology
from topology.model import Topology

__all__ = ["Exchange", "Phone", "BusError"]


class Phone:
    def __init__(self, client: BusClient, number: str):
        self.client = client
        self.number = str(number)

    def _act(self, action: str, **fields: Any) -> dict[str, Any]:
        return self.client.request(device_address(self.number), Kind.PHONE, {"action": action, **fields})

    def offhook(self) -> dict[str, Any]:
        return self._act("offhook")

    def onhook(self) -> dict[str, Any]:
        return self._act("onhook")

    def dial(self, digits: str) -> dict[str, Any]:
        """Dial a number; goes off hook first when the phone is idle."""
        return self._act("dial", digits=str(digits))

    def answer(self) -> dict[str, Any]:
        return self._act("answer")

    def hangup(self) -> dict[str, Any]:
        return self._act("hangup")

    def logon(self) -> dict[str, Any]:
        """Log a terminal on: the extension comes into service."""
        return self._act("logon")

    def logoff(self) -> dict[str, Any]:
        """Log the terminal off: the extension goes out of service."""
        return self._act("logoff")

    # -- supplementary services ------------------------------------------------------------------
    def hold(self) -> dict[str, Any]:
        return self._act("hold")

    def retrieve(self) -> dict[str, Any]:
        return self._act("retrieve")

    def consult(self, number: str) -> dict[str, Any]:
        """Hold the call in hand and call `number` (consultation call)."""
        return self._act("consult", digits=str(number))

    def transfer(self) -> dict[str, Any]:
        """Join the held call and the call in hand, and leave (consultative transfer)."""
        return self._act("transfer")

    def conference(self) -> dict[str, Any]:
        """Join the held call and the call in hand, and stay (three-party conference)."""
        return self._act("conference")

    def alternate(self) -> dict[str, Any]:
        return self._act("alternate")

    def reconnect(self) -> dict[str, Any]:
        """Clear the call in hand and retrieve the held one."""
        return self._act("reconnect")

    def deflect(self, number: str) -> dict[str, Any]:
        """Send a ringing call elsewhere."""
        return self._act("deflect", digits=str(number))

    def single_step_transfer(self, number: str) -> dict[str, Any]:
        return self._act("sst", digits=str(number))

    def digits(self, dtmf: str) -> dict[str, Any]:
        """Send DTMF digits on the connected call."""
        return self._act("digits", digits=str(dtmf))

    # -- features and agents ------------------------------------------------------------------------
    def attach(self, call_id: str | None = None, **data: str) -> dict[str, Any]:
        """Attach data to this phone's call (its newest, or `call_id`), as an IVR does: items
        correlator, user, account, auth, each an octet string in hex. Every later event carries it."""
        return self.client.request(device_address(self.number), Kind.CALL_DATA, {"call_id": call_id, "data": data})

    def _feature(self, feature: str, **fields: Any) -> dict[str, Any]:
        return self.client.request(device_address(self.number), Kind.FEATURE, {"feature": feature, **fields})

    def do_not_disturb(self, on: bool) -> dict[str, Any]:
        return self._feature("dnd", on=bool(on))

    def forward(self, kind: str, number: str | None, after_s: float | None = None) -> dict[str, Any]:
        """Forwarding `kind` all|busy|noanswer to `number` (None switches it off)."""
        return self._feature("forward", type=kind, to=None if number is None else str(number), after_s=after_s)

    def message_waiting(self, on: bool) -> dict[str, Any]:
        return self._feature("mwi", on=bool(on))

    def features(self) -> dict[str, Any]:
        return self.client.request(device_address(self.number), Kind.FEATURE_GET)

    def agent(self, action: str, agent_id: str | None = None, group: str | None = None) -> dict[str, Any]:
        """ACD agent at this extension: login (with agent_id and group), logout, ready, notready, wrapup."""
        return self.client.request(device_address(self.number), Kind.AGENT,
                                   {"action": action, "agent_id": agent_id, "group": None if group is None else str(group)})

    def state(self) -> dict[str, Any]:
        return self.client.request(device_address(self.number), Kind.DEVICE_GET)

    # -- the public network ------------------------------------------------------------------------
    def behave(self, behaviour: str | None, after_s: float | None = None) -> dict[str, Any]:
        """How this number of the public network takes calls from now on: answer or machine (after
        `after_s` of ringing), busy, noanswer, invalid; None: as unscripted numbers do."""
        return self.client.request(device_address(self.number), Kind.NETWORK,
                                   {"action": "script", "behaviour": behaviour, "after_s": after_s})


class Exchange:
    """A handle on a running exchange, reached through its broker."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.client = BusClient(topology.broker)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path) -> "Exchange":
        """The exchange running in `run_dir` (`mxone up --run-dir`), from the topology it runs."""
        path = Path(run_dir) / "topology.running.yaml"  # frozen at `mxone up` (cluster/control.py)
        if not path.exists():
            path = Path(run_dir) / "topology.yaml"
        if not path.exists():
            raise FileNotFoundError(f"no exchange in {run_dir} (no topology.yaml); start one with `mxone up`")
        return cls(load_topology(path))

    def phone(self, number: str) -> Phone:
        return Phone(self.client, str(number))

    def network_mix(self, shares: dict[str, float] | None, seed: int | None = None,
                    after_s: float | None = None) -> list[dict[str, Any]]:
        """A seeded mix for numbers of the public network with no script of their own, e.g.
        {"answer": 70, "busy": 10, "noanswer": 10, "invalid": 5, "machine": 5}; None switches it off.
        Set on every LIM that holds a trunk; returns each one's script."""
        return [self.client.request(lim_node(lim), Kind.NETWORK, {"action": "mix", "shares": shares or {},
                                                                 "seed": seed, "after_s": after_s})
                for lim in self._trunk_lims()]

    def network_clear(self) -> list[dict[str, Any]]:
        return [self.client.request(lim_node(lim), Kind.NETWORK, {"action": "clear"}) for lim in self._trunk_lims()]

    def network(self) -> list[dict[str, Any]]:
        """The public network's script on each LIM that holds a trunk."""
        return [self.client.request(lim_node(lim), Kind.NETWORK, {"action": "show"}) for lim in self._trunk_lims()]

    def _trunk_lims(self) -> list[int]:
        return sorted({trunk.lim for trunk in self.topology.trunks})

    def members(self) -> list[dict[str, Any]]:
        return self.client.request(BROKER, Kind.STATUS)["members"]

    def calls(self) -> list[dict[str, Any]]:
        """Every call in progress, each reported once by the LIM that controls it."""
        calls = []
        for member in self.members():
            if member["role"] == "lim" and member["state"] != "dead":
                try:
                    calls.extend(self.client.request(member["node"], Kind.LIM_STATUS, timeout=2.0)["calls"])
                except BusError:
                    pass  # the LIM failed between the two questions; its calls are gone
        return calls

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Exchange":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
