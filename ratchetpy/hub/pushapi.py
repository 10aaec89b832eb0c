# -*- test-case-name: tests.hub.test_pushapi -*-
"""
``PushApi``: the HTTP publish API, for backends in any language.

Ratchet pushed from PHP over ZeroMQ, phpWebSocketServer over its
"feedback" socket; here a backend POSTs JSON, as to Pusher's or
Centrifugo's server API:

.. code-block:: sh

    curl -H "Authorization: Bearer $KEY" -d '{"channel": "news", "data": "hi"}' \\
        http://127.0.0.1:8081/push                  # -> {"delivered":3}

``App.push_api("/push", key)`` (``twistd ratchetpy --push-api /push
--push-key KEY``) routes one ``PushApi``. Its endpoints and rules are in
``ratchetpy.hub.push_request`` (pure functions); this module moves the
bytes: it reads a body up to its ``Content-Length`` (over ``max_body``:
413; chunked or without a length: 411; not all there within
``body_timeout``: 408), hands each item to the hub's Deferred-returning
operations (``push``, ``publish``, ``push_user``, ``member_count``,
``stats``) and answers when they fire (an error 500, no answer within
``hub_timeout`` 503). Every request is counted in
``hub.counters.api_request(status)``; every refusal is logged with what to
fix. Nothing a client sends raises into the reactor.

A response is refused before the body is read (401, 413, ...) still
reads and discards the body the client sends (for up to
``DRAIN_TIMEOUT`` seconds): closing a socket with unread bytes resets
it, and the client would see the reset instead of the answer.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from weakref import WeakKeyDictionary

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    FirstError,
    TimeoutError,
    gatherResults,
    maybeDeferred,
)
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import ConfigurationError, PushApiError
from ..http.interfaces import HttpServerInterface
from ..http.response import render_response
from ..interfaces import ConnectionInterface
from ..server._abort import close_with_deadline
from .hub import Hub, HubError
from .push_request import (
    PushItem,
    RequestPlan,
    check_key,
    encode_answer,
    parse_push_body,
    plan_request,
    push_answer,
)

if TYPE_CHECKING:
    from ..http.request import Request

__all__ = [
    "PushApi",
    "DEFAULT_MAX_BODY",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HUB_TIMEOUT",
    "DRAIN_TIMEOUT",
    "check_base_path",
]

_log = Logger(namespace="ratchetpy.pushapi")

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest request body accepted, in bytes (1 MiB, the WebSocket message limit)."""

DEFAULT_BODY_TIMEOUT = 10.0
"""Seconds a client has to send its whole body once the head is in."""

DEFAULT_HUB_TIMEOUT = 10.0
"""Seconds the hub has to answer before the request gets 503."""

DRAIN_TIMEOUT = 5.0
"""Seconds an answered connection keeps reading the rest of its body before closing."""

_ENDPOINT_PARAM = "push_api_endpoint"


