"""
``ClientConnection``: the client's end of one WebSocket connection.

It has the shape of the server's connections (``send``, ``close(code,
reason)``, ``id``, ``resource_id``, ``remote_address``, any attribute you
set), so one component class can handle both ends.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ..interfaces import ConnectionInterface
from ..server.ids import new_connection_id
from ..websocket.frames import is_valid_close_code

if TYPE_CHECKING:
    from .protocol import ClientProtocol

__all__ = ["ClientConnection"]

_resource_ids = itertools.count(1)


class ClientConnection(ConnectionInterface):
    """
    One client connection, the same object from ``on_open`` to ``on_close``.

    Attributes:
        url: the URL it was opened with.
        resource_id: an ``int`` unique among this process's client connections.
        id: a ``str`` unique across processes (``ratchetpy.server.ids``).
        remote_address: the server's address.
        response_headers: the server's 101 headers, names lower-cased.
        close_code: the close code once closed (1006 when the connection
            was lost without a close frame), else ``None``.
        close_reason: the close frame's reason, or a description of the loss.
        close_error: a ``ClientError`` when the client itself gave up on the
            connection (``KeepaliveTimeout``), else ``None``.
    """

    def __init__(self, protocol: ClientProtocol, url: str) -> None:
        self.__protocol = protocol
        self.url = url
        self.resource_id = next(_resource_ids)
        self.id = new_connection_id()
        self.remote_address = ""
        self.response_headers: dict[str, str] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_error: Exception | None = None

    @property
    def sub_protocol(self) -> str | None:
        """The subprotocol the server chose, or ``None``."""
        return self.__protocol.websocket_protocol_in_use

    @property
    def closing(self) -> bool:
        """True once the connection is no longer open for messages."""
        return not self.__protocol.is_open_now()

    def send(self, data: str | bytes) -> ClientConnection:
        """
        Send one message: a text frame for ``str``, a binary frame for
        ``bytes``. Dropped quietly once the connection is closing (as on the
        server; ``ReconnectingClient.send`` queues instead).

        Raises:
            TypeError: ``data`` is neither ``str`` nor ``bytes``.
        """
        self.__protocol.send_message(data)
        return self

    def close(self, code: int = 1000, reason: str = "") -> None:
        """
        Start the closing handshake; ``on_close`` follows once the server
        answers (or ``close_timeout`` passes). Does nothing if already closing.

        Raises:
            ValueError: ``code`` is not one an endpoint may send.
        """
        if not isinstance(code, int) or not is_valid_close_code(code):
            raise ValueError(
                f"invalid close code {code!r}: use 1000-1003, 1007-1014 or 3000-4999"
            )
        self.__protocol.close_with(code, reason)

    def when_closed(self) -> Deferred[ClientConnection]:
        """A Deferred firing with this connection once it is closed (after ``on_close``)."""
        d: Deferred[ClientConnection] = Deferred()

        def fire(result: object) -> object:
            d.callback(self)
            return result

        self.__protocol.closed.addBoth(fire)
        return d

    def receive(self) -> Deferred[str | bytes]:
        """
        The next message, for a connection opened without a component
        (``connect(url)``): a Deferred that fires with it, or fails with
        ``ConnectionClosed`` once the connection is closed and every
        message was read. Bound the wait with ``d.addTimeout(s, reactor)``.

        Raises:
            ClientError: the connection has a component (its ``on_message``
                gets the messages).
        """
        return self.__protocol.receive()

    def __repr__(self) -> str:
        return f"<ClientConnection #{self.resource_id} {self.url}>"

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...
