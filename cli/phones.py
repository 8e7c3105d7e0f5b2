"""`mxone phone`, `agent`, `feature`: the physical side, worked from the command line."""
from __future__ import annotations

import argparse

from broker.protocol import (  # PHYSICAL_ACTIONS: action -> takes a number
    PHYSICAL_ACTIONS,
    Kind,
    device_address,
)
from cli.common import CliError, run_dir_of, with_help
from cluster.control import Cluster
from lim.phone import Exchange

AGENT_USAGE = "login AGENTID GROUP | logout | ready | notready | wrapup"


def add_parsers(sub, with_run_dir) -> None:
    phone = with_run_dir(sub.add_parser("phone", help="act at a phone: " + ", ".join(PHYSICAL_ACTIONS)))
    phone.add_argument("extension")
    phone.add_argument("action", choices=list(PHYSICAL_ACTIONS))
    phone.add_argument("digits", nargs="?", help="the number (dial, consult, deflect, sst) or DTMF digits (digits)")

    agent = with_run_dir(sub.add_parser("agent", help=f"ACD agent at an extension: {AGENT_USAGE}"))
    agent.add_argument("extension")
    agent.add_argument("action", choices=["login", "logout", "ready", "notready", "wrapup"])
    agent.add_argument("agent_id", nargs="?", help="login: the agent ID")
    agent.add_argument("group", nargs="?", help="login: the ACD group")

    feature = with_run_dir(sub.add_parser("feature", help="dnd on|off, forward all|busy|noanswer NUMBER|off, mwi on|off, show"))
    feature.add_argument("extension")
    feature.add_argument("feature", choices=["dnd", "forward", "mwi", "show"])
    feature.add_argument("values", nargs="*", help="on|off, or for forward: TYPE NUMBER|off")
    feature.add_argument("--after", type=float, default=None, help="forward noanswer: seconds of ringing first")
    network = with_run_dir(sub.add_parser(
        "network", help="script the public network: behave NUMBER answer|machine|busy|noanswer|invalid|default, "
                        "mix BEHAVIOUR=SHARE,..., clear, show"))
    network.add_argument("action", choices=["behave", "mix", "clear", "show"])
    network.add_argument("values", nargs="*", help="behave: NUMBER BEHAVIOUR; mix: answer=70,busy=10,... or off")
    network.add_argument("--after", type=float, default=None, help="answer, machine: seconds of ringing first")
    network.add_argument("--seed", type=int, default=None, help="mix: the seed that makes a run repeat")
    network.set_defaults(handler=cmd_network)
    with_help(phone, ["mxone phone 1000 dial 2000                # 1000 goes off hook and calls 2000",
                      "mxone phone 2000 answer",
                      "mxone phone 1000 consult 1001             # hold the call, call 1001; then transfer",
                      "mxone phone 0701234567 dial 5000          # a caller from the public network"],
              "0 done, 1 the exchange refused (the reason, e.g. invalidObjectState, on standard error), "
              "2 a bad command line, 130 interrupted")
    with_help(agent, ["mxone agent 2005 login 42 5000            # agent 42 at 2005 joins ACD group 5000",
                      "mxone agent 2005 ready"])
    with_help(feature, ["mxone feature 2001 forward all 1003       # forward every call to 1003",
                        "mxone feature 2001 forward noanswer 1003 --after 5",
                        "mxone feature 2001 forward all off",
                        "mxone feature 2001 show"])
    with_help(network, ["mxone network behave 0701234567 answer --after 2",
                        "mxone network mix answer=70,busy=30 --seed 7",
                        "mxone network show"])
    phone.set_defaults(handler=cmd_phone)
    agent.set_defaults(handler=cmd_agent)
    feature.set_defaults(handler=cmd_feature)


def exchange_of(args: argparse.Namespace):
    return Exchange(Cluster(run_dir_of(args)).topology())


def cmd_phone(args: argparse.Namespace) -> int:
    if PHYSICAL_ACTIONS[args.action] and not args.digits:
        raise CliError(f"phone: {args.action} needs a number", 2)
    if not PHYSICAL_ACTIONS[args.action] and args.digits:
        raise CliError(f"phone: {args.action} takes no number", 2)
    with exchange_of(args) as exchange:
        body = {"action": args.action, **({"digits": args.digits} if args.digits else {})}
        reply = exchange.client.request(device_address(args.extension), Kind.PHONE, body)
    if "call_id" in reply:  # the phone's own connection: after a hangup, none ("null" in ECMA-269 terms)
        detail = f"call {reply['call_id']}, {'released' if reply['state'] == 'null' else reply['state']}"
    else:
        detail = f"logged {'on' if reply.get('logged_on') else 'off'}"
    print(f"{args.extension}: {args.action}{' ' + args.digits if args.digits else ''}: {detail}")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    if args.action == "login" and not (args.agent_id and args.group):
        raise CliError(f"agent: login needs an agent ID and a group ({AGENT_USAGE})", 2)
    if args.action != "login" and (args.agent_id or args.group):
        raise CliError(f"agent: {args.action} takes nothing more ({AGENT_USAGE})", 2)
    with exchange_of(args) as exchange:
        reply = exchange.phone(args.extension).agent(args.action, args.agent_id, args.group)
    if reply["agent_state"] == "agentNull":
        print(f"{args.extension}: agent logged off")
    else:
        print(f"{args.extension}: agent {reply['agent_id']} in group {reply['group']}: {reply['agent_state']}")
    return 0


