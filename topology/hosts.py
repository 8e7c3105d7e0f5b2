"""Which programs of the cluster run on which host: `mxone up --host NAME` starts one host's share.

The topology places the broker (`broker.host`), the backup broker (`broker.backup.host`) and each
LIM (`host` of the LIM) on a host; a LIM's CSTA server runs beside it, since it listens on the LIM's
address. Every host runs its own supervisord with its own run directory; the processes find each
other through the addresses in the topology (nodes connect to the broker's address, the broker and
the CSTA servers bind their own), so every broker address must be reachable from every host.
Pure: no I/O.
"""
from __future__ import annotations

import ipaddress

from topology.model import Topology

# The programs of an exchange, by name (cluster/control.py names supervisord's programs with these).
BROKER_PROGRAM, BACKUP_BROKER_PROGRAM, VIEW_PROGRAM = "broker", "broker-backup", "view"


def lim_program(lim: int) -> str:
    return f"lim-{lim}"


def csta_program(lim: int) -> str:
    return f"csta-{lim}"


def is_csta_program(name: str) -> bool:
    return name.startswith("csta-")


class HostError(ValueError):
    """A host name the topology does not know, or a topology that places nothing on hosts."""


def placement(topology: Topology) -> dict[str, str | None]:
    """Program name -> the host it runs on (None: the topology gives no host)."""
    where: dict[str, str | None] = {BROKER_PROGRAM: topology.broker.primary.host}
    if topology.broker.backup is not None:
        where[BACKUP_BROKER_PROGRAM] = topology.broker.backup.host
    for lim in topology.lims:
        where[lim_program(lim.number)] = lim.host
        where[csta_program(lim.number)] = lim.host
    if topology.live_view is not None:
        where[VIEW_PROGRAM] = topology.broker.primary.host  # the live view runs beside the primary broker
    return where


def host_names(topology: Topology) -> list[str]:
    return sorted({host for host in placement(topology).values() if host is not None})


def normalise(name: str) -> str:
    """A host name as the loader keeps it: lower case; an address in its canonical form."""
    name = name.strip()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def check_host(topology: Topology, name: str) -> str:
    """The normalised host name, or HostError with one line naming the problem (and the hosts)."""
    host = normalise(name)
    known = host_names(topology)
    if not known:
        raise HostError(f"the topology places nothing on hosts (no 'host' keys), so --host {name} "
                        f"has nothing to start; leave --host out to start everything here")
    if host not in known:
        raise HostError(f"no host {name!r} in the topology; its hosts are {', '.join(known)}")
    unplaced = [program for program, where in placement(topology).items()
                if where is None and not is_csta_program(program) and program != VIEW_PROGRAM]
    if unplaced:
        raise HostError(f"with --host every LIM and broker needs a host, and {', '.join(unplaced)} "
                        f"{'has' if len(unplaced) == 1 else 'have'} none in the topology")
    return host


def programs_on(topology: Topology, host: str | None) -> list[str]:
    """The programs `mxone up --host host` starts (host None: every program)."""
    return [program for program, where in placement(topology).items() if host is None or where == host]


def lims_on(topology: Topology, host: str | None) -> list[int]:
    return [lim.number for lim in topology.lims if host is None or lim.host == host]


def addresses_on(topology: Topology, host: str | None) -> set[str]:
    """The addresses the programs on `host` bind: its brokers' and its LIMs' (their CSTA servers)."""
    wanted = set(programs_on(topology, host))
    addresses = {lim.address for lim in topology.lims if lim_program(lim.number) in wanted}
    if BROKER_PROGRAM in wanted:
        addresses.add(topology.broker.primary.address)
    if BACKUP_BROKER_PROGRAM in wanted and topology.broker.backup is not None:
        addresses.add(topology.broker.backup.address)
    if VIEW_PROGRAM in wanted and topology.live_view is not None:
        addresses.add(topology.live_view.address)
    return addresses
