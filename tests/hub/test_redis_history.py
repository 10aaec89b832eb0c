"""
History in a real Redis: the publish script (offsets, epoch, exact trim,
TTLs, the envelope it publishes), reads by position, a Redis that lost
its data, this node's gap after ``CLIENT KILL TYPE pubsub``, Redis down.
``redis-cli`` is the independent look at what Redis holds.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from ratchetpy.exceptions import RedisUnavailable
from ratchetpy.hub import Hub
from ratchetpy.hub.envelope import Envelope
from ratchetpy.hub.history import StreamPosition
from ratchetpy.hub.recovery import JsonPositions
from ratchetpy.hub.redis_backplane import RedisBackplane
from ratchetpy.redis import RedisConfig, Subscriber
from ratchetpy.testing import FakeConnection
from tests.redis.test_client import RealRedisCase
from tests.redis.test_pubsub import Inbox
from tests.support.redis import shared_redis, unique, wait_for


class RedisHistoryTests(RealRedisCase):
    timeout = 60

    @defer.inlineCallbacks
    def node(self, server: Any = None, **history: Any) -> Any:
        """A started hub on Redis (shared, or a private ``server``) with history on ``h:*``."""
        redis = server or shared_redis()
        redis_url, self.cli = redis.url, redis.cli
        prefix = unique("hist") + ":"
        hub = Hub()
        hub.enable_history("h:*", **({"size": 3, "ttl": 30} | history))
        backplane = RedisBackplane(hub, f"{redis_url}?prefix={prefix}", self.reactor)
        backplane.startService()
        self.addCleanup(backplane.stopService)
        yield wait_for(self.reactor, lambda: backplane.client.connected and backplane.subscriber.connected)
        if server is None:
            self.addCleanup(self._delete, prefix)
        return hub, backplane, prefix

    def _delete(self, prefix: str) -> None:
        keys = [k for k in self.cli("KEYS", prefix + "*").split("\n") if k]
        if keys:
            self.cli("DEL", *keys)

    @defer.inlineCallbacks
    def member(self, hub: Hub, backplane: RedisBackplane, channel: str) -> Any:
        conn = FakeConnection()
        hub.join(conn, channel)
        name = backplane.names.channel(channel)
        yield wait_for(self.reactor, lambda: backplane.subscriber.is_subscribed(name))
        return conn

    @defer.inlineCallbacks
    def test_the_script_stores_trims_expires_and_publishes_with_the_position(self):
        hub, backplane, prefix = yield self.node()
        channel = "h:" + unique("c")
        conn = yield self.member(hub, backplane, channel)
        # an independent subscriber sees what the script publishes
        inbox = Inbox()
        listener = Subscriber(RedisConfig.from_url(shared_redis().url), self.reactor)
        listener.startService()
        self.addCleanup(listener.stopService)
        yield wait_for(self.reactor, lambda: listener.connected)
        yield listener.subscribe(backplane.names.channel(channel), inbox)
        positions = []
        for i in range(1, 6):
            positions.append((yield hub.publish_with_position(channel, f"m{i}")))
        epoch = positions[0].epoch
        self.assertEqual(positions, [StreamPosition(epoch, i) for i in range(1, 6)])
        stream, meta = backplane.names.stream(channel), backplane.names.meta(channel)
        self.assertEqual(self.cli("XLEN", stream), "3")  # size 3, trimmed exactly
        self.assertEqual(self.cli("XRANGE", stream, "-", "+").split("\n")[::5], ["3-0", "4-0", "5-0"])
        self.assertEqual(self.cli("HGET", meta, "e"), epoch)
        self.assertEqual(self.cli("HGET", meta, "s"), "5")
        self.assertTrue(0 < int(self.cli("PTTL", stream)) <= 30_000)
        self.assertTrue(30_000 < int(self.cli("PTTL", meta)) <= 86_400_000)
        # this node delivers its own stored publications through Redis, in order, once
        yield wait_for(self.reactor, lambda: len(conn.sent) == 5)
        self.assertEqual(conn.sent, [f"m{i}" for i in range(1, 6)])
        yield wait_for(self.reactor, lambda: len(inbox.got) == 5)
        envelope = Envelope.decode(inbox.got[-1][1])
        self.assertEqual((envelope.header["off"], envelope.header["ep"]), (5, epoch))
        self.assertEqual(envelope.message(), "m5")

    @defer.inlineCallbacks
    def test_reads_by_position_and_resets(self):
        hub, backplane, _ = yield self.node()
        channel = "h:" + unique("c")
        empty = yield hub.history(channel, limit=0)
        self.assertEqual(empty.offset, 0)
        excluded = FakeConnection()
        for i in range(1, 6):
            yield hub.publish(channel, f"m{i}" if i != 4 else b"\x00\x01", exclude=[excluded.id])
        epoch = empty.epoch  # the read fixed the epoch before the first publication

        def texts(result):
            return [p.message for p in result.publications]

        after = yield hub.history(channel, since=(epoch, 2))
        self.assertEqual(texts(after), ["m3", b"\x00\x01", "m5"])
        self.assertEqual([p.offset for p in after.publications], [3, 4, 5])
        self.assertEqual(after.publications[0].exclude, {excluded.id})
        self.assertEqual(after.publications[0].epoch, epoch)
        self.assertEqual((after.epoch, after.offset, after.reset), (epoch, 5, False))
        self.assertEqual(texts((yield hub.history(channel, since=(epoch, 2), limit=1))), ["m3"])
        self.assertEqual(texts((yield hub.history(channel, limit=2))), [b"\x00\x01", "m5"])
        self.assertEqual(texts((yield hub.history(channel))), ["m3", b"\x00\x01", "m5"])
        up_to_date = yield hub.history(channel, since=(epoch, 5))
        self.assertEqual((up_to_date.publications, up_to_date.reset), ((), False))
        for since in [(epoch, 1), ("other", 3), (epoch, 6)]:  # trimmed, another epoch, the future
            result = yield hub.history(channel, since=since)
            self.assertEqual((result.publications, result.reset, result.offset), ((), True, 5), since)

    @defer.inlineCallbacks
    def test_a_redis_that_lost_the_stream_starts_a_new_epoch(self):
        hub, backplane, _ = yield self.node()
        channel = "h:" + unique("c")
        old = yield hub.publish_with_position(channel, "before")
        self.cli("DEL", backplane.names.meta(channel))  # as after a restart without persistence
        result = yield hub.history(channel, since=old)
        self.assertTrue(result.reset)
        self.assertNotEqual(result.epoch, old.epoch)
        new = yield hub.publish_with_position(channel, "after")
        self.assertEqual(new, StreamPosition(result.epoch, 1))
        self.assertEqual(self.cli("XLEN", backplane.names.stream(channel)), "1")

    @defer.inlineCallbacks
    def test_counted_publish_includes_this_node_and_positioned_members_recover(self):
        hub, backplane, _ = yield self.node(size=10)
        channel = "h:" + unique("c")
        a = yield self.member(hub, backplane, channel)
        b = yield self.member(hub, backplane, channel)
        self.assertEqual((yield hub.publish(channel, "one", exclude=[a.id])), 1)
        first = yield hub.publish_with_position(channel, "two")
        yield hub.publish(channel, "three")
        page = FakeConnection()
        result = yield hub.join_positioned(page, channel, JsonPositions(), since=(first.epoch, 1))
        self.assertEqual(result.offset, 3)
        got = [json.loads(m) for m in page.sent]
        self.assertEqual([m.get("data") for m in got], ["two", "three", None])
        self.assertEqual(got[-1]["type"], "recovered")
        yield hub.publish(channel, "four")
        yield wait_for(self.reactor, lambda: json.loads(page.sent[-1]).get("data") == "four")
        self.assertEqual(len(page.sent), 4)
        yield wait_for(self.reactor, lambda: len(b.sent) == 4)
        self.assertEqual(b.sent, ["one", "two", "three", "four"])

    @defer.inlineCallbacks
    def test_a_killed_pubsub_connection_is_refilled_from_history_in_order_once(self):
        hub, backplane, _ = yield self.node(self.private(), size=100)  # kills only its own clients
        channel = "h:" + unique("c")
        conn = yield self.member(hub, backplane, channel)
        yield hub.publish(channel, "m0", count=False)
        yield wait_for(self.reactor, lambda: conn.sent == ["m0"])
        self.cli("CLIENT", "KILL", "TYPE", "pubsub")
        # Redis has dropped the subscriber: these are stored but reach no one live
        for i in range(1, 11):
            yield hub.publish(channel, f"m{i}", count=False)
        yield wait_for(self.reactor, lambda: len(conn.sent) >= 11, timeout=15)
        for i in range(11, 14):
            yield hub.publish(channel, f"m{i}", count=False)
        yield wait_for(self.reactor, lambda: len(conn.sent) >= 14)
        self.assertEqual(conn.sent, [f"m{i}" for i in range(14)])
        self.assertGreaterEqual(backplane.counters["recovered"], 1)
        self.assertTrue(any("missed back from history" in line for line in self.hub_log()))

    @defer.inlineCallbacks
    def test_a_gap_before_the_first_publication_is_filled_too(self):
        hub, backplane, _ = yield self.node(self.private(), size=100)
        channel = "h:" + unique("c")
        conn = yield self.member(hub, backplane, channel)
        follower = backplane.history_store._followers[channel]
        yield wait_for(self.reactor, lambda: follower.position is not None and not follower.recovering)
        self.cli("CLIENT", "KILL", "TYPE", "pubsub")
        for i in range(3):
            yield hub.publish(channel, f"m{i}", count=False)
        yield wait_for(self.reactor, lambda: len(conn.sent) >= 3, timeout=15)
        self.assertEqual(conn.sent, ["m0", "m1", "m2"])

    def hub_log(self) -> list[str]:
        from twisted.logger import formatEvent

        return [
            formatEvent(e)
            for e in self.events
            if str(e.get("log_namespace", "")).startswith("ratchetpy.hub")
        ]

    @defer.inlineCallbacks
    def test_with_redis_down_a_publish_reaches_this_node_without_a_position(self):
        server = self.private()
        hub, backplane, _ = yield self.node(server)
        channel = "h:" + unique("c")
        conn = yield self.member(hub, backplane, channel)
        page = FakeConnection()
        yield hub.join_positioned(page, channel, JsonPositions())
        server.kill()
        yield wait_for(self.reactor, lambda: not backplane.client.connected)
        position = yield hub.publish_with_position(channel, "local only")
        self.assertIsNone(position)
        self.assertEqual(conn.sent, ["local only"])
        self.assertEqual(json.loads(page.sent[-1]), {"type": "message", "data": "local only"})
        yield self.assertFailure(hub.history(channel), RedisUnavailable)
