# -*- test-case-name: tests.hub.test_redis_backplane -*-
"""
Presence and cluster stats in Redis, for ``RedisBackplane``.

Each local member of a channel (and each local connection of a user) is a
hash field with an expiry in a sorted set; the node writes its entries
again every third of ``presence_ttl`` (``refresh``), so the entries of a
node that died expire without anyone asking it. Expiry times come from
Redis's own clock (``TIME`` in the scripts): hosts need not agree on the
time. Reads drop expired entries in the same script. A node's stats are
a presence entry too (under ``Names.nodes``), so ``stats()`` sums the
nodes alive now; other nodes' numbers are as fresh as their last refresh.

When Redis cannot be reached, writes are dropped (the next refresh after
reconnection writes everything again) and reads answer with this node's
own view, logged and counted by the backplane.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from ..redis.scripts import Script
from ..redis.slots import hash_slot
from .names import Member

if TYPE_CHECKING:
    from ..redis.cluster import CommandClient
    from ..redis.url import RedisConfig
    from .envelope import Names
    from .hub import Hub

__all__ = ["PresenceMixin"]

# Presence: write entries (KEYS: hash, zset; ARGV: ttl, then id, value pairs).
_PRESENCE_ADD = Script(
    """
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ttl * 2)
redis.call('EXPIRE', KEYS[2], ttl * 2)
return now
"""
)

# Presence refresh, many sets at once (KEYS: hash, zset pairs; ARGV: ttl,
# then for each pair its entry count and that many id, value pairs). One
# call per batch instead of one per channel: at thousands of channels per
# node the refresh is most of what a node asks of Redis.
_PRESENCE_ADD_MANY = Script(
    """
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[1])
local a = 2
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
    redis.call('ZADD', KEYS[k + 1], now + ttl, ARGV[a])
    a = a + 2
  end
  redis.call('EXPIRE', KEYS[k], ttl * 2)
  redis.call('EXPIRE', KEYS[k + 1], ttl * 2)
