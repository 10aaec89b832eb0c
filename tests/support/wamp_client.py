"""
A small WAMP v1 client for tests, over the ``websockets`` sync client: an
implementation independent of the server's (Autobahn) WebSocket code.

Ordering makes "nothing arrived" checks deterministic without timers: a
server handles one connection's messages in order and writes to other
connections synchronously, so after a *barrier* call (a CALL the server
answers, with a result or an error) has been answered, everything caused by earlier messages has
already been sent. Every server app used with ``barrier()`` must answer a
call to ``BARRIER_URI``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.timing import seconds

__all__ = ["WampClient", "BARRIER_URI"]

BARRIER_URI = "http://example.com/test#barrier"

_ids = itertools.count(1)


class WampClient:
    """
    One WAMP v1 session. Connecting reads the WELCOME message.

    Attributes:
        welcome_raw: the WELCOME message as received (text).
        welcome: the parsed WELCOME.
        session_id: the server-assigned session id.
    """

    def __init__(self, url: str, subprotocols: tuple[str, ...] = ("wamp",)) -> None:
        self._cm = connect(
            url,
            subprotocols=list(subprotocols),  # type: ignore[arg-type]
            open_timeout=seconds(5),
            close_timeout=seconds(5),
            compression=None,
            ping_interval=None,
            proxy=None,
        )
        self.ws = self._cm.__enter__()
        self.welcome_raw = self.recv()
        self.welcome = json.loads(self.welcome_raw)
        self.session_id: str = self.welcome[1]

    def send(self, message: Any, binary: bool = False) -> None:
        """Send ``message`` (a JSON value, or a ready ``str``/``bytes``)."""
        if not isinstance(message, (str, bytes)):
            message = json.dumps(message)
        if binary and isinstance(message, str):
            message = message.encode()
        self.ws.send(message)

    def recv(self, timeout: float = 5) -> str:
        """The next message, as text (fails on a binary message)."""
        message = self.ws.recv(timeout=seconds(timeout))
        assert isinstance(message, str), f"server sent a binary frame: {message!r}"
        return message

    def barrier(self) -> list[str]:
        """Make a barrier call; return the messages that arrived before its result."""
        call_id = f"barrier-{next(_ids)}"
        self.send([2, call_id, BARRIER_URI])
        before = []
        while True:
            message = self.recv()
            parsed = json.loads(message)
            if parsed[0] in (3, 4) and parsed[1] == call_id:
                return before
            before.append(message)

    def exchange(self, message: Any, binary: bool = False) -> list[str]:
        """Send ``message``; return what came back before a barrier call's result."""
        self.send(message, binary)
        return self.barrier()

    def call(self, call_id: Any, uri: str, *args: Any) -> Any:
        """Make a call and return the parsed reply (CALLRESULT or CALLERROR)."""
        self.send([2, call_id, uri, *args])
        return json.loads(self.recv())

    def expect_close(self) -> tuple[int | None, str | None]:
        """Read until the server closes; return its close frame's code and reason."""
        try:
            while True:
                self.ws.recv(timeout=seconds(5))
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return None, None
            return exc.rcvd.code, exc.rcvd.reason

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self) -> WampClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