def on_off(values: list[str], what: str) -> bool:
    if len(values) != 1 or values[0] not in ("on", "off"):
        raise CliError(f"feature: {what} takes on or off", 2)
    return values[0] == "on"


def cmd_feature(args: argparse.Namespace) -> int:
    # Check the words before reaching for the exchange.
    if args.feature == "dnd":
        change = lambda phone, on=on_off(args.values, "dnd"): phone.do_not_disturb(on)
    elif args.feature == "mwi":
        change = lambda phone, on=on_off(args.values, "mwi"): phone.message_waiting(on)
    elif args.feature == "forward":
        if len(args.values) != 2 or args.values[0] not in ("all", "busy", "noanswer"):
            raise CliError("feature: forward takes all|busy|noanswer and a number or off", 2)
        kind, target = args.values
        change = lambda phone: phone.forward(kind, None if target == "off" else target, args.after)
    elif args.values:
        raise CliError("feature: show takes nothing more", 2)
    else:
        change = lambda phone: None
    with exchange_of(args) as exchange:
        phone = exchange.phone(args.extension)
        change(phone)
        features = phone.features()
    fwd = ", ".join(f"{k} -> {features['forward_' + k]}" for k in ("all", "busy", "noanswer")
                    if features.get("forward_" + k))
    if features.get("forward_noanswer"):
        fwd += f" after {features['forward_noanswer_s']:g} s"
    agent = (f"agent {features['agent_id']} in {features['agent_group']} ({features['agent_state']})"
             if features.get("agent_group") else "no agent")
    print(f"{args.extension}: dnd {'on' if features['dnd'] else 'off'}; forwarding {fwd or 'off'}; "
          f"message waiting {'on' if features['mwi'] else 'off'}; {agent}")
    return 0


def _shares(text: str) -> dict[str, float]:
    if text == "off":
        return {}
    shares = {}
    for item in text.split(","):
        kind, sep, weight = item.partition("=")
        try:
            shares[kind.strip()] = float(weight)
        except ValueError:
            raise CliError(f"network: mix takes BEHAVIOUR=SHARE,... (not {item!r})", 2) from None
        if not sep:
            raise CliError(f"network: mix takes BEHAVIOUR=SHARE,... (not {item!r})", 2)
    return shares


def cmd_network(args: argparse.Namespace) -> int:
    if args.action == "behave" and len(args.values) != 2:
        raise CliError("network: behave takes a number and a behaviour", 2)
    if args.action == "mix" and len(args.values) != 1:
        raise CliError("network: mix takes BEHAVIOUR=SHARE,... or off", 2)
    if args.action in ("clear", "show") and args.values:
        raise CliError(f"network: {args.action} takes nothing more", 2)
    shares = _shares(args.values[0]) if args.action == "mix" else None
    with exchange_of(args) as exchange:
        if args.action == "behave":
            number, behaviour = args.values
            reply = exchange.phone(number).behave(None if behaviour == "default" else behaviour, args.after)
            after = f" after {reply['after_s']:g} s" if reply.get("behaviour") in ("answer", "machine") else ""
            print(f"{number}: {reply.get('behaviour') or 'as unscripted numbers'}{after}")
            return 0
        scripts = (exchange.network_mix(shares, args.seed, args.after) if args.action == "mix"
                   else exchange.network_clear() if args.action == "clear" else exchange.network())
    for script in scripts:
        numbers = ", ".join(f"{n} {b['behaviour']}" + (f" after {b['after_s']:g} s" if b['behaviour'] in ("answer", "machine") else "")
                            for n, b in script["numbers"].items()) or "none"
        mix = ", ".join(f"{k} {v:.0%}" for k, v in script["mix"].items())
        print(f"LIM {script['lim']}: scripted numbers: {numbers}; mix: "
              + (f"{mix} (seed {script['seed']}, answer after {script['mix_after_s']:g} s)" if mix else "off"))
    return 0
