"""
RedisClusterClient on a Clock with in-memory node connections: the slot
map, routing, MOVED/ASK/CLUSTERDOWN/TRYAGAIN, CROSSSLOT, a lost primary
and a promoted replica (failover is covered here: the CI cluster has no
replicas), refresh rate limits and backoff.

Slots: ``bar`` 5061 (7001), ``c`` 7365 (7002), ``foo`` 12182 (7003).
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent

from ratchetpy.exceptions import RedisClusterError, RedisReplyError, RedisUnavailable
from ratchetpy.redis.cluster import command_slot
from ratchetpy.redis.slots import hash_slot
from tests.redis.test_client_memory import error_of, outcome
from tests.support.redis_cluster_memory import THREE, FakeCluster, shards

A = ("127.0.0.1", 7001)
B = ("127.0.0.1", 7002)
C = ("127.0.0.1", 7003)


def warnings(logged: list[dict[str, Any]]) -> list[str]:
    return [
        formatEvent(e)
        for e in logged
        if e.get("log_namespace", "").startswith("ratchetpy.redis")
        and e.get("log_level") in (LogLevel.warn, LogLevel.error)
    ]


def test_the_map_comes_from_cluster_shards_and_commands_go_to_their_slots_owner() -> None:
    fake = FakeCluster().start()
    client = fake.client
    assert client.slots.primaries() == {A, B, C}
    for key, port in (("bar", 7001), ("c", 7002), ("foo", 7003)):
        got = client.execute("GET", key)
        assert fake.last(port).commands() == [[b"GET", key.encode()]]
        fake.last(port).reply(b"v")
        assert outcome(got) == b"v"
    script = client.evalsha_or_eval("return 1", ["{foo}:a", "{foo}:b"], ["x"])
    [[name, _sha, count, *rest]] = fake.last(7003).commands()
    assert (name, count, rest) == (b"EVALSHA", b"2", [b"{foo}:a", b"{foo}:b", b"x"])
    fake.last(7003).reply(1)
    assert outcome(script) == 1
    # keyless: any connected primary
    ping = client.execute("PING")
    fake.last(7001).reply("PONG")
    assert outcome(ping) == b"PONG"


def test_cluster_slots_is_asked_when_the_server_has_no_cluster_shards() -> None:
    fake = FakeCluster()
    fake.client.startService()
    seed = fake.conn(7001)
    fake.set_up(seed)
    fake.reactor.advance(0)
    assert seed.commands() == [[b"CLUSTER", b"SHARDS"]]
    seed.reply(RedisReplyError("ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP."))
    assert seed.commands() == [[b"CLUSTER", b"SLOTS"]]
    seed.reply([[0, 8191, [b"127.0.0.1", 7001, b"id1"]], [8192, 16383, [b"", 7002, b"id2"]]])
    # an empty host means "the node you asked"
    assert fake.client.slots.primaries() == {A, B}
    fake.set_up(fake.last(7002))
    assert fake.client.connected


def test_keys_in_different_slots_are_refused_naming_them_before_anything_is_sent() -> None:
    fake = FakeCluster().start()
    error = error_of(fake.client.execute("MGET", "foo", "bar"))
    assert isinstance(error, RedisClusterError) and error.code == "CROSSSLOT"
    assert "foo (slot 12182)" in str(error) and "bar (slot 5061)" in str(error)
    assert "hash tag" in str(error)
    error = error_of(fake.client.evalsha_or_eval("return 1", ["foo", "bar"]))
    assert error.code == "CROSSSLOT"
    assert all(not fake.last(p).transport.value() for p in (7001, 7002, 7003))
    assert command_slot(("MSET", "{u}a", "1", "{u}b", "2")) == hash_slot("u")
    assert command_slot(("PUBLISH", "x", "y")) is None
    with pytest.raises(ValueError, match="MULTI cannot work"):
        command_slot(("MULTI",))


def test_moved_updates_the_slot_retries_once_on_the_new_owner_and_refreshes_rate_limited() -> None:
    fake = FakeCluster(min_refresh=1.0).start()
    client = fake.client
    got = client.execute("GET", "foo")
    fake.last(7003).commands()
    fake.last(7003).reply(RedisReplyError("MOVED 12182 127.0.0.1:7002"))
    assert fake.last(7002).commands() == [[b"GET", b"foo"]]
    fake.last(7002).reply(b"there")
    assert outcome(got) == b"there"
    assert client.slots.owner(12182) == B
    assert client.slots.owner(12183) == C  # only that slot, until the refresh
    # the next command goes straight to the new owner
    client.execute("GET", "foo")
    assert fake.last(7002).commands() == [[b"GET", b"foo"]]
    assert not fake.last(7003).transport.value()
    # a refresh is asked for, not before min_refresh since the last one (at start)
    fake.last(7002).reply(b"1")
    asked = [c for p in (7001, 7002, 7003) for c in fake.last(p).commands()]
    assert asked == []
    fake.reactor.advance(1.0)
    asked = [c for p in (7001, 7002, 7003) for c in fake.last(p).commands()]
    assert asked == [[b"CLUSTER", b"SHARDS"]]


def test_a_second_redirection_fails_the_command_with_a_cluster_error() -> None:
    fake = FakeCluster().start()
    got = fake.client.execute("GET", "foo")
    fake.last(7003).commands()
    fake.last(7003).reply(RedisReplyError("MOVED 12182 127.0.0.1:7002"))
    fake.last(7002).commands()
    fake.last(7002).reply(RedisReplyError("MOVED 12182 127.0.0.1:7003"))
    error = error_of(got)
    assert isinstance(error, RedisClusterError) and "redirected GET twice" in str(error)


def test_ask_sends_asking_and_the_command_to_the_target_and_keeps_the_map() -> None:
    fake = FakeCluster().start()
    got = fake.client.execute("GET", "foo")
    fake.last(7003).commands()
    fake.last(7003).reply(RedisReplyError("ASK 12182 127.0.0.1:7001"))
    assert fake.last(7001).commands() == [[b"ASKING"], [b"GET", b"foo"]]
    fake.last(7001).reply("OK", b"imported")
    assert outcome(got) == b"imported"
    assert fake.client.slots.owner(12182) == C
    # a script after ASK is sent whole (EVAL): ASKING covers one command only
    script = fake.client.evalsha_or_eval("return 2", ["foo"])
    fake.last(7003).commands()
    fake.last(7003).reply(RedisReplyError("ASK 12182 127.0.0.1:7001"))
    [asking, evaled] = fake.last(7001).commands()
    assert asking == [b"ASKING"] and evaled[:2] == [b"EVAL", b"return 2"]
    fake.last(7001).reply("OK", 2)
    assert outcome(script) == 2


def test_ask_to_a_node_not_connected_yet_waits_for_it_within_connect_timeout() -> None:
    fake = FakeCluster().start()
    got = fake.client.execute("GET", "foo")
    fake.last(7003).commands()
    fake.last(7003).reply(RedisReplyError("ASK 12182 127.0.0.1:7009"))
    fake.set_up(fake.last(7009))  # only its setup PING so far: the command waited
    assert fake.last(7009).commands() == [[b"ASKING"], [b"GET", b"foo"]]
    fake.last(7009).reply("OK", b"new node")
    assert outcome(got) == b"new node"


@pytest.mark.parametrize("code", ["CLUSTERDOWN The cluster is down", "TRYAGAIN Multiple keys request during rehashing of slot"])
def test_clusterdown_and_tryagain_fail_at_once_with_a_clear_error_and_refresh(code: str) -> None:
    fake = FakeCluster().start()
    fake.reactor.advance(5)
    got = fake.client.execute("GET", "foo")
    fake.last(7003).commands()
    fake.last(7003).reply(RedisReplyError(code))
    error = error_of(got)
    assert isinstance(error, RedisClusterError) and error.code == code.split()[0]
    assert "cannot run GET now" in str(error) and "failing at once" in str(error)
    fake.reactor.advance(0)
    asked = [c for p in (7001, 7002, 7003) for c in fake.last(p).commands()]
    assert asked == [[b"CLUSTER", b"SHARDS"]]


def test_a_lost_primary_fails_fast_one_warning_refreshes_with_backoff_until_a_replica_is_promoted(
    logged: list[dict[str, Any]],
) -> None:
    fake = FakeCluster(min_refresh=1.0).start()
    client = fake.client
    fake.reactor.advance(10)
    fake.endpoint(C).refuse = True
    fake.last(7003).transport.loseConnection()
    assert not client.connected
    for _ in range(3):
        error = error_of(client.execute("GET", "foo"))
        assert isinstance(error, RedisUnavailable)
        assert "127.0.0.1:7003 (slot 12182) is unavailable" in str(error)
    other = client.execute("GET", "bar")
    assert fake.last(7001).commands() == [[b"GET", b"bar"]]
    fake.last(7001).reply(b"fine")  # the other shards keep working
    assert outcome(other) == b"fine"
    # the map is asked again and again, more slowly, while the primary is unreachable
    asked_at = []
    for _ in range(40):
        fake.reactor.advance(0.5)
        for port in (7001, 7002):
            for command in fake.last(port).commands():
                if command == [b"CLUSTER", b"SHARDS"]:
                    asked_at.append(fake.reactor.seconds())
                    fake.last(port).reply(shards(*THREE))
    gaps = [b - a for a, b in zip(asked_at, asked_at[1:], strict=False)]
    assert len(asked_at) >= 3 and gaps == sorted(gaps) and gaps[-1] > gaps[0], asked_at
    # a replica (7004) is promoted: its slots go there and the dead node is let go
    fake.reactor.advance(60)
    asked = [p for p in (7001, 7002) if fake.last(p).commands()]
    fake.last(asked[0]).reply(shards((7001, 0, 5460), (7002, 5461, 10922), (7004, 10923, 16383)))
    assert client.slots.owner(12182) == ("127.0.0.1", 7004)
    assert C not in client.nodes
    fake.set_up(fake.last(7004))
    assert client.connected
    got = client.execute("GET", "foo")
    assert fake.last(7004).commands() == [[b"GET", b"foo"]]
    fake.last(7004).reply(b"promoted")
    assert outcome(got) == b"promoted"
    about_dead = [line for line in warnings(logged) if "7003" in line]
    assert len(about_dead) == 1, warnings(logged)


def test_slots_of_a_failed_primary_have_no_owner_and_fail_fast_naming_the_slot() -> None:
    fake = FakeCluster().start(shards(*THREE, failed=(7003,)), connected=False)
    client = fake.client
    assert client.slots.owner(12182) is None and not client.connected
    error = error_of(client.execute("GET", "foo"))
    assert isinstance(error, RedisUnavailable) and "slot 12182 has no live owner" in str(error)


def test_on_usable_runs_when_every_primary_is_up_and_when_one_comes_back() -> None:
    fake = FakeCluster()
    calls: list[int] = []
    fake.client.on_usable = lambda: calls.append(1)
    fake.start()
    assert calls == [1]
    fake.last(7002).transport.loseConnection()
    fake.reactor.advance(1.0)  # its backoff
    fake.set_up(fake.last(7002))
    assert calls == [1, 1]


def test_metrics_of_a_cluster_backplane_sum_its_nodes() -> None:
    from prometheus_client import generate_latest

    from ratchetpy.hub import Hub
    from ratchetpy.hub.metrics import metrics_registry
    from ratchetpy.hub.redis_backplane import RedisBackplane
    from tests.hub.test_metrics import samples, value

    fake = FakeCluster().start()
    hub = Hub()
    backplane = RedisBackplane(hub, fake.client.config, fake.reactor, client=fake.client)
    assert backplane.sharded and backplane.subscriber.cluster is fake.client  # type: ignore[union-attr]
    for key, port in (("bar", 7001), ("c", 7002), ("foo", 7003)):
        got = fake.client.execute("GET", key)
        fake.last(port).commands()
        fake.last(port).reply(RedisReplyError("ERR test"))
        error_of(got)
    parsed = samples(generate_latest(metrics_registry(hub.counters, hub)))
    assert value(parsed, "ratchetpy_redis_commands_total", role="commands", outcome="errors") == 3
    assert value(parsed, "ratchetpy_redis_commands_total", role="commands", outcome="commands") == 4  # + CLUSTER SHARDS
    assert value(parsed, "ratchetpy_redis_connected", role="commands") == 1
