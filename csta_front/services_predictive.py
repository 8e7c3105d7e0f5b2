"""ECMA-269 MakePredictiveCall: the exchange dials the called number first and connects the
calling device (an extension, or an ACD or hunt group's next agent or member) when the called
party answers (signallingCondition callEstablished, the default) or alerts (callDelivered).

Destination detection (signallingConditionsAction destinationDetection) applies each
detectionItem's action to what answered: the simulated public network tells a person
(humanVoice) from an answering machine; defaultAction covers the conditions not listed.
The response names the call by the calling device's connection, as MakeCall does; that
connection stays null until the calling device is offered the call (lim/predictive.py).
"""
from __future__ import annotations

from broker.protocol import Kind, device_address
from csta_front.codec import CodecError, children, connection_el, text
from csta_front.services import CALLED_NUMBER_ERRORS, ServiceCall, calling_and_called, service

ALLOCATION = {"callDelivered": "delivered", "callEstablished": "established"}
DETECTION_ACTIONS = ("clearCalledConnection", "remainConnected")
CONDITIONS = ("humanVoice", "answeringMachine", "facsimileMachine")


def _enum(call: ServiceCall, value: str | None, allowed, name: str) -> str | None:
    if value is not None and value not in allowed:
        raise CodecError("invalidParameterValue", f"MakePredictiveCall: {name} {value!r} is not one of {', '.join(allowed)}")
    return value


@service("MakePredictiveCall")
def make_predictive_call(call: ServiceCall) -> None:
    calling, called = calling_and_called(call)
    condition = _enum(call, call.request.text("signallingDetection", "signallingCondition"), ALLOCATION,
                      "signallingCondition")
    action = _enum(call, call.request.text("signallingDetection", "signallingConditionsAction"),
                   ("destinationDetection", "remainConnected"), "signallingConditionsAction")
    detection = {}
    for item in children(call.request.find("destinationDetection"), "detectionItem"):
        detection[_enum(call, text(item, "destinationCondition"), CONDITIONS, "destinationCondition")] = \
            _enum(call, text(item, "detectionAction"), DETECTION_ACTIONS, "detectionAction")
    default_action = _enum(call, call.request.text("defaultAction"), DETECTION_ACTIONS, "defaultAction")
    alert = call.request.text("alertTime")
    try:
        alert_s = int(alert) if alert is not None else None
    except ValueError:
        raise CodecError("invalidParameterValue", f"MakePredictiveCall: alertTime {alert!r} is not a number") from None
    body = {"called": called, "allocation": ALLOCATION.get(condition or "callEstablished"),
            "detect": action == "destinationDetection" or bool(detection), "detection": detection,
            "default_action": default_action, "alert_s": alert_s}

    def placed(r: dict) -> None:
        call.learn(calling, "callingDevice")
        call.respond(call.E.MakePredictiveCallResponse(
            connection_el(call.E, "initiatedCall", r["call_id"], call.name(calling))))
    call.ask(device_address(calling), Kind.CALL_PREDICTIVE, body, placed, errors=CALLED_NUMBER_ERRORS)
