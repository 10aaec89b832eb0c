"""
A backplane pointed at a Redis Cluster node: cluster redirections (MOVED,
ASK, CROSSSLOT) are named as such, in one error line, apart from outages.
Fakes for the client and subscriber (``tests/hub/test_relay.py``).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import fail
from twisted.logger import LogLevel, globalLogPublisher

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
    cluster = [level for level, text in texts if "is a Redis Cluster node" in text]
    assert cluster == [LogLevel.error]
    # an outage afterwards is still reported as one
    assert [level for level, text in texts if "degraded" in text] == [LogLevel.warn]
    assert backplane.counters["failures"] >= 3
