"""
ratchetpy: PHP's Ratchet WebSocket framework, ported to Python on Twisted
and Autobahn.

The names a ported Ratchet application needs are importable from here::

    from ratchetpy import (
        MessageComponentInterface, IoServer, HttpServer, WsServer,
    )
"""

from .app import App
from .connection import AbstractConnectionDecorator
from .exceptions import (
    BadRequest,
    ComponentError,
    ConfigurationError,
    HttpError,
    HttpVersionNotSupported,
    JsonError,
    ListenError,
    PushApiError,
    RatchetError,
    RequestHeadTooLarge,
    RequestTimeout,
    SwooleError,
    WampError,
)
from .http import (
    HealthCheck,
    HttpController,
    HttpServer,
    HttpServerInterface,
    OriginCheck,
    Request,
    Router,
    StaticResponse,
)
from .hub import ClientInfo, Hub, HubError, Member, PushApi, ServerStats
from .interfaces import (
    ComponentInterface,
    ConnectionInterface,
    MessageComponentInterface,
    MessageInterface,
)
from .server import EchoServer, IoConnection, IoServer, IpBlackList
from .version import RATCHET_COMPAT, VERSION, __version__
from .websocket import WsConnection, WsServer, WsServerInterface, broadcast

__all__ = [
    "__version__",
    "VERSION",
    "RATCHET_COMPAT",
    "ComponentInterface",
    "MessageInterface",
    "MessageComponentInterface",
    "ConnectionInterface",
    "AbstractConnectionDecorator",
    "IoServer",
    "IoConnection",
    "EchoServer",
    "IpBlackList",
    "App",
    "Router",
    "OriginCheck",
    "HttpController",
    "StaticResponse",
    "HealthCheck",
    "HttpServer",
    "HttpServerInterface",
    "Request",
    "WsServer",
    "WsServerInterface",
    "WsConnection",
    "broadcast",
    "Hub",
    "HubError",
    "ClientInfo",
    "Member",
    "ServerStats",
    "PushApi",
    "RatchetError",
    "ComponentError",
    "ConfigurationError",
    "ListenError",
    "HttpError",
    "BadRequest",
    "RequestTimeout",
    "RequestHeadTooLarge",
    "HttpVersionNotSupported",
    "PushApiError",
    "WampError",
    "JsonError",
    "SwooleError",
]
