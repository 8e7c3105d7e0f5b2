"""Route points (CTI groups): where a call waits while a CSTA application chooses its destination.

ECMA-269 routeing, on the route point's LIM. A call offered to a route point is queued there (the
route point is a party in state `queued`) and the LIM asks one registered application, through the
CSTA server it registered on (`route.dialogue` to `csta-N`, whichever LIM that server is on):
RouteRequest. The application's RouteSelect names a destination; the call is handed there through
its controller (`call.op` distribute), RouteUsed tells the destination used (when the application
asked for it) and RouteEnd closes the dialogue. A destination that is unknown, or does not take the
call (busy, no terminal...), puts the call back at the route point and the application is asked
again (ReRoute), up to MAX_REROUTES times.

The call goes to the route point's default destination, and the dialogue is ended, when no
application is registered, none answers within the route point's timeout, the application ends
the dialogue itself (RouteEnd), its registration is cancelled (the session closed), or its server
cannot be reached. Which application is asked: a registration for this route point before one
for every route point, then the earliest; the others are asked only when it is gone.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker.envelope import Envelope
from broker.protocol import Kind, Refusal
from lim.calls import Call, Cause, ConnState
from lim.errors import Refused
from lim.route_table import Dialogue
from lim.state import LimState, Reply

if TYPE_CHECKING:
    from lim.control import Controller

MAX_REROUTES = 5  # a client naming one bad destination after another: the default takes the call

# Why a dialogue ended, as the RouteEnd errorValue names it (ECMA-323 UniversalFailure).
END_ROUTED = ("unspecified", None)                        # routed: the dialogue is over, no error
END_TIMER = ("operation", "routeingTimerExpired")          # no RouteSelect in time
END_NO_CALL = ("stateIncompatibility", "noCallToComplete")  # the caller left, or the call ended
END_TOO_MANY = ("operation", "invalidDestination")         # MAX_REROUTES bad destinations


class Routes:
    """The route points of this LIM: registrations of applications and routeing dialogues.

    Changes the state's route table (registrations, dialogues). Hands a call on through the
    `controller` (`request_op` distribute)."""

    def __init__(self, state: LimState):
        self.state = state

    def connect(self, *, controller: Controller) -> None:
        self.controller = controller

    # -- requests from CSTA servers ----------------------------------------------------------------
    def on_route(self, env: Envelope, respond: Reply) -> None:
        op = env.body.get("op")
        body = env.body
        if op == "register":
            device = body.get("device")
            if device is not None and device not in self.state.route_points:
                raise Refused(Refusal.NOT_A_ROUTE_POINT, f"{device} is not a route point of LIM {self.state.lim}")
            self.state.route_table.register(str(body["register_id"]), env.src, device)
            respond({"ok": True, "register_id": body["register_id"]})
        elif op == "cancel":
            self.cancel(env.src, str(body["register_id"]))
            respond({"ok": True})
        elif op in ("select", "end"):
            dialogue = self.state.route_table.dialogues.get(str(body.get("xref")))
            if dialogue is None or dialogue.registration is None or dialogue.registration.node != env.src \
                    or dialogue.state != "asking":
                raise Refused(Refusal.NO_SUCH_ROUTE, f"no routeing dialogue {body.get('xref')!r} awaits an answer")
            destination = str(body["destination"]) if op == "select" else None
            respond({"ok": True})
            if destination is not None:
                self._select(dialogue, destination, bool(body.get("route_used_req")))
            else:
                self._to_default(dialogue, None)  # the application gave up: no RouteEnd back
        else:
            raise Refused(Refusal.UNKNOWN_ACTION, f"unknown route operation {op!r}")

    def cancel(self, node: str, register_id: str) -> None:
        """A registration ends (RouteRegisterCancel, or its session closed): its open dialogues
        send their calls to the default destination."""
        gone = self.state.route_table.remove(node, register_id)
        for dialogue in list(self.state.route_table.dialogues.values()):
            if dialogue.registration in gone and dialogue.state == "asking":
                dialogue.registration = None  # nobody to tell
                self._to_default(dialogue, None)

    def drop(self) -> None:
        """Rejoin: the exchange has released our calls; forget every dialogue (registrations stay:
        their applications are still there)."""
        self.state.route_table.clear()

    # -- a call arrives (offers) and leaves (index) ------------------------------------------------------
    def arrive(self, body: dict[str, Any]) -> dict[str, Any]:
        """A call offered to a route point: it waits there (queued) while an application is asked.
        The call coming back from a destination that did not take it is the same dialogue: ReRoute."""
        number, call_id = body["called"], body["call_id"]
        found = self.state.route_table.of_call(call_id, number)
        if found is not None:
            dialogue = found
            dialogue.reroutes += 1
            if dialogue.reroutes > MAX_REROUTES:
                self.state.timers.call_later(0, lambda: self._to_default(dialogue, END_TOO_MANY))
            else:
                self.state.timers.call_later(0, lambda: self._ask(dialogue, "reroute"))
        else:
            dialogue = self.state.route_table.open(f"{self.state.lim}-{self.state.incarnation}", call_id, number)
            # Later, not now: the controller records the queued party when this reply reaches it.
            self.state.timers.call_later(0, lambda: self._ask(dialogue, "request"))
        dialogue.state = "asking"
        return {"ok": True, "lim": self.state.lim, "queued": True, "position": 1}

    def call_left(self, number: str, call_id: str) -> None:
        """The route point left the call. Unless we sent it on ourselves, the call ended (the
        caller hung up, a LIM failed): the application hears RouteEnd."""
        for dialogue in list(self.state.route_table.dialogues.values()):
            if dialogue.call_id == call_id and dialogue.route_point == number and dialogue.state == "asking":
                self._end(dialogue, END_NO_CALL)

    # -- the dialogue --------------------------------------------------------------------------------
    def _call(self, dialogue: Dialogue) -> Call | None:
        call = self.state.calls.get(dialogue.call_id)
        if call is None or call.cleared or call.state_of(dialogue.route_point) != ConnState.QUEUED:
            return None
        return call

    def _ask(self, dialogue: Dialogue, what: str) -> None:
        """Send RouteRequest (or ReRoute) to the registered application; none: the default."""
        if self.state.route_table.dialogues.get(dialogue.xref) is not dialogue or dialogue.state != "asking":
            return
        call = self._call(dialogue)
        if call is None:
            self._end(dialogue, END_NO_CALL)
            return
        registration = dialogue.registration
        if registration is None:
            self._to_default(dialogue, None)
            return
        body: dict[str, Any] = {"msg": what, "xref": dialogue.xref, "register_id": registration.register_id,
                "route_point": dialogue.route_point, "call_id": call.call_id, "calling": call.calling,
                "called": call.called or dialogue.route_point}
        if call.data:
            body["data"] = dict(call.data)  # RouteRequest carries it (correlatorData)

        def delivered(reply: dict) -> None:
            if reply.get("ok") or dialogue.registration is not registration:
                return
            # The application's server or session is gone: forget the registration, ask the next.
            self.state.route_table.forget(registration)
            dialogue.registration = self.state.route_table.registrant(dialogue.route_point)
            if dialogue.timer:
                dialogue.timer.cancel()
            self._ask(dialogue, "request")
        self._arm(dialogue)
        self.state.bus.request(registration.node, Kind.ROUTE_DIALOGUE, body, delivered)

    def _arm(self, dialogue: Dialogue) -> None:
        if dialogue.timer:
            dialogue.timer.cancel()
        timeout = self.state.route_points[dialogue.route_point].timeout_s
        dialogue.timer = self.state.timers.call_later(timeout, lambda: self._expired(dialogue))

    def _expired(self, dialogue: Dialogue) -> None:
        if self.state.route_table.dialogues.get(dialogue.xref) is dialogue and dialogue.state == "asking":
            self._to_default(dialogue, END_TIMER)

    def _select(self, dialogue: Dialogue, destination: str, route_used_req: bool) -> None:
        if dialogue.timer:
            dialogue.timer.cancel()
        call = self._call(dialogue)
        if call is None:
            self._end(dialogue, END_NO_CALL)
            return
        if self.state.directory.owner(destination) is None or destination in self.state.all_route_points:
            # A number the exchange cannot offer a call to (or another route point): ask again.
            dialogue.reroutes += 1
            if dialogue.reroutes > MAX_REROUTES:
                self._to_default(dialogue, END_TOO_MANY)
            else:
                self._ask(dialogue, "reroute")
            return
        dialogue.state, dialogue.route_used_req = "routing", route_used_req

        def handed(reply: dict) -> None:
            if reply.get("ok"):
                if dialogue.route_used_req and dialogue.registration is not None:
                    self._tell(dialogue, "used", destination=destination, calling=call.calling)
                self._end(dialogue, END_ROUTED)
            elif reply.get("error") != Refusal.REFUSED:
                self._end(dialogue, END_NO_CALL)  # the call ended on the way
            # Refused: the controller offers the call back to the route point; `arrive` asks again.
        self.controller.request_op(call, "distribute", dialogue.route_point, handed, to=destination,
                                   cause=Cause.REDIRECTED, back=True)

    def _to_default(self, dialogue: Dialogue, reason: tuple[str, str | None] | None) -> None:
        """The call goes to the route point's default destination; the dialogue ends (the
        application hears RouteEnd with `reason`, unless it ended the dialogue itself)."""
        call = self._call(dialogue)
        if self.state.route_table.close(dialogue) and reason is not None and dialogue.registration is not None:
            self._tell(dialogue, "end", error=list(reason if call is not None else END_NO_CALL))
        if call is not None:
            default = self.state.route_points[dialogue.route_point].default
            self.controller.request_op(call, "distribute", dialogue.route_point, lambda reply: None,
                                       to=default, cause=Cause.REDIRECTED)

    def _end(self, dialogue: Dialogue, reason: tuple[str, str | None]) -> None:
        if self.state.route_table.close(dialogue) and dialogue.registration is not None:
            self._tell(dialogue, "end", error=list(reason))

    def _tell(self, dialogue: Dialogue, what: str, **fields: Any) -> None:
        registration = dialogue.registration
        if registration is None:  # the callers check: only a registered application hears of it
            return
        self.state.bus.send(registration.node, Kind.ROUTE_DIALOGUE,
                            {"msg": what, "xref": dialogue.xref, "register_id": registration.register_id,
                             "route_point": dialogue.route_point, "call_id": dialogue.call_id, **fields})
