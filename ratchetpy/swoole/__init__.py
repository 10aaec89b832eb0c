"""
A Swoole-style server API, for code written as ``$server->on('message', ...)``.

.. code-block:: python

    from ratchetpy.swoole import Server

    ws_server = Server("0.0.0.0", 9501)

    @ws_server.on("message")
    def on_message(ws, frame):
        ws.push(frame.fd, "hello, " + frame.data + " !")

    ws_server.start()

A small facade on ratchetpy's own stack and hub (``ratchetpy.swoole.server``):
``open``/``message``/``close`` handlers, ``request`` for plain HTTP on the
same port (``ratchetpy.swoole.http``), ``push``/``exist``/``is_established``/
``disconnect``/``get_client_info``/``stats``, ``tick``/``after`` in
milliseconds (``ratchetpy.swoole.timers``), ``task`` in a thread, and
``set()`` with Swoole's setting names (``ratchetpy.swoole.settings``).
Connection ids (``fd``) are ratchetpy's string ``conn.id``, not ints.
"""

from ..exceptions import SwooleError
from .events import (
    WEBSOCKET_OPCODE_BINARY,
    WEBSOCKET_OPCODE_CLOSE,
    WEBSOCKET_OPCODE_PING,
    WEBSOCKET_OPCODE_PONG,
    WEBSOCKET_OPCODE_TEXT,
    WEBSOCKET_STATUS_ACTIVE,
    WEBSOCKET_STATUS_CLOSING,
    Frame,
)
from .http import Request, Response
from .server import EVENTS, Server
from .settings import NOT_APPLICABLE, SETTINGS

__all__ = [
    "Server",
    "Frame",
    "Request",
    "Response",
    "SwooleError",
    "EVENTS",
    "SETTINGS",
    "NOT_APPLICABLE",
    "WEBSOCKET_OPCODE_TEXT",
    "WEBSOCKET_OPCODE_BINARY",
    "WEBSOCKET_OPCODE_CLOSE",
    "WEBSOCKET_OPCODE_PING",
    "WEBSOCKET_OPCODE_PONG",
    "WEBSOCKET_STATUS_ACTIVE",
    "WEBSOCKET_STATUS_CLOSING",
]
