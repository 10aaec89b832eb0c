"""RedisClient against a real redis-server: replies of every type, SELECT, prefix, ACL users, UNIX sockets, scripts."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from twisted.internet import defer
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial import unittest

from ratchetpy.exceptions import RedisReplyError, RedisUnavailable
from ratchetpy.redis import RedisClient, RedisConfig, Script
from tests.support.redis import RedisServer, shared_redis, unique, wait_for


class RealRedisCase(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def log_lines(self) -> list[str]:
        return [
            formatEvent(e)
            for e in self.events
            if str(e.get("log_namespace", "")).startswith("ratchetpy.redis")
            and e.get("log_level") != LogLevel.debug
        ]

    @defer.inlineCallbacks
    def client(self, url: str, **options: Any) -> Any:
        """A started client for ``url``, stopped after the test; waits until it is usable."""
        config = RedisConfig.from_url(url)
        client = RedisClient(config.with_options(**options), self.reactor)
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(self.reactor, lambda: client.connected)
        return client

    def private(self, *extra: str) -> RedisServer:
        server = RedisServer(self.mktemp_dir(), *extra).start()
        self.addCleanup(server.kill)
        return server

    def mktemp_dir(self) -> str:
        """A new temporary directory, removed after the test (outside the checkout)."""
        path = tempfile.mkdtemp(prefix="ratchetpy-redis-test-")
        self.addCleanup(shutil.rmtree, path, True)
        return path


class ClientTests(RealRedisCase):
    @defer.inlineCallbacks
    def test_replies_of_every_type(self):
        redis = shared_redis()
        client = yield self.client(redis.url)
        key, lst, counter = unique("k"), unique("l"), unique("n")
        self.addCleanup(redis.cli, "DEL", key, lst, counter)
        binary = b"\x00\xff\r\n" * 1000 + b"end"
        self.assertEqual((yield client.execute("SET", key, binary)), b"OK")  # status
        self.assertEqual((yield client.execute("GET", key)), binary)  # bulk, binary-safe
        self.assertIsNone((yield client.execute("GET", unique("missing"))))  # null
        self.assertEqual((yield client.execute("INCRBY", counter, 41)), 41)  # integer
        self.assertEqual((yield client.execute("INCRBYFLOAT", counter, 0.5)), b"41.5")
        self.assertEqual((yield client.execute("LRANGE", lst, 0, -1)), [])  # empty array
        yield client.execute("RPUSH", lst, "a", "b", "c")
        self.assertEqual((yield client.execute("LRANGE", lst, 0, -1)), [b"a", b"b", b"c"])
        nested = yield client.execute("EVAL", "return {1, {'two', {3}}, false}", 0)
        self.assertEqual(nested, [1, [b"two", [3]], None])
        big = b"x" * (1 << 20)
        yield client.execute("SET", key, big)
        self.assertEqual((yield client.execute("GET", key)), big)
        # an error reply fails that command only; the next one works
        try:
            yield client.execute("LPUSH", key, "x")
        except RedisReplyError as error:
            self.assertEqual(error.code, "WRONGTYPE")
        else:
            self.fail("no WRONGTYPE")
        self.assertEqual((yield client.execute("STRLEN", key)), 1 << 20)
        # an error inside an array (EXEC) stays in the list
        yield client.execute("MULTI")
        yield client.execute("SET", key, "1")
        yield client.execute("LPUSH", key, "x")
        ok, error = yield client.execute("EXEC")
        self.assertEqual(ok, b"OK")
        self.assertIsInstance(error, RedisReplyError)
        self.assertEqual(client.stats.errors, 1)

    @defer.inlineCallbacks
    def test_pipelined_commands_get_their_own_replies(self):
        redis = shared_redis()
        client = yield self.client(redis.url)
        key = unique("n")
        self.addCleanup(redis.cli, "DEL", key)
        replies = yield defer.gatherResults([client.execute("INCR", key) for _ in range(500)])
        self.assertEqual(replies, list(range(1, 501)))

    @defer.inlineCallbacks
    def test_select_and_prefix(self):
        redis = shared_redis()
        db = 1 if redis.cli.db != 1 else 2
        client = yield self.client(redis.url, db=db, prefix="app:")
        name = unique("sel")
        yield client.execute("SET", client.key(name), "in-db")
        other_db = redis.cli.with_db(db)
        self.addCleanup(other_db, "DEL", "app:" + name)
        self.assertEqual(other_db("GET", "app:" + name), "in-db")
        self.assertEqual(redis.cli("EXISTS", "app:" + name), "0")  # not in the URL's db

    @defer.inlineCallbacks
    def test_client_name_is_set(self):
        client = yield self.client(shared_redis().url, client_name="ratchetpy-test-name")
        self.assertEqual((yield client.execute("CLIENT", "GETNAME")), b"ratchetpy-test-name")

    @defer.inlineCallbacks
    def test_evalsha_or_eval_after_script_flush(self):
        server = self.private()
        client = yield self.client(server.url)
        script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        server.cli("SCRIPT", "FLUSH")
        self.assertEqual((yield client.evalsha_or_eval(script, ["n"], [5])), 5)
        self.assertEqual(server.cli("SCRIPT", "EXISTS", script.sha1), "1")
        self.assertEqual((yield client.evalsha_or_eval(script, ["n"], [5])), 10)
        stats = server.cli("INFO", "commandstats")
        self.assertIn("cmdstat_eval:calls=1,", stats)  # the source went once
        self.assertIn("cmdstat_evalsha:calls=2,", stats)

    @defer.inlineCallbacks
    def test_acl_user(self):
        server = self.private()
        server.cli(
            "ACL", "SETUSER", "app", "on", ">app-secret", "~app:*", "&*", "+@all", "-flushall"
        )
        client = yield self.client(f"redis://app:app-secret@127.0.0.1:{server.port}/0")
        self.assertEqual((yield client.execute("ACL", "WHOAMI")), b"app")
        yield client.execute("SET", "app:k", "v")
        try:
            yield client.execute("SET", "other:k", "v")
        except RedisReplyError as error:
            self.assertEqual(error.code, "NOPERM")
        else:
            self.fail("the ACL let a key outside app:* through")

    @defer.inlineCallbacks
    def test_requirepass_and_a_wrong_password(self):
        server = self.private("--requirepass", "right-one")
        client = yield self.client(f"redis://:right-one@127.0.0.1:{server.port}/0")
        self.assertEqual((yield client.execute("PING")), b"PONG")
        wrong = RedisClient.from_url(f"redis://:wrong-one@127.0.0.1:{server.port}/0", self.reactor)
        wrong.startService()
        self.addCleanup(wrong.stopService)
        yield wait_for(self.reactor, lambda: wrong.stats.outages == 1)
        with self.assertRaises(RedisUnavailable):
            yield wrong.execute("PING")
        lines = self.log_lines()
        self.assertTrue(
            any("WRONGPASS" in line and "check the URL" in line for line in lines), lines
        )
        self.assertFalse(any("wrong-one" in line or "right-one" in line for line in lines))

    @defer.inlineCallbacks
    def test_unix_socket(self):
        directory = self.mktemp_dir()
        import os

        path = os.path.join(os.path.abspath(directory), "redis.sock")
        server = self.private("--unixsocket", path, "--unixsocketperm", "700")
        client = yield self.client(f"unix://{path}?db=3")
        yield client.execute("SET", "via-unix", "yes")
        self.assertEqual(server.cli.with_db(3)("GET", "via-unix"), "yes")
