"""``EchoServer``: sends every message back to its sender."""

from __future__ import annotations

from ..interfaces import ConnectionInterface, MessageComponentInterface

__all__ = ["EchoServer"]


class EchoServer(MessageComponentInterface):
    """
    Echo each message to the connection it came from.

    Over WebSocket, text comes back as text and binary as binary (Ratchet
    turns binary into text). On error the connection is closed.
    """

    def on_open(self, conn: ConnectionInterface) -> None:
        pass

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        conn.send(msg)

    def on_close(self, conn: ConnectionInterface) -> None:
        pass

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        conn.close()
