"""
A plain Autobahn echo server (no ratchetpy code), in the test's reactor or
as a separate process: ``python -m tests.support.autobahn_server PORT``
prints "listening" once it accepts connections.

It speaks the subprotocol ``echo.v1`` when offered, and accepts clients
that offer none; it refuses ``/deny`` with ``403 no entry here`` (a status line, no body).
"""

from __future__ import annotations

import sys
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny


class EchoProtocol(WebSocketServerProtocol):
    def onConnect(self, request: Any) -> Any:
        if request.path == "/deny":
            raise ConnectionDeny(403, "no entry here")
        return "echo.v1" if "echo.v1" in request.protocols else None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def echo_factory(reactor: Any) -> WebSocketServerFactory:
    factory = WebSocketServerFactory(reactor=reactor)
    factory.protocol = EchoProtocol
    return factory


def listen(reactor: Any, port: int = 0) -> Any:
    """Listen on 127.0.0.1:``port``; the listening port."""
    return reactor.listenTCP(port, echo_factory(reactor), interface="127.0.0.1")


if __name__ == "__main__":
    from twisted.internet import reactor

    listen(reactor, int(sys.argv[1]))
    reactor.callWhenRunning(lambda: print("listening", flush=True))
    reactor.run()
