"""Which protocol a new connection speaks, from its first bytes. Pure.

    "csta"     00 00 ...                         (ECMA-323 J.2 frame header)
    "tls"      16 03 ...                         (TLS handshake record)
    "http"     GET / ... , POST /x ... , OPTIONS * ... , any HTTP method and a space
    "sip"      INVITE sip:... , OPTIONS tel:... , SIP/2.0 200 OK ...
    "unknown"  none of these can match
    None       the bytes so far are a prefix of several possibilities: read more and ask again

Only the first `SNIFF_LIMIT` (64) bytes are ever looked at; in practice a decision needs at most
15 ("SUBSCRIBE sips:"), and 64 bytes without a decision give "unknown". Method names are
case-sensitive (as in HTTP and SIP); URI schemes are not. Leading blank lines are not skipped.

A method that both protocols define (OPTIONS) is decided by its request-URI: `sip:`, `sips:` or
`tel:` means SIP; `/`, `*` or an absolute `http:`/`https:` URI means HTTP. A SIP-only method must
be followed by a SIP URI, otherwise the line is "unknown".
"""
from __future__ import annotations

__all__ = ["sniff", "SNIFF_LIMIT", "HTTP_METHODS", "SIP_METHODS", "PROTOCOLS"]

SNIFF_LIMIT = 64
PROTOCOLS = ("csta", "http", "sip", "tls", "unknown")

HTTP_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS",
                          b"TRACE", b"PATCH", b"PRI"})  # PRI: the HTTP/2 connection preface
SIP_METHODS = frozenset({b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"REGISTER", b"INFO",
                         b"UPDATE", b"PRACK", b"SUBSCRIBE", b"NOTIFY", b"MESSAGE", b"REFER"})
_METHODS = HTTP_METHODS | SIP_METHODS
_MAX_METHOD = max(map(len, _METHODS))

_SIP_STATUS = b"SIP/2.0 "
_SIP_URI = (b"sip:", b"sips:", b"tel:")
_HTTP_URI = (b"/", b"*", b"http:", b"https:")


def sniff(first: bytes) -> str | None:
    """"csta", "http", "sip", "tls", "unknown", or None when more bytes are needed."""
    data = bytes(first[:SNIFF_LIMIT])
    result = _decide(data)
    if result is None and len(data) >= SNIFF_LIMIT:
        return "unknown"
    return result


def _decide(data: bytes) -> str | None:
    if not data:
        return None
    b0 = data[0]
    if b0 == 0x00:
        return _two_bytes(data, "csta", 0x00)
    if b0 == 0x16:
        return _two_bytes(data, "tls", 0x03)
    if data.startswith(_SIP_STATUS):
        return "sip"
    space = data.find(b" ", 0, _MAX_METHOD + 1)
    if space < 0:
        # No space yet: still a candidate if it could grow into "METHOD " or "SIP/2.0 ".
        if len(data) <= _MAX_METHOD and any(m.startswith(data) for m in _METHODS):
            return None
        return None if _SIP_STATUS.startswith(data) else "unknown"
    method = data[:space]
    is_http, is_sip = method in HTTP_METHODS, method in SIP_METHODS
    if not (is_http or is_sip):
        return "unknown"
    if is_http and not is_sip:
        return "http"
    uri = data[space + 1:]
    candidates = []
    if is_sip:
        candidates += [(prefix, "sip") for prefix in _SIP_URI]
    if is_http:
        candidates += [(prefix, "http") for prefix in _HTTP_URI]
    lowered = uri[:8].lower()  # schemes are case-insensitive; the longest prefix is 6 bytes
    undecided = False
    for prefix, kind in candidates:
        if lowered.startswith(prefix):
            return kind
        if prefix.startswith(lowered):
            undecided = True
    return None if undecided else "unknown"


def _two_bytes(data: bytes, kind: str, second: int) -> str | None:
    if len(data) < 2:
        return None
    return kind if data[1] == second else "unknown"
