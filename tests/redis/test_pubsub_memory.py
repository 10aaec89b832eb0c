"""Subscriber in memory: batched resubscription, slot grouping, command order, hooks, refcount edge cases."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from ratchetpy.redis import Backoff, RedisConfig, Subscriber
from ratchetpy.redis.slots import hash_slot
from tests.support.redis_memory import Connection, MemoryEndpoint


def make(**kwargs: Any) -> tuple[Subscriber, MemoryEndpoint, MemoryReactorClock]:
    reactor = MemoryReactorClock()
    endpoint = MemoryEndpoint()
    config = RedisConfig.from_url("redis://127.0.0.1/0?health_interval=0&client_name=")
    subscriber = Subscriber(
        config, reactor, endpoint=endpoint, backoff=Backoff(1.0, 8.0, random=lambda: 1.0), **kwargs
    )
    return subscriber, endpoint, reactor


def ack_all(conn: Connection) -> list[list[bytes]]:
    """Answer every (un)subscribe command written so far, as Redis would; return them."""
    commands = conn.commands()
    for command in commands:
        if command == [b"PING"]:
            conn.reply("PONG")
            continue
        ack = command[0].lower()
        conn.reply(*[[ack, channel, 1] for channel in command[1:]])
    return commands


def noop(channel: bytes, message: bytes) -> None:
    pass


def test_resubscription_goes_in_batches_of_batch_size() -> None:
    subscriber, endpoint, reactor = make()
    for i in range(1200):
        subscriber.subscribe(f"c{i}", noop)
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    commands = ack_all(endpoint.last)
    assert [len(c) - 1 for c in commands] == [500, 500, 200]
    assert all(c[0] == b"SUBSCRIBE" for c in commands)
    assert subscriber.connected
    assert all(subscriber.is_subscribed(f"c{i}") for i in range(1200))


def test_shard_channels_are_batched_by_cluster_slot() -> None:
    subscriber, endpoint, _ = make(batch_size=3)
    names = [f"{{tag}}.{i}" for i in range(4)] + ["solo-a", "solo-b"]
    for name in names:
        subscriber.subscribe(name, noop, sharded=True)
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    commands = ack_all(endpoint.last)
    assert all(c[0] == b"SSUBSCRIBE" for c in commands)
    for command in commands:
        assert len({hash_slot(channel) for channel in command[1:]}) == 1
        assert len(command) - 1 <= 3
    assert sorted(ch for c in commands for ch in c[1:]) == sorted(n.encode() for n in names)


def test_changes_during_resubscription_stay_in_order() -> None:
    subscriber, endpoint, _ = make()
    subscriber.subscribe("a", noop)
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")  # setup done: SUBSCRIBE a is sent, not yet acknowledged
    subscriber.unsubscribe("a", noop)
    late = subscriber.subscribe("b", noop)
    assert endpoint.last.commands() == [
        [b"SUBSCRIBE", b"a"],
        [b"UNSUBSCRIBE", b"a"],
        [b"SUBSCRIBE", b"b"],
    ]
    assert not subscriber.connected
    endpoint.last.reply([b"subscribe", b"a", 1])
    assert subscriber.connected
    assert not subscriber.is_subscribed("a")  # given up before it was confirmed
    endpoint.last.reply([b"unsubscribe", b"a", 0], [b"subscribe", b"b", 1])
    fired: list[Any] = []
    late.addBoth(fired.append)
    assert fired == [True] and subscriber.is_subscribed("b")


def test_a_second_listener_waits_for_the_first_ones_confirmation() -> None:
    subscriber, endpoint, _ = make()
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    first, second = subscriber.subscribe("x", noop), subscriber.subscribe("x", print)
    assert endpoint.last.commands() == [[b"SUBSCRIBE", b"x"]]  # one command for two listeners
    results: list[Any] = []
    first.addBoth(results.append)
    second.addBoth(results.append)
    assert results == []
    endpoint.last.reply([b"subscribe", b"x", 1])
    assert results == [True, True]


def test_hooks_and_subscriptions_over_a_reconnection() -> None:
    reconnects: list[float] = []
    disconnects: list[str] = []
    subscriber, endpoint, reactor = make(
        on_reconnect=reconnects.append, on_disconnect=disconnects.append
    )
    got: list[Any] = []
    subscriber.subscribe("news", lambda c, m: got.append((c, m)))
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    ack_all(endpoint.last)
    assert reconnects == []  # the first connection is no reconnection
    endpoint.last.transport.loseConnection()
    assert len(disconnects) == 1 and "lost" in disconnects[0]
    assert not subscriber.is_subscribed("news")
    pending: list[Any] = []
    subscriber.subscribe("later", noop).addBoth(pending.append)
    assert pending == [False]  # kept for the reconnection
    reactor.advance(1.0)
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    commands = ack_all(endpoint.last)
    assert commands == [[b"SUBSCRIBE", b"news", b"later"]]
    assert reconnects == [1.0]
    endpoint.last.reply([b"message", b"news", b"back"])
    assert got == [(b"news", b"back")]
    assert subscriber.stats.messages == 1


def test_a_connection_lost_while_subscribing_again_is_retried() -> None:
    subscriber, endpoint, reactor = make()
    subscriber.subscribe("a", noop)
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    endpoint.last.transport.loseConnection()  # before the SUBSCRIBE was acknowledged
    assert not subscriber.connected and subscriber.stats.outages == 1
    reactor.advance(1.0)
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    assert ack_all(endpoint.last) == [[b"SUBSCRIBE", b"a"]]
    assert subscriber.connected


def test_a_failing_hook_is_logged_and_changes_nothing(logged) -> None:
    def broken(outage: float) -> None:
        raise RuntimeError("hook bug")

    subscriber, endpoint, reactor = make(on_reconnect=broken)
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    endpoint.last.transport.loseConnection()
    reactor.advance(1.0)
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    assert subscriber.connected
    assert any(
        e.get("log_failure") is not None and "hook" in e.get("log_format", "") for e in logged
    )


def test_a_shard_subscription_dropped_by_redis_is_no_longer_confirmed(logged) -> None:
    subscriber, endpoint, _ = make()
    subscriber.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    subscriber.subscribe("s", noop, sharded=True)
    ack_all(endpoint.last)
    assert subscriber.is_subscribed("s", sharded=True)
    endpoint.last.reply([b"sunsubscribe", b"s", 0])  # Redis Cluster: the slot moved
    assert not subscriber.is_subscribed("s", sharded=True)
    assert subscriber.interest("s", sharded=True) == 1  # the local interest stays
    assert subscriber.connected
    assert any("unsubscribed shard channel" in e.get("log_format", "") for e in logged)
