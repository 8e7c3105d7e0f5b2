"""Small helpers for tools that point at the live view (the CLI's `up` and `status`)."""
from __future__ import annotations

import socket

from topology.model import LiveView


def url_of(settings: LiveView) -> str:
    host = f"[{settings.address}]" if ":" in settings.address else settings.address
    return f"http://{host}:{settings.port}/"


def is_listening(settings: LiveView, timeout: float = 0.5) -> bool:
    """Does the live view accept connections (its process is up and bound)?"""
    try:
        with socket.create_connection((settings.address, settings.port), timeout=timeout):
            return True
    except OSError:
        return False
