"""Features set at a device: do not disturb, forwarding, message waiting (`feature` requests).

Forwarding to oneself is refused, and so is forwarding-all that would close a loop: before it is
set, the chain of forward-all settings from the target is followed across LIMs (`feature.get`), up
to MAX_FORWARD_HOPS. Calls are also protected at the moment they are forwarded (lim/offers.py),
for loops made of busy and no-answer forwarding.
"""
from __future__ import annotations

from typing import Callable

from broker.envelope import Envelope
from broker.protocol import Kind, Refusal, device_address
from lim.errors import Refused
from lim.features import FORWARD_TYPES, MAX_FORWARD_HOPS
from lim.state import LimState, Reply


class DeviceFeatures:
    """The `feature` and `feature.get` requests. Changes the features (but not the agent fields)
    of this LIM's extensions; calls no other part."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self) -> None:
        pass

    def _features_of(self, number: str):
        features = self.state.features.get(number)
        if features is None:
            raise Refused(Refusal.NOT_AN_EXTENSION, f"{number} is not an extension of LIM {self.state.lim}")
        return features

    def on_feature_get(self, env: Envelope, respond: Reply) -> None:
        number = self.state.target(env)
        respond({"ok": True, "device": number, **self._features_of(number).to_store()})

    def on_feature(self, env: Envelope, respond: Reply) -> None:
        number = self.state.target(env)
        features = self._features_of(number)
        feature = env.body.get("feature")
        if feature == "dnd":
            features.dnd = self._flag(env.body)
            self.state.save_features(number)
            self.state.emit_device(number, "DoNotDisturb", do_not_disturb=features.dnd)
            respond({"ok": True, "device": number, "dnd": features.dnd})
        elif feature == "mwi":
            features.mwi = self._flag(env.body)
            self.state.save_features(number)
            self.state.emit_device(number, "MessageWaiting", message_waiting=features.mwi)
            respond({"ok": True, "device": number, "mwi": features.mwi})
        elif feature == "forward":
            self._set_forward(number, env.body, respond)
        else:
            raise Refused(Refusal.UNKNOWN_FEATURE, f"unknown feature {feature!r}; use dnd, forward or mwi")

    @staticmethod
    def _flag(body: dict) -> bool:
        on = body.get("on")
        if not isinstance(on, bool):
            raise Refused(Refusal.BAD_REQUEST, "say on or off")
        return on

    def _set_forward(self, number: str, body: dict, respond: Reply) -> None:
        kind = body.get("type")
        if kind not in FORWARD_TYPES:
            raise Refused(Refusal.BAD_REQUEST, f"forwarding type {kind!r}; use one of {', '.join(FORWARD_TYPES)}")
        to = body.get("to")
        after_s = body.get("after_s")
        if to is not None:
            to = str(to)
            if to == number:
                raise Refused(Refusal.FORWARD_TO_SELF, f"{number} cannot forward to itself")
            self.state.check_number(to)
        if after_s is not None and (not isinstance(after_s, (int, float)) or not 1 <= after_s <= 300):
            raise Refused(Refusal.BAD_REQUEST, "the no-answer time must be 1 to 300 seconds")

        def apply() -> None:
            features = self.state.features[number]
            setattr(features, f"forward_{kind}", to)
            if kind == "noanswer" and after_s is not None:
                features.forward_noanswer_s = float(after_s)
            self.state.save_features(number)
            self.state.emit_device(number, "Forwarding", forwarding_type=kind, forward_to=to,
                                   forwarding_on=to is not None, forwarding=features.forwarding())
            respond({"ok": True, "device": number, "forwarding": features.forwarding()})

        if kind != "all" or to is None:
            apply()
            return
        self._check_forward_chain(number, to, 1, apply, respond)

    def _check_forward_chain(self, origin: str, at: str, hops: int, apply: Callable[[], None],
                             respond: Reply) -> None:
        """Follow forward-all from `at`; refuse if it leads back to `origin`."""
        if hops > MAX_FORWARD_HOPS or self.state.directory.is_external(at):
            apply()  # the chain leaves the exchange or is too long to loop back through us
            return

        def step(reply: dict) -> None:
            nxt = reply.get("forward_all") if reply.get("ok") else None
            if nxt is None:
                apply()
            elif nxt == origin:
                respond({"ok": False, "error": Refusal.FORWARD_LOOP,
                         "message": f"forwarding {origin} to {at} would make a loop ({at} forwards to {origin})"})
            else:
                self._check_forward_chain(origin, nxt, hops + 1, apply, respond)

        if at in self.state.features:
            step({"ok": True, "forward_all": self.state.features[at].forward_all})
        elif self.state.directory.owner(at) == self.state.lim:
            apply()  # a group of ours: groups do not forward
        else:
            self.state.bus.request(device_address(at), Kind.FEATURE_GET, {}, step)
