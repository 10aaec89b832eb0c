"""
Laravel sessions end to end: a PHP script encrypts the session cookie
exactly as Laravel's Encrypter does (``openssl_encrypt``, ``hash_hmac``,
the cookie value prefix of Laravel 5.6+) and writes the session as its
file and redis stores do; the server, given the APP_KEY, greets the user.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, threads

from ratchetpy.app import App
from ratchetpy.builtins import Chat
from ratchetpy.session.spec import LARAVEL_REDIS_PREFIX
from tests.session.tempdirs import TempDirCase
from tests.session.test_php_sessions import Report, ask
from tests.support.loopback import start_app
from tests.support.php import require_php, run_php
from tests.support.redis import require_redis, shared_redis
from tests.support.timing import seconds

LARAVEL = r"""<?php
// Laravel's Encrypter and stores, by hand. argv: key (base64), cookie name,
// session id, cipher, with-prefix (1/0), encrypted store (1/0), store dir,
// redis port, redis db. Prints the session cookie's value.
[$_, $keyB64, $cookieName, $id, $cipher, $withPrefix, $encryptStore, $dir, $redisPort, $redisDb] = $argv;
$key = base64_decode($keyB64);

function laravel_encrypt(string $plain, string $cipher, string $key): string {
    if (str_ends_with($cipher, 'gcm')) {
        $iv = random_bytes(12);
        $value = openssl_encrypt($plain, $cipher, $key, 0, $iv, $tag);
        $json = ['iv' => base64_encode($iv), 'value' => $value, 'mac' => '', 'tag' => base64_encode($tag)];
    } else {
        $iv = random_bytes(16);
        $value = openssl_encrypt($plain, $cipher, $key, 0, $iv);
        $ivB64 = base64_encode($iv);
        $json = ['iv' => $ivB64, 'value' => $value, 'mac' => hash_hmac('sha256', $ivB64 . $value, $key), 'tag' => ''];
    }
    return base64_encode(json_encode($json, JSON_UNESCAPED_SLASHES));
}

