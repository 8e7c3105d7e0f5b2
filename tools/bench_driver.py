"""The load of `mxone bench`: calls driven from the event loop that also reads the CSTA clients.

One bus client (a `BusNode` that never registers) serves every call: its sockets wake the event
loop, replies resolve futures, and each call is a coroutine: dial, answer once the callee's
Delivered event is in, hang up, and release the pair once the callee's last ConnectionCleared is
in, as a CTI application would. Threads with a bus client each (the first driver) cost the
machine under test more than the calls they drove: GIL hand-offs, one ZeroMQ I/O thread per
client, and bus polls (retried answers, device.get until the callee is idle) that are the
driver's traffic, not the calls'. Should an event be late, a call falls back to asking the bus.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import zmq

from broker.client import BusClient, BusError
from broker.protocol import Kind, Refusal, device_address

EVENT_WAIT_S = 5.0    # how long a call waits for an event before asking the bus instead
REQUEST_TIMEOUT_S = 5.0
TICK_S = 0.01         # timers (request timeouts), and a drain in case a wake-up was missed
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: pyzmq's enum flags cost Python calls


@dataclass
class Call:
    index: int
    caller: str
    callee: str
    call_id: str | None = None
    dial_t: float | None = None
    answer_t: float | None = None
    hangup_t: float | None = None
    done: bool = False
    error: str | None = None


class Sightings:
    """The CSTA events seen so far, per call: a call waits for the n-th (device, event name)."""

    def __init__(self):
        self._counts: dict[str | None, Counter] = {}
        self._waiters: dict[str | None, dict[tuple, asyncio.Future]] = {}

    def saw(self, call_id: str | None, device: str, name: str) -> None:
        counts = self._counts.setdefault(call_id, Counter())
        counts[device, name] += 1
        waiter = self._waiters.get(call_id, {}).pop((device, name, counts[device, name]), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, call_id: str, device: str, name: str, n: int = 1, timeout: float = EVENT_WAIT_S) -> bool:
        if self._counts.get(call_id, {}).get((device, name), 0) >= n:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(call_id, {})[device, name, n] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return False

    def forget(self, call_id: str) -> None:
        """Done with a call (events of it still to come leave a small entry behind)."""
        self._counts.pop(call_id, None)
        self._waiters.pop(call_id, None)


class AsyncBus:
    """A bus client on the running event loop: requests are awaited, not polled for."""

    def __init__(self, topology):
        self.client = BusClient(topology.broker, name="bench")
        self.node = self.client.node
        self.loop = asyncio.get_running_loop()
        self._fds = [sock.getsockopt(zmq.FD) for sock in self.node.sockets()]
        for fd in self._fds:
            self.loop.add_reader(fd, self._drain)
        self._tick = self.loop.call_later(TICK_S, self._on_tick)

    def _drain(self) -> None:
        # ZMQ_FD is edge-triggered: read until nothing is left, or the next edge never comes.
        for sock in self.node.sockets():
            while sock.get(_EVENTS) & _POLLIN:
                self.node.drain(sock)
        self.node.timers.run_due()

    def _on_tick(self) -> None:
        self._drain()
        self._tick = self.loop.call_later(TICK_S, self._on_tick)

    async def request(self, dst: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        future = self.loop.create_future()
        self.node.request(dst, kind, body, lambda reply: future.done() or future.set_result(reply),
                          timeout=REQUEST_TIMEOUT_S)
        self.loop.call_soon(self._drain)  # sending may have taken the edge a reply would raise
        reply = await future
        if not reply.get("ok"):
            raise BusError(reply.get("error", "error"), reply.get("message", "request failed"))
        return reply

    async def phone(self, number: str, action: str, **fields: Any) -> dict[str, Any]:
        return await self.request(device_address(number), Kind.PHONE, {"action": action, **fields})

    def close(self) -> None:
        self._tick.cancel()
        for fd in self._fds:
            self.loop.remove_reader(fd)
        self.client.close()


async def drive_load(topology, slots: list[tuple[str, str]], calls: int, rate: float, concurrency: int,
                     sightings: Sightings, on_finished: Callable[[int], None] | None = None
                     ) -> tuple[list[Call], float, float]:
    """Run `calls` calls, at most `rate` started per second, at most `concurrency` at a time. A
    pair is reused only once its callee is idle again. Returns the calls and the load's start and
    end (monotonic). `on_finished(n)` is told each time a call ends (done or failed), n so far.
    Cancelling ends the calls where they are."""
    bus = AsyncBus(topology)
    free: asyncio.Queue = asyncio.Queue()
    for slot in slots:
        free.put_nowait(slot)
    results: list[Call] = []
    counter = iter(range(calls))
    finished = 0
    start = time.monotonic() + 0.05

    async def one_call(call: Call) -> None:
        call.dial_t = time.monotonic()
        call.call_id = (await bus.phone(call.caller, "dial", digits=call.callee))["call_id"]
        await sightings.wait(call.call_id, call.callee, "Delivered")
        deadline = time.monotonic() + EVENT_WAIT_S
        while True:  # had the event not come, the offer may still be on its way to the callee's LIM
            t = time.monotonic()
            try:
                await bus.phone(call.callee, "answer")
                call.answer_t = t
                break
            except BusError as exc:
                if exc.code != Refusal.NOT_ALERTING or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.001)
        call.hangup_t = time.monotonic()
        await bus.phone(call.caller, "hangup")
        call.done = True
        # The callee's LIM clears its mirror after the events that say so were published (the
        # controller sends the update first, and the next offer to the callee comes after it).
        seen = await sightings.wait(call.call_id, call.callee, "ConnectionCleared", 2)
        sightings.forget(call.call_id)
        deadline = time.monotonic() + EVENT_WAIT_S
        while not seen and time.monotonic() < deadline:
            if not (await bus.request(device_address(call.callee), Kind.DEVICE_GET, {})).get("calls"):
                return
            await asyncio.sleep(0.002)

    async def worker() -> None:
        nonlocal finished
        while (k := next(counter, None)) is not None:
            wait = start + k / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            caller, callee = await free.get()
            call = Call(k, caller, callee)
            results.append(call)
            try:
                await one_call(call)
            except BusError as exc:
                call.error = f"{exc.code}: {exc.message}"
                try:  # leave the pair idle for the next call
                    await bus.phone(caller, "hangup")
                except BusError:
                    pass
            finally:
                free.put_nowait((caller, callee))
                finished += 1
                if on_finished is not None:
                    on_finished(finished)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        bus.close()
    return sorted(results, key=lambda c: c.index), start, time.monotonic()
