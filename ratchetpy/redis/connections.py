# -*- test-case-name: tests.redis.test_cluster_map -*-
"""
``connections(config, reactor, ...)``: the command client and the pub/sub
subscriber a config calls for: ``RedisClient`` and ``Subscriber`` for one
server, ``RedisClusterClient`` and ``ClusterSubscriber`` (sharing its slot
map) for a Redis Cluster (``redis+cluster://``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .client import RedisClient
from .cluster import CommandClient, RedisClusterClient
from .cluster_pubsub import ClusterSubscriber
from .pubsub import Subscriber
from .url import RedisConfig

__all__ = ["connections", "AnySubscriber"]

AnySubscriber = Subscriber | ClusterSubscriber
"""What the backplane subscribes through: one server or a cluster."""


def connections(
    config: RedisConfig,
    reactor: Any,
    *,
    on_reconnect: Callable[[float], object] | None = None,
    on_disconnect: Callable[[str], object] | None = None,
    client: CommandClient | None = None,
    subscriber: AnySubscriber | None = None,
) -> tuple[CommandClient, AnySubscriber]:
    """The command client and subscriber for ``config`` (given ones are kept)."""
    if client is None:
        client = RedisClusterClient(config, reactor) if config.cluster else RedisClient(config, reactor)
    if subscriber is None:
        hooks: dict[str, Any] = {"on_reconnect": on_reconnect, "on_disconnect": on_disconnect}
        if isinstance(client, RedisClusterClient):
            subscriber = ClusterSubscriber(client, **hooks)
        else:
            subscriber = Subscriber(config, reactor, **hooks)
    return client, subscriber