$attributes = [
    '_token' => str_repeat('t', 40),
    'name' => 'Taylor Otwell',
    '_flash' => ['old' => [], 'new' => []],
    'login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d' => 7,
];
$payload = serialize($attributes);
// file driver: storage/framework/sessions/<id>; with 'encrypt' => true,
// EncryptedStore encrypts the serialized string (serialized once more).
file_put_contents("$dir/$id", $encryptStore === '1' ? laravel_encrypt(serialize($payload), 'aes-256-cbc', $key) : $payload);
// redis driver: the cache store serializes once more; key = connection prefix + cache prefix + id
$redis = new Redis();
$redis->connect('127.0.0.1', (int)$redisPort);
$redis->select((int)$redisDb);
$redis->setex('laravel_database_laravel_cache_' . $id, 600, serialize($payload));
// EncryptCookies: value = [prefix] . id, encrypted with serialize = false
$plain = ($withPrefix === '1' ? hash_hmac('sha1', $cookieName . 'v2', $key) . '|' : '') . $id;
echo laravel_encrypt($plain, $cipher, $key);
"""

def laravel_id() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


class LaravelSessionsTests(TempDirCase):
    timeout = 60

    def setUp(self) -> None:
        require_php("redis", "openssl")
        require_redis()
        from twisted.internet import reactor

        self.redis = shared_redis()
        self.redis_port = int(self.redis.url.rsplit(":", 1)[1].split("/")[0])
        self.redis_db = int(self.redis.url.rsplit("/", 1)[1] or 0)
        self.key = os.urandom(32)
        self.app_key = "base64:" + base64.b64encode(self.key).decode()
        self.dir = self.temp_dir()
        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        report = Report()
        self.app.route("/file", report, ["*"], session={"handler": f"files:{self.dir}", "laravel_key": self.app_key})
        self.app.route("/redis", report, ["*"], session={"handler": self.redis.url, "laravel_key": self.app_key})
        self.app.route(
            "/gcm", report, ["*"],
            session={"handler": f"files:{self.dir}", "laravel_key": self.app_key, "laravel_cipher": "aes-256-gcm"},
        )
        self.app.route(
            "/legacy", report, ["*"],
            session={"handler": f"files:{self.dir}", "laravel_key": self.app_key, "laravel_legacy_cookie": True},
        )
        self.app.route("/chat", Chat(session_user_key="name"), ["*"],
                       session={"handler": f"files:{self.dir}", "laravel_key": self.app_key})
        self.port = start_app(self, self.app)

    def cookie(
        self, sid: str, cipher: str = "aes-256-cbc", prefix: bool = True, key: bytes | None = None,
        encrypt_store: bool = False,
    ) -> str:
        done = run_php(
            LARAVEL,
            args=[
                base64.b64encode(key or self.key).decode(), "laravel_session", sid, cipher,
                "1" if prefix else "0", "1" if encrypt_store else "0", self.dir, str(self.redis_port),
                str(self.redis_db),
            ],
        )
        self.addCleanup(self.redis.cli, "DEL", f"{LARAVEL_REDIS_PREFIX}{sid}")
        # As the browser sends it: Laravel's Set-Cookie URL-encodes the value.
        return "laravel_session=" + quote(done.stdout.decode(), safe="")

    @defer.inlineCallbacks
    def test_file_and_redis_stores_cbc_and_gcm_with_and_without_the_prefix(self):
        sid = laravel_id()
        cbc = self.cookie(sid)
        old_style = self.cookie(sid, prefix=False)
        gcm = self.cookie(sid, "aes-256-gcm")
        encrypted_sid = laravel_id()
        encrypted_store = self.cookie(encrypted_sid, encrypt_store=True)

        def talk() -> list[dict[str, Any]]:
            return [
                ask(self.port, "/file", cbc),
                ask(self.port, "/redis", cbc),
                ask(self.port, "/legacy", old_style),
                ask(self.port, "/gcm", gcm),
                ask(self.port, "/file", encrypted_store),
                ask(self.port, "/file", old_style),  # no prefix: refused unless legacy
            ]

        *found, unprefixed = yield threads.deferToThread(talk)
        for report, expected in zip(found, [sid] * 4 + [encrypted_sid], strict=True):
            self.assertEqual((report["status"], report["id"], report["name"]), ("found", expected, "Taylor Otwell"))
        self.assertEqual(unprefixed["status"], "invalid")

    @defer.inlineCallbacks
    def test_the_chat_greets_the_laravel_user(self):
        cookie = self.cookie(laravel_id())

        def talk() -> dict[str, Any]:
            from websockets.sync.client import connect

            with connect(f"ws://127.0.0.1:{self.port}/chat", additional_headers={"Cookie": cookie},
                         open_timeout=seconds(10)) as ws:
                return json.loads(ws.recv(timeout=seconds(10)))  # type: ignore[no-any-return]

        welcome = yield threads.deferToThread(talk)
        self.assertEqual(welcome["user"], "Taylor Otwell")

    @defer.inlineCallbacks
    def test_tampered_wrong_key_and_garbage_cookies_are_empty_sessions(self):
        sid = laravel_id()
        good = self.cookie(sid)
        raw = base64.b64decode(good.split("=", 1)[1].replace("%3D", "=").replace("%2B", "+").replace("%2F", "/"))
        payload = json.loads(raw)
        payload["value"] = ("A" if payload["value"][0] != "A" else "B") + payload["value"][1:]
        tampered = "laravel_session=" + quote(base64.b64encode(json.dumps(payload).encode()).decode(), safe="")
        wrong_key = self.cookie(sid, key=os.urandom(32))

        def talk() -> list[str]:
            return [
                ask(self.port, "/file", cookie)["status"]
                for cookie in (tampered, wrong_key, "laravel_session=bm90IGpzb24=", f"laravel_session={sid}")
            ]

        self.assertEqual((yield threads.deferToThread(talk)), ["invalid"] * 4)
