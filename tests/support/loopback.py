"""Helpers for tests on real loopback sockets with the global reactor."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor, threads
from twisted.internet.protocol import Factory
from twisted.internet.testing import waitUntilAllDisconnected

from ratchetpy import IoServer


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


__all__ = ["Served", "in_thread", "Factory"]
