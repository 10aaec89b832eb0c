"""
A real failover: a Redis Cluster of three primaries with one replica each
(six ``redis-server`` processes on loopback); a primary is killed, Redis
promotes its replica, and

- ``RedisClusterClient`` fails that primary's slots fast meanwhile, then
  finds the promoted replica in the slot map and sends them there;
- two hub nodes (server processes) subscribed to a channel on that shard
  follow it to the new primary: publications and pushes flow again with
  exact counts, and presence is read and written there.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.trial import unittest

from ratchetpy.exceptions import RedisError
from ratchetpy.hub.envelope import Names
from ratchetpy.redis import RedisConfig
from ratchetpy.redis.cluster import RedisClusterClient
from ratchetpy.redis.slots import hash_slot
from tests.hub.test_redis_backplane import Node, eventually
from tests.support.redis import unique, wait_for
from tests.support.redis_cluster import RedisCluster
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


class ClientFailoverTests(unittest.TestCase):
    timeout = 90

    @defer.inlineCallbacks
    def test_the_promoted_replica_takes_the_dead_primarys_slots(self) -> None:
        from twisted.internet import reactor

        cluster = RedisCluster(Path(self.mktemp()).resolve(), replicas=1)
        Path(cluster.directory).mkdir(parents=True)
        cluster.start()
        self.addCleanup(cluster.stop)
        config = RedisConfig.from_url(cluster.url).with_options(health_interval=0.5, timeout=2)
        client = RedisClusterClient(config, reactor, min_refresh=0.2)
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(reactor, lambda: client.connected)
        self.assertEqual(len(client.slots.primaries()), 3)
        key = unique("failover")
        slot = hash_slot(key)
        dead = cluster.owner(slot)
        dead.kill()
        yield wait_for(reactor, lambda: not client.nodes[("127.0.0.1", dead.port)].connected)
        # meanwhile: fast failures
        failed = client.execute("SET", key, "x")
        self.assertTrue(failed.called)
        yield self.assertFailure(failed, RedisError)

        def promoted() -> bool:
            owner = client.slots.owner(slot)
            return owner is not None and owner[1] != dead.port and client.connected

        yield wait_for(reactor, promoted, timeout=40)
        new_owner = cluster.owner(slot)
        self.assertEqual(client.slots.owner(slot), ("127.0.0.1", new_owner.port))
        self.assertNotIn(("127.0.0.1", dead.port), client.nodes)
        cluster.wait_ok()
        self.assertEqual((yield client.execute("SET", key, "after")), b"OK")
        self.assertEqual(new_owner.cli("GET", key), "after")


def test_hub_nodes_follow_a_channel_to_the_promoted_replica(tmp_path: Path) -> None:
    with RedisCluster(tmp_path, replicas=1) as cluster:
        prefix = unique("fo") + ":"
        names = Names(prefix)
        a = Node(cluster.url, prefix, tmp_path, "a")
        b = Node(cluster.url, prefix, tmp_path, "b")
        try:
            room = unique("room")
            channel = names.channel(room)
            with ExitStack() as stack:
                on_a, _ = a.ws(stack, f"/tell?room={room}")
                on_b, id_b = b.ws(stack, f"/tell?room={room}")
                dead = cluster.owner(hash_slot(channel))
                assert eventually(lambda: dead.cli.numsub(channel, sharded=True) == 2)
                dead.kill()

                def promoted() -> bool:
                    try:
                        owner = cluster.owner(hash_slot(channel))
                    except AssertionError:
                        return False
                    return owner is not dead and owner.cli.numsub(channel, sharded=True) == 2

                assert eventually(promoted, 40)
                # every slot served again (Redis may still be settling)
                assert eventually(lambda: a.api("POST", "", {"channel": room, "data": "x"})[1] == {"delivered": 2}, 20)
                assert on_a.recv(timeout=seconds(5)) == on_b.recv(timeout=seconds(5)) == "x"
                for seq in range(3):
                    assert b.api("POST", "", {"channel": room, "data": f"m{seq}"}) == (200, {"delivered": 2})
                for ws in (on_a, on_b):
                    assert [ws.recv(timeout=seconds(5)) for _ in range(3)] == ["m0", "m1", "m2"]
                assert a.api("POST", "", {"client": id_b, "data": "pushed"}) == (200, {"delivered": 1})
                assert on_b.recv(timeout=seconds(5)) == "pushed"
                assert eventually(lambda: a.api("GET", f"/channels/{room}")[1]["member_count"] == 2, 10)
        finally:
            a.stop()
            b.stop()
        for node in (a, b):
            assert "Traceback" not in node.text(), node.text()
