# -*- test-case-name: tests.test_http -*-
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

from twisted.logger import Logger

from ..exceptions import (
    ConfigurationError,
    HttpError,
    RequestHeadTooLarge,
    RequestTimeout,
)
from ..interfaces import MessageComponentInterface, check_component
from ..server._abort import abort_connection
from ..server.tls import tls_handshake_pending
from .request import parse_request_head
from .response import close_response

__all__ = ["HttpServer", "DEFAULT_MAX_REQUEST_SIZE", "DEFAULT_REQUEST_TIMEOUT"]

DEFAULT_MAX_REQUEST_SIZE = 16 * 1024
"""Bytes allowed for a request head: room for cookie-heavy sites (as Node's)."""

DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its whole request head."""


class _HttpState:
    __slots__ = ("buffer", "timer", "received")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.timer: Any = None
        self.received = False


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

    @property
    def component(self) -> Any:
        """The wrapped component."""
        return self._component

    def on_open(self, conn: Any) -> None:
        state = conn._http = _HttpState()
        if self.request_timeout is not None:
            state.timer = conn._reactor.callLater(
                self.request_timeout, self._timed_out, conn
            )

    def on_message(self, conn: Any, data: bytes) -> None:
        state: _HttpState = conn._http
        if state.received:
            self._component.on_message(conn, data)
            return
        buffer = state.buffer
        # Search from just before the new bytes: the terminator may straddle reads.
        start = max(0, len(buffer) - 3)
        buffer += data
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buffer) > self.max_request_size:
                self._refuse(conn, RequestHeadTooLarge(self._too_large()))
            return
        end += 4
        if end > self.max_request_size:
            self._refuse(conn, RequestHeadTooLarge(self._too_large()))
            return
        head, rest = bytes(buffer[:end]), bytes(buffer[end:])
        state.buffer = bytearray()
        try:
            request = parse_request_head(head)
        except HttpError as exc:
            self._refuse(conn, exc)
            return
        self._cancel_timer(state)
        state.received = True
        conn.http_request = request
        self._component.on_open(conn, request)
        if rest and not conn.closing:
            self._component.on_message(conn, rest)

    def on_close(self, conn: Any) -> None:
        state: _HttpState | None = getattr(conn, "_http", None)
        if state is None:
            return
        self._cancel_timer(state)
        if state.received:
            self._component.on_close(conn)

    def on_error(self, conn: Any, exc: Exception) -> None:
        state: _HttpState | None = getattr(conn, "_http", None)
        if state is not None and state.received:
            self._component.on_error(conn, exc)
        else:
            self._log.error(
                "Error before the request head of {peer} was complete: {error!r}",
                peer=conn.remote_address,
                error=exc,
            )
            close_response(conn, 500)

    def _too_large(self) -> str:
        return (
            f"request head exceeds {self.max_request_size} bytes "
            "(raise HttpServer(max_request_size=...) if your clients send large cookies)"
        )

    def _timed_out(self, conn: Any) -> None:
        state: _HttpState = conn._http
        state.timer = None
        if not state.received and not conn.closing:
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
                RequestTimeout(
                    f"no complete request head within {self.request_timeout} s "
                    "(HttpServer(request_timeout=...))"
                ),
            )

    def _refuse(self, conn: Any, exc: HttpError) -> None:
        state: _HttpState = conn._http
        self._cancel_timer(state)
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
