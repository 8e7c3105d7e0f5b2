"""Screen pop: watch one extension over CSTA and show who is calling when it rings.

    make run                                          # the exchange, in another terminal
    .venv/bin/python docs/examples/screen_pop.py --device 2000
    .venv/bin/mxone phone 1000 dial 2000              # ... and watch the pop

Connects to LIM 1's CSTA XML server (ECMA-323 over TCP, see docs/conformance.md), monitors the
device and prints one line per event, until --count events or --timeout seconds (default: forever).
"""
import argparse
import asyncio
import sys

from csta_front.client import CstaClient, CstaError, describe_event, device_field, event_name, field


async def watch(args: argparse.Namespace) -> None:
    async with await CstaClient.connect(args.host, args.port) as csta:
        xref = await csta.monitor_start(args.device)
        print(f"Monitoring {args.device} on {args.host}:{args.port} (monitorCrossRefID {xref})", flush=True)
        loop = asyncio.get_running_loop()
        deadline = None if args.timeout is None else loop.time() + args.timeout
        seen = 0
        while args.count is None or seen < args.count:
            try:
                event = await csta.next_event(timeout=None if deadline is None else max(0, deadline - loop.time()))
            except asyncio.TimeoutError:  # --timeout reached
                break
            seen += 1
            # Each monitor of a call's parties hears of every connection in it: pop only when this
            # device is the one ringing (other hunt group members ringing are plain lines).
            if event_name(event) == "DeliveredEvent" and field(event, "localConnectionInfo") == "alerting":
                print(f"SCREEN POP  caller {device_field(event, 'callingDevice')}  called "
                      f"{device_field(event, 'calledDevice')}  call {field(event, 'connection', 'callID')}", flush=True)
            else:
                print(describe_event(event), flush=True)
        await csta.monitor_stop(xref)


def main() -> int:
    parser = argparse.ArgumentParser(description="Print a screen pop for each call ringing at a device.")
    parser.add_argument("--host", default="127.0.1.1", help="CSTA server address (LIM 1: 127.0.1.1)")
    parser.add_argument("--port", type=int, default=8882, help="CSTA server port (8882)")
    parser.add_argument("--device", default="2000", help="extension to monitor (2000)")
    parser.add_argument("--count", type=int, help="stop after this many events")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")
    args = parser.parse_args()
    try:
        asyncio.run(watch(args))
    except (OSError, asyncio.TimeoutError, CstaError) as exc:  # OSError covers a closed connection
        print(f"screen_pop: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
