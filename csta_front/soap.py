"""The CSTA Web Service: SOAP 1.1 over HTTP/1.1 on the CSTA XML port, as the seed's Figure 2 has it.

This module is the service as a whole (`SoapService`, `install`) and its description; the parts:
    soap_http.py           one HTTP connection: routes, limits, timeouts, the SOAP request served
    soap_envelope.py       SOAP 1.1 envelopes and faults (pure)
    soap_login.py          HTTP Basic checked through PAM on worker threads
    soap_session.py        a CstaSession fed whole documents (a connection's or a subscription's)
    soap_subscriptions.py  Subscribe, Renew, Unsubscribe, GetEvents
    soap_notify.py         the worker thread POSTing events to NotifyTo
    soap_wsdl.py           the WSDL with the address the client used
    waker.py               the worker threads' results back on the poll loop

A connection whose first bytes are an HTTP request (csta_front/sniff.py) is handed to `HttpHandler`,
which drives an h11 connection through netio's HttpDriver (sans-IO: h11 parses and frames HTTP, the
server's poll loop does the I/O). Nothing here blocks the poll loop: PAM runs on worker threads,
event notifications are POSTed by a worker thread, and both report back through a socket the poll
loop watches (`Waker`).

HTTP
    POST /csta          a SOAP 1.1 envelope (Content-Type text/xml or application/xml, else 415)
    GET|HEAD /csta?wsdl the WSDL (csta_front/wsdl/csta.wsdl), its service address built from the
                        request's Host header; no authentication needed: it holds no secret
    anything else       404 for another path, 405 (with Allow) for another method on /csta
    HTTP/1.1 keep-alive and pipelining (one request served at a time, in order). Headers at most
    16 kB (431), a body at most 64 kB (413, then the connection is closed: its body is not read),
    malformed HTTP gets h11's status (400 mostly) and the connection is closed. A request begun and
    not finished within the server's frame timeout, or a connection idle for IDLE_TIMEOUT_S, is closed.

Authentication (seed 6.1: Web Service clients log in with a Linux account)
    HTTP Basic on every POST, checked through PAM (python-pam) with the service PAM_SERVICE,
    "login": on Debian it is common-auth + common-account (pam_unix), so a plain `useradd` account
    whose password was set with `chpasswd` or `passwd` works; it also honours /etc/nologin and
    delays a wrong password by 3 s (pam_faildelay), which costs a worker thread, not the server.
    The account module runs too (expired or locked accounts are refused); pam_setcred does not,
    as it would change the server process's own groups and capabilities (pam_group, pam_cap).
    The server must run as root for pam_unix to read /etc/shadow. Run as any other user, it starts
    and serves all else, logs a warning once, and answers every login 503 with the reason (no PAM
    call, no failure counted against the client): soap_login.privilege_refusal.
    No, malformed or wrong credentials: 401 with `WWW-Authenticate: Basic realm="MX-ONE CSTA"`.
    PAM calls run on a pool of AUTH_WORKERS threads: the poll loop never waits for PAM, and a client
    cannot hold more than AUTH_PER_PEER of the workers at once (its further attempts get 503 with
    Retry-After), so one client's slow or failing logins delay others' by little. AUTH_MAX_PENDING
    checks may wait at once (then 503). A success is cached on the connection for AUTH_CACHE_S
    (same Authorization header: no PAM call). Failures count in the server's AuthGuard under the
    client's address (shared with ECMA-354 logins) and the Linux user name: from its 5th failure
    within 5 minutes a key is locked out for a minute (429 with Retry-After, no PAM call).

SOAP
    The Body holds one element. An ECMA-323 request (any edition namespace, any prefix) is fed to a
    CstaSession and its answer comes back in the response Body; a CSTAErrorCode comes back as a
    SOAP Fault: faultcode soap:Server for the categories that are the exchange's trouble
    (systemResourceAvailibility, subscribedResourceAvailability, performanceManagement,
    unspecified, privateData, and operation/generic), soap:Client for the others (the request was
    wrong for the exchange's state or data); faultstring "CSTA error: <category> <value>"; detail
    holds the CSTAErrorCode element. A body that is not a SOAP 1.1 envelope (not XML, another
    root, no Body, not exactly one element in it) is a soap:Client Fault with HTTP 500, the SOAP 1.1
    convention for every Fault; a SOAP 1.2 envelope is a VersionMismatch Fault; a header entry
    with mustUnderstand="1" other than SubscriptionID is a MustUnderstand Fault. SOAPAction is not
    needed: the Body element says what is asked. An answer the exchange does not give within
    REQUEST_TIMEOUT_S is a soap:Server Fault.

    Which CstaSession serves a request:
      * with a `SubscriptionID` header entry (urn:mxone-sim:csta:ws) naming one of the caller's
        subscriptions: that subscription's session, so its monitors, cross-reference IDs and
        events belong to the subscription and live as long as it does, across HTTP connections;
      * otherwise: one session per HTTP connection (created on its first authenticated request,
        closed with the connection, a new one if another user logs in on the connection). Its
        monitors last as long as the connection, and their events have nowhere to go: they are
        counted and dropped. Use Subscribe to receive events. A MonitorStop must reach the session
        that started the monitor (same connection, or same SubscriptionID).
    The sessions are authenticated by the Linux login, so the server's ECMA-354 "authentication
    mandatory" setting does not ask them for StartApplicationSession (they may still send it).

Events, in the style of ECMA-348 / WS-Eventing (elements in urn:mxone-sim:csta:ws, see the WSDL)
    Subscribe(NotifyTo?, Device+, Expires?) starts a device monitor on every Device in the
    subscription's own session (all or none: a failing MonitorStart undoes the others and comes back
    as the Fault of its CSTAErrorCode) and answers SubscriptionID, the granted Expires and each
    device's monitorCrossRefID. Expires is an xs:duration (PT10M) or seconds; default
    DEFAULT_EXPIRES_S, at most MAX_EXPIRES_S; the subscription ends then unless renewed with
    Renew(SubscriptionID, Expires?). Unsubscribe(SubscriptionID) ends it at once; ending stops its
    monitors. Subscriptions belong to the Linux user who made them (another user gets the fault
    unknownSubscription); at most MAX_SUBSCRIPTIONS per server and MAX_USER_SUBSCRIPTIONS per user.
    Push: with NotifyTo (an http:// URL) every event is POSTed there as a SOAP 1.1 envelope whose
    Body is the ECMA-323 event and whose Header holds SubscriptionID, with SOAPAction
    "urn:mxone-sim:csta:ws#<EventName>" (the CstaEventSink port type of the WSDL); any 2xx answer is
    success. POSTs are made by one worker thread with http.client (keep-alive per endpoint, timeout
    NOTIFY_TIMEOUT_S) fed by a bounded queue (NOTIFY_QUEUE): a worker thread rather than
    non-blocking sockets in the poll loop, because the loop has no hook for client sockets, name
    resolution blocks anyway, and one thread keeps each subscription's events in order. An event that
    cannot be pushed (queue full: a log line and a count; endpoint refused, failed or answered
    non-2xx: a log line, a count and PUSH_BACKOFF_S during which the subscription's events are not
    pushed) is kept in the subscription's queue for GetEvents instead, so nothing is lost silently.
    Pull: GetEvents(SubscriptionID, MaxEvents?, Wait?) returns up to MaxEvents (default 100, at most
    1000) queued events, oldest first, waiting up to Wait (at most MAX_WAIT_S) for the first one when
    none is queued (long poll; a newer GetEvents on the subscription answers an older waiting one
    at once). Without NotifyTo every event is queued. The queue holds MAX_QUEUED events per
    subscription; when full the oldest is dropped and counted: DroppedEvents in the next answer.
    SwitchingFunctionDevices segments (GetSwitchingFunctionDevices sent with a SubscriptionID
    header) travel like events.

Not supported: SOAP 1.2, MTOM/attachments, WS-Addressing and WS-Eventing's own wire format (the
messages are WS-Eventing-like, in this server's namespace), https NotifyTo addresses, Expires as a
dateTime, SubscriptionEnd notices; Digest or other HTTP authentication schemes.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from csta_front.soap_envelope import ws_fault
from csta_front.soap_http import HttpHandler
from csta_front.soap_login import Authenticator, announce_refusal, pam_check, privilege_refusal
from csta_front.soap_notify import Notifier
from csta_front.soap_subscriptions import Subscription
from csta_front.soap_wsdl import Wsdl, load_wsdl
from csta_front.waker import Waker

__all__ = ["install", "SoapService"]

log = logging.getLogger("csta")


class SoapService:
    def __init__(self, front: Any, check: Callable[[str, str], bool] = pam_check,
                 submit: Callable[[Callable[[], None]], Any] | None = None):
        self.front = front
        self.waker = Waker(front)
        # PAM's own checks need root; a check given in (tests) decides for itself.
        refusal = privilege_refusal() if check is pam_check else None
        if refusal is not None:
            announce_refusal(refusal)
        self.auth = Authenticator(front, self.waker, check, submit, refusal)
        self.notifier = Notifier(self.waker)
        self.subscriptions: dict[str, Subscription] = {}
        self.wsdl = Wsdl(load_wsdl())
        self.unrouted_events = 0  # events of monitors started on a connection's own session
        self.requests = 0

    def handler(self, front: Any, conn: Any) -> "HttpHandler":
        return HttpHandler(self, conn)

    def close(self) -> None:
        """End every subscription and the worker threads (tests; a server process just exits)."""
        for sub in list(self.subscriptions.values()):
            sub.end("the service closed")
        self.notifier.close()
        if self.auth._executor is not None:
            self.auth._executor.shutdown(wait=False, cancel_futures=True)
        self.waker.close()

    def find(self, sub_id: str | None, user: str) -> Subscription:
        sub = self.subscriptions.get((sub_id or "").strip())
        if sub is None or sub.owner != user or not sub.active:
            raise ws_fault("unknownSubscription", f"no subscription {sub_id!r} of yours")
        return sub


def install(front: Any, check: Callable[[str, str], bool] = pam_check) -> SoapService:
    """Serve SOAP on the front end's ports: HTTP connections go to this service."""
    service = SoapService(front, check)
    front.stream_handlers["http"] = service.handler
    return service
