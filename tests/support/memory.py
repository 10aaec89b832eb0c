"""Shared helpers for ratchetpy's tests: in-memory stacks and loopback clients."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransportWithDisconnection
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionLost
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from ratchetpy import HttpServer, IoServer, WsServer

TIMEOUT_FACTOR = float(os.environ.get("RATCHETPY_TESTS_TIMEOUT_FACTOR", "1"))


def seconds(n: float) -> float:
    """A real-time wait, stretched on slow machines by RATCHETPY_TESTS_TIMEOUT_FACTOR."""
    return n * TIMEOUT_FACTOR


class Transport(StringTransportWithDisconnection):
    """
    A StringTransport that behaves like a TCP transport where it matters:
    unregistering no producer is harmless, and an abort loses the
    connection at once.
    """

    aborted = False

    def unregisterProducer(self) -> None:
        self.producer = None

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()


class MemoryConnection:
    """
    One server-side connection of ``component`` on a StringTransport, with
    a Clock, so everything is deterministic. ``feed(data)`` delivers bytes
    one at a time, as Twisted recommends for protocol tests.
    """

    def __init__(
        self,
        component: Any,
        reactor: MemoryReactorClock | None = None,
        server: IoServer | None = None,
    ) -> None:
        if server is not None:
            reactor = server.reactor
        self.reactor = reactor or MemoryReactorClock()
        self.server = server or IoServer(component, 0, reactor=self.reactor)
        self.protocol = self.server.protocol_factory.buildProtocol(None)
        self.transport = Transport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000)
        )
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    @property
    def conn(self) -> Any:
        return self.protocol.conn

    def feed(self, data: bytes, one_byte_at_a_time: bool = True) -> None:
        if one_byte_at_a_time:
            for i in range(len(data)):
                if not self.transport.connected:
                    return
                self.transport.protocol.dataReceived(data[i : i + 1])
        else:
            self.transport.protocol.dataReceived(data)

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def lose(self, reason: Exception | None = None) -> None:
        """The peer goes away without a closing handshake."""
        self.transport.connected = False
        self.protocol.connectionLost(Failure(reason or ConnectionLost()))


class WsPeer:
    """A ``websockets`` sans-I/O client talking to a MemoryConnection."""

    def __init__(
        self,
        component: Any = None,
        *,
        stack: Any = None,
        path: str = "/",
        subprotocols: list[str] | None = None,
        reactor: MemoryReactorClock | None = None,
        one_byte_at_a_time: bool = True,
        server: IoServer | None = None,
    ) -> None:
        if stack is None:
            stack = HttpServer(WsServer(component))
        self.memory = MemoryConnection(stack, reactor, server)
        self.client = ClientProtocol(
            parse_uri(f"ws://localhost{path}"), subprotocols=subprotocols
        )
        self.one_byte_at_a_time = one_byte_at_a_time

    @property
    def reactor(self) -> MemoryReactorClock:
        return self.memory.reactor

    def pump(self) -> list[Any]:
        for data in self.client.data_to_send():
            if data:
                self.memory.feed(data, self.one_byte_at_a_time)
        received = self.memory.take()
        if received:
            self.client.receive_data(received)
        if not self.memory.transport.connected:
            self.client.receive_eof()
        return self.client.events_received()

    def handshake(self) -> Any:
        self.client.send_request(self.client.connect())
        events = self.pump()
        assert events, "no handshake response"
        return events[0]

    def open(self) -> "WsPeer":
        response = self.handshake()
        assert response.status_code == 101, response.status_code
        return self

    def send_text(self, text: str) -> list[Any]:
        self.client.send_text(text.encode())
        return self.pump()

    def send_binary(self, data: bytes) -> list[Any]:
        self.client.send_binary(data)
        return self.pump()


def text(payload: str) -> Frame:
    return Frame(Opcode.TEXT, payload.encode())


def binary(payload: bytes) -> Frame:
    return Frame(Opcode.BINARY, payload)


def ws_protocol(conn: Any) -> Any:
    """The WebSocket protocol behind ``conn`` (an ``IoConnection`` or a WebSocket view)."""
    from ratchetpy.server.io import taken_over_by
    from ratchetpy.websocket.connection import protocol_of

    return taken_over_by(conn) or protocol_of(conn)
