"""The one exception of the LIM's logic: a request the exchange refuses, having changed nothing."""
from __future__ import annotations

from typing import Any

from broker.protocol import Refusal


class Refused(Exception):
    """Raised anywhere in a request's handling; the LIM answers it as a refusal reply whose
    `error` is `code` (one of the bus protocol's refusal codes)."""

    def __init__(self, code: Refusal, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, "message": self.message}
