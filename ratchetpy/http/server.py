# -*- test-case-name: tests.http.test_http -*-
"""
``HttpServer``: turns a connection's first bytes into a request head.

It buffers bytes until the blank line that ends the head, parses it, and
calls ``component.on_open(conn, request)``. Bytes that came in the same read
after the head (a client's first WebSocket frame) follow at once through
``component.on_message``: nothing is lost, unlike Ratchet.

Malformed heads get 400, oversized ones 431 (Ratchet answers 413 with a
fixed 4 KiB cap), heads that do not arrive in time 408; each is logged with
what to fix and the connection closed. Other connections are unaffected.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import (
    ConfigurationError,
    HttpError,
    RequestHeadTooLarge,
    RequestTimeout,
)
from ..interfaces import ConnectionInterface, MessageComponentInterface, check_component
from ..server._abort import abort_connection
from ..server.io import feed, taken_over_by
from ..server.tls import tls_handshake_pending
from .request import find_head_end, parse_request_head
from .response import close_response

__all__ = ["HttpServer", "DEFAULT_MAX_REQUEST_SIZE", "DEFAULT_REQUEST_TIMEOUT"]

DEFAULT_MAX_REQUEST_SIZE = 16 * 1024
"""Bytes allowed for a request head: room for cookie-heavy sites (as Node's)."""

DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its whole request head."""


class _HttpState:
    """A connection whose request head has not been handed on (yet)."""

    __slots__ = ("buffer", "timer", "refused")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.timer: IDelayedCall | None = None
        self.refused = False


class HttpServer(MessageComponentInterface):
    """
    Parse the request head, then hand the connection to ``component``.

    Args:
        component: an ``HttpServerInterface`` (``WsServer``, ``Router``, ...).
        max_request_size: the largest head accepted, in bytes.
        request_timeout: seconds allowed for the head; ``None`` for no limit.
    """

    _log = Logger(namespace="ratchetpy.http")

    def __init__(
        self,
        component: Any,
        *,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        check_component(
            component, ("on_open", "on_message", "on_close", "on_error"), "HttpServer"
        )
        if not isinstance(max_request_size, int) or max_request_size < 64:
            raise ConfigurationError(
                f"max_request_size must be an int of at least 64, not {max_request_size!r}"
            )
        if request_timeout is not None and not request_timeout > 0:
            raise ConfigurationError(
                f"request_timeout must be positive or None, not {request_timeout!r}"
            )
        self._component = component
        self.max_request_size = max_request_size
        self.request_timeout = request_timeout
        # Connections whose head is still awaited (or was refused). Once a
        # head is handed on, the connection leaves this map: it costs
        # nothing for the rest of its life.
        self._pending: WeakKeyDictionary[ConnectionInterface, _HttpState] = WeakKeyDictionary()

    @property
    def component(self) -> Any:
        """The wrapped component."""
        return self._component

    def on_open(self, conn: ConnectionInterface) -> None:
        state = self._pending[conn] = _HttpState()
        if self.request_timeout is not None:
            state.timer = conn.reactor.callLater(self.request_timeout, self._timed_out, conn)

    def on_message(self, conn: ConnectionInterface, data: str | bytes) -> Any:
        state = self._pending.get(conn)
        if state is None:
            # The head was handed on: this is what follows it.
            return self._component.on_message(conn, data)
        if state.refused:
            return None
        if isinstance(data, str):
            data = data.encode("utf-8")
        buffer = state.buffer
        searched = len(buffer)
        buffer += data
        end = find_head_end(buffer, searched)
        if end < 0:
            if len(buffer) > self.max_request_size:
                self._refuse(conn, state, RequestHeadTooLarge(self._too_large()))
            return None
        if end > self.max_request_size:
            self._refuse(conn, state, RequestHeadTooLarge(self._too_large()))
            return None
        head, rest = bytes(buffer[:end]), bytes(buffer[end:])
        state.buffer = bytearray()
        try:
            request = parse_request_head(head)
        except HttpError as exc:
            self._refuse(conn, state, exc)
            return None
        self._cancel_timer(state)
        del self._pending[conn]
        conn.http_request = request
        result = self._component.on_open(conn, request)
        if rest and not conn.closing:
            if taken_over_by(conn) is not None:
                # A WebSocket took the connection over: its first frames go
                # the way every later byte goes, straight to it.
                feed(conn, rest)  # type: ignore[arg-type]
            else:
                self._component.on_message(conn, rest)
        return result

    def on_close(self, conn: ConnectionInterface) -> Any:
        state = self._pending.pop(conn, None)
        if state is not None:
            self._cancel_timer(state)
            return None
        return self._component.on_close(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        if conn not in self._pending:
            return self._component.on_error(conn, exc)
        self._log.failure(
            "Error before the request head of {peer} was complete: {error!r}",
            Failure(exc),
            peer=conn.remote_address,
            error=exc,
        )
        close_response(conn, 500)
        return None

    def _too_large(self) -> str:
        return (
            f"request head exceeds {self.max_request_size} bytes "
            "(raise HttpServer(max_request_size=...) if your clients send large cookies)"
        )

    def _timed_out(self, conn: ConnectionInterface) -> None:
        state = self._pending.get(conn)
        if state is None:
            return
        state.timer = None
        if not state.refused and not conn.closing:
            if tls_handshake_pending(conn):
                # Nothing can be sent before the handshake, and a graceful
                # close would wait for it forever: drop the connection.
                self._log.info(
                    "Dropped {peer}: no TLS handshake within {timeout} s (a stalled client, "
                    "or one not speaking TLS; HttpServer(request_timeout=...) sets the limit)",
                    peer=conn.remote_address,
                    timeout=self.request_timeout,
                )
                abort_connection(conn)
                return
            self._refuse(
                conn,
                state,
                RequestTimeout(
                    f"no complete request head within {self.request_timeout} s "
                    "(HttpServer(request_timeout=...))"
                ),
            )

    def _refuse(self, conn: ConnectionInterface, state: _HttpState, exc: HttpError) -> None:
        self._cancel_timer(state)
        state.refused = True
        state.buffer = bytearray()
        self._log.info(
            "Refused request from {peer} with {status}: {detail}",
            peer=conn.remote_address,
            status=exc.status,
            detail=exc.detail,
        )
        close_response(conn, exc.status, exc.headers, exc.reason)

    @staticmethod
    def _cancel_timer(state: _HttpState) -> None:
        if state.timer is not None:
            if state.timer.active():
                state.timer.cancel()
            state.timer = None
