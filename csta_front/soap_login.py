"""Linux-account logins of the CSTA Web Service: HTTP Basic credentials checked through PAM.

PAM blocks (pam_unix hashes the password, a failure is delayed by pam_faildelay), so the checks
run on a small thread pool and their results come back to the poll loop through the Waker; the
limits per client and the AuthGuard's lockout keep one client from starving the others.
"""
from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from csta_front.waker import Waker

log = logging.getLogger("csta")

PAM_SERVICE = "login"
AUTH_CACHE_S = 60.0            # a success is remembered on the HTTP connection this long
AUTH_WORKERS = 4
AUTH_PER_PEER = 2
AUTH_MAX_PENDING = 64


_USER_NAME = re.compile(r"\A[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?\Z")


def parse_basic(value: bytes | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` value, or None when it is missing or
    malformed (or the name could not be a Linux account's)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not _USER_NAME.match(user) or len(password) > 512 or "\x00" in password:
        return None
    return user, password


def pam_check(user: str, password: str, service: str = PAM_SERVICE) -> bool:
    """The Linux account's password, through PAM (auth and account stacks, no pam_setcred). Blocks:
    pam_unix hashes the password, and a failure is delayed (pam_faildelay). Call off the loop."""
    import pam  # python-pam; imported here so a server without SOAP clients never loads libpam
    authenticator = pam.PamAuthenticator()
    return bool(authenticator.authenticate(user, password, service=service, resetcreds=False))


def privilege_refusal(euid: int | None = None) -> str | None:
    """Why PAM cannot check Linux accounts in this process, or None. pam_unix reads /etc/shadow,
    which only root may; without root its helper (unix_chkpwd) checks the server's own account
    only, so every client's login would fail as if its password were wrong, and count against it."""
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return None
    return (f"Linux-account logins are off: PAM (pam_unix) needs the CSTA server to run as root to read "
            f"/etc/shadow, and this one runs as uid {euid}; start the exchange as root to use them")


_announced: set[str] = set()


def announce_refusal(refusal: str) -> None:
    """Log once per process that Linux-account logins are off (at start, and not again when the
    SOAP service is built on its first connection)."""
    if refusal not in _announced:
        _announced.add(refusal)
        log.warning("soap: %s", refusal)


class Authenticator:
    """Linux-account checks on worker threads; `done(result)` runs on the loop with "ok", "denied",
    "locked" (too many failures: the AuthGuard), "busy" (too many checks waiting) or "unavailable"
    (`refusal` says why no check can succeed here: no PAM call, no failure counted)."""

    def __init__(self, front: Any, waker: Waker, check: Callable[[str, str], bool] = pam_check,
                 submit: Callable[[Callable[[], None]], Any] | None = None, refusal: str | None = None):
        self.refusal = refusal
        self.front = front
        self.waker = waker
        self.check = check
        self._submit = submit
        self._executor: ThreadPoolExecutor | None = None
        self.pending = 0
        self.per_peer: dict[str, int] = {}
        self.checks = 0
        self.failures = 0

    def submit(self, fn: Callable[[], None]) -> None:
        if self._submit is not None:
            self._submit(fn)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(AUTH_WORKERS, thread_name_prefix="soap-pam")
        self._executor.submit(fn)

    def authenticate(self, user: str, password: str, peer_ip: str, done: Callable[[str], None]) -> None:
        if self.refusal is not None:
            done("unavailable")
            return
        keys = [f"peer:{peer_ip}", f"linux-user:{user}"]
        guard = self.front.guard
        if guard.locked(keys, self.front.timers.now()):
            done("locked")
            return
        if self.pending >= AUTH_MAX_PENDING or self.per_peer.get(peer_ip, 0) >= AUTH_PER_PEER:
            done("busy")
            return
        self.pending += 1
        self.per_peer[peer_ip] = self.per_peer.get(peer_ip, 0) + 1
        self.checks += 1

        def finish(ok: bool) -> None:
            self.pending -= 1
            left = self.per_peer.get(peer_ip, 1) - 1
            if left > 0:
                self.per_peer[peer_ip] = left
            else:
                self.per_peer.pop(peer_ip, None)
            if ok:
                guard.succeeded(keys)
                done("ok")
            else:
                self.failures += 1
                guard.failed(keys, self.front.timers.now())
                log.info("soap: %s: Linux login of %r refused", peer_ip, user)
                done("denied")

        def work() -> None:
            try:
                ok = self.check(user, password)
            except Exception as exc:  # PAM missing or broken: a refusal, said in the log
                log.error("soap: PAM check of %r failed: %r", user, exc)
                ok = False
            self.waker.call_soon(lambda: finish(ok))

        self.submit(work)
