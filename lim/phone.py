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
from topology.model import Topology

__all__ = ["Exchange", "Phone", "BusError"]


class Phone:
    def __init__(self, client: BusClient, number: str):
        self.client = client
        self.number = str(number)

    def _act(self, action: str, **fields: Any) -> dict[str, Any]:
        return self.client.request(f"dev:{self.number}", "phone", {"action": action, **fields})

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

    def state(self) -> dict[str, Any]:
        return self.client.request(f"dev:{self.number}", "device.get")


class Exchange:
    """A handle on a running exchange, reached through its broker."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.client = BusClient(topology.broker)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path) -> "Exchange":
        from topology.cluster import Cluster
        return cls(Cluster(Path(run_dir)).topology())

    def phone(self, number: str) -> Phone:
        return Phone(self.client, str(number))

    def members(self) -> list[dict[str, Any]]:
        return self.client.request("broker", "status")["members"]

    def calls(self) -> list[dict[str, Any]]:
        """Every call in progress, each reported once by the LIM that controls it."""
        calls = []
        for member in self.members():
            if member["role"] == "lim" and member["state"] != "dead":
                try:
                    calls.extend(self.client.request(member["node"], "lim.status", timeout=2.0)["calls"])
                except BusError:
                    pass  # the LIM failed between the two questions; its calls are gone
        return calls

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Exchange":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
