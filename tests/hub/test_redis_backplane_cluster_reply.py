"""
A backplane given a plain URL of a Redis Cluster node: cluster
redirections (MOVED, ASK, CROSSSLOT) are named as such, in one error line
saying to use redis+cluster://, apart from outages.
Fakes for the client and subscriber (``tests/hub/test_relay.py``).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import fail, succeed
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from ratchetpy.exceptions import RedisReplyError, RedisUnavailable
from tests.hub.test_relay import redis_hub

__all__ = ["redis_hub"]


def test_a_moved_reply_is_logged_once_as_a_cluster_node_not_as_an_outage(redis_hub: Any) -> None:
    hub, backplane, _, client = redis_hub
    backplane.startService()
    client.evalsha_or_eval = lambda *args, **kwargs: fail(
        RedisReplyError("MOVED 9928 127.0.0.1:17002")
    )
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        backplane.refresh()
        backplane.refresh()
        client.evalsha_or_eval = lambda *args, **kwargs: fail(
            RedisUnavailable("Redis at 127.0.0.1:1 is unavailable")
        )
        backplane.refresh()
    finally:
        globalLogPublisher.removeObserver(logged.append)
    texts = [
        (e["log_level"], e.get("log_format", ""))
        for e in logged
        if e.get("log_namespace") == "ratchetpy.hub.redis"
    ]
    cluster = [level for level, text in texts if "this is a Redis Cluster node: use {suggested}" in text]
    assert cluster == [LogLevel.error]
    said = [formatEvent(e) for e in logged if "Redis Cluster node" in e.get("log_format", "")]
    assert "use redis+cluster://" in said[0], said
    # an outage afterwards is still reported as one
    assert [level for level, text in texts if "degraded" in text] == [LogLevel.warn]
    assert backplane.counters["failures"] >= 3


def test_redis_is_back_only_once_both_connections_are_and_an_outage_is_one_line(
    redis_hub: Any,
) -> None:
    # Seen in CI: the pubsub connection came back first, the backplane said
    # "back", and the next presence write on the still-down commands
    # connection logged a second "degraded" line for the same outage.
    hub, backplane, subscriber, client = redis_hub
    backplane.startService()
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        client.evalsha_or_eval = lambda *args, **kwargs: fail(
            RedisUnavailable("Redis at 127.0.0.1:1 is unavailable")
        )
        client.connected = subscriber.connected = False
        backplane.refresh()
        subscriber.connected = True
        backplane._reconnected(2.0)  # the pubsub connection is back
        backplane.refresh()  # the commands one is not: same outage
        client.connected = True
        client.evalsha_or_eval = lambda *args, **kwargs: succeed(0)
        backplane._client_usable()
        client.evalsha_or_eval = lambda *args, **kwargs: fail(
            RedisUnavailable("Redis at 127.0.0.1:1 is unavailable")
        )
        backplane.refresh()  # a new outage after the first one ended
    finally:
        globalLogPublisher.removeObserver(logged.append)
    texts = [
        e.get("log_format", "") for e in logged if e.get("log_namespace") == "ratchetpy.hub.redis"
    ]
    kinds = [
        "down" if "degraded" in text else "back"
        for text in texts
        if "degraded" in text or "Redis is back" in text
    ]
    assert kinds == ["down", "back", "down"]
