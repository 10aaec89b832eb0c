# -*- test-case-name: tests.test_broadcast -*-
"""
``broadcast(connections, message)``: one message to many connections,
encoded and framed once.

Connections that are closing are skipped; a connection that negotiated
compression gets its own compressed frame; anything that is not a
WebSocket connection (a raw TCP ``IoConnection``, a test double) gets
``send(message)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._engine import STATE_OPEN
from .frames import OP_BINARY, OP_TEXT, encode_frame

__all__ = ["broadcast"]


def broadcast(connections: Iterable[Any], message: str | bytes) -> int:
    """
    Send ``message`` to each of ``connections``; return how many it went to.

    ``str`` is sent as a text message and ``bytes`` as binary, as with
    ``conn.send()``.
    """
    if isinstance(message, str):
        payload, opcode = message.encode("utf-8"), OP_TEXT
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload, opcode = bytes(message), OP_BINARY
    else:
        raise TypeError(f"broadcast() takes str or bytes, not {type(message).__name__}")
    frame: bytes | None = None
    count = 0
    for conn in connections:
        protocol = getattr(conn, "_ws", None)
        if protocol is None:
            if not getattr(conn, "closing", False):
                conn.send(message)
                count += 1
            continue
        if protocol.state != STATE_OPEN:
            continue
        if protocol._perMessageCompress is None:
            if frame is None:
                frame = encode_frame(opcode, payload)
            protocol.send_frame_bytes(frame)
        else:
            protocol.send_message(message)
        count += 1
    return count
