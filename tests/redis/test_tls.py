"""rediss:// against a redis-server with TLS (Debian's is built with it): verification, names, client certificates."""

from __future__ import annotations

from twisted.internet import defer

from ratchetpy.exceptions import RedisUnavailable
from ratchetpy.redis import Backoff, RedisClient, RedisConfig
from tests.redis.test_client import RealRedisCase
from tests.support.ci import require_tool
from tests.support.processes import free_port
from tests.support.redis import RedisServer, require_redis, wait_for
from tests.support.tls import self_signed


class TlsTests(RealRedisCase):
    def setUp(self) -> None:
        super().setUp()
        require_redis()
        directory = self.mktemp_dir()
        self.cert, self.key = self_signed(directory)
        self.tls_port = free_port()
        self.server = self.private_tls(directory, "no")

    def private_tls(self, directory: str, auth_clients: str) -> RedisServer:
        try:
            server = self.start_tls(directory, auth_clients)
        except AssertionError as error:
            # a build without TLS exits at start saying so
            built_without = "TLS" in str(error) and ("not supported" in str(error) or "not compiled" in str(error))
            require_tool(not built_without, "redis-server is built without TLS", "apt-get install redis-server (Debian's has TLS)")
            raise
        self.addCleanup(server.kill)
        return server

    def start_tls(self, directory: str, auth_clients: str) -> RedisServer:
        return RedisServer(
            directory,
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", self.cert,
            "--tls-key-file", self.key,
            "--tls-ca-cert-file", self.cert,
            "--tls-auth-clients", auth_clients,
        ).start()  # fmt: skip

    def tls_url(self, query: str) -> str:
        return f"rediss://127.0.0.1:{self.tls_port}/0?{query}"

    @defer.inlineCallbacks
    def never_usable(self, url: str, says: str = "") -> defer.Deferred[None]:
        client = RedisClient(RedisConfig.from_url(url), self.reactor, backoff=Backoff(0.05, 0.2))
        client.startService()
        self.addCleanup(client.stopService)
        yield wait_for(self.reactor, lambda: client.stats.outages == 1)
        self.assertFalse(client.connected)
        with self.assertRaises(RedisUnavailable):
            yield client.execute("PING")
        began = [line for line in self.log_lines() if "unavailable:" in line]
        self.assertIn(says, began[-1])

    @defer.inlineCallbacks
    def test_rediss_with_the_servers_ca(self):
        client = yield self.client(self.tls_url(f"ssl_ca_certs={self.cert}"))
        yield client.execute("SET", "over-tls", "yes")
        self.assertEqual(self.server.cli("GET", "over-tls"), "yes")  # the plain port sees it

    @defer.inlineCallbacks
    def test_verification_off(self):
        client = yield self.client(self.tls_url("ssl_cert_reqs=none"))
        self.assertEqual((yield client.execute("PING")), b"PONG")

    def test_an_unknown_ca_is_refused(self):
        # the system's CAs do not know the test CA
        return self.never_usable(self.tls_url("timeout=1"), says="certificate verify failed")

    def test_a_wrong_server_name_is_refused(self):
        return self.never_usable(
            self.tls_url(f"ssl_ca_certs={self.cert}&ssl_server_name=other.example"), says="other.example"
        )

    def test_plain_redis_to_a_tls_port_is_refused(self):
        return self.never_usable(f"redis://127.0.0.1:{self.tls_port}/0?connect_timeout=1")

    @defer.inlineCallbacks
    def test_client_certificates(self):
        self.server.kill()
        self.tls_port = free_port()
        self.server = self.private_tls(self.mktemp_dir(), "yes")
        yield self.never_usable(self.tls_url(f"ssl_ca_certs={self.cert}"), says="lost")
        client = yield self.client(
            self.tls_url(f"ssl_ca_certs={self.cert}&ssl_certfile={self.cert}&ssl_keyfile={self.key}")
        )
        self.assertEqual((yield client.execute("PING")), b"PONG")
