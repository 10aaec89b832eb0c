# -*- test-case-name: tests.test_tap -*-
"""
The components ``twistd ratchetpy`` serves without any code: ``chat`` and
``echo``, and the browser page that talks to the chat.

``twistd -n ratchetpy --route /chat`` serves :class:`Chat` at ``/chat`` and
:func:`demo_page` at ``/``: open it in two browser tabs and type.
"""

from __future__ import annotations

import json
from importlib import resources

from twisted.logger import Logger

from .http.controllers import StaticResponse
from .interfaces import ConnectionInterface, MessageComponentInterface
from .server.echo import EchoServer

__all__ = ["Chat", "EchoServer", "BUILTINS", "demo_page", "DEMO_PAGE_PLACEHOLDER"]

_log = Logger(namespace="ratchetpy.builtins")

DEMO_PAGE_PLACEHOLDER = "__RATCHETPY_WS_PATH__"


class Chat(MessageComponentInterface):
    """
    The socketo.me tutorial chat: each message goes to every other client.

    Text stays text and binary stays binary.
    """

    def __init__(self) -> None:
        self.clients: set[ConnectionInterface] = set()

    def on_open(self, conn: ConnectionInterface) -> None:
        self.clients.add(conn)

    def on_message(self, from_: ConnectionInterface, msg: str | bytes) -> None:
        for client in self.clients:
            if client is not from_:
                client.send(msg)

    def on_close(self, conn: ConnectionInterface) -> None:
        self.clients.discard(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        _log.error(
            "Chat: error on #{rid}: {error!r}; closing it",
            rid=getattr(conn, "resource_id", None),
            error=exc,
        )
        conn.close(1011)


BUILTINS: dict[str, type] = {"chat": Chat, "echo": EchoServer}
"""Components ``--route /name`` can serve by name."""


def demo_page(ws_path: str = "/chat") -> StaticResponse:
    """
    The browser chat page, talking to the chat at ``ws_path`` on the same
    host and port (``ws://`` or ``wss://`` as the page was loaded).
    """
    template = resources.files("ratchetpy").joinpath("static/chat.html").read_text("utf-8")
    # json.dumps gives a JS string literal; escape '<' so no '</script>' can close the tag.
    literal = json.dumps(ws_path).replace("<", "\\u003c")
    body = template.replace(DEMO_PAGE_PLACEHOLDER, literal)
    return StaticResponse(
        body,
        "text/html; charset=utf-8",
        headers=[("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")],
    )
