"""`mxone group NUMBER`: an ACD group's queue (calls, callers, waiting time) and agents, or a hunt
group's members, as the group's LIM holds them; `mxone status` shows every group the same way."""
from __future__ import annotations

import argparse
import json
from typing import Any

from broker.client import BusError
from cli.common import CliError, with_help
from cli.phones import exchange_of


def add_parsers(sub, with_run_dir) -> None:
    group = with_run_dir(sub.add_parser("group", help="an ACD group's queue and agents, or a hunt group's members"))
    group.add_argument("number", help="the group's number (e.g. 5000)")
    group.add_argument("--json", action="store_true", help="print one JSON object")
    with_help(group, ["mxone group 5000                          # queue and agents of ACD group 5000",
                      "mxone group 6000 --json                   # a hunt group's members"],
              "0 done, 1 the exchange did not answer, 2 not a group of this exchange or a bad command line")
    group.set_defaults(handler=cmd_group)


def group_status(exchange, number: str) -> dict[str, Any]:
    """The group as its LIM answers `device.get`, in the form `mxone group --json` prints."""
    got = exchange.phone(number).state()
    if got.get("type") == "acd":
        return {"number": number, "type": "acd", "lim": got["lim"],
                "queue": [{"position": c["position"], "call_id": c["call_id"], "calling": c["calling"],
                           "waiting_s": c["waiting_s"]} for c in got.get("calls", [])],
                "agents": [{"device": a["device"], "agent_id": a["agent_id"], "state": a["state"],
                            "pending": a.get("pending"), "lim": a["lim"]} for a in got["agents"]]}
    if got.get("type") == "hunt":
        return {"number": number, "type": "hunt", "lim": got["lim"], "mode": got["mode"], "members": got["members"]}
    raise CliError(f"group: {number} is not an ACD or hunt group (it is a {got.get('type')} device)", 2)


def describe(group: dict[str, Any]) -> list[str]:
    """Lines for a person: the queue first waiting first, then each agent."""
    if group["type"] == "hunt":
        return [f"Hunt group {group['number']} (LIM {group['lim']}, {group['mode']}): "
                f"members {', '.join(group['members']) or 'none'}"]
    lines = [f"ACD group {group['number']} (LIM {group['lim']}): {len(group['queue'])} calls queued, "
             f"{len(group['agents'])} agents logged on"]
    for call in group["queue"]:
        lines.append(f"  {call['position']:>3}. {call['calling'] or '?':<14} waiting {call['waiting_s']:7.1f} s"
                     f"  call {call['call_id']}")
    for agent in sorted(group["agents"], key=lambda a: a["device"]):
        pending = f" (pending {agent['pending']})" if agent.get("pending") else ""
        lines.append(f"  agent {agent['agent_id'] or '-':<6} at {agent['device']} (LIM {agent['lim']}): "
                     f"{agent['state']}{pending}")
    return lines


def cmd_group(args: argparse.Namespace) -> int:
    with exchange_of(args) as exchange:
        try:
            group = group_status(exchange, args.number)
        except BusError as exc:
            if exc.code == "unknown_number":
                raise CliError(f"group: {args.number} is not a number of this exchange", 2) from exc
            raise
    if args.json:
        print(json.dumps(group, indent=2))
    else:
        print("\n".join(describe(group)))
    return 0
