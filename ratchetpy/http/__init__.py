"""Ratchet's ``Ratchet\\Http`` namespace: the HTTP layer under WebSocket."""

from .controllers import HealthCheck, HttpController, StaticResponse
from .interfaces import HttpServerInterface
from .origin import OriginCheck
from .request import Headers, Request, parse_request_head
from .response import close_response
from .router import Route, Router
from .server import HttpServer

__all__ = [
    "HttpServer",
    "HttpServerInterface",
    "Headers",
    "Request",
    "parse_request_head",
    "close_response",
    "Router",
    "Route",
    "OriginCheck",
    "HttpController",
    "StaticResponse",
    "HealthCheck",
]
