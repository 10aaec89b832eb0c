"""Subscriber against a real redis-server: reference counts, sharded and pattern subscriptions, resubscription."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from ratchetpy.exceptions import RedisReplyError
from ratchetpy.redis import RedisConfig, Subscriber
from tests.redis.test_client import RealRedisCase
from tests.support.redis import shared_redis, unique, wait_for


class Inbox:
    """A callback that keeps what it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, bytes]] = []

    def __call__(self, channel: bytes, message: bytes) -> None:
        self.got.append((channel, message))


class PubSubCase(RealRedisCase):
    @defer.inlineCallbacks
    def subscriber(self, url: str, **kwargs: Any) -> Any:
        config = RedisConfig.from_url(url)
        options = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k in ("health_interval", "timeout", "connect_timeout")
        }
        subscriber = Subscriber(config.with_options(**options), self.reactor, **kwargs)
        subscriber.startService()
        self.addCleanup(subscriber.stopService)
        yield wait_for(self.reactor, lambda: subscriber.connected)
        return subscriber


class SubscriberTests(PubSubCase):
    @defer.inlineCallbacks
    def test_one_redis_subscription_per_node_however_many_local_listeners(self):
        redis = shared_redis()
        client = yield self.client(redis.url)
        node_a = yield self.subscriber(redis.url)
        node_b = yield self.subscriber(redis.url)
        channel = unique("room")
        a1, a2, b1 = Inbox(), Inbox(), Inbox()
        self.assertTrue((yield node_a.subscribe(channel, a1)))
        self.assertTrue((yield node_a.subscribe(channel, a2)))
        self.assertTrue((yield node_b.subscribe(channel, b1)))
        self.assertEqual(node_a.interest(channel), 2)
        self.assertEqual(redis.cli.numsub(channel), 2)  # one per node
        self.assertEqual((yield client.publish(channel, "hello")), 2)
        yield wait_for(self.reactor, lambda: a1.got and a2.got and b1.got)
        self.assertEqual(a1.got, [(channel.encode(), b"hello")])
        self.assertEqual(a2.got, a1.got)
        self.assertEqual(b1.got, a1.got)

        self.assertTrue((yield node_a.unsubscribe(channel, a1)))
        self.assertEqual(redis.cli.numsub(channel), 2)  # a2 still listens on node a
        self.assertTrue((yield node_a.unsubscribe(channel, a2)))
        self.assertEqual(redis.cli.numsub(channel), 1)
        self.assertFalse(node_a.is_subscribed(channel))
        yield node_b.unsubscribe(channel, b1)
        self.assertEqual(redis.cli.numsub(channel), 0)
        self.assertEqual(node_a.channels(), [])
        self.assertEqual((yield client.publish(channel, "nobody")), 0)
        self.assertEqual(len(a1.got) + len(a2.got) + len(b1.got), 3)

    @defer.inlineCallbacks
    def test_sharded_pubsub(self):
        redis = shared_redis()
        client = yield self.client(redis.url)
        node = yield self.subscriber(redis.url)
        channel, inbox = unique("shard"), Inbox()
        self.assertTrue((yield node.subscribe(channel, inbox, sharded=True)))
        self.assertEqual(redis.cli.numsub(channel, sharded=True), 1)
        self.assertEqual(redis.cli.numsub(channel), 0)  # not a classic subscription
        self.assertEqual((yield client.spublish(channel, b"\x00bin")), 1)
        yield wait_for(self.reactor, lambda: inbox.got)
        self.assertEqual(inbox.got, [(channel.encode(), b"\x00bin")])
        yield node.unsubscribe(channel, inbox, sharded=True)
        self.assertEqual(redis.cli.numsub(channel, sharded=True), 0)

    @defer.inlineCallbacks
    def test_pattern_subscriptions_report_the_real_channel(self):
        server = self.private()
        client = yield self.client(server.url)
        node = yield self.subscriber(server.url)
        inbox = Inbox()
        yield node.subscribe("room:*", inbox, pattern=True)
        self.assertEqual(server.cli.numpat(), 1)
        yield client.publish("room:42", "hi")
        yield wait_for(self.reactor, lambda: inbox.got)
        self.assertEqual(inbox.got, [(b"room:42", b"hi")])
        yield node.unsubscribe("room:*", inbox, pattern=True)
        self.assertEqual(server.cli.numpat(), 0)

    @defer.inlineCallbacks
    def test_a_failing_callback_does_not_starve_the_others(self):
        redis = shared_redis()
        client = yield self.client(redis.url)
        node = yield self.subscriber(redis.url)
        channel, inbox = unique("c"), Inbox()

        def broken(channel: bytes, message: bytes) -> None:
            raise RuntimeError("callback bug")

        yield node.subscribe(channel, broken)
        yield node.subscribe(channel, inbox)
        yield client.publish(channel, "1")
        yield client.publish(channel, "2")
        yield wait_for(self.reactor, lambda: len(inbox.got) == 2)
        self.assertTrue(node.connected)
        self.assertTrue(any("callback" in line and "failed" in line for line in self.log_lines()))
        self.flushLoggedErrors(RuntimeError)

    @defer.inlineCallbacks
    def test_unsubscribing_what_was_never_subscribed_is_an_error(self):
        node = yield self.subscriber(shared_redis().url)
        with self.assertRaises(ValueError):
            node.unsubscribe("never", Inbox())
        with self.assertRaises(ValueError):
            node.subscribe("x", Inbox(), sharded=True, pattern=True)

    @defer.inlineCallbacks
    def test_a_channel_the_acl_denies_fails_alone(self):
        server = self.private()
        server.cli(
            "ACL", "SETUSER", "node", "on", ">node-pw", "resetchannels", "&allowed:*", "+@all"
        )
        url = f"redis://node:node-pw@127.0.0.1:{server.port}/0"
        node = yield self.subscriber(url)
        try:
            yield node.subscribe("secret", Inbox())
        except RedisReplyError as error:
            self.assertEqual(error.code, "NOPERM")
        else:
            self.fail("the ACL let the channel through")
        self.assertTrue((yield node.subscribe("allowed:1", Inbox())))
        self.assertTrue(node.connected)
        self.assertTrue(
            any("refused SUBSCRIBE channel secret" in line for line in self.log_lines())
        )

    @defer.inlineCallbacks
    def test_everything_is_subscribed_again_after_client_kill(self):
        server = self.private()
        client = yield self.client(server.url)
        reconnects: list[float] = []
        disconnects: list[str] = []
        node = yield self.subscriber(
            server.url,
            batch_size=2,
            on_reconnect=reconnects.append,
            on_disconnect=disconnects.append,
        )
        inbox = Inbox()
        channels = [f"c{i}" for i in range(5)]
        shards = [f"s{i}" for i in range(3)]
        for name in channels:
            yield node.subscribe(name, inbox)
        for name in shards:
            yield node.subscribe(name, inbox, sharded=True)
        yield node.subscribe("p:*", inbox, pattern=True)

        self.assertEqual(server.cli("CLIENT", "KILL", "TYPE", "pubsub"), "1")
        yield wait_for(self.reactor, lambda: reconnects)
        self.assertEqual(len(disconnects), 1)
        self.assertTrue(all(node.is_subscribed(name) for name in channels))
        for name in channels:
            self.assertEqual(server.cli.numsub(name), 1)
        for name in shards:
            self.assertEqual(server.cli.numsub(name, sharded=True), 1)
        self.assertEqual(server.cli.numpat(), 1)
        for name in channels:
            yield client.publish(name, "after")
        for name in shards:
            yield client.spublish(name, "after")
        yield client.publish("p:x", "after")
        yield wait_for(self.reactor, lambda: len(inbox.got) == len(channels) + len(shards) + 1)
        lines = self.log_lines()
        self.assertEqual(
            sum("pubsub connection" in line and "unavailable" in line for line in lines), 1, lines
        )
        self.assertEqual(
            sum("pubsub connection" in line and "is back after" in line for line in lines), 1, lines
        )

    @defer.inlineCallbacks
    def test_interest_given_while_down_is_applied_on_connection(self):
        server = self.private()
        subscriber = Subscriber(RedisConfig.from_url(server.url), self.reactor)
        inbox = Inbox()
        self.assertFalse((yield subscriber.subscribe("early", inbox)))
        subscriber.startService()
        self.addCleanup(subscriber.stopService)
        yield wait_for(self.reactor, lambda: subscriber.connected)
        self.assertTrue(subscriber.is_subscribed("early"))
        self.assertEqual(server.cli.numsub("early"), 1)
