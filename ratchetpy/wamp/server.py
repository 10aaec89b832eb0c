# -*- test-case-name: tests.wamp.test_wamp_transcript,tests.wamp.test_wamp_protocol -*-
"""
``WampServer``: a WAMP v1 application as a WebSocket component.

    IoServer(HttpServer(WsServer(WampServer(MyApp()))))

It negotiates the ``wamp`` subprotocol (clients that do not offer it get
426, as with Ratchet), sends WELCOME on open, gives the application
``Topic`` objects, closes with 1007 any connection that sends a malformed
message or whose handler raises ``WampError``, and with 1008 any that goes
over a per-connection limit.

With a hub backplane (Redis) under the ``WsServer``'s hub, topics span
processes: a ``Topic.broadcast`` on one node reaches the topic's
subscribers on every node (``ratchetpy.wamp.cluster``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ..interfaces import ConnectionInterface, MessageComponentInterface
from ..websocket.interfaces import WsServerInterface
from .cluster import DEFAULT_CHANNEL_PREFIX
from .connection import WampConnection
from .limits import DEFAULT_MAX_PREFIXES, DEFAULT_MAX_SUBSCRIPTIONS, DEFAULT_MAX_URI_LENGTH
from .protocol import DEFAULT_SERVER_IDENT, ServerProtocol
from .topic import TopicManager

if TYPE_CHECKING:
    from ..hub import Hub

__all__ = ["WampServer"]


class WampServer(MessageComponentInterface, WsServerInterface):
    """
    Serve ``app`` (a ``WampServerInterface``) over WAMP v1, the protocol
    of AutobahnJS 0.8: ``ServerProtocol(TopicManager(app))``, as in Ratchet.

    Args:
        app: the WAMP application. Its handlers may be ``async def`` or
            return Deferreds (see ``WampServerInterface``).
        server_ident: the server name in WELCOME; ``"Ratchet/0.4.4"`` by
            default so JavaScript written against PHP Ratchet sees the
            same ``session._server``.
        default_close_code: what ``conn.close()`` without a code sends:
            1000 by default; 0 reproduces PHP Ratchet (see
            ``WampConnection.close``).
        max_uri_length: longest URI, CURIE or CURIE prefix name a client
            may send (and a CURIE may resolve to), in characters; 2048 by
            default.
        max_prefixes: most CURIE prefixes one client may define; 64 by
            default.
        max_subscriptions: most topics one client may be subscribed to at
            once; 1,000 by default.
        channel_prefix: the prefix of the hub channels topics ride on
            across processes, ``"wamp:"`` by default. Two WAMP applications
            sharing one hub (routes of one ``App``) share their topics
            across processes unless each has its own prefix.

    The three limits bound what a client can make the server keep (see
    ``ratchetpy.wamp.limits`` for why these defaults); ``None`` lifts one.
    Close codes follow one rule: a message that is not valid WAMP v1 (bad
    JSON, NaN or an infinity, a wrong shape) or a message handler raising
    ``WampError`` closes the connection with 1007; a valid message that
    goes over a limit closes it with 1008. Both are logged (``ratchetpy.wamp``
    namespace), the 1008 line with the option to raise.

    ``on_open``, ``on_message`` and ``on_close`` return a Deferred when the
    application's handler is async; it fires once the handler finished and
    its failure, if any, was handled (``on_error`` or close 1007), so the
    WebSocket layer can hold the connection's next events until then.

    Attributes:
        topic_manager: the ``TopicManager``; ``topic_manager.get(uri)``
            finds a subscribed topic.

    Raises:
        ConfigurationError: an option has a value that cannot work.
    """

    def __init__(
        self,
        app: Any,
        *,
        server_ident: str = DEFAULT_SERVER_IDENT,
        default_close_code: int = 1000,
        max_uri_length: int | None = DEFAULT_MAX_URI_LENGTH,
        max_prefixes: int | None = DEFAULT_MAX_PREFIXES,
        max_subscriptions: int | None = DEFAULT_MAX_SUBSCRIPTIONS,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
    ) -> None:
        self.app = app
        self.topic_manager = TopicManager(
            app, max_subscriptions=max_subscriptions, channel_prefix=channel_prefix
        )
        self.wamp_protocol = ServerProtocol(
            self.topic_manager,
            server_ident=server_ident,
            default_close_code=default_close_code,
            max_uri_length=max_uri_length,
            max_prefixes=max_prefixes,
            close_on_wamp_error=True,
        )

    def use_hub(self, hub: Hub) -> None:
        """
        Span processes through ``hub``'s backplane, if it has one (the
        ``WsServer`` serving this calls it with its hub).
        """
        self.topic_manager.use_hub(hub)

    def get_sub_protocols(self) -> Sequence[str]:
        """``["wamp"]`` plus the application's own subprotocols."""
        return self.wamp_protocol.get_sub_protocols()

    def connection(self, conn: ConnectionInterface) -> WampConnection | None:
        """The ``WampConnection`` for the ``WsConnection`` ``conn``."""
        return self.wamp_protocol.connection(conn)

    def on_open(self, conn: ConnectionInterface) -> Deferred[None] | None:
        return self.wamp_protocol.on_open(conn)

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Deferred[None] | None:
        return self.wamp_protocol.on_message(conn, msg)

    def on_close(self, conn: ConnectionInterface) -> Deferred[None] | None:
        return self.wamp_protocol.on_close(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Deferred[None] | None:
        return self.wamp_protocol.on_error(conn, exc)
