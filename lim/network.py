"""`network` requests: scripting the simulated public network behind this LIM's trunks.

A script for one number arrives addressed to the number (`dev:<number>`, which the broker routes
to the LIM of its trunk); a mix, `clear` and `show` arrive addressed to the LIM (`lim-<n>`).
Offers read the script when they offer a call to an external number (lim/offers.py).
"""
from __future__ import annotations

from broker.envelope import Envelope
from broker.protocol import Refusal, is_device_address
from lim.errors import Refused
from lim.pstn import Behaviour
from lim.state import LimState, Reply


class Network:
    """Changes the network script (`state.pstn`); calls no other part."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self) -> None:
        pass

    def on_network(self, env: Envelope, respond: Reply) -> None:
        action, body = env.body.get("action"), env.body
        script = self.state.pstn
        if not self.state.topology_trunks_here():
            raise Refused(Refusal.BAD_REQUEST, f"LIM {self.state.lim} holds no trunk to the public network")
        if action == "script":
            number = self.state.target(env)
            if self.state.trunk_for(number) is None:
                raise Refused(Refusal.UNKNOWN_NUMBER, f"{number} is not a number of the public network")
            behaviour = None if body.get("behaviour") in (None, "default") else \
                Behaviour.parse(body.get("behaviour"), body.get("after_s"))
            script.script(number, behaviour)
            respond({"ok": True, "device": number, **(behaviour.to_wire() if behaviour else {"behaviour": None})})
            return
        if is_device_address(env.dst):
            raise Refused(Refusal.BAD_REQUEST, f"network {action!r} is addressed to a LIM, not to a number")
        if action == "mix":
            script.set_mix(body.get("shares") or {}, body.get("seed"), body.get("after_s"))
        elif action == "clear":
            script.clear()
        elif action != "show":
            raise Refused(Refusal.UNKNOWN_ACTION, f"unknown network action {action!r}; use script, mix, clear or show")
        respond({"ok": True, "lim": self.state.lim, **script.to_wire()})
