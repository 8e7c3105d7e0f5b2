"""ECMA-323 Annex J.2 framing ("TCP without SOAP"), sans-IO.

Every message is one frame::

    bytes 0-1  0x00 0x00
    bytes 2-3  frame length, big-endian unsigned, counting the WHOLE frame (header + XML)
    bytes 4-7  invoke ID, four ASCII digits "0000".."9999" (9999: unsolicited event)
    bytes 8-   the XML document, UTF-8

The length is in bytes, so a frame holds at most 65535 - 8 bytes of XML.

`FrameDecoder` takes bytes as they come off the socket and hands back complete frames. It holds at
most one partial frame (never more than `max_frame` bytes): complete frames in a chunk are sliced
straight out of the caller's data through a memoryview, so many frames in one `feed()` cost O(n).
The header is checked as soon as each of its bytes arrives, so a peer speaking something else is
refused after its first byte or two rather than after a "length" worth of garbage.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "HEADER_SIZE", "EVENT_INVOKE_ID", "MAX_FRAME", "MAX_INVOKE_ID",
    "Frame", "FramingError", "FrameDecoder", "encode_frame",
]

HEADER_SIZE = 8
EVENT_INVOKE_ID = 9999
MAX_INVOKE_ID = 9999
MAX_FRAME = 65535  # the length field is 16 bits and counts the header

_MARKER = b"\x00\x00"
_HEADER = struct.Struct(">HH4s")  # marker, length, invoke ID digits


@dataclass(frozen=True, slots=True)
class Frame:
    invoke_id: int
    xml: bytes


class FramingError(Exception):
    """The byte stream is not ECMA-323 J.2 framing; the connection must be closed.

    `reason` is one of "bad_marker", "bad_length", "too_long", "bad_invoke_id".
    `frames` holds the complete frames that preceded the error in the same `feed()` call (they are
    valid; a caller may still process them before closing). It is empty on later re-raises.
    """

    def __init__(self, reason: str, message: str, frames: tuple[Frame, ...] = ()):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.frames = frames

    def __repr__(self) -> str:
        return f"FramingError({self.reason!r}, {self.message!r})"


def encode_frame(invoke_id: int, xml: bytes) -> bytes:
    """One frame: header + `xml` (already encoded, UTF-8)."""
    if isinstance(invoke_id, bool) or not isinstance(invoke_id, int):
        raise TypeError(f"invoke_id must be an int, not {type(invoke_id).__name__}")
    if not 0 <= invoke_id <= MAX_INVOKE_ID:
        raise ValueError(f"invoke ID {invoke_id} is outside 0..{MAX_INVOKE_ID}")
    if isinstance(xml, str):
        raise TypeError("xml must be bytes (encode it as UTF-8 first)")
    length = HEADER_SIZE + len(xml)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes is longer than {MAX_FRAME} "
                         f"(XML is {len(xml)} bytes, at most {MAX_FRAME - HEADER_SIZE})")
    return b"".join((_MARKER, length.to_bytes(2, "big"), b"%04d" % invoke_id, xml))


class FrameDecoder:
    """Bytes in, `Frame`s out. No I/O: the caller reads the socket and calls `feed()`.

    After a `FramingError` the decoder is dead: every later `feed()` raises an equal error.
    """

    __slots__ = ("max_frame", "_buf", "_length", "_invoke_id", "_error")

    def __init__(self, max_frame: int = MAX_FRAME):
        if not HEADER_SIZE <= max_frame <= MAX_FRAME:
            raise ValueError(f"max_frame must be within {HEADER_SIZE}..{MAX_FRAME}, not {max_frame}")
        self.max_frame = max_frame
        self._buf = bytearray()      # the partial frame (header included); empty between frames
        self._length = 0             # length of the partial frame once its bytes 2-3 are in
        self._invoke_id = 0          # its invoke ID once its header is complete
        self._error: FramingError | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered toward a frame not yet complete."""
        return len(self._buf)

    @property
    def awaiting_frame(self) -> bool:
        """True while part of a frame is buffered (time out peers that stop mid-frame)."""
        return bool(self._buf)

    @property
    def failed(self) -> FramingError | None:
        """The error that killed this decoder, if any."""
        return self._error

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame now complete, in order (possibly none)."""
        if self._error is not None:
            err = self._error
            raise FramingError(err.reason, err.message)
        frames: list[Frame] = []
        try:
            self._feed(memoryview(data).cast("B"), frames)
        except FramingError as exc:
            self._buf = bytearray()
            self._error = exc
            exc.frames = tuple(frames)
            raise
        return frames

    # -- internals -------------------------------------------------------------------------------
    def _feed(self, view: memoryview, frames: list[Frame]) -> None:
        end = len(view)
        pos = 0
        buf = self._buf
        if buf:
            # Finish the partial frame first: take only the bytes it still needs.
            have = len(buf)
            if have < HEADER_SIZE:
                take = min(HEADER_SIZE - have, end)
                buf += view[:take]
                pos = take
                self._check_partial_header(buf)
                if len(buf) < HEADER_SIZE:
                    return
                self._length, self._invoke_id = self._check_header(buf, 0)
            take = min(self._length - len(buf), end - pos)
            buf += view[pos:pos + take]
            pos += take
            if len(buf) < self._length:
                return
            frames.append(Frame(self._invoke_id, bytes(buf[HEADER_SIZE:])))
            self._buf = buf = bytearray()
        # Whole frames straight from the caller's bytes.
        check = self._check_header
        while end - pos >= HEADER_SIZE:
            length, invoke_id = check(view, pos)
            if end - pos < length:
                break
            frames.append(Frame(invoke_id, bytes(view[pos + HEADER_SIZE:pos + length])))
            pos += length
        if pos < end:
            rest = view[pos:]
            if len(rest) < HEADER_SIZE:
                self._check_partial_header(rest)
            else:
                self._length, self._invoke_id = check(view, pos)
            buf += rest

    def _check_header(self, data, pos: int) -> tuple[int, int]:
        """Validate the complete header at data[pos:pos+8]; return (length, invoke ID)."""
        marker, length, digits = _HEADER.unpack_from(data, pos)
        if marker:
            raise self._bad_marker(bytes(data[pos:pos + 2]))
        if length < HEADER_SIZE or length > self.max_frame:
            self._check_length(length)
        if not digits.isdigit():  # bytes.isdigit() is ASCII-only
            raise self._bad_invoke_id(digits)
        return length, int(digits)

    def _check_partial_header(self, data) -> None:
        """Validate whatever part (< 8 bytes) of a header has arrived."""
        n = len(data)
        if (n >= 1 and data[0]) or (n >= 2 and data[1]):
            raise self._bad_marker(bytes(data[:2]))
        if n >= 4:
            self._length = (data[2] << 8) | data[3]
            self._check_length(self._length)
        if n > 4:
            digits = bytes(data[4:n])
            if not digits.isdigit():
                raise self._bad_invoke_id(digits)

    def _check_length(self, length: int) -> None:
        if length < HEADER_SIZE:
            raise FramingError("bad_length", f"frame length {length} is shorter than the "
                                             f"{HEADER_SIZE}-byte header")
        if length > self.max_frame:
            raise FramingError("too_long", f"frame length {length} exceeds the limit of "
                                           f"{self.max_frame} bytes")

    @staticmethod
    def _bad_marker(marker: bytes) -> FramingError:
        return FramingError("bad_marker", f"frame must start with 00 00, got {marker.hex(' ')} "
                                          f"({marker!r}): not ECMA-323 J.2 framing")

    @staticmethod
    def _bad_invoke_id(digits: bytes) -> FramingError:
        return FramingError("bad_invoke_id", f"invoke ID must be four ASCII digits, got {digits!r}")
