"""
What the hub's Redis layout does on a real Redis Cluster (three masters on
loopback, ``redis-cli --cluster create``), and what a backplane given a
plain ``redis://`` URL of one cluster node does (it follows no MOVED/ASK
redirection; ``redis+cluster://`` does: test_redis_cluster_backplane.py):

- every key and channel of one hub channel is in one hash slot, the slot
  Redis itself computes (``CLUSTER KEYSLOT``), so SPUBLISH/SSUBSCRIBE and the
  presence scripts need only that slot's node;
- sharded pub/sub is answered by the slot's owner only (MOVED elsewhere);
- classic pub/sub reaches subscribers on every cluster node, so two nodes
  of a hub connected to different cluster nodes still deliver each other's
  publications and pushes, while presence writes get MOVED: the backplane
  says once "this is a Redis Cluster node: use redis+cluster://HOST:PORT".
"""

from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from ratchetpy.hub.envelope import Names
from ratchetpy.redis.slots import hash_slot
from tests.hub.test_redis_backplane import Node, eventually
from tests.support.redis import REDIS_CLI, unique
from tests.support.redis_cluster import RedisCluster
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_cluster(tmp_path: Path):
    with RedisCluster(tmp_path) as cluster:
        yield cluster.servers


def test_a_channel_keeps_its_keys_in_the_slot_redis_computes_and_only_its_owner_takes_spublish(
    redis_cluster,
):
    names = Names(unique("cl") + ":")
    for channel in ("room:1", "lobby", "a}b", "x{y}z", "chat:chat"):
        keys = [names.channel(channel), *names.presence(channel), names.stream(channel), names.meta(channel),
                names.relay(channel)]  # fmt: skip
        slots = {int(redis_cluster[0].cli("CLUSTER", "KEYSLOT", key)) for key in keys}
        assert slots == {hash_slot(names.channel(channel).encode())}, (channel, slots)
        answers = []
        for server in redis_cluster:
            done = subprocess.run(
                [REDIS_CLI, "-p", str(server.port), "SPUBLISH", names.channel(channel), "hi"],
                capture_output=True, text=True, timeout=seconds(10),
            )  # fmt: skip
            answers.append(done.stdout.strip())
        # one node owns the slot and answers (0 subscribers); the others redirect to it
        assert sorted(answers)[0] == "0", answers
        slot = hash_slot(names.channel(channel).encode())
        assert all(a.startswith(f"MOVED {slot} 127.0.0.1:") for a in sorted(answers)[1:]), answers
    users = {
        int(redis_cluster[0].cli("CLUSTER", "KEYSLOT", key))
        for key in (names.user("ann"), *names.user_presence("ann"))
    }
    assert len(users) == 1
    stats = {
        int(redis_cluster[0].cli("CLUSTER", "KEYSLOT", key))
        for key in (names.nodes, names.node_stats)
    }
    assert len(stats) == 1


def test_a_plain_url_at_a_cluster_node_delivers_and_says_once_to_use_redis_cluster(
    redis_cluster, tmp_path
):
    prefix = unique("cl") + ":"
    a = Node(redis_cluster[0].url, prefix, tmp_path, "a")
    b = Node(redis_cluster[2].url, prefix, tmp_path, "b")
    try:
        room = unique("room")
        with ExitStack() as stack:
            on_b, id_b = b.ws(stack, f"/tell?room={room}")
            on_a, _ = a.ws(stack, f"/tell?room={room}")
            # classic PUBLISH reaches subscribers on every cluster node
            channel = f"{prefix}ch:{{{room}}}"
            # each cluster node counts only its own subscribers
            assert eventually(lambda: sum(s.cli.numsub(channel) for s in redis_cluster) == 2)
            status, _ = a.api("POST", "", {"channel": room, "data": "across"})
            assert status == 200
            assert on_a.recv(timeout=seconds(5)) == "across"
            assert on_b.recv(timeout=seconds(5)) == "across"
            # The push arrives; its answer is not to be trusted (PUBLISH
            # counts only the receiving cluster node's subscribers).
            a.api("POST", "", {"client": id_b, "data": "pushed"})
            assert on_b.recv(timeout=seconds(5)) == "pushed"
        for node, server in ((a, redis_cluster[0]), (b, redis_cluster[2])):
            hint = f"this is a Redis Cluster node: use redis+cluster://127.0.0.1:{server.port}"
            assert eventually(lambda n=node, h=hint: h in n.text()), node.text()
            assert node.text().count("is a Redis Cluster node") == 1, node.text()
            assert "MOVED" in node.text()
    finally:
        a.stop()
        b.stop()
    for node in (a, b):
        assert "Traceback" not in node.text(), node.text()
