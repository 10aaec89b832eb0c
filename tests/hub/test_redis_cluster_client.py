"""
RedisClusterClient against a real three-primary Redis Cluster on loopback
(``tests/support/redis_cluster.py``): commands reach the primary owning
their slot; a migrated slot's MOVED is followed and the map updated; ASK
during a migration; a killed primary makes its slots fail fast, with one
warning, while the other shards keep working; TLS and an ACL user apply to
every node. ``redis-cli`` on each
server is the independent check.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial import unittest

from ratchetpy.exceptions import RedisClusterError, RedisUnavailable
from ratchetpy.redis import RedisConfig
from ratchetpy.redis.cluster import RedisClusterClient
from ratchetpy.redis.slots import hash_slot
from tests.support.redis import RedisServer, unique, wait_for
from tests.support.redis_cluster import RedisCluster


def key_on(cluster: RedisCluster, server: RedisServer, tag: str = "k") -> str:
    """A fresh key whose slot ``server`` owns."""
    for i in range(10_000):
        key = unique(f"{tag}{i}")
        if cluster.owner(hash_slot(key)) is server:
            return key
    raise AssertionError("no key found")


def address(server: RedisServer) -> tuple[str, int]:
    return ("127.0.0.1", server.port)


class ClusterCase(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def make_cluster(self, *extra: str) -> RedisCluster:
        directory = tempfile.mkdtemp(prefix="ratchetpy-cluster-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        cluster = RedisCluster(Path(directory), *extra).start()
        self.addCleanup(cluster.stop)
        return cluster

    def warnings(self) -> list[str]:
        return [
            formatEvent(e)
            for e in self.events
            if str(e.get("log_namespace", "")).startswith("ratchetpy.redis")
            and e.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical)
        ]

    @defer.inlineCallbacks
    def client(self, cluster: RedisCluster, **options: Any) -> Any:
        config = RedisConfig.from_url(cluster.url).with_options(**options)
        client = RedisClusterClient(config, self.reactor, min_refresh=0.2)
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(self.reactor, lambda: client.connected)
        return client


class RoutingTests(ClusterCase):
    cluster: RedisCluster

    def setUp(self) -> None:
        super().setUp()
        if not hasattr(RoutingTests, "shared"):
            directory = tempfile.mkdtemp(prefix="ratchetpy-cluster-test-")
            RoutingTests.shared = RedisCluster(Path(directory)).start()  # type: ignore[attr-defined]
        self.cluster = RoutingTests.shared  # type: ignore[attr-defined]

    @classmethod
    def tearDownClass(cls) -> None:
        shared = getattr(cls, "shared", None)
        if shared is not None:
            shared.stop()
            shutil.rmtree(shared.directory, True)
            del cls.shared

    @defer.inlineCallbacks
    def test_commands_reach_the_primary_owning_their_slot_on_all_three(self) -> None:
        cluster = self.cluster
        client = yield self.client(cluster)
        self.assertEqual(set(client.slots.primaries()), {address(s) for s in cluster.servers})
        self.assertEqual(client.slots.uncovered(), 0)
        for server in cluster.servers:
            key = key_on(cluster, server)
            yield client.execute("SET", key, f"on {server.port}")
            # the owner has it (a plain redis-cli, no -c: it would say MOVED otherwise)
            self.assertEqual(server.cli("GET", key), f"on {server.port}")
            self.assertEqual((yield client.execute("GET", key)), f"on {server.port}".encode())
            tagged = [f"{{{key}}}:a", f"{{{key}}}:b"]
            self.assertEqual((yield client.execute("DEL", *tagged)), 0)
            found = yield client.evalsha_or_eval("return redis.call('GET', KEYS[1])", [key])
            self.assertEqual(found, f"on {server.port}".encode())
        # every primary took commands
        self.assertTrue(all(client.nodes[address(s)].stats.commands > 0 for s in cluster.servers))

    @defer.inlineCallbacks
    def test_keys_in_different_slots_are_refused_before_sending_naming_them(self) -> None:
        client = yield self.client(self.cluster)
        a, b = unique("x"), unique("y")
        while hash_slot(a) == hash_slot(b):
            b = unique("y")
        sent = sum(n.stats.commands for n in client.nodes.values())
        error = yield self.assertFailure(client.execute("DEL", a, b), RedisClusterError)
        self.assertEqual(error.code, "CROSSSLOT")
        self.assertIn(a, str(error))
        self.assertIn(b, str(error))
        self.assertEqual(sum(n.stats.commands for n in client.nodes.values()), sent)

    @defer.inlineCallbacks
    def test_a_migrated_slot_is_followed_through_moved_and_the_map_updated(self) -> None:
        cluster = self.cluster
        client = yield self.client(cluster, health_interval=0)
        source = cluster.servers[0]
        key = key_on(cluster, source, "moved")
        slot = hash_slot(key)
        yield client.execute("SET", key, "before")
        target = cluster.servers[1]
        cluster.migrate(slot, target)
        self.assertEqual(target.cli("GET", key), "before")
        errors = client.nodes[address(source)].stats.errors
        # the client's map still says source: source answers MOVED, the client follows
        self.assertEqual((yield client.execute("GET", key)), b"before")
        self.assertEqual(client.slots.owner(slot), address(target))
        self.assertEqual(client.nodes[address(source)].stats.errors, errors + 1)
        yield client.execute("SET", key, "after")
        self.assertEqual(target.cli("GET", key), "after")
        # no second MOVED: the next commands go straight to the new owner
        self.assertEqual(client.nodes[address(source)].stats.errors, errors + 1)
        # the full refresh agrees
        yield client.refresh()
        self.assertEqual(client.slots.owner(slot), address(target))
        cluster.migrate(slot, source)  # put it back for the other tests

    @defer.inlineCallbacks
    def test_ask_during_a_migration_reaches_keys_already_moved(self) -> None:
        cluster = self.cluster
        client = yield self.client(cluster, health_interval=0)
        source = cluster.servers[2]
        moved = key_on(cluster, source, "ask")
        stays = f"{{{moved}}}:stays"  # same slot
        slot = hash_slot(moved)
        yield client.execute("SET", moved, "went")
        yield client.execute("SET", stays, "stayed")
        target = cluster.servers[0]
        cluster.begin_migration(slot, target)
        try:
            cluster.move_keys(slot, source, target, [moved])
            self.assertEqual((yield client.execute("GET", moved)), b"went")  # ASK -> ASKING + GET
            self.assertEqual((yield client.execute("GET", stays)), b"stayed")  # still at the source
            found = yield client.evalsha_or_eval("return redis.call('GET', KEYS[1])", [moved])
            self.assertEqual(found, b"went")
            # ASK does not change the map: the slot is the source's until the end
            self.assertEqual(client.slots.owner(slot), address(source))
            # both keys at once while they are split: TRYAGAIN, failed at once with a clear error
            error = yield self.assertFailure(client.execute("MGET", moved, stays), RedisClusterError)
            self.assertEqual(error.code, "TRYAGAIN")
            self.assertIn("cannot run MGET now", str(error))
        finally:
            cluster.move_keys(slot, source, target)
            cluster.end_migration(slot, target)
        self.assertEqual((yield client.execute("MGET", moved, stays)), [b"went", b"stayed"])
        cluster.migrate(slot, source)


@pytest.mark.slow  # waits for the cluster to mark the node failed
class KilledPrimaryTests(ClusterCase):
    @defer.inlineCallbacks
    def test_a_killed_primary_fails_its_slots_fast_with_one_warning_others_keep_working(self) -> None:
        # without it Redis itself stops every shard (CLUSTERDOWN) once a primary is marked failed
        cluster = self.make_cluster("--cluster-require-full-coverage", "no")
        client = yield self.client(cluster, health_interval=0.5, timeout=2)
        dead, alive = cluster.servers[1], [cluster.servers[0], cluster.servers[2]]
        dead_key = key_on(cluster, dead, "dead")
        alive_keys = [key_on(cluster, s, "alive") for s in alive]
        dead.kill()
        yield wait_for(self.reactor, lambda: not client.nodes[address(dead)].connected)
        for _ in range(20):
            # fails at once: the Deferred has fired before execute returns
            failed = client.execute("SET", dead_key, "x")
            self.assertTrue(failed.called)
            error = yield self.assertFailure(failed, RedisUnavailable)
            self.assertIn(str(dead.port), str(error))
            for key in alive_keys:
                self.assertEqual((yield client.execute("SET", key, "y")), b"OK")
        # the cluster marks it failed (node timeout 2 s); the map leaves its slots ownerless
        yield wait_for(self.reactor, lambda: client.slots.uncovered() > 0, timeout=20)
        error = yield self.assertFailure(client.execute("GET", dead_key), RedisUnavailable)
        self.assertIn(f"slot {hash_slot(dead_key)}", str(error))
        for key in alive_keys:
            self.assertEqual((yield client.execute("GET", key)), b"y")
        about_dead = [line for line in self.warnings() if str(dead.port) in line]
        self.assertEqual(len(about_dead), 1, self.warnings())
        self.assertFalse(client.connected)


class TlsAndAclTests(ClusterCase):
    @defer.inlineCallbacks
    def test_tls_and_an_acl_user_apply_to_every_node_and_a_wrong_password_says_so(self) -> None:
        from tests.support.tls import self_signed

        directory = tempfile.mkdtemp(prefix="ratchetpy-cluster-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        cert, key = self_signed(directory)
        cluster = RedisCluster(Path(directory), password="admin-pw", tls=(cert, key)).start()
        self.addCleanup(cluster.stop)
        for server in cluster.servers:
            server.cli("ACL", "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all")
        url = cluster.url.replace(":admin-pw@", "app:app-pw@")
        self.assertTrue(url.startswith("rediss+cluster://app:app-pw@"))
        config = RedisConfig.from_url(url)
        client = RedisClusterClient(config, self.reactor, min_refresh=0.2)
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(self.reactor, lambda: client.connected)
        # the map gave each node's TLS port
        self.assertEqual(
            client.slots.primaries(), {("127.0.0.1", cluster.tls_ports[s.port]) for s in cluster.servers}
        )
        for server in cluster.servers:
            key_name = key_on(cluster, server, "tls")
            yield client.execute("SET", key_name, "secure")
            self.assertEqual(server.cli("GET", key_name), "secure")
        # connected as the ACL user, to every node
        for server in cluster.servers:
            self.assertIn("user=app", server.cli("CLIENT", "LIST"))
        wrong = RedisClusterClient(
            RedisConfig.from_url(url.replace("app-pw", "nope")), self.reactor, min_refresh=0.2
        )
        wrong.startService()
        self.addCleanup(wrong.stopService)
        yield wait_for(self.reactor, lambda: any(n.stats.outages for n in wrong.nodes.values()))
        self.assertFalse(wrong.connected)
        refused = [line for line in self.warnings() if "refused the connection's setup" in line]
        self.assertTrue(refused, self.warnings())
        self.assertIn("check the URL's user, password and db", refused[0])
        self.assertNotIn("nope", "\n".join(self.warnings()))
