"""What the live view's HTTP requests mean: the routes, and an action at a phone checked before it
goes to the exchange. Pure: the server (liveview/server.py) does the I/O.

    GET  /                 the page (index.html, app.js, style.css beside it)
    GET  /api/state        the whole view as JSON
    GET  /api/events       server-sent events: `snapshot` (the whole view), then `patch` (what changed)
    POST /api/phone        {"device": "1000", "action": "dial", "number": "2000"}: a person at a phone

Bound beyond loopback, every /api/ request must carry the run directory's token (liveview/client.py):
the X-MXONE-Token header, `Authorization: Bearer TOKEN`, or `?token=TOKEN`. The page's own files
hold no data of the exchange and are served without it; the page keeps the token of its address.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from broker.directory import Directory
from broker.protocol import PHYSICAL_ACTIONS, Refusal
from topology.model import Topology

NUMBER = re.compile(r"^[0-9]{1,32}$")
DIAL = re.compile(r"^[0-9*#]{1,32}$")           # what lim/physical.py accepts as a number to dial
DTMF = re.compile(r"^[0-9*#A-Da-d]{1,64}$")      # the `digits` action's tones
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
ROUTES = {**{path: ("GET", "HEAD") for path in STATIC}, "/index.html": ("GET", "HEAD"),
          "/api/state": ("GET", "HEAD"), "/api/events": ("GET",), "/api/phone": ("POST",)}


class ApiError(Exception):
    """A request the view refuses: the HTTP status, an error code and a one-line message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, "message": self.message}


def load_static() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once (package data: liveview/static)."""
    folder = resources.files("liveview") / "static"
    files = {path: (folder.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}
    files["/index.html"] = files["/"]
    return files


def check_route(method: str, path: str) -> None:
    allowed = ROUTES.get(path)
    if allowed is None:
        raise ApiError(404, "not_found", f"no such page: {path[:200]}")
    if method not in allowed:
        raise ApiError(405, "method_not_allowed", f"{path} takes {' or '.join(allowed)}, not {method[:20]}")


def check_host(host: str, address: str) -> None:
    """Against DNS rebinding (another site's name made to resolve to this machine, so that its page
    counts as same-origin): answer only to an IP address, localhost or the configured name."""
    if not host:
        return  # HTTP/1.0 without Host: no browser sends that
    if host.startswith("[") and "]" not in host:
        raise ApiError(400, "bad_host", "the Host header opens a bracket it does not close")
    name = host[1:host.index("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(name)
        return
    except ValueError:
        pass
    if name.lower().rstrip(".") not in ("localhost", address.lower()):
        raise ApiError(403, "forbidden_host", f"this page answers to its address {address}, not to {name[:100]!r}")


TOKEN_HEADER = "x-mxone-token"


def check_token(expected: str | None, path: str, headers: dict[str, str], query: str) -> None:
    """An /api/ request without the token, or with another, is refused (401) when one is expected."""
    if expected is None or not path.startswith("/api/"):
        return
    given = headers.get(TOKEN_HEADER, "")
    scheme, _, bearer = headers.get("authorization", "").partition(" ")
    if not given and scheme.lower() == "bearer":
        given = bearer.strip()
    if not given:
        given = (parse_qs(query).get("token") or [""])[-1]
    # Constant time: how much of a guess matched must not show in the answer's timing.
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise ApiError(401, "token_required" if not given else "bad_token",
                       "this live view listens beyond loopback: send the token `mxone status` prints, as the "
                       "X-MXONE-Token header or ?token=" if not given else "that is not this live view's token")


def check_origin(origin: str, host: str) -> None:
    """A browser names the page a POST comes from: only this server's own page may work phones."""
    if origin and origin not in (f"http://{host}", f"https://{host}"):
        raise ApiError(403, "forbidden_origin", f"actions come from this server's own page, not from {origin[:100]}")


@dataclass(frozen=True)
class PhoneAction:
    device: str
    action: str
    digits: str | None

    def bus_body(self) -> dict[str, Any]:
        """The body of the `phone` request lim/phone.py's Phone sends, to the device's address."""
        return {"action": self.action, **({"digits": self.digits} if self.digits else {})}


def parse_phone_action(topology: Topology, directory: Directory, content_type: str, body: bytes) -> PhoneAction:
    """Check a POST /api/phone body; raise ApiError naming the problem."""
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        # Also what keeps another web site's plain form from working phones: a cross-site JSON
        # POST needs a CORS preflight, which this server never grants.
        raise ApiError(415, "unsupported_media_type", "send the action as application/json")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object like "
                                           '{"device": "1000", "action": "dial", "number": "2000"}')
    unknown = sorted(set(data) - {"device", "action", "number"})
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field {str(unknown[0])[:40]!r}; the fields are device, action, number")
    device = data.get("device")
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        device = str(device)
    if not isinstance(device, str) or not NUMBER.match(device):
        raise ApiError(400, "bad_device", "device must be a number of digits, like \"1000\"")
    action = data.get("action")
    if not isinstance(action, str) or action not in PHYSICAL_ACTIONS:
        raise ApiError(400, "unknown_action", f"action must be one of {', '.join(PHYSICAL_ACTIONS)}")
    if device in {g.number for g in (*topology.acd_groups, *topology.hunt_groups)}:
        raise ApiError(400, "not_a_phone", f"{device} is a group, not a phone")
    if directory.owner(device) is None:
        raise ApiError(404, "unknown_number", f"there is no device {device} in this exchange")
    number = data.get("number")
    if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
        number = str(number)
    if PHYSICAL_ACTIONS[action]:
        pattern = DTMF if action == "digits" else DIAL
        if not isinstance(number, str) or not pattern.match(number):
            what = "DTMF digits (0-9 * # A-D)" if action == "digits" else "a number to dial (0-9 * #)"
            raise ApiError(400, "bad_number", f"{action} needs {what} in \"number\"")
    elif number not in (None, ""):
        raise ApiError(400, "bad_number", f"{action} takes no number")
    else:
        number = None
    return PhoneAction(device, action, number)


def status_of_refusal(code: str) -> int:
    """The HTTP status for the exchange's error reply (a `Refusal`: the LIM's, the broker's, the bus's)."""
    if code == Refusal.UNKNOWN_NUMBER:
        return 404
    if code in (Refusal.LIM_DOWN, Refusal.UNREACHABLE, Refusal.BROKER_FAILOVER):
        return 503   # the LIM that holds the device is out of service (or the bus is failing over)
    if code == Refusal.TIMEOUT:
        return 504   # no answer from the exchange in time
    return 409       # the exchange refused: busy, not ringing, out of service, ...
