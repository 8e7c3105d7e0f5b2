"""Small helpers for tools that point at the live view (the CLI's `up` and `status`)."""
from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import quote

from topology.model import LiveView

TOKEN_FILE = "live_view.token"  # in the run directory, readable by its owner only


def needs_token(address: str) -> bool:
    """The page works phones with no login: bound to anything but loopback, others can reach it,
    so it asks for the run directory's token. A name other than localhost may resolve anywhere."""
    if address.lower().rstrip(".") == "localhost":
        return False
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True


def write_token(path: Path) -> str:
    """A new random token in `path` (mode 0600), made at each `mxone up`."""
    token = secrets.token_urlsafe(24)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def read_token(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def url_of(settings: LiveView, token: str | None = None) -> str:
    host = f"[{settings.address}]" if ":" in settings.address else settings.address
    return f"http://{host}:{settings.port}/" + (f"?token={quote(token, safe='')}" if token else "")


def is_listening(settings: LiveView, timeout: float = 0.5) -> bool:
    """Does the live view accept connections (its process is up and bound)?"""
    try:
        with socket.create_connection((settings.address, settings.port), timeout=timeout):
            return True
    except OSError:
        return False
