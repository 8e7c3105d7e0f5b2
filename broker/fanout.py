"""The broker's event path: XSUB -> XPUB forwarded by ZeroMQ's own proxy in a thread of its own.

Every event of the exchange crosses the broker; forwarding it in Python cost a fifth of the broker's
CPU per call (docs/benchmarks.md). `zmq.proxy_steerable` moves the frames in C without the GIL. The
broker's own `sys|` announcements enter the same path through an inproc PUB, since the proxy's
sockets belong to its thread. Subscriptions flow upstream through the proxy as ZeroMQ intends; the
XSUB's subscription to everything (sent before the proxy starts) keeps every publisher sending
everything, so a subscriber whose subscription has reached the broker (BusClient.sync) misses
nothing, whichever node publishes.
"""
from __future__ import annotations

import itertools
import threading

import zmq

_names = itertools.count(1)


class EventFanout:
    def __init__(self, ctx: zmq.Context, pub_url: str, sub_url: str):
        name = f"inproc://broker-fanout-{id(self)}-{next(_names)}"
        self.ctx = ctx
        self._xsub = ctx.socket(zmq.XSUB)
        self._xsub.setsockopt(zmq.LINGER, 0)
        self._xsub.bind(pub_url)
        self._xsub.bind(name + "-sys")
        self._xsub.send(b"\x01")
        self._xpub = ctx.socket(zmq.XPUB)
        self._xpub.setsockopt(zmq.LINGER, 0)
        self._xpub.setsockopt(zmq.SNDHWM, 100_000)
        self._xpub.bind(sub_url)
        control = ctx.socket(zmq.PAIR)
        control.bind(name + "-control")
        self._control = ctx.socket(zmq.PAIR)
        self._control.connect(name + "-control")
        # The broker's own announcements (membership on `sys|`), from the broker's thread.
        self.sys_pub = ctx.socket(zmq.PUB)
        self.sys_pub.setsockopt(zmq.LINGER, 0)
        self.sys_pub.connect(name + "-sys")
        self._thread = threading.Thread(target=self._run, args=(control,), name="event-fanout", daemon=True)
        self._thread.start()

    def _run(self, control: zmq.Socket) -> None:
        try:
            zmq.proxy_steerable(self._xsub, self._xpub, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (self._xsub, self._xpub, control):
                sock.close(0)

    def publish(self, frames: list[bytes]) -> None:
        self.sys_pub.send_multipart(frames)

    def close(self) -> None:
        self._control.send(b"TERMINATE")
        self._thread.join(5)
        self._control.close(0)
        self.sys_pub.close(0)
