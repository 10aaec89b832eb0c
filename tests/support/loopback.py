"""Helpers for tests on real loopback sockets with the global reactor."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer, reactor, threads
from twisted.internet.testing import waitUntilAllDisconnected

from ratchetpy import IoServer
from tests.support.wire import handshake_request


class Served:
    """
    A component served by IoServer on 127.0.0.1, port 0, tracking the
    server-side protocols so a test can wait until all are disconnected.
    """

    def __init__(self, component: Any) -> None:
        self.server = IoServer(component, "tcp:0:interface=127.0.0.1", reactor=reactor)
        self.protocols: list[Any] = []
        build = self.server.protocol_factory.buildProtocol

        def tracking(addr: Any) -> Any:
            protocol = build(addr)
            self.protocols.append(protocol)
            return protocol

        self.server.protocol_factory.buildProtocol = tracking  # type: ignore[method-assign]

    @defer.inlineCallbacks
    def start(self) -> Any:
        port = yield self.server.listen()
        self.port = port.getHost().port
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @defer.inlineCallbacks
    def stop(self) -> Any:
        yield waitUntilAllDisconnected(reactor, self.protocols)
        yield self.server.stopService()


def in_thread(function: Any, *args: Any) -> defer.Deferred[Any]:
    """Run a blocking client (websockets' sync client, raw sockets) off the reactor."""
    return threads.deferToThread(function, *args)


def raw_ws_client(port: int) -> socket.socket:
    """A blocking raw-socket client that completes the handshake on 127.0.0.1 and reads nothing more."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(handshake_request())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def assert_silent(ws: Any, wait: float = 0.3) -> None:
    """Fail if the ``websockets`` sync client ``ws`` receives anything within ``wait`` seconds."""
    try:
        extra = ws.recv(timeout=wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {extra!r}")


def start_app(case: Any, app: Any) -> int:
    """Start ``app`` (an ``App`` on port 0) for a trial test ``case``; stopped at cleanup. Its port."""

    def stop() -> Any:
        return app.stopService() if app.running else None

    app.privilegedStartService()
    app.startService()
    case.addCleanup(stop)
    return int(app.servers[0].port.getHost().port)
