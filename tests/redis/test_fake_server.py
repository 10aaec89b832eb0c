"""A fake server on loopback that answers with bytes that are not RESP: a clear error, then a reconnection."""

from __future__ import annotations

from typing import Any

import hiredis
from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol

from ratchetpy.exceptions import RedisProtocolError, RedisUnavailable
from ratchetpy.redis import Backoff, RedisClient, RedisConfig
from tests.redis.test_client import RealRedisCase
from tests.support.redis import wait_for


class HalfRedis(Protocol):
    """Answers PING and CLIENT like Redis; answers GARBAGE with an HTTP error page."""

    def connectionMade(self) -> None:
        self.reader = hiredis.Reader()
        self.factory.connections += 1  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.reader.feed(data)
        while (command := self.reader.gets()) is not False:
            name = command[0].upper()
            if name == b"GARBAGE":
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            elif name == b"PING":
                self.transport.write(b"+PONG\r\n")
            else:
                self.transport.write(b"+OK\r\n")


class NotRedis(Protocol):
    """Greets every connection with an SSH banner, like a wrong port would."""

    def connectionMade(self) -> None:
        self.factory.connections += 1  # type: ignore[attr-defined]
        self.transport.write(b"SSH-2.0-OpenSSH_9.2\r\n")


class FakeServerTests(RealRedisCase):
    def serve(self, protocol: type[Protocol]) -> Any:
        factory = Factory.forProtocol(protocol)
        factory.connections = 0  # type: ignore[attr-defined]
        port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    @defer.inlineCallbacks
    def test_garbage_fails_the_waiting_commands_clearly_and_the_client_reconnects(self):
        factory, port = self.serve(HalfRedis)
        client = RedisClient(
            RedisConfig.from_url(f"redis://127.0.0.1:{port}/0?health_interval=0"),
            self.reactor,
            backoff=Backoff(0.05, 0.2),
        )
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(self.reactor, lambda: client.connected)
        waiting = [client.execute("GARBAGE"), client.execute("PING")]
        for d in waiting:
            with self.assertRaises(RedisProtocolError) as caught:
                yield d
            self.assertIn("not RESP", str(caught.exception))
        yield wait_for(self.reactor, lambda: client.connected and factory.connections == 2)
        self.assertEqual((yield client.execute("PING")), b"PONG")
        lines = self.log_lines()
        self.assertTrue(
            any("not RESP" in line and "is this port a Redis server" in line for line in lines),
            lines,
        )
        self.assertTrue(any("is back after" in line for line in lines), lines)

    @defer.inlineCallbacks
    def test_a_port_that_is_not_redis_never_becomes_usable(self):
        factory, port = self.serve(NotRedis)
        client = RedisClient(
            RedisConfig.from_url(f"redis://127.0.0.1:{port}/0?health_interval=0"),
            self.reactor,
            backoff=Backoff(0.05, 0.2),
        )
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(self.reactor, lambda: factory.connections >= 3)
        self.assertFalse(client.connected)
        with self.assertRaises(RedisUnavailable):
            yield client.execute("PING")
        unavailable = [line for line in self.log_lines() if "unavailable" in line]
        self.assertEqual(len(unavailable), 1, unavailable)
        self.assertIn("not RESP", unavailable[0])
