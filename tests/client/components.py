"""A client component that records what happens, with Deferreds to wait on."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred


class Recorder:
    """Records on_open/on_message/on_close/on_error; ``next_message()`` waits for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.messages: list[str | bytes] = []
        self.opens = 0
        self.closes: list[Any] = []
        self.errors: list[Exception] = []
        self._waiting: list[tuple[str, Deferred[Any]]] = []

    def _fire(self, kind: str, value: Any) -> None:
        due = [d for want, d in self._waiting if want == kind]
        self._waiting = [(want, d) for want, d in self._waiting if want != kind]
        for d in due:
            d.callback(value)

    def wait(self, kind: str, reactor: Any, timeout: float = 10) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self._waiting.append((kind, d))
        return d.addTimeout(timeout, reactor)

    def on_open(self, conn: Any) -> None:
        self.opens += 1
        self.events.append(("open", conn))
        self._fire("open", conn)

    def on_message(self, conn: Any, msg: str | bytes) -> None:
        self.messages.append(msg)
        self.events.append(("message", msg))
        self._fire("message", msg)

    def on_close(self, conn: Any) -> None:
        self.closes.append((conn.close_code, conn.close_reason, conn.close_error))
        self.events.append(("close", conn))
        self._fire("close", conn)

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.errors.append(exc)
        self.events.append(("error", exc))
