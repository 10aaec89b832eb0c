"""
The presence refresh in a real Redis: many channels and users are written
in a few script calls (``REFRESH_BATCH`` sets each), and what lands in
Redis is what the one-set writes put there: every member, with the node's
user values and an expiry. ``redis-cli`` is the independent look.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from ratchetpy.hub import Hub
from ratchetpy.hub.redis_backplane import RedisBackplane
from ratchetpy.hub.redis_presence import REFRESH_BATCH
from ratchetpy.testing import FakeConnection
from tests.redis.test_client import RealRedisCase
from tests.support.redis import shared_redis, unique, wait_for


class PresenceRefreshTests(RealRedisCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_a_refresh_writes_every_set_in_batches(self) -> Any:
        redis = shared_redis()
        self.cli = redis.cli
        prefix = unique("pres") + ":"
        hub = Hub()
        backplane = RedisBackplane(hub, f"{redis.url}?prefix={prefix}", self.reactor, presence_ttl=30)
        backplane.startService()
        self.addCleanup(backplane.stopService)
        self.addCleanup(self._delete, prefix)
        yield wait_for(self.reactor, lambda: backplane.client.connected)
        channels = [f"room{n}" for n in range(REFRESH_BATCH + 50)]
        conns = []
        for n, channel in enumerate(channels):
            conn = FakeConnection()
            hub.register(conn)
            hub.bind(conn, f"user{n % 7}")
            hub.join(conn, channel)
            conns.append(conn)
        # Empty what the joins wrote, so only the refresh can put it back.
        yield wait_for(self.reactor, lambda: self._keys(prefix))
        self._delete(prefix)
        calls: list[int] = []
        real = backplane.client.evalsha_or_eval

        def counting(script: Any, keys: Any, args: Any, **kw: Any) -> Any:
            calls.append(len(keys))
            return real(script, keys, args, **kw)

        backplane.client.evalsha_or_eval = counting  # type: ignore[method-assign]
        backplane.refresh()
        sets = len(channels) + 7 + 1  # channels, users, the node's stats
        assert sum(calls) == 2 * sets
        assert len(calls) == -(-sets // REFRESH_BATCH)  # batches, not one call per set
        yield wait_for(self.reactor, lambda: len(self._keys(prefix)) >= 2 * sets)
        for n in (0, REFRESH_BATCH + 49):
            members = yield hub.members(channels[n])
            assert [(m.id, m.user) for m in members] == [(conns[n].id, f"user{n % 7}")]
        key, exp = backplane.names.presence(channels[3])
        value = json.loads(self.cli("HGET", key, conns[3].id))
        assert value == {"user": "user3", "node": hub.node}
        assert 0 < int(self.cli("TTL", exp)) <= 60
        tabs = yield hub.connections_of("user1")
        assert sorted(tabs) == sorted(c.id for n, c in enumerate(conns) if n % 7 == 1)
        written = json.loads(self.cli("HGET", backplane.names.node_stats, hub.node))
        assert written["registered"] == len(channels)  # the node's stats, written by the refresh
        assert self.cli("ZSCORE", backplane.names.nodes, hub.node).strip() != ""

    @defer.inlineCallbacks
    def test_a_refresh_stays_inside_max_pending_however_many_sets(self) -> Any:
        # Before the window, a node with more channels than max_pending had
        # most of its refresh writes fail fast, and those entries expired.
        import ratchetpy.hub.redis_presence as presence

        redis = shared_redis()
        self.cli = redis.cli
        prefix = unique("pres") + ":"
        hub = Hub()
        backplane = RedisBackplane(
            hub, f"{redis.url}?prefix={prefix}&max_pending=20", self.reactor, presence_ttl=30
        )
        backplane.startService()
        self.addCleanup(backplane.stopService)
        self.addCleanup(self._delete, prefix)
        yield wait_for(self.reactor, lambda: backplane.client.connected)
        self.patch(presence, "REFRESH_BATCH", 1)  # one call per set: 150 calls
        for n in range(150):
            conn = FakeConnection()
            hub.register(conn)
            hub.join(conn, f"room{n}")
            if n % 10 == 9:
                yield wait_for(self.reactor, lambda: backplane.client.pending == 0)
        yield wait_for(self.reactor, lambda: backplane.client.pending == 0)
        self._delete(prefix)
        backplane.counters["failures"] = 0
        backplane.refresh()
        backplane.refresh()  # while the first is still writing: not doubled
        yield wait_for(self.reactor, lambda: backplane._refreshing is None)
        assert backplane.counters["failures"] == 0
        assert len(self._keys(prefix)) == 2 * 151  # every room and the node's stats

    def _keys(self, prefix: str) -> list[str]:
        return [k for k in self.cli("KEYS", prefix + "*").split("\n") if k]

    def _delete(self, prefix: str) -> None:
        keys = self._keys(prefix)
        if keys:
            self.cli("DEL", *keys)
