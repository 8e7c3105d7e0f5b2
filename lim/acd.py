"""An ACD group's queue and agents, as the group's LIM sees them. Pure: no bus, no clock.

Agents live on any LIM; their LIM reports every agent state change here (`acd.agent`), so the
group knows who is ready and since when. A call waits in the queue until a ready agent is free;
it goes to the agent who has been ready longest. An agent chosen for a call is reserved until its
LIM reports it busy (or the offer fails), so one agent is never given two calls at once.

Positions follow ECMA-269's Queued event: `numberQueued` counts the calls in the queue including
this one, `callsInFront` those that will be served before it (position - 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lim.features import AGENT_NULL, AGENT_READY
from topology.model import AcdGroup


@dataclass
class Agent:
    device: str
    lim: int
    agent_id: str | None
    state: str
    since: float          # when the agent entered this state (ready since: idle time)
    reserved: bool = False
    pending: str | None = None   # ECMA-269 pending agent state: taken when the agent's call ends


@dataclass(frozen=True)
class QueuedCall:
    call_id: str
    position: int         # 1 = next to be served
    since: float          # when it (last) entered the queue


@dataclass
class AcdQueue:
    group: AcdGroup
    queue: list[str] = field(default_factory=list)      # call ids, first waiting first
    agents: dict[str, Agent] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)   # call id -> when it joined the queue

    def enqueue(self, call_id: str, now: float = 0.0) -> int:
        """Queue a call; returns its position (1 = next to be served)."""
        if call_id not in self.queue:
            self.queue.append(call_id)
            self.entered[call_id] = now
        return self.queue.index(call_id) + 1

    def requeue_first(self, call_id: str, now: float = 0.0) -> None:
        if call_id not in self.queue:
            self.queue.insert(0, call_id)
            self.entered[call_id] = now

    def remove(self, call_id: str) -> bool:
        if call_id in self.queue:
            self.queue.remove(call_id)
            self.entered.pop(call_id, None)
            return True
        return False

    def position(self, call_id: str) -> int | None:
        return self.queue.index(call_id) + 1 if call_id in self.queue else None

    def counts(self, call_id: str) -> dict[str, int]:
        """ECMA-269's numberQueued and callsInFront for a queued call, as the Queued event has them."""
        position = self.queue.index(call_id) + 1
        return {"number_queued": len(self.queue), "calls_in_front": position - 1}

    def waiting(self) -> list[QueuedCall]:
        """The queued calls in the order they will be served."""
        return [QueuedCall(c, i + 1, self.entered.get(c, 0.0)) for i, c in enumerate(self.queue)]

    def agent_update(self, device: str, lim: int, agent_id: str | None, state: str, since: float,
                     pending: str | None = None) -> None:
        if state == AGENT_NULL:
            self.agents.pop(device, None)
            return
        agent = self.agents.get(device)
        if agent is None:
            self.agents[device] = Agent(device, lim, agent_id, state, since, pending=pending)
        else:
            agent.lim, agent.agent_id, agent.state, agent.since = lim, agent_id, state, since
            agent.pending = pending
            agent.reserved = False  # any news from the agent's LIM settles a reservation

    def forget_lim(self, lim: int) -> None:
        """A LIM failed: its agents are gone until it comes back and reports them again."""
        for device in [d for d, a in self.agents.items() if a.lim == lim]:
            del self.agents[device]

    def next_assignment(self) -> tuple[str, str] | None:
        """The first queued call and the longest-ready free agent, both taken out of play."""
        if not self.queue:
            return None
        ready = [a for a in self.agents.values() if a.state == AGENT_READY and not a.reserved]
        if not ready:
            return None
        agent = min(ready, key=lambda a: (a.since, a.device))
        agent.reserved = True
        call_id = self.queue.pop(0)
        self.entered.pop(call_id, None)
        return call_id, agent.device

    def release(self, device: str) -> None:
        agent = self.agents.get(device)
        if agent is not None:
            agent.reserved = False
