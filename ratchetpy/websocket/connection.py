# -*- test-case-name: tests.websocket.test_websocket -*-
"""``WsConnection``: a connection as a WebSocket component sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..connection import AbstractConnectionDecorator
from ..interfaces import ConnectionInterface
from ._engine import STATE_OPEN
from .frames import is_valid_close_code

if TYPE_CHECKING:
    from ..hub import Hub
    from .protocol import WsServerProtocol

__all__ = ["WsConnection", "is_valid_close_code", "protocol_of"]


class WsConnection(AbstractConnectionDecorator):
    """
    A WebSocket connection: ``send(str)`` sends text, ``send(bytes)`` binary.

    Attributes shared with the raw connection: ``resource_id``,
    ``remote_address``, ``http_request`` and whatever you set.

    Attributes:
        close_code: after ``on_close``, the peer's close code (1006 if the
            connection was lost without a closing handshake).
        close_reason: after ``on_close``, the peer's close reason.
    """

    close_code: int | None = None
    close_reason: str | None = None

    def __init__(self, wrapped: ConnectionInterface, protocol: WsServerProtocol) -> None:
        super().__init__(wrapped)
        # A mangled name: user attributes, even private-looking ones such as
        # ``conn._ws``, can never replace the protocol.
        self.__ws = protocol

    @property
    def closing(self) -> bool:
        """True once the connection is no longer open for messages."""
        return self.__ws.state != STATE_OPEN

    @property
    def hub(self) -> Hub:
        """The ``Hub`` of the server this connection came through."""
        return self.__ws._server.hub

    @property
    def sub_protocol(self) -> str | None:
        """The negotiated subprotocol, or ``None``."""
        return self.__ws.websocket_protocol_in_use

    @property
    def buffered_amount(self) -> int:
        """Bytes sent to this connection that the kernel has not taken yet."""
        flow = self.__ws._flow
        if flow is not None:
            return flow.buffered()
        from .flow import SendBufferWatch

        return SendBufferWatch(self.__ws).buffered()

    @property
    def dropped_messages(self) -> int:
        """Messages dropped by the ``"drop"`` overflow policy."""
        flow = self.__ws._flow
        return flow.dropped if flow is not None else 0

    def pause_reading(self) -> None:
        """
        Stop reading from this client (its messages queue in the kernel and
        then in the client) until ``resume_reading()``.
        """
        self.__ws._pause_reading()

    def resume_reading(self) -> None:
        """Read from this client again after ``pause_reading()``."""
        self.__ws._resume_reading()

    def send(self, data: str | bytes) -> WsConnection:
        """
        Send one message: a text frame for ``str``, a binary frame for
        ``bytes``. Dropped quietly once the connection is closing.
        """
        self.__ws.send_message(data)
        return self

    def close(self, code: int = 1000, reason: str = "") -> None:
        """
        Start the closing handshake with ``code`` and ``reason``.

        ``on_close`` follows once the peer answers or the close timeout
        passes. Does nothing if already closing.

        Raises:
            ValueError: ``code`` is not one an endpoint may send.
        """
        if not isinstance(code, int) or not is_valid_close_code(code):
            raise ValueError(
                f"invalid close code {code!r}: use 1000-1003, 1007-1014 or 3000-4999"
            )
        self.__ws.close_with(code, reason)


def protocol_of(conn: object) -> WsServerProtocol | None:
    """
    The protocol behind a WebSocket connection view (``WsConnection`` or a
    view wrapping one, such as ``WampConnection``); ``None`` for anything
    else (a raw ``IoConnection``, a test double).
    """
    while True:
        if type(conn) is WsConnection or isinstance(conn, WsConnection):
            return conn._WsConnection__ws  # type: ignore[no-any-return]
        if not isinstance(conn, AbstractConnectionDecorator):
            return None
        conn = conn.get_connection()