def check_base_path(path: object) -> str:
    """
    ``path`` as the API's base path (``/push``; a trailing ``/`` dropped).

    Raises:
        ConfigurationError: it does not start with ``/``, is ``/`` alone,
            or holds a route parameter.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(f"the publish API path must start with '/', e.g. '/push', not {path!r}")
    base = path.rstrip("/")
    if not base:
        raise ConfigurationError("the publish API needs a path of its own, e.g. '/push', not '/'")
    if any(c in base for c in "{}<>?#%") or not base.isprintable() or " " in base:
        raise ConfigurationError(f"the publish API path must be a plain path such as '/push', not {path!r}")
    return base


class _ApiState:
    """One request: its plan, the body read so far, what is left to read."""

    __slots__ = ("method", "path", "head_only", "body", "remaining", "collecting",
                 "answered", "draining", "timer")

    def __init__(self, request: Request) -> None:
        self.method = request.method
        self.path = request.path
        self.head_only = request.method == "HEAD"
        self.body = bytearray()
        self.remaining = 0
        self.collecting = False
        self.answered = False
        self.draining = False
        self.timer: IDelayedCall | None = None


class PushApi(HttpServerInterface):
    """
    The publish API for ``hub``, answering under ``path``.

    Args:
        hub: the hub to deliver through (``App.hub``).
        key: the key requests must send as ``Authorization: Bearer <key>``
            (at least 16 printable ASCII characters).
        path: the base path (``/push``): ``POST path``, ``GET
            path/stats``, ``GET path/channels/NAME``.
        max_body: the largest body accepted, in bytes.
        body_timeout: seconds allowed for the body once the head is in.
        hub_timeout: seconds allowed for the hub to answer.

    Raises:
        ConfigurationError: no key, a short key, a bad path or limit; the
            message names the fix.
    """

    def __init__(
        self,
        hub: Hub,
        key: str | None,
        *,
        path: str = "/push",
        max_body: int = DEFAULT_MAX_BODY,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        hub_timeout: float = DEFAULT_HUB_TIMEOUT,
    ) -> None:
        self.key = check_key(key)
        self.path = check_base_path(path)
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 2:
            raise ConfigurationError(f"max_body must be an int of at least 2 bytes, not {max_body!r}")
        for name, value in (("body_timeout", body_timeout), ("hub_timeout", hub_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
        self.hub = hub
        self.max_body = max_body
        self.body_timeout = float(body_timeout)
        self.hub_timeout = float(hub_timeout)
        self._states: WeakKeyDictionary[ConnectionInterface, _ApiState] = WeakKeyDictionary()

    @property
    def route_pattern(self) -> str:
        """The ``Router`` pattern matching the base path and everything under it."""
        return self.path + "{" + _ENDPOINT_PARAM + r"<(?:/[\s\S]*)?>}"

    def __repr__(self) -> str:
        return f"<PushApi {self.path}>"

    # -- HttpServerInterface -----------------------------------------------

    def on_open(self, conn: ConnectionInterface, request: Request) -> None:
        state = self._states[conn] = _ApiState(request)
        subpath = request.route_params.get(_ENDPOINT_PARAM)
        if subpath is None:  # routed by hand at another pattern
            decoded = unquote(request.path)
            subpath = decoded[len(self.path):] if decoded.startswith(self.path) else decoded
        try:
            plan = plan_request(
                request.method, self.path, subpath, request.headers, self.key, self.max_body
            )
        except PushApiError as exc:
            state.remaining = _declared_length(request)
            self._refuse(conn, state, exc)
            return
        state.remaining = plan.body_length
        if plan.endpoint != "push":
            self._read(conn, state, plan)
            return
        state.collecting = True
        state.timer = conn.reactor.callLater(self.body_timeout, self._timed_out, conn, state, plan)
        if plan.expect_continue and request.version == "HTTP/1.1":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        state = self._states.get(conn)
        if state is None:
            return
        data = msg.encode("utf-8") if isinstance(msg, str) else msg
        if state.collecting:
            taken = data[: state.remaining]
            state.body += taken
            state.remaining -= len(taken)
            if state.remaining == 0:
                state.collecting = False
                self._cancel_timer(state)
                body, state.body = bytes(state.body), bytearray()
                self._push(conn, state, body)
            return
        # Answered, or waiting for the hub: the rest of the body is read and dropped.
        state.remaining -= len(data)
        if state.draining and state.remaining <= 0:
            self._close(conn, state)

    def on_close(self, conn: ConnectionInterface) -> None:
        state = self._states.pop(conn, None)
        if state is not None:
            self._cancel_timer(state)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        _log.failure(
            "Publish API: error handling {method} {path} from {peer}",
            Failure(exc),
            method=getattr(getattr(conn, "http_request", None), "method", "?"),
            path=self.path,
            peer=conn.remote_address,
        )
        state = self._states.get(conn)
        if state is not None and not state.answered:
            state.remaining = 0
            self._answer(conn, state, 500, {"error": "internal error; the server logged it"})
        elif state is None:
            close_with_deadline(conn)

    # -- work --------------------------------------------------------------

    def _read(self, conn: ConnectionInterface, state: _ApiState, plan: RequestPlan) -> None:
        d: Deferred[Any]
        if plan.endpoint == "stats":
            d = maybeDeferred(self.hub.stats)
        else:
            channel = plan.channel or ""

            def count(n: int) -> dict[str, Any]:
                return {"channel": channel, "member_count": n}

            d = maybeDeferred(self.hub.member_count, channel).addCallback(count)
        self._when_done(conn, state, d.addCallback(lambda document: (200, document)))

    def _push(self, conn: ConnectionInterface, state: _ApiState, body: bytes) -> None:
        try:
            items, batch = parse_push_body(body)
        except PushApiError as exc:
            self._refuse(conn, state, exc)
            return
        done = gatherResults([maybeDeferred(self._deliver, item) for item in items], consumeErrors=True)
        self._when_done(
            conn, state, done.addCallback(lambda counts: push_answer(items, counts, batch))
        )

    def _deliver(self, item: PushItem) -> Deferred[int]:
        hub = self.hub
        if item.target == "client":
            return hub.push(item.name, item.message).addCallback(int)
        if item.target == "channel":
            return hub.publish(item.name, item.message, exclude=item.exclude)
        return hub.push_user(item.name, item.message, exclude=item.exclude)

    def _when_done(self, conn: ConnectionInterface, state: _ApiState, d: Deferred[Any]) -> None:
        # With a hub spanning processes these fire later; locally, at once.
        d.addTimeout(self.hub_timeout, conn.reactor)
        d.addCallbacks(
            lambda answer: self._answer(conn, state, *answer),
            lambda failure: self._hub_failed(conn, state, failure),
        )
        d.addErrback(self._answer_failed, conn, state)

    def _hub_failed(self, conn: ConnectionInterface, state: _ApiState, failure: Failure) -> None:
        if isinstance(failure.value, FirstError):
            failure = failure.value.subFailure
        if failure.check(HubError):
            self._refuse(conn, state, PushApiError(str(failure.value)))
        elif failure.check(TimeoutError, CancelledError):
            _log.error(
                "Publish API: the hub did not answer {method} {path} within {timeout} s; "
                "answered 503 (is the backplane reachable? PushApi(hub_timeout=...) sets the wait)",
                method=state.method,
                path=state.path,
                timeout=self.hub_timeout,
            )
            self._answer(
                conn, state, 503,
                {"error": f"the hub did not answer within {self.hub_timeout:g} s; try again "
                 "(items of a batch may have been delivered)"},
                [("Retry-After", "1")],
            )
        else:
            _log.failure(
                "Publish API: the hub failed on {method} {path}; answered 500",
                failure,
                method=state.method,
                path=state.path,
            )
            self._answer(conn, state, 500, {"error": "internal error; the server logged it"})

    def _answer_failed(self, failure: Failure, conn: ConnectionInterface, state: _ApiState) -> None:
        # Writing the answer itself raised (a stats value JSON cannot hold, ...).
        _log.failure("Publish API: answering {path} failed", failure, path=state.path)
        if not state.answered:
            self._answer(conn, state, 500, {"error": "internal error; the server logged it"})
        else:
            self._close(conn, state)

    def _timed_out(self, conn: ConnectionInterface, state: _ApiState, plan: RequestPlan) -> None:
        state.timer = None
        got = plan.body_length - state.remaining
        state.collecting = False
        state.remaining = 0  # a slow client is not waited for again
        self._refuse(
            conn,
            state,
            PushApiError(
                f"the body did not arrive within {self.body_timeout:g} s "
                f"(Content-Length {plan.body_length}, got {got} bytes)",
                status=408,
            ),
        )

    # -- answers -----------------------------------------------------------

    def _refuse(self, conn: ConnectionInterface, state: _ApiState, exc: PushApiError) -> None:
        _log.info(
            "Publish API: refused {method} {path} from {peer} with {status}: {error}",
            method=state.method,
            path=state.path,
            peer=conn.remote_address,
            status=exc.status,
            error=exc.detail,
        )
        self._answer(conn, state, exc.status, {"error": exc.detail}, exc.headers)

    def _answer(
        self,
        conn: ConnectionInterface,
        state: _ApiState,
        status: int,
        document: Any,
        headers: Any = (),
    ) -> None:
        if state.answered:
            return
        body = encode_answer(document)
        state.answered = True
        self.hub.counters.api_request(status)
        if status == 404 and document == {"error": "unknown client"}:
            _log.info(
                "Publish API: {method} {path} from {peer}: 404, no connection holds that "
                "client id (it closed, or the id is wrong)",
                method=state.method,
                path=state.path,
                peer=conn.remote_address,
            )
        fields = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            *headers,
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
        ]
        if not conn.closing:
            conn.send(render_response(status, fields) + (b"" if state.head_only else body))
        self._close(conn, state)

    def _close(self, conn: ConnectionInterface, state: _ApiState) -> None:
        if state.remaining > 0 and not state.draining and not conn.closing:
            # The client may still be sending its body: read it before closing.
            state.draining = True
            state.timer = conn.reactor.callLater(DRAIN_TIMEOUT, self._close_now, conn, state)
            return
        self._close_now(conn, state)

    def _close_now(self, conn: ConnectionInterface, state: _ApiState) -> None:
        state.draining = False
        self._cancel_timer(state)
        if not conn.closing:
            close_with_deadline(conn)

    @staticmethod
    def _cancel_timer(state: _ApiState) -> None:
        timer, state.timer = state.timer, None
        if timer is not None and timer.active():
            timer.cancel()


def _declared_length(request: Request) -> int:
    value = request.headers.get("content-length", "").strip()
    if value.isdigit() and value.isascii() and "transfer-encoding" not in request.headers:
        return int(value)
    if "transfer-encoding" in request.headers or value:
        # Chunked, or a length that cannot be read: drop what comes until
        # the client closes or DRAIN_TIMEOUT passes.
        return sys.maxsize
    return 0
