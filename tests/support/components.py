"""
Server components for tests that only care about one handler.

``Quiet`` does nothing on any event; a test subclasses it and overrides
the handler it needs (``on_open`` usually). ``ClosesOnError`` closes the
connection with 1011 when a handler fails, so a bug in a test component
shows up as a close code instead of a silent connection.
"""

from __future__ import annotations

from typing import Any

from ratchetpy.interfaces import MessageComponentInterface


class Quiet(MessageComponentInterface):
    """A component that ignores every event."""

    def on_open(self, conn: Any) -> None:
        pass

    def on_message(self, conn: Any, msg: Any) -> None:
        pass

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        pass


class ClosesOnError(Quiet):
    """Like ``Quiet``, but a handler's error closes the connection with 1011."""

    def on_error(self, conn: Any, exc: Exception) -> None:
        conn.close(1011)
