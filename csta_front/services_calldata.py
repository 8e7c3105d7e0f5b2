"""ECMA-269 AssociateData: a client attaches data to a call (correlator data, account and
authorisation codes); the call's controlling LIM keeps it with the call, reports it in a
CallInformation event, and every later event of the call carries it where the schema has a place
for it (csta_front/events.py DATA_PLACES).

The request goes to the LIM of the device named in `existingCall` (`call.data`), which hands it to
the call's controller wherever that is, like any other operation on a call. Parameters this
exchange does not keep (callQualifyingData, callCharacteristics, subjectOfCall,
languagePreferences, deviceInfo) are ignored, as GetSwitchingFunctionCaps announces
(ignoreParameters).
"""
from __future__ import annotations

from broker.protocol import CALL_DATA_OCTETS, Kind, Refusal, device_address
from csta_front.codec import CodecError, find, text
from csta_front.services import ServiceCall, empty_response, service

# AssociateData's items this exchange keeps: element -> (call data item, error when it is not a
# well-formed octet string within its bound).
ITEMS = (("accountCode", "account", "invalidAccountCode"), ("authCode", "auth", "invalidAuthCode"),
         ("correlatorData", "correlator", "invalidCorrelatorData"))
HEX = frozenset("0123456789abcdefABCDEF")

ERRORS = {Refusal.NO_SUCH_CONNECTION: ("operation", "invalidConnectionID"),
          Refusal.IDLE: ("operation", "invalidConnectionID"),
          Refusal.NO_SUCH_CALL: ("operation", "invalidCallID")}


def _octets(call: ServiceCall, element: str, value: str | None, item: str, error: str) -> str:
    """An xs:hexBinary value, checked against the exchange's bound for `item`."""
    value = (value or "").strip()
    if not value or len(value) % 2 or not set(value) <= HEX:
        raise CodecError(error, f"{call.request.name}: {element} must be an octet string in hex")
    if len(value) // 2 > CALL_DATA_OCTETS[item]:
        raise CodecError(error, f"{call.request.name}: {element} holds at most {CALL_DATA_OCTETS[item]} octets")
    return value


def read_data(call: ServiceCall) -> dict[str, str]:
    """The call data a request gives: account and authorisation codes (plain xs:hexBinary) and
    correlator data (its `string` choice; the vendor-specific `private` choice is refused)."""
    data = {}
    for element, item, error in ITEMS:
        el = call.request.find(element)
        if el is None:
            continue
        if element == "correlatorData":
            if find(el, "private") is not None:
                raise CodecError("privateDataNotSupported", f"{call.request.name}: private correlatorData is not supported")
            data[item] = _octets(call, f"{element}/string", text(el, "string"), item, error)
        else:
            data[item] = _octets(call, element, el.text, item, error)
    return data


@service("AssociateData")
def associate_data(call: ServiceCall) -> None:
    call_id, number = call.connection("existingCall")
    data = read_data(call)
    if not data:
        raise CodecError("atLeastOneConditionalParameterNotProvided",
                         "AssociateData: give at least one of accountCode, authCode, correlatorData")
    call.ask(device_address(number), Kind.CALL_DATA, {"call_id": call_id, "data": data}, empty_response(call),
             errors=ERRORS)
