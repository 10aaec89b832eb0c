"""
ratchetpy: PHP's Ratchet WebSocket framework, ported to Python on Twisted
and Autobahn.

The names a ported Ratchet application needs are importable from here::

    from ratchetpy import (
        MessageComponentInterface, IoServer, HttpServer, WsServer,
    )
"""

from .connection import AbstractConnectionDecorator
from .exceptions import (
    BadRequest,
    ComponentError,
    ConfigurationError,
    HttpError,
    HttpVersionNotSupported,
    JsonError,
    RatchetError,
    RequestHeadTooLarge,
    RequestTimeout,
    WampError,
)
from .http import HttpServer, HttpServerInterface, Request
from .interfaces import (
    ComponentInterface,
    ConnectionInterface,
    MessageComponentInterface,
    MessageInterface,
)
from .server import EchoServer, IoConnection, IoServer
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
    "HttpServer",
    "HttpServerInterface",
    "Request",
    "WsServer",
    "WsServerInterface",
    "WsConnection",
    "broadcast",
    "RatchetError",
    "ComponentError",
    "ConfigurationError",
    "HttpError",
    "BadRequest",
    "RequestTimeout",
    "RequestHeadTooLarge",
    "HttpVersionNotSupported",
    "WampError",
    "JsonError",
]
