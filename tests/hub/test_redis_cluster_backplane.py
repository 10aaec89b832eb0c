"""
Two hub nodes (server processes) on a real three-primary Redis Cluster
through ``redis+cluster://``: publishes, pushes by id and by user,
presence and stats cross the cluster with exact counts (every channel,
the node channels included, is a shard channel on its slot's owner); a
channel's slot migrated while both nodes are subscribed: they follow it
to the new owner and messages keep flowing. ``redis-cli`` on the shard
(``PUBSUB SHARDNUMSUB``) and the ``websockets`` client are the
independent checks.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ratchetpy.hub.envelope import Names
from ratchetpy.redis.slots import hash_slot
from tests.hub.test_redis_backplane import Node, eventually
from tests.support.loopback import assert_silent
from tests.support.redis import unique
from tests.support.redis_cluster import RedisCluster
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    with RedisCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def nodes(redis_cluster: RedisCluster, tmp_path: Path):
    prefix = unique("cl") + ":"
    started = [Node(redis_cluster.url, prefix, tmp_path, name) for name in ("a", "b")]
    yield Names(prefix), started
    for node in started:
        node.stop()
    for node in started:
        text = node.text()
        assert "Traceback" not in text, text
        assert "is a Redis Cluster node" not in text, text


def shard_subscribers(cluster: RedisCluster, channel: str) -> int:
    return cluster.owner(hash_slot(channel)).cli.numsub(channel, sharded=True)


def both_in_room(
    stack: ExitStack, cluster: RedisCluster, nodes: tuple[Node, Node], room: str, channel: str
) -> tuple[Any, Any, Any]:
    """A client of each node joins ``room``; returns them and ``channel``'s shard once both subscribed."""
    a, b = nodes
    on_a, _ = a.ws(stack, f"/tell?room={room}")
    on_b, _ = b.ws(stack, f"/tell?room={room}")
    source = cluster.owner(hash_slot(channel))
    assert eventually(lambda: source.cli.numsub(channel, sharded=True) == 2)
    return on_a, on_b, source


def test_publish_push_and_presence_cross_the_cluster_with_exact_counts(redis_cluster, nodes):
    names, (a, b) = nodes
    room = unique("room")
    with ExitStack() as stack:
        on_a, id_a = a.ws(stack, f"/tell?room={room}&user=ann")
        on_b, id_b = b.ws(stack, f"/tell?room={room}&user=ann")
        outsider, _ = b.ws(stack, "/tell")
        channel = names.channel(room)
        # both nodes SSUBSCRIBEd on the shard that owns the channel's slot
        assert eventually(lambda: shard_subscribers(redis_cluster, channel) == 2)
        for seq in range(5):
            assert a.api("POST", "", {"channel": room, "data": f"m{seq}"}) == (200, {"delivered": 2})
        for ws in (on_a, on_b):
            assert [ws.recv(timeout=seconds(5)) for _ in range(5)] == [f"m{i}" for i in range(5)]
        assert_silent(outsider)
        # a push by id reaches the other node (its node channel is a shard channel)
        assert a.api("POST", "", {"client": id_b, "data": "to b"}) == (200, {"delivered": 1})
        assert on_b.recv(timeout=seconds(5)) == "to b"
        fake = "nobody1." + id_b.split(".", 1)[1]
        started = time.monotonic()
        assert a.api("POST", "", {"client": fake, "data": "x"}) == (404, {"error": "unknown client"})
        assert time.monotonic() - started < seconds(2)
        assert b.api("POST", "", {"user": "ann", "data": "hi ann"}) == (200, {"delivered": 2})
        assert on_a.recv(timeout=seconds(5)) == "hi ann"
        assert on_b.recv(timeout=seconds(5)) == "hi ann"
        # presence and stats, kept on the shards owning their slots
        assert eventually(lambda: a.api("GET", f"/channels/{room}")[1]["member_count"] == 2)
        # other nodes' stats are as fresh as their last refresh (every presence_ttl / 3)
        stats = eventually(lambda: (s := b.api("GET", "/stats")[1])["open"] == 3 and s)
        assert stats and stats["node_count"] == 2
        presence = names.presence(room)[0]
        assert redis_cluster.owner(hash_slot(presence)).cli("HLEN", presence) == "2"


def test_a_channel_keeps_flowing_while_its_slot_migrates_to_another_shard(redis_cluster, nodes):
    names, (a, b) = nodes
    room = unique("room")
    channel = names.channel(room)
    slot = hash_slot(channel)
    with ExitStack() as stack:
        on_a, on_b, source = both_in_room(stack, redis_cluster, (a, b), room, channel)
        assert a.api("POST", "", {"channel": room, "data": "before"}) == (200, {"delivered": 2})
        assert on_a.recv(timeout=seconds(5)) == on_b.recv(timeout=seconds(5)) == "before"
        target = redis_cluster.other_than(source)
        redis_cluster.migrate(slot, target)  # Redis drops the shard subscriptions (sunsubscribe)
        # both nodes subscribe again, on the new owner
        assert eventually(lambda: target.cli.numsub(channel, sharded=True) == 2), target.cli.numsub(
            channel, sharded=True
        )
        assert source.cli.numsub(channel, sharded=True) == 0
        for seq in range(5):
            assert b.api("POST", "", {"channel": room, "data": f"after{seq}"}) == (200, {"delivered": 2})
        for ws in (on_a, on_b):
            assert [ws.recv(timeout=seconds(5)) for _ in range(5)] == [f"after{i}" for i in range(5)]
        # presence moved with the slot's keys and is still read and written
        assert eventually(lambda: a.api("GET", f"/channels/{room}")[1]["member_count"] == 2)
    for node in (a, b):
        assert eventually(lambda n=node: "moved to their slot's new owner" in n.text()), node.text()


def test_a_channel_with_history_is_stored_on_its_shard_and_survives_a_migration(redis_cluster, nodes):
    names, (a, b) = nodes
    room = "hist:" + unique("room")  # the nodes keep history for hist:*
    channel, stream = names.channel(room), names.stream(room)
    slot = hash_slot(channel)
    with ExitStack() as stack:
        on_a, on_b, source = both_in_room(stack, redis_cluster, (a, b), room, channel)
        for seq in range(5):
            assert a.api("POST", "", {"channel": room, "data": f"m{seq}"}) == (200, {"delivered": 2})
        # stored and published in one script on the slot's owner (SPUBLISH from Lua)
        assert source.cli("XLEN", stream) == "5"
        target = redis_cluster.other_than(source)
        redis_cluster.migrate(slot, target)
        assert eventually(lambda: target.cli.numsub(channel, sharded=True) == 2)
        for seq in range(5, 10):
            assert b.api("POST", "", {"channel": room, "data": f"m{seq}"}) == (200, {"delivered": 2})
        assert target.cli("XLEN", stream) == "10"
        expected = [f"m{i}" for i in range(10)]
        for ws in (on_a, on_b):
            assert [ws.recv(timeout=seconds(5)) for _ in expected] == expected
            assert_silent(ws)
