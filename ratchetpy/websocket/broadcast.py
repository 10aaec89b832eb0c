# -*- test-case-name: tests.websocket.test_broadcast -*-
"""
``broadcast(connections, message)``: one message to many connections,
encoded and framed once.

Connections that are closing are skipped; a connection that negotiated
compression gets its own compressed frame; anything that is not a
WebSocket connection (a raw TCP ``IoConnection``, a test double) gets
``send(message)``.

``broadcast`` is ``deliver(connections, prepare(message))``. A cross-process
backplane (Redis pub/sub, for servers that outgrow one process) slots in
between the two without changing ``broadcast``'s signature: publish the
``PreparedMessage``'s ``message`` to the other processes, each of which calls
``deliver`` on its own local subscribers.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..interfaces import ConnectionInterface
from ._engine import STATE_OPEN
from .connection import protocol_of
from .frames import OP_BINARY, OP_TEXT, encode_frame

__all__ = ["broadcast", "prepare", "deliver", "PreparedMessage"]


class PreparedMessage:
    """A message encoded and framed once for any number of receivers."""

    __slots__ = ("message", "payload", "opcode", "frame")

    def __init__(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.payload, self.opcode = message.encode("utf-8"), OP_TEXT
        elif isinstance(message, (bytes, bytearray, memoryview)):
            message = bytes(message)
            self.payload, self.opcode = message, OP_BINARY
        else:
            raise TypeError(f"broadcast() takes str or bytes, not {type(message).__name__}")
        self.message = message
        self.frame = encode_frame(self.opcode, self.payload)


def prepare(message: str | bytes | PreparedMessage) -> PreparedMessage:
    """Encode and frame ``message`` once (``str``: text, ``bytes``: binary)."""
    return message if isinstance(message, PreparedMessage) else PreparedMessage(message)


def deliver(connections: Iterable[ConnectionInterface], prepared: PreparedMessage) -> int:
    """Send a prepared message to each open connection; return how many it went to."""
    frame = prepared.frame
    count = 0
    for conn in connections:
        protocol = protocol_of(conn)
        if protocol is None:
            if not getattr(conn, "closing", False):
                conn.send(prepared.message)
                count += 1
            continue
        if protocol.state != STATE_OPEN:
            continue
        count += 1
        if not protocol.compressed:
            # the same frame for everyone: written straight to the socket
            # when possible (see WsServerProtocol.send_frame_bytes)
            protocol.send_frame_bytes(frame)
        else:
            protocol.send_message(prepared.message)
    return count


def broadcast(connections: Iterable[ConnectionInterface], message: str | bytes) -> int:
    """
    Send ``message`` to each of ``connections``; return how many it went to.

    ``str`` is sent as a text message and ``bytes`` as binary, as with
    ``conn.send()``.
    """
    return deliver(connections, prepare(message))
