"""
ClusterSubscriber on a Clock with in-memory nodes: each channel on its
slot's shard, MOVED on SSUBSCRIBE, Redis's own sunsubscribe when a slot
migrates, a map change (a promoted replica), and the hooks.

Slots: ``bar`` 5061 (7001), ``c`` 7365 (7002), ``foo`` 12182 (7003).
"""

from __future__ import annotations

from typing import Any

from twisted.logger import LogLevel

from ratchetpy.exceptions import RedisReplyError
from ratchetpy.redis.cluster_pubsub import ClusterSubscriber
from tests.redis.test_pubsub_memory import ack_all
from tests.support.redis_cluster_memory import FakeCluster, shards
from tests.support.redis_memory import Connection

A = ("127.0.0.1", 7001)
B = ("127.0.0.1", 7002)
C = ("127.0.0.1", 7003)


class Setup:
    def __init__(self) -> None:
        self.fake = FakeCluster().start()
        self.got: list[tuple[bytes, bytes]] = []
        self.reconnects: list[float] = []
        self.sub = ClusterSubscriber(self.fake.client, on_reconnect=self.reconnects.append)
        self.sub.startService()

    def record(self, channel: bytes, message: bytes) -> None:
        self.got.append((channel, message))

    def pubsub(self, port: int) -> Connection:
        """The newest connection to ``port`` (a shard's, once it subscribed there)."""
        return self.fake.last(port)

    def up(self, port: int) -> list[list[bytes]]:
        """Set up the shard's new connection and acknowledge its subscriptions."""
        self.fake.set_up(self.pubsub(port))
        return ack_all(self.pubsub(port))


def test_each_channel_is_subscribed_on_the_shard_that_owns_its_slot() -> None:
    s = Setup()
    s.sub.subscribe("foo", s.record, sharded=True)
    s.sub.subscribe("bar", s.record, sharded=True)
    s.sub.subscribe("{foo}:2", s.record, sharded=True)
    assert set(s.sub.shards) == {A, C}
    assert s.up(7003) == [[b"SSUBSCRIBE", b"foo", b"{foo}:2"]]
    assert s.up(7001) == [[b"SSUBSCRIBE", b"bar"]]
    assert s.sub.connected
    assert s.sub.is_subscribed("foo", sharded=True) and s.sub.interest("foo", sharded=True) == 1
    s.pubsub(7003).reply([b"smessage", b"foo", b"hello"])
    assert s.got == [(b"foo", b"hello")]
    # a second local callback: no second command
    s.sub.subscribe("foo", s.record, sharded=True)
    assert s.pubsub(7003).commands() == []
    s.pubsub(7003).reply([b"smessage", b"foo", b"twice"])
    assert s.got[1:] == [(b"foo", b"twice"), (b"foo", b"twice")]


def test_moved_on_ssubscribe_subscribes_on_the_new_owner_quietly(logged: list[dict[str, Any]]) -> None:
    s = Setup()
    s.sub.subscribe("foo", s.record, sharded=True)
    s.fake.set_up(s.pubsub(7003))
    assert s.pubsub(7003).commands() == [[b"SSUBSCRIBE", b"foo"]]
    old = s.pubsub(7003)
    old.reply(RedisReplyError("MOVED 12182 127.0.0.1:7002"))
    s.fake.reactor.advance(0)
    assert s.fake.client.slots.owner(12182) == B
    assert set(s.sub.shards) == {B}
    assert not old.open  # the shard with nothing left is let go
    assert s.up(7002) == [[b"SSUBSCRIBE", b"foo"]]
    assert s.sub.is_subscribed("foo", sharded=True)
    assert s.reconnects == [0.0]  # the owner may read back what it missed meanwhile
    errors = [e for e in logged if e.get("log_level") == LogLevel.error]
    assert errors == []


def test_a_slot_migrated_away_is_followed_to_its_new_owner() -> None:
    s = Setup()
    s.sub.subscribe("foo", s.record, sharded=True)
    s.sub.subscribe("{x}1", s.record, sharded=True)  # also on 7003; stays
    s.up(7003)
    shard = s.pubsub(7003)
    # the slot moved: Redis unsubscribes the channel by itself
    shard.reply([b"sunsubscribe", b"foo", 1])
    assert not s.sub.is_subscribed("foo", sharded=True)
    s.fake.reactor.advance(0)
    # the map is not refreshed yet: subscribing where it was answers MOVED
    assert shard.commands() == [[b"SSUBSCRIBE", b"foo"]]
    shard.reply(RedisReplyError("MOVED 12182 127.0.0.1:7002"))
    s.fake.reactor.advance(0)
    assert s.up(7002) == [[b"SSUBSCRIBE", b"foo"]]
    s.pubsub(7002).reply([b"smessage", b"foo", b"after"])
    assert s.got == [(b"foo", b"after")]
    assert s.sub.is_subscribed("{x}1", sharded=True) and shard.open


def test_a_map_change_moves_the_channels_of_a_failed_over_primary() -> None:
    s = Setup()
    s.sub.subscribe("foo", s.record, sharded=True)
    s.sub.subscribe("{foo}news", s.record)  # classic (any node hears it): placed on 7003 too
    s.sub.subscribe("c", s.record, sharded=True)
    s.up(7003)
    s.up(7002)
    s.fake.reactor.advance(5)
    refresh = s.fake.client.refresh()
    commands = s.fake.conn(7001, 0)
    assert commands.commands() == [[b"CLUSTER", b"SHARDS"]]
    # 7003's replica, 7004, took over
    commands.reply(shards((7001, 0, 5460), (7002, 5461, 10922), (7004, 10923, 16383)))
    assert refresh.called
    s.fake.set_up(s.fake.conn(7004, 0))  # the commands connection of the new primary
    moved = s.up(7004)
    assert sorted(moved) == [[b"SSUBSCRIBE", b"foo"], [b"SUBSCRIBE", b"{foo}news"]]
    assert C not in s.sub.shards
    assert s.sub.is_subscribed("c", sharded=True)  # untouched
    assert s.sub.connected


def test_unsubscribing_the_last_callback_unsubscribes_on_the_shard() -> None:
    s = Setup()
    s.sub.subscribe("foo", s.record, sharded=True)
    s.sub.subscribe("{foo}:b", s.record, sharded=True)
    s.up(7003)
    s.sub.unsubscribe("foo", s.record, sharded=True)
    assert s.pubsub(7003).commands() == [[b"SUNSUBSCRIBE", b"foo"]]
    assert s.sub.channels(sharded=True) == [b"{foo}:b"]


def test_a_plain_subscriber_at_a_cluster_node_says_so_once_not_per_channel(
    logged: list[dict[str, Any]],
) -> None:
    from twisted.logger import formatEvent

    from tests.redis.test_pubsub_memory import make

    subscriber, endpoint, _ = make()
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    refused = [subscriber.subscribe(name, lambda c, m: None, sharded=True) for name in ("foo", "bar", "c")]
    assert endpoint.last.commands() == [[b"SSUBSCRIBE", n] for n in (b"foo", b"bar", b"c")]
    for slot in (12182, 5061, 7365):
        endpoint.last.reply(RedisReplyError(f"MOVED {slot} 127.0.0.1:7002"))
    for d in refused:
        d.addErrback(lambda f: None)
    errors = [formatEvent(e) for e in logged if e.get("log_level") == LogLevel.error]
    assert len(errors) == 1, errors
    assert "MOVED" in errors[0] and "use a redis+cluster:// URL" in errors[0]
