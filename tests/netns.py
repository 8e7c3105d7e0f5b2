"""Hosts for partition tests: Linux network namespaces on this one machine, a veth link between
every pair, and a way to cut and heal one link.

Host number i (1-based, in the order given) owns the subnet 10.213.i.0/24: its first address is on
its loopback device with the whole /24, so every process of the host can bind any address of it
(the broker on .1, LIM N on .10+N, ...). The link between hosts i and j is a veth pair named
`to-<j>` in i and `to-<i>` in j with addresses in 10.213.(100+k).0/24, and each host routes the
other's /24 over that link and nothing else: cutting the link between two hosts leaves every
other pair talking. Namespace names carry a random tag, so parallel runs never collide; `close()`
ends the processes still running in the namespaces (by their pids) and deletes the namespaces.

Tests run code "on a host" with `on(host, fn)`: a thread that enters the host's namespace and calls
`fn` there; sockets it creates (asyncio, and ZeroMQ's I/O threads, started from it) live there.
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from typing import Any, Callable

from tests.procs import alive

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def hosts_for_test(names: list[str]):
    """`Hosts(names)` for a test, which fails (never skips) when namespaces cannot be made here:
    CI runs as root and `.ci/run` installs iproute2."""
    reason = available()
    assert reason is None, f"{reason}: the partition tests build hosts as network namespaces"
    with Hosts(names) as made:
        yield made


def available() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


class Hosts:
    def __init__(self, names: list[str]):
        if len(names) > 9:
            raise ValueError("at most 9 hosts")
        self.names = list(names)
        self.tag = f"mx{secrets.token_hex(3)}"
        self.netns = {name: f"{self.tag}-{name}" for name in names}
        self.index = {name: i for i, name in enumerate(names, 1)}
        self.links: dict[frozenset, int] = {}
        self.created: list[str] = []

    # -- building ----------------------------------------------------------------------------------
    def create(self) -> "Hosts":
        for name in self.names:
            ns = self.netns[name]
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{self.address(name, 1)}/24", "dev", "lo")
        for k, (a, b) in enumerate(itertools.combinations(self.names, 2), 1):
            self.links[frozenset((a, b))] = k
            ip("link", "add", self.dev(a, b), "netns", self.netns[a], "type", "veth",
               "peer", "name", self.dev(b, a), "netns", self.netns[b])
            for here, there in ((a, b), (b, a)):
                ip("-n", self.netns[here], "addr", "add", f"{self.link_address(here, there)}/24",
                   "dev", self.dev(here, there))
        for a, b in itertools.combinations(self.names, 2):
            self.heal(a, b)
        return self

    def address(self, host: str, n: int) -> str:
        """Address number n (1..254) of `host`: any of them can be bound there."""
        return f"10.213.{self.index[host]}.{n}"

    def dev(self, here: str, there: str) -> str:
        return f"to-{self.index[there]}"

    def link_address(self, here: str, there: str) -> str:
        k = self.links[frozenset((here, there))]
        return f"10.213.{100 + k}.{1 if self.index[here] < self.index[there] else 2}"

    # -- partitions --------------------------------------------------------------------------------
    def cut(self, a: str, b: str) -> None:
        """Take the link between a and b down at both ends: nothing passes either way."""
        for here, there in ((a, b), (b, a)):
            ip("-n", self.netns[here], "link", "set", self.dev(here, there), "down")

    def heal(self, a: str, b: str) -> None:
        """Bring the link up again and restore the routes over it (a link going down drops them)."""
        for here, there in ((a, b), (b, a)):
            ip("-n", self.netns[here], "link", "set", self.dev(here, there), "up")
        for here, there in ((a, b), (b, a)):
            ip("-n", self.netns[here], "route", "replace", f"10.213.{self.index[there]}.0/24",
               "via", self.link_address(there, here), "dev", self.dev(here, there))

    # -- running things on a host ------------------------------------------------------------------
    def command(self, host: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns[host], *argv]

    def run(self, host: str, argv: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(host, argv), capture_output=True, text=True, timeout=timeout, **kwargs)

    def popen(self, host: str, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(self.command(host, argv), **kwargs)

    def on(self, host: str, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        """Call `fn` in a thread inside `host`'s namespace; its result, or its exception raised here."""
        outcome: dict[str, Any] = {}

        def body() -> None:
            try:
                enter_netns(self.netns[host])
                outcome["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=body, name=f"on-{host}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"code on host {host} still running after {timeout} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    # -- tearing down --------------------------------------------------------------------------------
    def __enter__(self) -> "Hosts":
        try:
            return self.create()
        except BaseException:
            self.close()  # half-built: remove what exists
            raise

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def pids(self, host: str) -> list[int]:
        out = ip("netns", "pids", self.netns[host], check=False).stdout
        return [int(p) for p in out.split()]

    def close(self) -> None:
        """End what still runs in our namespaces (TERM, then KILL) and delete them."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [pid for host in self.names if self.netns[host] in self.created for pid in self.pids(host)]
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if alive(pid)]
                time.sleep(0.05)
        for ns in self.created:
            ip("netns", "del", ns, check=False)
        self.created.clear()


def enter_netns(name: str) -> None:
    """Move the calling thread into a named network namespace (threads it starts follow)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)

