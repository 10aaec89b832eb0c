"""``HttpServerInterface``: a component that starts from an HTTP request."""

from __future__ import annotations

import abc
from typing import Any

from ..interfaces import MessageComponentInterface
from .request import Request

__all__ = ["HttpServerInterface"]


class HttpServerInterface(MessageComponentInterface):
    """
    A component that sits above ``HttpServer``.

    Its ``on_open`` receives the parsed request head; ``on_message`` then
    receives any bytes that follow it. Router, OriginCheck, WsServer and
    plain HTTP controllers implement this interface.
    """

    @abc.abstractmethod
    def on_open(self, conn: Any, request: Request) -> None:  # type: ignore[override]
        """A request head arrived on ``conn``."""

    def on_message(self, conn: Any, msg: Any) -> None:
        """Bytes after the request head (a body, or pipelined frames)."""
