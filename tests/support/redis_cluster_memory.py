"""
A Redis Cluster without servers: one ``MemoryEndpoint`` per node address,
and the ``CLUSTER SHARDS`` replies the tests feed the client, on a Clock.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from ratchetpy.redis import Backoff, RedisConfig
from ratchetpy.redis.cluster import RedisClusterClient
from tests.support.redis_memory import Connection, MemoryEndpoint

__all__ = ["FakeCluster", "shards", "THREE"]

Address = tuple[str, int]

THREE = ((7001, 0, 5460), (7002, 5461, 10922), (7003, 10923, 16383))
"""The usual three primaries on 127.0.0.1: port, first slot, last slot."""


def shards(*primaries: tuple[int, int, int], failed: tuple[int, ...] = ()) -> list[Any]:
    """A CLUSTER SHARDS reply (RESP2) for ``(port, first slot, last slot)`` primaries."""
    out = []
    for port, start, end in primaries:
        node = [b"id", b"%040d" % port, b"port", port, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1",
                b"role", b"master", b"replication-offset", 0,
                b"health", b"fail" if port in failed else b"online"]  # fmt: skip
        out.append([b"slots", [start, end], b"nodes", [node]])
    return out


class FakeCluster:
    """A started ``RedisClusterClient`` whose nodes are in-memory connections."""

    def __init__(self, seeds: str = "127.0.0.1:7001", **options: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoints: dict[Address, MemoryEndpoint] = {}
        config = RedisConfig.from_url(f"redis+cluster://{seeds}?health_interval=0&client_name=&timeout=5")
        self.client = RedisClusterClient(
            config,
            self.reactor,
            endpoint_for=self.endpoint,
            # random() = 1.0: every wait is its ceiling, so the test knows when attempts happen
            backoff=lambda: Backoff(1.0, 8.0, 2.0, random=lambda: 1.0),
            refresh_interval=0,
            **options,
        )

    def endpoint(self, address: Address) -> MemoryEndpoint:
        return self.endpoints.setdefault(address, MemoryEndpoint())

    def conn(self, port: int, index: int = 0) -> Connection:
        """The ``index``th connection made to 127.0.0.1:``port``."""
        return self.endpoints[("127.0.0.1", port)].connections[index]

    def last(self, port: int) -> Connection:
        return self.endpoints[("127.0.0.1", port)].last

    def set_up(self, connection: Connection) -> None:
        """Answer a new connection's setup PING."""
        assert connection.commands() == [[b"PING"]]
        connection.reply("PONG")

    def start(self, reply: list[Any] | None = None, connected: bool = True) -> FakeCluster:
        """Start; the seed answers CLUSTER SHARDS with ``reply`` (default THREE); all nodes up."""
        self.client.startService()
        seed = self.conn(7001)
        self.set_up(seed)
        self.reactor.advance(0)  # the refresh the first usable node asks for
        assert seed.commands() == [[b"CLUSTER", b"SHARDS"]]
        seed.reply(reply if reply is not None else shards(*THREE))
        for address, endpoint in self.endpoints.items():
            if address != ("127.0.0.1", 7001):
                self.set_up(endpoint.last)
        assert self.client.connected == connected
        return self
