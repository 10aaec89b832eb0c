"""
Redis without a server: an endpoint whose connections are StringTransports,
and the RESP both sides speak, for deterministic tests on a Clock.
"""

from __future__ import annotations

from typing import Any

import hiredis
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

from tests.support.memory import Transport


def read_commands(transport: Transport) -> list[list[bytes]]:
    """The commands written to ``transport`` since the last call (then cleared)."""
    reader = hiredis.Reader()
    reader.feed(transport.value())
    transport.clear()
    commands = []
    while (command := reader.gets()) is not False:
        commands.append(command)
    return commands


def resp(value: Any) -> bytes:
    """``value`` as a RESP2 reply: bytes -> bulk, int, None -> null, list, Exception -> error, str -> status."""
    if isinstance(value, Exception):
        return b"-" + str(value).encode() + b"\r\n"
    if isinstance(value, str):
        return b"+" + value.encode() + b"\r\n"
    if isinstance(value, bool):
        raise TypeError("RESP2 has no booleans")
    if isinstance(value, int):
        return b":%d\r\n" % value
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(resp(v) for v in value)
    raise TypeError(f"no RESP for {value!r}")


class Connection:
    """One in-memory connection: the client's protocol and its transport."""

    def __init__(self, protocol: Any, transport: Transport) -> None:
        self.protocol = protocol
        self.transport = transport

    def commands(self) -> list[list[bytes]]:
        return read_commands(self.transport)

    def reply(self, *values: Any) -> None:
        """Send replies, byte by byte (as Twisted recommends for protocol tests)."""
        data = b"".join(resp(v) for v in values)
        for i in range(len(data)):
            if not self.transport.connected:
                return
            self.protocol.dataReceived(data[i : i + 1])

    def send_raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    @property
    def open(self) -> bool:
        return bool(self.transport.connected)


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """Each ``connect`` is an in-memory connection, or refused while ``refuse`` is set."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.refuse = False
        self.attempts = 0

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        self.attempts += 1
        if self.refuse:
            return defer.fail(ConnectionRefusedError("refused (test)"))
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 6379))
        transport = Transport(peerAddress=IPv4Address("TCP", "127.0.0.1", 6379))
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.connections.append(Connection(protocol, transport))
        return defer.succeed(protocol)

    @property
    def last(self) -> Connection:
        return self.connections[-1]
