"""
In-process microbenchmark of what the Redis backplane costs a node per
message, without sockets or Redis: the figures behind the sizing estimate
in BENCHMARKS.md.

    python bench/micro_backplane.py

- **publish**: ``hub.publish(channel, 100 B, count=False)`` on a hub with
  no local member and a ``RedisBackplane`` whose client is a stub that
  accepts the PUBLISH at once: framing the message once, the envelope,
  the backplane's bookkeeping (the socket write is not included).
- **receive**: ``RedisBackplane._on_channel_message`` (what the subscriber
  calls for each message Redis delivers) for a channel with 0 and with 10
  local members on in-memory transports: decoding the envelope, framing
  once, delivering (the socket read and RESP parsing are not included).

Best of 7 timings of 20,000 messages each.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.hub.envelope import Envelope
from ratchetpy.hub.redis_backplane import RedisBackplane

N = 20_000
PAYLOAD = b"m" * 100
HANDSHAKE = (
    b"GET /sub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class StubClient(Service):
    """Accepts every command at once (one subscriber reached)."""

    on_usable: Any = None

    def publish(self, name: str, data: bytes) -> defer.Deferred[int]:
        return defer.succeed(1)

    def execute(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.succeed(0)

    def evalsha_or_eval(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.succeed(0)


class StubSubscriber(Service):
    def subscribe(self, *args: Any, **kwargs: Any) -> defer.Deferred[None]:
        return defer.succeed(None)

    def unsubscribe(self, *args: Any, **kwargs: Any) -> defer.Deferred[None]:
        return defer.succeed(None)

    def is_subscribed(self, *args: Any, **kwargs: Any) -> bool:
        return False


class Join:
    register_with_hub = True

    def on_open(self, conn: Any) -> None:
        conn.hub.join(conn, "room")

    def on_message(self, conn: Any, msg: Any) -> None:
        pass

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        pass


def best(fn: Any, after: Any = None) -> float:
    result = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(N):
            fn()
        result = min(result, time.perf_counter() - start)
        if after is not None:
            after()
    return result / N * 1e6


def node(members: int) -> tuple[Any, RedisBackplane, list[StringTransport]]:
    reactor = MemoryReactorClock()
    ws = WsServer(Join(), log_connections=False)
    server = IoServer(HttpServer(ws), 0, reactor=reactor)
    backplane = RedisBackplane(
        ws.hub, "redis://127.0.0.1:1/0", reactor, client=StubClient(), subscriber=StubSubscriber()
    )
    transports = []
    for i in range(members):
        protocol = server.protocol_factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1000 + i))
        protocol.makeConnection(transport)
        protocol.dataReceived(HANDSHAKE)
        transport.clear()
        transports.append(transport)
    return ws.hub, backplane, transports


def main() -> None:
    hub, backplane, _ = node(0)
    publish = best(lambda: hub.publish("room", PAYLOAD, count=False))
    print(f"publish (no local member, stub Redis client): {publish:.2f} us/publication")
    for members in (0, 10):
        us, delivered = receive_cost(members)
        print(f"receive, {members} local members: {us:.2f} us/message"
              f" ({delivered} bytes framed per message over all members)")


def receive_cost(members: int) -> tuple[float, int]:
    """µs per message from Redis for a channel with ``members`` local members,
    and the bytes one message puts on their transports."""
    other = Envelope("pub", "0123456789ab", {"c": "room", "o": 2}, PAYLOAD).encode()
    hub, backplane, transports = node(members)
    assert len(hub.local_members("room")) == members

    def receive() -> None:
        backplane._on_channel_message(b"ratchetpy:ch:{room}", other)

    def clear() -> None:
        for t in transports:
            t.clear()

    receive()
    delivered = sum(len(t.value()) for t in transports)
    clear()
    return best(receive, clear), delivered


if __name__ == "__main__":
    main()
