"""
The server's side of an in-memory client connection: an endpoint that
hands the client protocol a StringTransport, and helpers that answer the
handshake and read and write frames, so tests drive everything with a Clock.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError

from tests.support.memory import Transport

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeEndpoint:
    """``connect(factory)`` fails ``refuse`` times, then connects in memory."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.attempts = 0
        self.peers: list[FakePeer] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        self.attempts += 1
        if self.refuse > 0:
            self.refuse -= 1
            return fail(ConnectionRefusedError())
        protocol = factory.buildProtocol(None)
        transport = Transport(peerAddress=IPv4Address("TCP", "127.0.0.1", 9999))
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.peers.append(FakePeer(protocol, transport))
        return succeed(protocol)

    @property
    def peer(self) -> FakePeer:
        return self.peers[-1]


class FakePeer:
    """The server end of one in-memory connection."""

    def __init__(self, protocol: Any, transport: Transport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.read_offset = 0

    def request(self) -> bytes:
        return self.transport.value().split(b"\r\n\r\n", 1)[0]

    def accept(self, extra: bytes = b"") -> None:
        key = next(
            line.split(b":", 1)[1].strip()
            for line in self.request().split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.read_offset = len(self.transport.value())
        self.protocol.dataReceived(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n" + extra + b"\r\n"
        )

    def send(self, opcode: int, payload: bytes = b"") -> None:
        assert len(payload) < 126
        self.protocol.dataReceived(bytes([0x80 | opcode, len(payload)]) + payload)

    def frames(self) -> list[tuple[int, bytes]]:
        """The client's frames written since the handshake (unmasked), and consumes them."""
        data = self.transport.value()[self.read_offset :]
        self.read_offset = len(self.transport.value())
        out = []
        while data:
            opcode = data[0] & 0x0F
            length = data[1] & 0x7F
            at = 2
            if length == 126:
                (length,) = struct.unpack(">H", data[2:4])
                at = 4
            elif length == 127:
                (length,) = struct.unpack(">Q", data[2:10])
                at = 10
            mask = data[at : at + 4]
            at += 4
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[at : at + length]))
            out.append((opcode, payload))
            data = data[at + length :]
        return out
