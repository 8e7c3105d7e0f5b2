"""Per-device features that survive a restart: do not disturb, forwarding, message waiting, and
the ACD agent state of an extension. Pure data and rules; the LIM stores them in its Store."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from lim.calls import Cause

FORWARD_TYPES = ("all", "busy", "noanswer")
FORWARD_CAUSE = {"all": Cause.FORWARD_IMMEDIATE, "busy": Cause.FORWARD_BUSY,
                 "noanswer": Cause.FORWARD_NO_ANSWER}
DEFAULT_NO_ANSWER_FORWARD_S = 15.0
MAX_FORWARD_HOPS = 5  # a chain longer than this rings where it stands, as exchanges do

# ECMA-269 agent states, as the events and GetAgentState name them.
AGENT_NULL = "agentNull"                  # not logged on
AGENT_READY = "agentReady"
AGENT_NOT_READY = "agentNotReady"
AGENT_BUSY = "agentBusy"
AGENT_WORKING_AFTER_CALL = "agentWorkingAfterCall"
AGENT_EVENTS = {AGENT_READY: "AgentReady", AGENT_NOT_READY: "AgentNotReady", AGENT_BUSY: "AgentBusy",
                AGENT_WORKING_AFTER_CALL: "AgentWorkingAfterCall"}


@dataclass
class Features:
    dnd: bool = False
    forward_all: str | None = None
    forward_busy: str | None = None
    forward_noanswer: str | None = None
    forward_noanswer_s: float = DEFAULT_NO_ANSWER_FORWARD_S
    mwi: bool = False
    agent_group: str | None = None   # the ACD group an agent is logged on to
    agent_id: str | None = None
    agent_state: str = AGENT_NULL
    agent_pending: str | None = None  # ECMA-269 pending agent state, asked for during a call

    def to_store(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_store(cls, saved: dict[str, Any]) -> "Features":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})

    def forwarding(self) -> dict[str, Any]:
        return {"all": self.forward_all, "busy": self.forward_busy, "noanswer": self.forward_noanswer,
                "noanswer_s": self.forward_noanswer_s}

    def divert_when_offered(self, busy: bool) -> tuple[str, str] | None:
        """Where a call offered now goes instead, and the cause: (number, cause) or None."""
        if self.forward_all:
            return self.forward_all, FORWARD_CAUSE["all"]
        if busy and self.forward_busy:
            return self.forward_busy, FORWARD_CAUSE["busy"]
        return None
