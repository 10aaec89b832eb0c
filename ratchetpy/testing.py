"""
Test doubles for applications built on ratchetpy (and for ratchetpy's own
tests): a fake connection to drive a component without any network, and a
component that records what it was told.

    from ratchetpy.testing import FakeConnection

    def test_chat_relays():
        chat, a, b = Chat(), FakeConnection(), FakeConnection()
        chat.on_open(a); chat.on_open(b)
        chat.on_message(a, "hi")
        assert b.sent == ["hi"] and a.sent == []
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from .interfaces import ConnectionInterface, MessageComponentInterface
from .server.ids import new_connection_id
from .websocket.frames import is_valid_close_code

if TYPE_CHECKING:
    from .http.request import Request

__all__ = ["FakeConnection", "RecordingComponent"]

_ids = itertools.count(1_000_000)


class FakeConnection(ConnectionInterface):
    """
    A connection that records instead of sending.

    Attributes:
        sent: every message passed to ``send()`` while open, in order.
        close_code: the code given to ``close()``, or ``None`` while open.
    """

    def __init__(self, remote_address: str = "127.0.0.1", **attributes: Any) -> None:
        self.resource_id = next(_ids)
        self.id = new_connection_id()
        self.remote_address = remote_address
        self.http_request: Request | None = None
        self.sent: list[str | bytes] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        for name, value in attributes.items():
            setattr(self, name, value)

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def send(self, data: str | bytes) -> FakeConnection:
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        if self.close_code is None:
            self.sent.append(data)
        return self

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not is_valid_close_code(code):
            raise ValueError(f"invalid close code {code!r}")
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason


class RecordingComponent(MessageComponentInterface):
    """
    A component that records every event as a tuple in ``events``:
    ``("open", conn)``, ``("message", conn, msg)``, ``("close", conn)``,
    ``("error", conn, exc)``.

    Args:
        echo: send each message back to its sender.
        raise_on_message: raise this exception from ``on_message``.
        close_on_error: close the connection from ``on_error``.
    """

    def __init__(
        self,
        *,
        echo: bool = False,
        raise_on_message: Exception | None = None,
        close_on_error: bool = False,
    ) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.echo = echo
        self.raise_on_message = raise_on_message
        self.close_on_error = close_on_error

    def kinds(self) -> list[str]:
        """The event names in order, e.g. ``["open", "message", "close"]``."""
        return [event[0] for event in self.events]

    def messages(self) -> list[str | bytes]:
        """The messages received, in order."""
        return [event[2] for event in self.events if event[0] == "message"]

    def on_open(self, conn: ConnectionInterface) -> None:
        self.events.append(("open", conn))

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        self.events.append(("message", conn, msg))
        if self.raise_on_message is not None:
            raise self.raise_on_message
        if self.echo:
            conn.send(msg)

    def on_close(self, conn: ConnectionInterface) -> None:
        self.events.append(("close", conn))

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        self.events.append(("error", conn, exc))
        if self.close_on_error:
            conn.close()
