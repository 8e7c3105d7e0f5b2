"""The bus envelope: the one wire format every node and the broker speak. Pure, no I/O.

A request or reply travels as two ZeroMQ frames, [header, body], so a receiver can check the
protocol version (and the routing fields) before it pays for decoding the body:

    header = msgpack [version, kind, src, incarnation, seq, msg_id, reply_to, dst]
    body   = msgpack map (the message's own fields)

An event travels as [topic, header, body] on the publish path; the topic is first so that ZeroMQ's
SUB prefix filter can select it. Topics end with a separator (`d:100|`) so that subscribing to
device 100 does not also deliver device 1000's events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
TOPIC_SEPARATOR = "|"
SYSTEM_TOPIC = "sys|"  # membership changes published by the broker
# Each LIM says here that it has released what depended on a LIM declared dead, after the events
# of that release: a CSTA server holds the dead LIM's BackInService back until every LIM has.
RELEASED_TOPIC = "released|"


class EnvelopeError(ValueError):
    """A frame that is not a valid envelope: wrong version, garbage, wrong shape."""


@dataclass
class Envelope:
    kind: str                    # message type, e.g. "register", "call.offer", "reply"
    src: str = ""                # sending node id ("lim-1", "broker", "cli-...")
    dst: str = ""                # node id, "broker", or "dev:<number>" (routed by the directory)
    body: dict[str, Any] = field(default_factory=dict)
    incarnation: int = 0         # the sender's incarnation: a new one means the sender restarted
    seq: int = 0                 # per-source sequence number
    msg_id: int = 0              # unique per source; replies name it in reply_to
    reply_to: int = 0            # 0 for requests and one-way messages

    def header_frame(self) -> bytes:
        return msgpack.packb([PROTOCOL_VERSION, self.kind, self.src, self.incarnation, self.seq,
                              self.msg_id, self.reply_to, self.dst])

    def frames(self) -> list[bytes]:
        return [self.header_frame(), msgpack.packb(self.body)]


def device_topic(number: str) -> str:
    return f"d:{number}{TOPIC_SEPARATOR}"


def call_topic(call_id: str) -> str:
    return f"c:{call_id}{TOPIC_SEPARATOR}"


def decode_header(frame: bytes) -> Envelope:
    """Decode the header frame only (the body stays undecoded until needed)."""
    try:
        header = msgpack.unpackb(frame, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise EnvelopeError(f"undecodable header: {exc}") from None
    if not isinstance(header, list) or not header:
        raise EnvelopeError("header is not a list")
    if header[0] != PROTOCOL_VERSION:
        raise EnvelopeError(f"protocol version {header[0]!r}, expected {PROTOCOL_VERSION}")
    if len(header) != 8:
        raise EnvelopeError(f"header has {len(header)} fields, expected 8")
    _, kind, src, incarnation, seq, msg_id, reply_to, dst = header
    if not (isinstance(kind, str) and isinstance(src, str) and isinstance(dst, str)
            and all(isinstance(n, int) for n in (incarnation, seq, msg_id, reply_to))):
        raise EnvelopeError("header fields have wrong types")
    return Envelope(kind=kind, src=src, dst=dst, incarnation=incarnation, seq=seq,
                    msg_id=msg_id, reply_to=reply_to)


def decode_body(frame: bytes) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(frame, use_list=True)
    except Exception as exc:
        raise EnvelopeError(f"undecodable body: {exc}") from None
    if not isinstance(body, dict):
        raise EnvelopeError("body is not a map")
    return body


def decode(frames: list[bytes]) -> Envelope:
    """Decode [header, body] into an Envelope; raises EnvelopeError on anything malformed."""
    if len(frames) != 2:
        raise EnvelopeError(f"{len(frames)} frames, expected 2")
    env = decode_header(frames[0])
    env.body = decode_body(frames[1])
    return env
