"""
Ratchet's ``Ratchet\\Wamp`` namespace: WAMP v1 (the protocol of AutobahnJS
0.8, subprotocol ``wamp``) on ratchetpy's WebSocket server.

    from ratchetpy.wamp import WampServer, WampServerInterface

    IoServer.factory(HttpServer(WsServer(WampServer(MyApp()))), 8080).run()
"""

from ..exceptions import JsonError, WampError
from .connection import WampConnection, WampState
from .interfaces import WampServerInterface
from .protocol import DEFAULT_SERVER_IDENT, ServerProtocol
from .server import WampServer
from .topic import Topic, TopicManager

__all__ = [
    "WampServer",
    "WampServerInterface",
    "WampConnection",
    "WampState",
    "ServerProtocol",
    "Topic",
    "TopicManager",
    "WampError",
    "JsonError",
    "DEFAULT_SERVER_IDENT",
]
