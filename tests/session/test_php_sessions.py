"""
Sessions written by real PHP, read by a real server over loopback.

One php-cli process writes a session for every store × serializer
(``session.save_handler`` files, files with ``2;/path`` subdirectories,
phpredis's redis, php-memcached's memcached, plus Symfony's ``sf_s`` Redis
keys written from ``session_encode()``; ``session.serialize_handler`` php,
php_binary and php_serialize) with UTF-8 strings, nested arrays, an object
with private and protected properties, a float, references and the Symfony
bag layout. An ``App`` serves one route per store; the ``websockets``
client connects with ``Cookie: PHPSESSID=<id>`` and the component sends
back what ``conn.session`` holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import globalLogPublisher
from websockets.sync.client import connect

from ratchetpy.app import App
from ratchetpy.session import FilesHandler, MemcachedHandler, RedisHandler
from ratchetpy.session.serialize import PhpCustomObject, PhpEnum, PhpObject
from tests.session.tempdirs import TempDirCase
from tests.support.components import ClosesOnError
from tests.support.loopback import start_app
from tests.support.memcached import MEMCACHED, require_memcached, shared_memcached
from tests.support.php import PHP, require_php, run_php
from tests.support.processes import free_port
from tests.support.redis import RedisServer, require_redis, shared_redis, unique
from tests.support.timing import seconds

SERIALIZERS = ("php", "php_binary", "php_serialize")
STORES = ("files", "files2", "redis", "symfony", "memcached", "symfony_mc")

WRITER = r"""<?php
// Writes one session per (store, serializer) listed on stdin; prints nothing else.
class Account {
    public $name = 'alice';
    protected $role = 'admin';
    private $secret = 'hunter2';
    public $tags = ['a', 'b'];
}
$jobs = json_decode(stream_get_contents(STDIN), true);
foreach ($jobs as $job) {
    ini_set('session.serialize_handler', $job['serializer']);
    $symfony = in_array($job['store'], ['symfony', 'symfony_mc'], true);
    ini_set('session.save_handler', $symfony ? 'files' : $job['handler']);
    ini_set('session.save_path', $symfony ? $job['scratch'] : $job['save_path']);
    session_id($job['id']);
    if (!session_start()) { fwrite(STDERR, "session_start failed for " . json_encode($job)); exit(1); }
    $_SESSION['name'] = 'Zoë 👋 ' . $job['store'];
    $_SESSION['nested'] = ['level1' => ['level2' => [1, 2, 3]], 'mixed' => [1.5, true, null, 'x']];
    $_SESSION['account'] = new Account();
    $_SESSION['same_account'] = $_SESSION['account'];
    $_SESSION['pi'] = 3.14159;
    $_SESSION['big'] = PHP_INT_MAX;
    $_SESSION['target'] = ['shared' => 1];
    $_SESSION['alias'] = &$_SESSION['target'];
    $_SESSION['_sf2_attributes'] = ['user' => 'bob', 'roles' => ['ROLE_ADMIN']];
    $_SESSION['_sf2_flashes'] = ['notice' => ['Saved!']];
    $_SESSION['_sf2_meta'] = ['u' => time(), 'c' => time() - 60, 'l' => 0];
    if ($symfony) {
        // Symfony's RedisSessionHandler stores what session_encode() gives.
        $data = session_encode();
        session_abort();
        if ($job['store'] === 'symfony') {
            $redis = new Redis();
            $redis->connect('127.0.0.1', $job['redis_port']);
            $redis->select($job['redis_db']);
            $redis->setex('sf_s' . $job['id'], 600, $data);
        } else {
            // Symfony's MemcachedSessionHandler: Memcached::set under sf2s<id>
            $memcached = new Memcached();
            $memcached->addServer('127.0.0.1', $job['mc_port']);
            $memcached->set('sf2s' . $job['id'], $data, 600);
        }
    } else {
        session_write_close();
    }
    $_SESSION = [];
}
"""


def _plain(value: Any) -> Any:
    if isinstance(value, PhpObject):
        return {"__class__": value.class_name, **{str(k): v for k, v in value.properties.items()}}
    if isinstance(value, (PhpCustomObject, PhpEnum)):
        return repr(value)
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    raise TypeError(type(value).__name__)


class Report(ClosesOnError):
    """Sends what ``conn.session`` holds, as JSON, then stays quiet."""

    def on_open(self, conn: Any) -> None:
        session = conn.session
        raw = session.raw
        report = {
            "status": session.status,
            "id": session.get_id(),
            "name": session.get("name"),
            "nested": session.get("nested"),
            "account": session.get("account"),
            "same_account": raw.get("same_account") is raw.get("account") and "account" in raw,
            "alias_is_target": raw.get("alias") is raw.get("target") and "target" in raw,
            "pi": session.get("pi"),
            "big": session.get("big"),
            "user": session.get("user"),
            "roles": session.get("roles"),
            "flashes": session.flashes,
            "created": session.get_metadata_bag().get_created(),
        }
        conn.send(json.dumps(report, default=_plain))


def new_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def ask(port: int, path: str, cookie: str | None) -> dict[str, Any]:
    """Connect (blocking; run in a thread) with the cookie and return the report."""
    headers = {"Cookie": cookie} if cookie is not None else {}
    with connect(
        f"ws://127.0.0.1:{port}{path}", additional_headers=headers, open_timeout=seconds(10)
    ) as ws:
        return json.loads(ws.recv(timeout=seconds(10)))  # type: ignore[no-any-return]


class PhpWrittenSessionsTests(TempDirCase):
    """Every store × serializer, written by PHP, read through the App."""

    timeout = 120

    def setUp(self) -> None:
        require_php("session", "redis", "memcached")
        require_redis()
        from twisted.internet import reactor

        self.reactor = reactor
        self.redis = shared_redis()
        redis_port = int(self.redis.url.rsplit(":", 1)[1].split("/")[0])
        redis_db = int(self.redis.url.rsplit("/", 1)[1] or 0)
        mc_host, mc_port = shared_memcached()
        base = self.temp_dir()
        self.flat = os.path.join(base, "flat")
        self.deep = os.path.join(base, "deep")
        scratch = os.path.join(base, "scratch")
        for directory in (self.flat, self.deep, scratch):
            os.makedirs(directory)
        self.prefix = unique("sess").replace(":", "_") + "_"
        self.redis_save_path = f"tcp://127.0.0.1:{redis_port}?database={redis_db}&prefix={self.prefix}"
        save_paths = {
            "files": ("files", self.flat),
            "files2": ("files", f"2;{self.deep}"),
            "redis": ("redis", self.redis_save_path),
            "symfony": ("files", scratch),
            "memcached": ("memcached", f"{mc_host}:{mc_port}"),
            "symfony_mc": ("files", scratch),
        }
        self.ids: dict[tuple[str, str], str] = {}
        jobs = []
        for store in STORES:
            for serializer in SERIALIZERS:
                sid = new_id()
                self.ids[store, serializer] = sid
                if store == "files2":
                    # PHP's N;/path form never creates the levels: the site does.
                    os.makedirs(os.path.join(self.deep, sid[0], sid[1]), exist_ok=True)
                handler, save_path = save_paths[store]
                jobs.append(
                    {
                        "store": store,
                        "serializer": serializer,
                        "id": sid,
                        "handler": handler,
                        "save_path": save_path,
                        "scratch": scratch,
                        "redis_port": redis_port,
                        "redis_db": redis_db,
                        "mc_port": mc_port,
                    }
                )
        run_php(
            WRITER,
            ini={"session.gc_probability": "0", "session.use_strict_mode": "0", "session.use_cookies": "0"},
            stdin=json.dumps(jobs).encode(),
            timeout=60,
        )
        for sid in [self.ids["redis", s] for s in SERIALIZERS]:
            self.addCleanup(self.redis.cli, "DEL", f"{self.prefix}{sid}")
        for sid in [self.ids["symfony", s] for s in SERIALIZERS]:
            self.addCleanup(self.redis.cli, "DEL", f"sf_s{sid}")
        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        report = Report()
        self.app.route("/files", report, ["*"], session=FilesHandler(self.flat))
        self.app.route("/files2", report, ["*"], session=f"files:2;{self.deep}")
        self.app.route("/redis", report, ["*"], session=f"{self.redis.url}?prefix={self.prefix}")
        self.app.route("/symfony", report, ["*"], session=RedisHandler(self.redis.url))
        self.app.route("/memcached", report, ["*"], session=MemcachedHandler(mc_host, mc_port))
        self.app.route("/symfony_mc", report, ["*"], session=MemcachedHandler(mc_host, mc_port))
        for serializer in SERIALIZERS:
            self.app.route(
                f"/files-{serializer}", report, ["*"],
                session={"handler": FilesHandler(self.flat), "serializer": serializer},
            )
        self.port = start_app(self, self.app)

    def check(self, report: dict[str, Any], store: str, sid: str) -> None:
        where = f"{store} {sid}"
        self.assertEqual(report["status"], "found", where)
        self.assertEqual(report["id"], sid)
        self.assertEqual(report["name"], f"Zoë 👋 {store}")
        self.assertEqual(
            report["nested"], {"level1": {"level2": [1, 2, 3]}, "mixed": [1.5, True, None, "x"]}
        )
        self.assertEqual(
            report["account"],
            {"__class__": "Account", "name": "alice", "role": "admin", "secret": "hunter2", "tags": ["a", "b"]},
        )
        self.assertTrue(report["same_account"], where)
        self.assertTrue(report["alias_is_target"], where)
        self.assertEqual((report["pi"], report["big"]), (3.14159, 2**63 - 1))
        self.assertEqual((report["user"], report["roles"]), ("bob", ["ROLE_ADMIN"]))
        self.assertEqual(report["flashes"], {"notice": ["Saved!"]})
        self.assertLess(abs(report["created"] - (time.time() - 60)), 120)

    @defer.inlineCallbacks
    def test_every_store_and_serializer_auto_detected(self):
        def talk() -> dict[tuple[str, str], dict[str, Any]]:
            return {
                (store, serializer): ask(self.port, f"/{store}", f"lang=fr; PHPSESSID={sid}")
                for (store, serializer), sid in self.ids.items()
            }

        reports = yield threads.deferToThread(talk)
        for (store, serializer), report in reports.items():
            self.check(report, f"{store}", self.ids[store, serializer])

    @defer.inlineCallbacks
    def test_serializer_given(self):
        def talk() -> list[tuple[str, dict[str, Any]]]:
            return [
                (s, ask(self.port, f"/files-{s}", f"PHPSESSID={self.ids['files', s]}")) for s in SERIALIZERS
            ]

        for serializer, report in (yield threads.deferToThread(talk)):
            self.check(report, "files", self.ids["files", serializer])

    @defer.inlineCallbacks
    def test_the_wrong_serializer_gives_an_empty_session(self):
        sid = self.ids["files", "php_serialize"]
        report = yield threads.deferToThread(ask, self.port, "/files-php_binary", f"PHPSESSID={sid}")
        self.assertEqual((report["status"], report["name"]), ("invalid", None))

    @defer.inlineCallbacks
    def test_missing_expired_corrupt_and_hostile(self):
        sid = self.ids["files", "php"]
        path = os.path.join(self.flat, f"sess_{sid}")
        old = time.time() - 1441  # past PHP's default session.gc_maxlifetime
        expired = self.ids["files", "php_binary"]
        os.utime(os.path.join(self.flat, f"sess_{expired}"), (old, old))
        with open(path, "wb") as f:
            f.write(b'name|s:99:"truncated')
        corrupt_key = new_id()
        self.redis.cli("SET", f"{self.prefix}{corrupt_key}", "not a session at all")
        wrong_type = new_id()
        self.redis.cli("HSET", f"{self.prefix}{wrong_type}", "a", "b")
        self.addCleanup(self.redis.cli, "DEL", f"{self.prefix}{corrupt_key}", f"{self.prefix}{wrong_type}")
        # Symfony's metadata: last used a day ago with a one-hour cookie
        # lifetime, in a key whose Redis TTL has not run out.
        stale = new_id()
        run_php(
            "<?php session_id($argv[1]); session_start();"
            " $_SESSION['_sf2_attributes'] = ['user' => 'bob'];"
            " $_SESSION['_sf2_meta'] = ['u' => time() - 86400, 'c' => time() - 90000, 'l' => 3600];"
            " session_write_close();",
            # quoted: unquoted, php -d reads the '=' of the query as ini syntax
            ini={"session.save_handler": "redis", "session.save_path": self.redis_save_path},
            args=[stale],
        )
        self.addCleanup(self.redis.cli, "DEL", f"{self.prefix}{stale}")

        def talk() -> list[str]:
            cases = [
                ("/files", f"PHPSESSID={new_id()}"),
                ("/files", f"PHPSESSID={expired}"),
                ("/files", f"PHPSESSID={sid}"),
                ("/files", "PHPSESSID=../../../../etc/passwd"),
                ("/files2", "PHPSESSID=" + "a" * 300),
                ("/redis", f"PHPSESSID={corrupt_key}"),
                ("/redis", f"PHPSESSID={wrong_type}"),
                ("/memcached", "PHPSESSID=abc def\tghi jkl mno pqr stu"),
                ("/files", None),
                ("/redis", f"PHPSESSID={stale}"),
            ]
            return [ask(self.port, path, cookie)["status"] for path, cookie in cases]

        statuses = yield threads.deferToThread(talk)
        self.assertEqual(
            statuses,
            ["missing", "expired", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid", "no-cookie", "expired"],
        )

    @defer.inlineCallbacks
    def test_a_session_compressed_by_the_memcached_class_is_refused_saying_why(self):
        mc_host, mc_port = shared_memcached()
        small, big = new_id(), new_id()
        run_php(
            "<?php session_start(); $m = new Memcached(); $m->addServer('127.0.0.1', (int)$argv[1]);"
            " $_SESSION = ['name' => 'small']; $m->set('sf2s' . $argv[2], session_encode(), 600);"
            " $_SESSION = ['name' => str_repeat('big ', 2000)]; $m->set('sf2s' . $argv[3], session_encode(), 600);"
            " session_abort();",
            ini={"session.save_path": self.temp_dir(), "session.use_cookies": "0"},
            args=[str(mc_port), small, big],
        )
        with logged_formats() as lines:
            reports = yield threads.deferToThread(
                lambda: [ask(self.port, "/symfony_mc", f"PHPSESSID={sid}") for sid in (small, big)]
            )
        self.assertEqual([r["status"] for r in reports], ["found", "invalid"])
        self.assertEqual(reports[0]["name"], "small")
        self.assertTrue(any("OPT_COMPRESSION" in line for line in lines), lines)


class PhpHoldsTheLockTests(TempDirCase):
    """
    While a PHP request has the session open (the files handler's flock,
    php-memcached's lock key), the server still reads the last saved data,
    without waiting for the request to end.
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_reads_do_not_wait_for_phps_session_lock(self):
        require_php("session", "memcached")
        from twisted.internet import reactor

        mc_host, mc_port = shared_memcached()
        directory = self.temp_dir()
        stores = {
            "files": {"session.save_handler": "files", "session.save_path": directory},
            "memcached": {"session.save_handler": "memcached", "session.save_path": f"{mc_host}:{mc_port}"},
        }
        ids = {store: new_id() for store in stores}
        write = "<?php session_id($argv[1]); session_start(); $_SESSION['name'] = 'saved'; session_write_close();"
        hold = (
            "<?php session_id($argv[1]); session_start(); $_SESSION['name'] = 'unsaved';"
            " echo \"locked\\n\"; fflush(STDOUT); sleep(60);"
        )
        holders = []
        for store, ini in stores.items():
            run_php(write, ini=ini, args=[ids[store]])
            command = [str(PHP)] + [arg for k, v in ini.items() for arg in ("-d", f"{k}={v}")]
            script = os.path.join(directory, f"hold-{store}.php")
            with open(script, "w") as f:
                f.write(hold)
            holder = subprocess.Popen([*command, script, ids[store]], stdout=subprocess.PIPE)
            self.addCleanup(holder.wait, seconds(10))
            self.addCleanup(holder.kill)
            holders.append(holder)
        for holder in holders:
            assert holder.stdout is not None
            self.assertEqual(holder.stdout.readline(), b"locked\n")
        app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        app.route("/files", Report(), ["*"], session=f"files:{directory}")
        app.route("/memcached", Report(), ["*"], session=f"memcached:{mc_host}:{mc_port}")
        port = start_app(self, app)

        def talk() -> list[tuple[str, str]]:
            return [
                (report["status"], report["name"])
                for report in (ask(port, f"/{store}", f"PHPSESSID={ids[store]}") for store in stores)
            ]

        self.assertEqual((yield threads.deferToThread(talk)), [("found", "saved")] * 2)
        # Answered while both requests still hold their locks (they sleep a minute).
        self.assertTrue(all(holder.poll() is None for holder in holders))


class StoreOutageTests(TempDirCase):
    """A Redis that goes away: empty sessions at once, the server keeps serving, and it comes back."""

    timeout = 120

    @defer.inlineCallbacks
    def test_redis_down_then_back(self):
        require_php("session", "redis")
        require_redis()
        from twisted.internet import reactor

        server = RedisServer(self.temp_dir()).start()
        self.addCleanup(server.kill)
        sid = new_id()
        port_of_redis = int(server.url.rsplit(":", 1)[1].split("/")[0])
        run_php(
            "<?php session_id($argv[1]); session_start(); $_SESSION['name'] = 'carol'; session_write_close();",
            ini={
                "session.save_handler": "redis",
                "session.save_path": f"tcp://127.0.0.1:{port_of_redis}",
                "session.serialize_handler": "php_serialize",
            },
            args=[sid],
        )
        app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        app.route("/s", Report(), ["*"], session={"handler": server.url, "load_timeout": 60})
        port = start_app(self, app)
        cookie = f"PHPSESSID={sid}"
        first = yield threads.deferToThread(ask, port, "/s", cookie)
        self.assertEqual((first["status"], first["name"]), ("found", "carol"))
        yield threads.deferToThread(server.kill)
        with outage_reasons() as reasons:
            down = yield threads.deferToThread(ask, port, "/s", cookie)
        self.assertEqual((down["status"], down["name"]), ("unavailable", None))
        # failed fast: the store was known down, not waited for until load_timeout
        self.assertEqual(len(reasons), 1)
        self.assertNotIn("load_timeout", reasons[0])
        server.start()  # same port, empty (no persistence): PHP writes again
        run_php(
            "<?php session_id($argv[1]); session_start(); $_SESSION['name'] = 'carol'; session_write_close();",
            ini={
                "session.save_handler": "redis",
                "session.save_path": f"tcp://127.0.0.1:{port_of_redis}",
            },
            args=[sid],
        )
        for _ in range(int(seconds(20) / 0.2)):
            back = yield threads.deferToThread(ask, port, "/s", cookie)
            if back["status"] == "found":
                break
            yield deferLater(reactor, 0.2)
        self.assertEqual((back["status"], back["name"]), ("found", "carol"))

    @defer.inlineCallbacks
    def test_memcached_down_then_back(self):
        require_php("session", "memcached")
        require_memcached()
        from twisted.internet import reactor

        port = free_port()
        cache = PrivateMemcached(port)
        self.addCleanup(cache.kill)
        sid = new_id()
        write = (
            "<?php session_id($argv[1]); session_start(); $_SESSION['name'] = 'dave'; session_write_close();"
        )
        ini = {"session.save_handler": "memcached", "session.save_path": f"127.0.0.1:{port}"}
        run_php(write, ini=ini, args=[sid])
        app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        app.route("/m", Report(), ["*"], session={"handler": f"memcached:127.0.0.1:{port}", "load_timeout": 60})
        ws_port = start_app(self, app)
        cookie = f"PHPSESSID={sid}"
        first = yield threads.deferToThread(ask, ws_port, "/m", cookie)
        self.assertEqual((first["status"], first["name"]), ("found", "dave"))
        yield threads.deferToThread(cache.kill)
        yield deferLater(reactor, 0.1)  # the handler sees the connection go
        with outage_reasons() as reasons:
            down = yield threads.deferToThread(ask, ws_port, "/m", cookie)
        self.assertEqual(down["status"], "unavailable")
        self.assertEqual(len(reasons), 1)
        self.assertNotIn("load_timeout", reasons[0])  # failed fast, not waited for
        cache.start()
        run_php(write, ini=ini, args=[sid])
        for _ in range(int(seconds(20) / 0.2)):
            back = yield threads.deferToThread(ask, ws_port, "/m", cookie)
            if back["status"] == "found":
                break
            yield deferLater(reactor, 0.2)
        self.assertEqual((back["status"], back["name"]), ("found", "dave"))

    @defer.inlineCallbacks
    def test_memcached_never_reachable_gives_empty_sessions(self):
        from twisted.internet import reactor

        app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        app.route("/m", Report(), ["*"], session={"handler": f"memcached:127.0.0.1:{free_port()}", "load_timeout": 60})
        port = start_app(self, app)
        with outage_reasons() as reasons:
            first = yield threads.deferToThread(ask, port, "/m", f"PHPSESSID={new_id()}")
            second = yield threads.deferToThread(ask, port, "/m", f"PHPSESSID={new_id()}")
        self.assertEqual((first["status"], second["status"]), ("unavailable", "unavailable"))
        # the refused first attempt ended the wait (not load_timeout); logged once
        self.assertEqual(len(reasons), 1)
        self.assertIn("unreachable", reasons[0])
        # the server keeps serving: a client without a session opens at once
        plain = yield threads.deferToThread(ask, port, "/m", None)
        self.assertEqual(plain["status"], "no-cookie")


@contextlib.contextmanager
def outage_reasons() -> Iterator[list[str]]:
    """The reasons of the "session store unavailable" lines logged meanwhile."""
    reasons: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "ratchetpy.session" and "why" in event:
            reasons.append(str(event["why"]))

    globalLogPublisher.addObserver(observe)
    try:
        yield reasons
    finally:
        globalLogPublisher.removeObserver(observe)


@contextlib.contextmanager
def logged_formats() -> Iterator[list[str]]:
    """Every ratchetpy.session log line meanwhile, formatted."""
    from twisted.logger import formatEvent

    lines: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "ratchetpy.session":
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observe)


class PrivateMemcached:
    """A memcached of this test's own on ``port``, which it may kill and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert MEMCACHED is not None
        self.process = subprocess.Popen(
            [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
            + (["-u", "root"] if os.getuid() == 0 else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + seconds(10)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("memcached did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=seconds(10))


def deferLater(reactor: Any, delay: float) -> defer.Deferred[None]:
    from twisted.internet import task

    return task.deferLater(reactor, delay, lambda: None)
