"""
The in-memory stack: a server-side connection on a StringTransport with a
Clock (``MemoryConnection``), a ``websockets`` sans-I/O client talking to it
(``WsPeer``), and shortcuts for the common exchanges.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransportWithDisconnection,
)
from twisted.python.failure import Failure
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.http.interfaces import HttpServerInterface
from ratchetpy.testing import RecordingComponent
from tests.support.wire import handshake_request


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
    ``transport_class`` replaces the transport (e.g. one whose peer stops reading);
    ``peer`` the client's address (default 127.0.0.1).
    """

    def __init__(
        self,
        component: Any,
        reactor: MemoryReactorClock | None = None,
        server: IoServer | None = None,
        *,
        transport_class: type[Transport] = Transport,
        peer: IPv4Address | IPv6Address | None = None,
    ) -> None:
        if server is not None:
            reactor = server.reactor
        self.reactor = reactor or MemoryReactorClock()
        self.server = server or IoServer(component, 0, reactor=self.reactor)
        self.protocol = self.server.protocol_factory.buildProtocol(None)
        self.transport = transport_class(peerAddress=peer or IPv4Address("TCP", "127.0.0.1", 40000))
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
        peer: IPv4Address | IPv6Address | None = None,
    ) -> None:
        if stack is None and server is None:
            stack = HttpServer(WsServer(component))
        self.memory = MemoryConnection(stack, reactor, server, peer=peer)
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

    def open(self) -> WsPeer:
        response = self.handshake()
        assert response.status_code == 101, response.status_code
        return self

    def send_text(self, text: str) -> list[Any]:
        self.client.send_text(text.encode())
        return self.pump()

    def send_binary(self, data: bytes) -> list[Any]:
        self.client.send_binary(data)
        return self.pump()


def text_event(payload: str) -> Frame:
    """The text ``Frame`` a ``WsPeer`` reports receiving (not wire bytes: see tests.support.wire)."""
    return Frame(Opcode.TEXT, payload.encode())


def binary_event(payload: bytes) -> Frame:
    """The binary ``Frame`` a ``WsPeer`` reports receiving (not wire bytes: see tests.support.wire)."""
    return Frame(Opcode.BINARY, payload)


def ws_protocol(conn: Any) -> Any:
    """The WebSocket protocol behind ``conn`` (an ``IoConnection`` or a WebSocket view)."""
    from ratchetpy.server.io import taken_over_by
    from ratchetpy.websocket.connection import protocol_of

    return taken_over_by(conn) or protocol_of(conn)


def http_exchange(stack: Any, raw: bytes) -> tuple[bytes, MemoryConnection]:
    """Feed ``raw`` to ``HttpServer(stack)`` in one read; what it wrote, and the connection."""
    memory = MemoryConnection(HttpServer(stack))
    memory.feed(raw, one_byte_at_a_time=False)
    return memory.take(), memory


def open_memory(component: Any = None, **ws_options: Any) -> MemoryConnection:
    """
    A connection of ``HttpServer(WsServer(component, **ws_options))`` that
    has completed the handshake (the 101 already taken). Connection logging
    is off unless ``log_connections`` is given.
    """
    ws_options.setdefault("log_connections", False)
    memory = MemoryConnection(HttpServer(WsServer(component or RecordingComponent(), **ws_options)))
    memory.feed(handshake_request(), one_byte_at_a_time=False)
    assert memory.take().startswith(b"HTTP/1.1 101 ")
    return memory


class HttpRecorder(HttpServerInterface):
    """An HTTP controller recording what it gets as ``events``; ``fail_open`` raises in on_open."""

    def __init__(self, fail_open: bool = False) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.fail_open = fail_open

    def on_open(self, conn: Any, request: Any) -> None:
        self.events.append(("open", request))
        if self.fail_open:
            raise RuntimeError("boom")

    def on_message(self, conn: Any, msg: Any) -> None:
        self.events.append(("message", msg))

    def on_close(self, conn: Any) -> None:
        self.events.append(("close",))

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.events.append(("error", exc))
        conn.close()
