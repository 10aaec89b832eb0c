"""SlotMap from CLUSTER SHARDS and CLUSTER SLOTS replies; redis+cluster:// URLs."""

from __future__ import annotations

import re

import pytest

from ratchetpy.exceptions import ConfigurationError
from ratchetpy.redis.cluster_map import SlotMap, ranges
from ratchetpy.redis.url import RedisConfig
from tests.support.redis_cluster_memory import THREE, shards


def node(port: int, role: bytes = b"master", health: bytes = b"online", **extra: object) -> list[object]:
    fields: list[object] = [b"id", b"x", b"port", port, b"ip", b"10.0.0.1", b"endpoint", b"redis-a",
                            b"role", role, b"health", health]  # fmt: skip
    for name, value in extra.items():
        fields += [name.replace("_", "-").encode(), value]
    return fields


def test_shards_give_each_slot_its_online_primary_and_skip_replicas() -> None:
    reply = [
        [b"slots", [0, 99, 200, 299], b"nodes", [node(7001, b"replica"), node(7002)]],
        [b"slots", [100, 199], b"nodes", [node(7003, health=b"fail"), node(7004, b"replica")]],
    ]
    found = SlotMap.from_shards(reply)
    assert found.owner(0) == found.owner(250) == ("redis-a", 7002)
    assert found.owner(150) is None and found.owner(300) is None
    assert found.primaries() == {("redis-a", 7002)}
    assert ranges(found.slots_of(("redis-a", 7002))) == "0-99,200-299"
    assert found.uncovered() == 16384 - 200


def test_shards_use_the_tls_port_for_tls_and_the_ip_when_the_endpoint_is_unknown() -> None:
    reply = [[b"slots", [0, 16383], b"nodes", [node(7001, tls_port=7101)]]]
    assert SlotMap.from_shards(reply, tls=True).owner(5) == ("redis-a", 7101)
    assert SlotMap.from_shards(reply).owner(5) == ("redis-a", 7001)
    unknown = [[b"slots", [0, 16383], b"nodes", [[b"port", 7001, b"ip", b"10.0.0.9", b"endpoint", b"?",
                                                  b"role", b"master"]]]]  # fmt: skip
    assert SlotMap.from_shards(unknown).owner(5) == ("10.0.0.9", 7001)
    assert SlotMap.from_shards(shards(*THREE)).uncovered() == 0


def test_cluster_slots_and_a_bad_reply() -> None:
    found = SlotMap.from_slots([[0, 10, [b"h", 1, b"id"], [b"r", 2, b"id2"]], [11, 16383, [b"?", 3]]], "seed")
    assert found.owner(10) == ("h", 1) and found.owner(11) == ("seed", 3)
    with pytest.raises(ValueError, match="CLUSTER SLOTS"):
        SlotMap.from_slots([[0, 10]])
    with pytest.raises(ValueError, match="outside"):
        SlotMap.from_slots([[0, 20000, [b"h", 1]]])


def test_move_and_replace_report_what_changed() -> None:
    found = SlotMap.from_shards(shards(*THREE))
    assert found.move(5, ("127.0.0.1", 7002)) and not found.move(5, ("127.0.0.1", 7002))
    assert found.replace(SlotMap.from_shards(shards(*THREE))) == {5}


def test_cluster_urls() -> None:
    config = RedisConfig.from_url("redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002?prefix=p:")
    assert config.cluster and config.seeds == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (config.username, config.password, config.prefix) == ("app", "pw", "p:")
    assert config.address == "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002"
    node = config.node("10.0.0.3", 7003)
    assert not node.cluster and node.address == "redis://app:***@10.0.0.3:7003/0"
    assert RedisConfig.from_url("redis://h:7000?cluster=1").seeds == (("h", 7000),)
    tls = RedisConfig.from_url("rediss+cluster://h:7000,h:7001?ssl_cert_reqs=none")
    assert tls.tls and not tls.tls_verify and tls.node("h", 7001).tls
    assert not RedisConfig.from_url("redis://h?cluster=0").cluster


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://a:1,b:2", "names several hosts: that is a Redis Cluster; write redis+cluster://"),
        ("redis+cluster://a:1/2", "a Redis Cluster has only database 0, not 2"),
        ("redis+cluster://a:1,b:x", "seed node 'b:x' is not HOST:PORT"),
        ("redis+cluster://a:1,", "an empty seed node"),
        ("redis://a?cluster=maybe", "cluster must be 1 or 0, not 'maybe'"),
        ("unix:///tmp/r.sock?cluster=1", "a Redis Cluster is reached over TCP"),
        ("redis+cluster://:secret@a:1,b:2/5", "only database 0"),
    ],
)
def test_bad_cluster_urls_say_what_to_fix_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
        RedisConfig.from_url(url)
    assert "secret" not in str(raised.value)


def test_twistd_redis_flag_takes_a_cluster_url_and_names_the_fix_for_a_host_list() -> None:
    from tests.test_tap_workers import error, parse

    url = "redis+cluster://127.0.0.1:7001,127.0.0.1:7002?prefix=chat:"
    assert parse("--route", "/chat", "--redis", url)["redis"] == url
    message = error("--route", "/chat", "--redis", "redis://:hunter22@a:1,b:2")
    assert "--redis: Redis URL redis://:***@a:1,b:2 names several hosts" in message, message
    assert "redis+cluster://" in message and "hunter22" not in message


def test_use_redis_with_a_cluster_url_builds_the_cluster_client_and_sharded_subscriber() -> None:
    from twisted.internet.testing import MemoryReactorClock

    from ratchetpy import App
    from ratchetpy.redis import ClusterSubscriber, RedisClusterClient

    app = App("localhost", 0, reactor=MemoryReactorClock())
    backplane = app.use_redis("redis+cluster://127.0.0.1:7001,127.0.0.1:7002?prefix=c:")
    assert isinstance(backplane.client, RedisClusterClient)
    assert isinstance(backplane.subscriber, ClusterSubscriber)
    assert backplane.sharded and backplane.cluster
    assert backplane.subscriber.cluster is backplane.client
