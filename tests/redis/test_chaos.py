"""
Redis failing under a running client and subscriber, each test on a
private redis-server it pauses (SIGSTOP), kills or restarts.

Waits are bounded (``wait_for``) and short intervals keep each test to a
few seconds; nothing asserts how long something took.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer, task

from ratchetpy.exceptions import RedisTimeout, RedisUnavailable
from ratchetpy.redis import Backoff, RedisClient, RedisConfig, Subscriber
from tests.redis.test_client import RealRedisCase
from tests.redis.test_pubsub import Inbox
from tests.support.redis import wait_for

FAST = {"health_interval": 0.3, "timeout": 0.5, "connect_timeout": 0.5}
PROBE_BOUND = FAST["health_interval"] + FAST["timeout"]


@pytest.mark.slow
class ChaosTests(RealRedisCase):
    def start(self, server: Any, **options: Any) -> tuple[RedisClient, Subscriber, list[float]]:
        config = RedisConfig.from_url(server.url).with_options(**{**FAST, **options})
        client = RedisClient(config, self.reactor, backoff=Backoff(0.05, 0.3))
        reconnects: list[float] = []
        subscriber = Subscriber(
            config, self.reactor, backoff=Backoff(0.05, 0.3), on_reconnect=reconnects.append
        )
        for service in (client, subscriber):
            service.startService()
            self.addCleanup(service.stopService)
        return client, subscriber, reconnects

    def assert_outage_logged_once(self) -> None:
        """One warning when the outage began and one line with its length when it ended, per connection."""
        lines = self.log_lines()
        for role in ("commands", "pubsub"):
            began = [
                line for line in lines if f"{role} connection" in line and "unavailable:" in line
            ]
            ended = [
                line for line in lines if f"{role} connection" in line and "is back after" in line
            ]
            self.assertEqual(len(began), 1, lines)
            self.assertEqual(len(ended), 1, lines)
            self.assertRegex(ended[0], r"is back after \d+\.\d s$")

    def ticker(self) -> list[float]:
        """A LoopingCall every 20 ms: proof the reactor keeps running."""
        ticks: list[float] = []
        loop = task.LoopingCall(lambda: ticks.append(self.reactor.seconds()))
        loop.start(0.02)
        self.addCleanup(loop.stop)
        return ticks

    @defer.inlineCallbacks
    def test_a_paused_redis_is_found_by_the_probes_and_recovered_from(self):
        server = self.private()
        client, subscriber, reconnects = self.start(server)
        inbox = Inbox()
        yield wait_for(self.reactor, lambda: client.connected and subscriber.connected)
        yield subscriber.subscribe("news", inbox)

        server.pause()
        ticks = self.ticker()
        # nothing is sent to the subscriber: only its PING probe can notice
        yield wait_for(
            self.reactor,
            lambda: not subscriber.connected and not client.connected,
            timeout=PROBE_BOUND + 3,
        )
        self.assertGreaterEqual(subscriber.stats.timeouts, 1)
        self.assertGreaterEqual(client.stats.timeouts, 1)
        during = client.execute("SET", "k", "v")
        self.assertTrue(during.called)  # failed at once, nothing queued
        with self.assertRaises(RedisUnavailable):
            yield during
        before = len(ticks)
        yield task.deferLater(
            self.reactor, 0.5, lambda: None
        )  # reconnection attempts time out meanwhile
        self.assertGreater(len(ticks), before)
        self.assertFalse(client.connected)

        server.resume()
        yield wait_for(
            self.reactor, lambda: client.connected and subscriber.connected and reconnects
        )
        self.assertEqual(server.cli.numsub("news"), 1)
        yield client.publish("news", "after the pause")
        yield wait_for(self.reactor, lambda: inbox.got)
        self.assertEqual(inbox.got, [(b"news", b"after the pause")])
        self.assert_outage_logged_once()

    @defer.inlineCallbacks
    def test_a_restarted_redis_gets_every_subscription_back_and_the_outage_is_logged(self):
        server = self.private()
        client, subscriber, reconnects = self.start(server)
        inbox = Inbox()
        yield wait_for(self.reactor, lambda: client.connected and subscriber.connected)
        for name in ("a", "b", "c"):
            yield subscriber.subscribe(name, inbox)
        yield subscriber.subscribe("s", inbox, sharded=True)

        server.kill()
        ticks = self.ticker()
        yield wait_for(self.reactor, lambda: not client.connected and not subscriber.connected)
        failed_fast = [client.publish("a", str(i)) for i in range(100)]
        self.assertTrue(all(d.called for d in failed_fast))
        results = yield defer.DeferredList(failed_fast, consumeErrors=True)
        self.assertTrue(all(not ok and f.check(RedisUnavailable) for ok, f in results))
        yield task.deferLater(self.reactor, 0.5, lambda: None)  # several refused attempts
        self.assertGreater(len(ticks), 5)

        server.start()
        yield wait_for(
            self.reactor, lambda: client.connected and subscriber.connected and reconnects
        )
        self.assertGreater(reconnects[0], 0.0)
        for name in ("a", "b", "c"):
            self.assertEqual(server.cli.numsub(name), 1)
        self.assertEqual(server.cli.numsub("s", sharded=True), 1)
        yield client.publish("b", "back")
        yield client.spublish("s", "back too")
        yield wait_for(self.reactor, lambda: len(inbox.got) == 2)
        self.assert_outage_logged_once()
        self.assertEqual(client.stats.outages, 1)
        self.assertEqual(subscriber.stats.outages, 1)
        self.assertEqual(client.stats.failures, 100)

    @defer.inlineCallbacks
    def test_pending_commands_stay_bounded_while_redis_does_not_answer(self):
        server = self.private()
        client, _, _ = self.start(server, max_pending=10, timeout=1.0, health_interval=0)
        yield wait_for(self.reactor, lambda: client.connected)
        server.pause()
        self.addCleanup(server.resume)
        sent = [client.execute("INCR", "n") for _ in range(15)]
        refused = [d for d in sent if d.called]
        self.assertEqual(len(refused), 5)
        for d in refused:
            with self.assertRaises(RedisUnavailable) as caught:
                yield d
            self.assertIn("too many pending", str(caught.exception))
        for d in sent[:10]:
            with self.assertRaises(RedisTimeout):
                yield d
        self.assertEqual(client.stats.timeouts, 1)
        self.assertEqual(client.stats.failures, 15)
        server.resume()
        yield wait_for(self.reactor, lambda: client.connected)
        # a timed-out command may still have run: the resumed server read them
        self.assertIn((yield client.execute("GET", "n")), (None, b"10"))
