"""Ratchet's ``Ratchet\\Http`` namespace: the HTTP layer under WebSocket."""

from .interfaces import HttpServerInterface
from .request import Headers, Request, parse_request_head
from .response import close_response
from .server import HttpServer

__all__ = [
    "HttpServer",
    "HttpServerInterface",
    "Headers",
    "Request",
    "parse_request_head",
    "close_response",
]