end
return now
"""
)

REFRESH_BATCH = 200
"""Presence sets written by one script call during a refresh."""

REFRESH_WINDOW = 32
"""Refresh script calls that may wait for Redis at once (at most half the
client's ``max_pending``)."""

# Presence: drop expired entries, return the live ones as a flat hash.
_PRESENCE_READ = Script(
    """
local now = tonumber(redis.call('TIME')[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #expired, 1000 do
  redis.call('HDEL', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('HGETALL', KEYS[1])
"""
)

_PRESENCE_COUNT = Script(
    """
local now = tonumber(redis.call('TIME')[1])
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""
)


class PresenceMixin:
    """The presence half of ``RedisBackplane`` (see the module docs)."""

    if TYPE_CHECKING:
        client: CommandClient
        names: Names
        hub: Hub
        presence_ttl: float
        running: int
        cluster: bool
        config: RedisConfig
        _refreshing: defer.Deferred[Any] | None

        @property
        def node(self) -> str: ...

        def _failed(self, what: str, default: Any) -> Any: ...

    def _remove_own_presence(self) -> defer.Deferred[Any]:
        commands = []
        for channel in self.hub.channels():
            key, exp = self.names.presence(channel)
            ids = [m.id for m in self.hub.local_members(channel)]
            if ids:
                commands += [("HDEL", key, *ids), ("ZREM", exp, *ids)]
        for user in self.hub.users():
            key, exp = self.names.user_presence(user)
            ids = self.hub.local_connections_of(user)
            if ids:
                commands += [("HDEL", key, *ids), ("ZREM", exp, *ids)]
        commands += [("ZREM", self.names.nodes, self.node), ("HDEL", self.names.node_stats, self.node)]
        sent = [self.client.execute(*c, timeout=1.0) for c in commands]
        return defer.DeferredList(sent, consumeErrors=True)

    def _member_value(self, user: str | None) -> str:
        return json.dumps({"user": user, "node": self.node}, separators=(",", ":"))

    def _write_presence(self, keys: tuple[str, str], entries: list[tuple[str, str]]) -> None:
        if not entries or not self.running:
            return
        args: list[Any] = [max(1, round(self.presence_ttl))]
        for cid, value in entries:
            args += [cid, value]
        self.client.evalsha_or_eval(_PRESENCE_ADD, keys, args).addErrback(
            self._failed("writing presence", None)
        )

    def _delete_presence(self, keys: tuple[str, str], cid: str) -> None:
        if not self.running:
            return
        for key in keys:
            self.client.execute("HDEL" if key == keys[0] else "ZREM", key, cid).addErrback(
                self._failed("removing presence", None)
            )

    def refresh(self) -> None:
        """Write this node's presence and stats again (every third of the TTL)."""
        if not self.running:
            return
        sets: list[tuple[tuple[str, str], list[tuple[str, str]]]] = []
        for channel in self.hub.channels():
            entries = [(m.id, self._member_value(m.user)) for m in self.hub.local_members(channel)]
            sets.append((self.names.presence(channel), entries))
        for user in self.hub.users():
            entries = [(cid, self.node) for cid in self.hub.local_connections_of(user)]
            sets.append((self.names.user_presence(user), entries))
        stats = json.dumps(self.hub.local_stats(), separators=(",", ":"))
        sets.append(((self.names.node_stats, self.names.nodes), [(self.node, stats)]))
        self._write_presence_sets(sets)

    def _write_presence_sets(self, sets: list[tuple[tuple[str, str], list[tuple[str, str]]]]) -> None:
        """
        Write many presence sets: ``REFRESH_BATCH`` sets per script call
        (per hash slot on a Redis Cluster, where one call's keys share a
        slot), at most ``REFRESH_WINDOW`` calls waiting for Redis at once.

        The window keeps a node with many channels inside the client's
        ``max_pending`` (past it commands fail fast, and those entries would
        expire). A refresh still writing when the next one is due is not
        doubled: the next tick writes everything again anyway.
        """
        if getattr(self, "_refreshing", None) is not None:
            return
        groups: dict[int, list[tuple[tuple[str, str], list[tuple[str, str]]]]] = {}
        for keys, entries in sets:
            if entries:
                # A set's two keys share a hash tag (Names), so one slot.
                groups.setdefault(hash_slot(keys[0]) if self.cluster else 0, []).append((keys, entries))
        ttl = max(1, round(self.presence_ttl))
        # Half of max_pending at most: publishes and pushes need room too.
        window = defer.DeferredSemaphore(max(1, min(REFRESH_WINDOW, self.config.max_pending // 2)))
        writes = []
        for group in groups.values():
            for start in range(0, len(group), REFRESH_BATCH):
                keys_arg: list[str] = []
                args: list[Any] = [ttl]
                for keys, entries in group[start : start + REFRESH_BATCH]:
                    keys_arg += keys
                    args.append(len(entries))
                    for cid, value in entries:
                        args += [cid, value]
                write = window.run(self.client.evalsha_or_eval, _PRESENCE_ADD_MANY, keys_arg, args)
                writes.append(write.addErrback(self._failed("writing presence", None)))
        if not writes:
            return
        refreshing = self._refreshing = defer.DeferredList(writes)

        def finished(_: object) -> None:
            if self._refreshing is refreshing:
                self._refreshing = None

        refreshing.addBoth(finished)

    def _read_presence(self, keys: tuple[str, str]) -> defer.Deferred[dict[str, str]]:
        d = self.client.evalsha_or_eval(_PRESENCE_READ, keys, ())

        def pairs(flat: list[bytes]) -> dict[str, str]:
            return {
                k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)
            }

        return d.addCallback(pairs)

    def members(self, channel: str) -> defer.Deferred[list[Member]]:
        def members(entries: dict[str, str]) -> list[Member]:
            out = []
            for cid, value in entries.items():
                try:
                    user = json.loads(value).get("user")
                except (ValueError, AttributeError):
                    user = None
                out.append(Member(cid, user if isinstance(user, str) else None))
            return out

        d = self._read_presence(self.names.presence(channel)).addCallback(members)
        return d.addErrback(self._failed("reading presence", None)).addCallback(
            lambda found: found if found is not None else self.hub.local_members(channel)
        )

    def member_count(self, channel: str) -> defer.Deferred[int]:
        d = self.client.evalsha_or_eval(_PRESENCE_COUNT, [self.names.presence(channel)[1]], ())
        return d.addCallback(int).addErrback(self._failed("reading presence", None)).addCallback(
            lambda n: n if n is not None else len(self.hub.local_members(channel))
        )

    def connections_of(self, user: str) -> defer.Deferred[list[str]]:
        d = self._read_presence(self.names.user_presence(user)).addCallback(list)
        return d.addErrback(self._failed("reading presence", None)).addCallback(
            lambda ids: ids if ids is not None else self.hub.local_connections_of(user)
        )

    def stats(self) -> defer.Deferred[dict[str, Any]]:
        local = self.hub.local_stats()

        def combine(entries: dict[str, str]) -> dict[str, Any]:
            nodes: dict[str, Any] = {}
            for node, value in entries.items():
                try:
                    nodes[node] = json.loads(value)
                except ValueError:
                    continue
            nodes[self.node] = local  # this node's, fresh
            return _totals(nodes)

        d = self._read_presence((self.names.node_stats, self.names.nodes)).addCallback(combine)
        return d.addErrback(self._failed("reading stats", None)).addCallback(
            lambda result: result if result is not None else _totals({self.node: local})
        )


_SUMMED = ("open", "accepted", "messages_in", "messages_out", "bytes_in", "bytes_out", "registered")


def _totals(nodes: dict[str, Any]) -> dict[str, Any]:
    totals: dict[str, Any] = {"nodes": nodes, "node_count": len(nodes)}
    for name in _SUMMED:
        totals[name] = sum(int(s.get(name, 0) or 0) for s in nodes.values() if isinstance(s, dict))
    for name in ("closed", "refused", "pushes", "backpressure"):
        merged: Counter[str] = Counter()
        for s in nodes.values():
            value = s.get(name) if isinstance(s, dict) else None
            if isinstance(value, dict):
                merged.update({k: int(v) for k, v in value.items() if isinstance(v, int)})
        totals[name] = dict(sorted(merged.items()))
    return totals
