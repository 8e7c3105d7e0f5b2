"""The one exception of the LIM's logic: a request the exchange refuses, having changed nothing."""
from __future__ import annotations

from typing import Any


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, "message": self.message}
