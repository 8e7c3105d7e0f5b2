"""Device IDs as CSTA clients write them (plain digits, RFC 3966 tel: URIs, sip: URIs) read onto
the exchange's number plan, and the tel: URIs a TR87 dialog is sent. Pure: no I/O.

Reading (`device_number`), the rule a Lync deployment's line URIs need:
  1000, tel:1000, sip:1000@host             -> 1000 (digits as dialled on this exchange)
  tel:1000;phone-context=dialstring         -> 1000 (a local number: whatever its context, it is
  tel:1000;phone-context=example.com           dialled in this exchange's number plan)
  tel:+1421112222;ext=12222                 -> 12222 when 12222 is an internal number: the E.164
                                               part is the line's DDI, the extension names the line
  tel:+46875712000 (topology `ddi: ["+4687571"]`) -> 2000 when 2000 is internal
  tel:+3222220220                           -> 003222220220: external, 00 the international prefix
Visual separators (- . ( ) and spaces) are dropped; parameters other than ext and phone-context
(partition=, isub=, ad-rdn=, user=phone ...) are ignored. Refused (DeviceIdError): an empty
number, letters or other characters in it, an ext that is not digits, a phone-context that is
neither +digits nor a domain name, a global number with a phone-context (RFC 3966 3), a parameter
given twice, more than MAX_DIGITS digits, more than MAX_URI characters, schemes other than
tel/sip/sips.

Writing (`TelNaming`, one per TR87 dialog): a device the dialog named itself (the line it monitors,
the calling device of its MakeCall) in the very form it used (pidgin-sipe compares the
MakeCallResponse's deviceID with its line URI as strings, and sends the deviceID of its events
back in ClearConnection); any other device as RFC 3966 writes it: a local number with the
dialog's phone-context (`tel:2000;phone-context=dialstring`, what Office Communicator parses in
callingDevice), an international one as a global number (`tel:+3222220220`).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Container, Iterable

MAX_URI = 256
MAX_DIGITS = 32
INTERNATIONAL = "00"          # how the exchange dials a global number (+ is replaced by it)
DEFAULT_CONTEXT = "dialstring"  # MS-OCPSTN: the phone-context of a number not in E.164 form
MAX_FORMS = 64                # devices one dialog named itself, remembered for naming

_VISUAL = str.maketrans("", "", "-.() ")
_LOCAL = re.compile(r"[0-9*#]+\Z")
_GLOBAL = re.compile(r"\+[0-9]+\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")


class DeviceIdError(ValueError):
    """A device ID this exchange cannot read: answered with a CSTA error, nothing else changes."""


@dataclass(frozen=True)
class TelAddress:
    number: str               # digits (and * #), with a leading + for a global number
    ext: str | None = None
    context: str | None = None  # phone-context: "+digits" or a lower-case domain name

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")


def parse(raw: str) -> TelAddress:
    """A device ID (plain, tel: or sip:) as a TelAddress; DeviceIdError says what is wrong."""
    text = raw.strip()
    if len(text) > MAX_URI:
        raise DeviceIdError(f"a device ID of {len(text)} characters (at most {MAX_URI})")
    if not _PRINTABLE.match(text):
        raise DeviceIdError("a device ID with control or non-ASCII characters")
    scheme, colon, rest = text.partition(":")
    if not colon:
        return _subscriber(text)
    scheme = scheme.lower()
    if scheme == "tel":
        return _subscriber(rest)
    if scheme in ("sip", "sips"):
        # The user part, which for user=phone is a telephone-subscriber with its own parameters.
        user = rest.split("@", 1)[0] if "@" in rest else rest
        return _subscriber(user)
    raise DeviceIdError(f"a {scheme}: URI is not a device ID here (tel:, sip: or digits)")


def _subscriber(text: str) -> TelAddress:
    number, *params = text.split(";")
    number = number.translate(_VISUAL)
    if not number:
        raise DeviceIdError("a device ID without a number")
    if not (_GLOBAL.match(number) if number.startswith("+") else _LOCAL.match(number)):
        raise DeviceIdError(f"{number[:40]!r} is not a telephone number")
    if len(number.lstrip("+")) > MAX_DIGITS:
        raise DeviceIdError(f"a number of more than {MAX_DIGITS} digits")
    seen: dict[str, str] = {}
    for param in params:
        name, _, value = param.partition("=")
        name = name.strip().lower()
        if not name:
            raise DeviceIdError("an empty parameter in a device ID")
        if name in seen:
            raise DeviceIdError(f"the parameter {name} given twice")
        seen[name] = value.strip()
    ext = seen.get("ext")
    if ext is not None:
        ext = ext.translate(_VISUAL)
        if not _DIGITS.match(ext) or len(ext) > MAX_DIGITS:
            raise DeviceIdError(f"ext={seen['ext'][:40]!r} is not an extension number")
    context = seen.get("phone-context")
    if context is not None:
        if number.startswith("+"):
            raise DeviceIdError("a global number (+...) takes no phone-context")
        context = _context(context)
    return TelAddress(number, ext, context)


def _context(value: str) -> str:
    if value.startswith("+"):
        digits = value.translate(_VISUAL)
        if _GLOBAL.match(digits) and len(digits) <= MAX_DIGITS + 1:
            return digits
    else:
        domain = value.lower()
        if len(domain) <= 253 and _DOMAIN.match(domain):
            return domain
    raise DeviceIdError(f"phone-context={value[:40]!r} is neither +digits nor a domain name")


def resolve(address: TelAddress, internal: Container[str] = (), ddi: Iterable[str] = ()) -> str:
    """The number the exchange knows `address` by (see the module notes for the rule)."""
    if address.ext and address.ext in internal:
        return address.ext
    if not address.is_global:
        return address.number
    for prefix in sorted(ddi, key=len, reverse=True):
        rest = address.number[len(prefix):]
        if address.number.startswith(prefix) and rest in internal:
            return rest
    return INTERNATIONAL + address.number[1:]


def device_number(raw: str | None, internal: Container[str] = (), ddi: Iterable[str] = ()) -> str | None:
    """`raw` read onto the number plan; None when there is nothing to read (absent or blank)."""
    if raw is None or not raw.strip():
        return None
    return resolve(parse(raw), internal, ddi)


def tel_uri(number: str, context: str = DEFAULT_CONTEXT) -> str:
    """An exchange number as a tel: URI: a global number for one dialled with the international
    prefix, else a local number in `context` (RFC 3966 wants a phone-context on every local one)."""
    if number.startswith(INTERNATIONAL) and _DIGITS.match(number[len(INTERNATIONAL):]):
        return f"tel:+{number[len(INTERNATIONAL):]}"
    return f"tel:{number};phone-context={context}"


class TelNaming:
    """How one TR87 dialog names devices: the forms it used itself, tel: URIs for the rest."""

    def __init__(self, resolve_raw: Callable[[str], str | None]):
        self._resolve = resolve_raw
        self.context: str | None = None  # the dialog's phone-context, from the first line it names
        self.forms: OrderedDict[str, str] = OrderedDict()  # number -> the device ID the client used

    def learn(self, number: str, raw: str) -> None:
        """The client named `number` as `raw` (a line it monitors or calls from)."""
        raw = raw.strip()
        self.forms[number] = raw
        self.forms.move_to_end(number)
        while len(self.forms) > MAX_FORMS:
            self.forms.popitem(last=False)
        if self.context is None:
            try:
                self.context = parse(raw).context
            except DeviceIdError:
                pass

    def learn_line(self, raw: str | None) -> None:
        """The line URI of the dialog (lcs:line in RequestSystemStatus): its form and context.
        A line this exchange cannot read is left alone: MonitorStart will say what is wrong."""
        if not raw:
            return
        try:
            number = self._resolve(raw)
        except DeviceIdError:
            return
        if number:
            self.learn(number, raw)

    def name(self, number: str) -> str:
        form = self.forms.get(number)
        if form is not None:
            return form
        return tel_uri(number, self.context or DEFAULT_CONTEXT)


__all__ = ["DeviceIdError", "TelAddress", "TelNaming", "parse", "resolve", "device_number", "tel_uri",
           "INTERNATIONAL", "DEFAULT_CONTEXT"]
