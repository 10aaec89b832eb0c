"""``HttpServerInterface``: a component that starts from an HTTP request."""

from __future__ import annotations

import abc
from typing import Any

from ..interfaces import ConnectionEvents, ConnectionInterface, MessageInterface
from .request import Request

__all__ = ["HttpServerInterface"]


class HttpServerInterface(ConnectionEvents, MessageInterface):
    """
    A component that sits above ``HttpServer``.

    Its ``on_open`` receives the parsed request head; ``on_message`` then
    receives any bytes that follow it. Router, OriginCheck, WsServer and
    plain HTTP controllers implement this interface.

    A sibling of ``MessageComponentInterface`` rather than a subclass:
    its ``on_open`` takes the request too (Ratchet makes it an optional
    argument instead, which PHP allows and type checkers do not).
    """

    needs_request = True
    """Tells ``IoServer`` to refuse this component without ``HttpServer`` below it."""

    @abc.abstractmethod
    def on_open(self, conn: ConnectionInterface, request: Request) -> Any:
        """A request head arrived on ``conn``."""

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        """Bytes after the request head (a body, or pipelined frames)."""
