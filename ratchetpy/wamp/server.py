# -*- test-case-name: tests.test_wamp_transcript,tests.test_wamp_protocol -*-
"""
``WampServer``: a WAMP v1 application as a WebSocket component.

    IoServer(HttpServer(WsServer(WampServer(MyApp()))))

It negotiates the ``wamp`` subprotocol (clients that do not offer it get
426, as with Ratchet), sends WELCOME on open, gives the application
``Topic`` objects, and closes with 1007 any connection that sends a
malformed message or whose handler raises ``WampError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger

from ..exceptions import WampError
from ..interfaces import MessageComponentInterface
from ..websocket.interfaces import WsServerInterface
from .connection import WampConnection
from .protocol import DEFAULT_SERVER_IDENT, ServerProtocol
from .topic import TopicManager

__all__ = ["WampServer"]

_log = Logger(namespace="ratchetpy.wamp")


class WampServer(MessageComponentInterface, WsServerInterface):
    """
    Serve ``app`` (a ``WampServerInterface``) over WAMP v1, the protocol
    of AutobahnJS 0.8: ``ServerProtocol(TopicManager(app))``, as in Ratchet.

    Args:
        app: the WAMP application.
        server_ident: the server name in WELCOME; ``"Ratchet/0.4.4"`` by
            default so JavaScript written against PHP Ratchet sees the
            same ``session._server``.
        default_close_code: what ``conn.close()`` without a code sends:
            1000 by default; 0 reproduces PHP Ratchet (see
            ``WampConnection.close``).

    Attributes:
        topic_manager: the ``TopicManager``; ``topic_manager.get(uri)``
            finds a subscribed topic.
    """

    def __init__(
        self,
        app: Any,
        *,
        server_ident: str = DEFAULT_SERVER_IDENT,
        default_close_code: int = 1000,
    ) -> None:
        self.app = app
        self.topic_manager = TopicManager(app)
        self.wamp_protocol = ServerProtocol(
            self.topic_manager,
            server_ident=server_ident,
            default_close_code=default_close_code,
        )

    def get_sub_protocols(self) -> Sequence[str]:
        """``["wamp"]`` plus the application's own subprotocols."""
        return self.wamp_protocol.get_sub_protocols()

    def connection(self, conn: Any) -> WampConnection | None:
        """The ``WampConnection`` for the ``WsConnection`` ``conn``."""
        return self.wamp_protocol.connection(conn)

    def on_open(self, conn: Any) -> None:
        self.wamp_protocol.on_open(conn)

    def on_message(self, conn: Any, msg: str | bytes) -> None:
        try:
            self.wamp_protocol.on_message(conn, msg)
        except WampError as exc:
            _log.info(
                "Closing WAMP connection #{rid} from {peer} with 1007: {error}",
                rid=getattr(conn, "resource_id", None),
                peer=getattr(conn, "remote_address", None),
                error=exc,
            )
            conn.close(1007)

    def on_close(self, conn: Any) -> None:
        self.wamp_protocol.on_close(conn)

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.wamp_protocol.on_error(conn, exc)
