"""
ratchetpy.session.laravel: payloads php-cli encrypts exactly as Laravel's
Encrypter does (openssl_encrypt, hash_hmac over iv . value, JSON then
base64, the GCM tag), cookies with and without Laravel's cookie value
prefix, the stores' session data, and every kind of tampering.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from typing import Any
from urllib.parse import unquote

import pytest

from ratchetpy.exceptions import ConfigurationError, SessionDataError
from ratchetpy.session.laravel import (
    LARAVEL_CIPHERS,
    LaravelEncrypter,
    cookie_prefix,
    decode_laravel_session,
    laravel_cache_keys,
    laravel_user_id,
    session_id_from_cookie,
)
from ratchetpy.session.serialize import PhpObject
from tests.support.php import require_php, run_php

# Laravel's Encrypter::encrypt, written out with the functions it calls.
# Input (JSON on stdin): a list of jobs {key (base64 raw key), cipher,
# plaintext (base64), serialize (bool), cookie (name or null)}; output one
# payload per line, rawurlencode()d when it is a cookie, as Symfony's
# Cookie puts it in Set-Cookie.
PHP_ENCRYPT = r"""<?php
function laravel_encrypt(string $plain, string $key, string $cipher): string {
    $iv = random_bytes(openssl_cipher_iv_length($cipher));
    $tag = null;
    $value = openssl_encrypt($plain, $cipher, $key, 0, $iv, $tag);
    if ($value === false) { throw new Exception('openssl_encrypt failed'); }
    $iv = base64_encode($iv);
    $tag = base64_encode($tag ?? '');
    $mac = str_ends_with($cipher, 'gcm') ? '' : hash_hmac('sha256', $iv . $value, $key);
    return base64_encode(json_encode(compact('iv', 'value', 'mac', 'tag'), JSON_UNESCAPED_SLASHES));
}
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $job) {
    $key = base64_decode($job['key']);
    $plain = base64_decode($job['plaintext']);
    if ($job['cookie'] !== null) {
        // CookieValuePrefix::create($name, $key) . $value
        $plain = hash_hmac('sha1', $job['cookie'] . 'v2', $key) . '|' . $plain;
    }
    if ($job['serialize']) { $plain = serialize($plain); }
    $payload = laravel_encrypt($plain, $key, $job['cipher']);
    $out[] = $job['cookie'] !== null ? rawurlencode($payload) : $payload;
}
echo implode("\n", $out), "\n";
"""

SESSION_ID = "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4fGh7jKl0n"
KEYS = {name: os.urandom(size) for name, (size, _) in LARAVEL_CIPHERS.items()}


def php_encrypt(jobs: list[dict[str, Any]]) -> list[str]:
    """Encrypt each job with php-cli (one process for all)."""
    require_php("openssl")
    request = [
        {
            "key": base64.b64encode(job["key"]).decode(),
            "cipher": job["cipher"],
            "plaintext": base64.b64encode(job["plaintext"]).decode(),
            "serialize": job.get("serialize", False),
            "cookie": job.get("cookie"),
        }
        for job in jobs
    ]
    done = run_php(PHP_ENCRYPT, stdin=json.dumps(request).encode())
    lines = done.stdout.decode().split("\n")[:-1]
    assert len(lines) == len(jobs)
    return lines


def app_key(cipher: str) -> str:
    return "base64:" + base64.b64encode(KEYS[cipher]).decode()


@pytest.fixture(scope="module")
def payloads() -> dict[str, str]:
    """PHP-made payloads of b"secret \\xff" (not serialized) for every cipher."""
    names = list(LARAVEL_CIPHERS)
    jobs = [{"key": KEYS[name], "cipher": name, "plaintext": b"secret \xff"} for name in names]
    return dict(zip(names, php_encrypt(jobs), strict=True))


@pytest.mark.parametrize("cipher", list(LARAVEL_CIPHERS))
def test_decrypts_what_php_encrypted(payloads: dict[str, str], cipher: str) -> None:
    encrypter = LaravelEncrypter(app_key(cipher), cipher.upper())
    assert encrypter.decrypt(payloads[cipher]) == b"secret \xff"
    fields = json.loads(base64.b64decode(payloads[cipher]))
    # what PHP wrote is the layout the module docstring describes
    assert set(fields) == {"iv", "value", "mac", "tag"}
    assert (fields["mac"] == "") == cipher.endswith("gcm")
    assert (fields["tag"] == "") == cipher.endswith("cbc")


def test_serialized_values_decode_with_unserialize() -> None:
    [payload] = php_encrypt(
        [
            {
                "key": KEYS["aes-256-cbc"],
                "cipher": "aes-256-cbc",
                "plaintext": "Zoë".encode(),
                "serialize": True,
            }
        ]
    )
    encrypter = LaravelEncrypter(app_key("aes-256-cbc"))
    assert encrypter.decrypt(payload) == b's:4:"Zo\xc3\xab";'
    assert encrypter.decrypt(payload, unserialize=True) == "Zoë"


def test_previous_keys_are_tried_after_the_key(payloads: dict[str, str]) -> None:
    for cipher in ("aes-256-cbc", "aes-256-gcm"):
        rotated = LaravelEncrypter(
            base64.b64encode(os.urandom(32)).decode().join(["base64:", ""]),
            cipher,
            previous_keys=[KEYS[cipher]],
        )
        assert rotated.decrypt(payloads[cipher]) == b"secret \xff"


# -- cookies ----------------------------------------------------------------


@pytest.mark.parametrize("cipher", ["aes-256-cbc", "aes-128-cbc", "aes-256-gcm", "aes-128-gcm"])
def test_session_id_from_a_prefixed_cookie(cipher: str) -> None:
    jobs = [
        {"key": KEYS[cipher], "cipher": cipher, "plaintext": SESSION_ID.encode(), "cookie": name}
        for name in ("laravel_session", "my_app_session")
    ]
    laravel, my_app = php_encrypt(jobs)
    encrypter = LaravelEncrypter(app_key(cipher), cipher)
    # as the browser sends it (rawurlencode()d) and URL-decoded
    assert session_id_from_cookie(unquote(laravel), "laravel_session", encrypter) == SESSION_ID
    assert laravel.startswith("eyJ")  # "%65" is a URL-encoded "e"
    assert session_id_from_cookie("%65" + laravel[1:], "laravel_session", encrypter) == SESSION_ID
    assert session_id_from_cookie(laravel, "laravel_session", encrypter) == SESSION_ID
    assert session_id_from_cookie(my_app, "my_app_session", encrypter) == SESSION_ID
    # a cookie moved to another name has the wrong prefix: no id, as in Laravel
    assert session_id_from_cookie(laravel, "my_app_session", encrypter) is None
    assert (
        session_id_from_cookie(laravel, "my_app_session", encrypter, require_prefix=False) is None
    )


def test_cookies_of_laravel_before_the_prefix() -> None:
    bare, serialized = php_encrypt(
        [
            {"key": KEYS["aes-256-cbc"], "cipher": "aes-256-cbc", "plaintext": SESSION_ID.encode()},
            {
                "key": KEYS["aes-256-cbc"],
                "cipher": "aes-256-cbc",
                "plaintext": SESSION_ID.encode(),
                "serialize": True,
            },
        ]
    )
    encrypter = LaravelEncrypter(app_key("aes-256-cbc"))
    assert session_id_from_cookie(bare, "laravel_session", encrypter) is None
    for cookie in (bare, serialized):
        found = session_id_from_cookie(cookie, "laravel_session", encrypter, require_prefix=False)
        assert found == SESSION_ID


@pytest.mark.parametrize(
    "plaintext",
    [b"../../etc/passwd", b"short", SESSION_ID.encode() + b"x", b"\xff" * 40, b"a b" * 20],
)
def test_a_cookie_holding_no_valid_session_id_gives_none(plaintext: bytes) -> None:
    [cookie] = php_encrypt(
        [
            {
                "key": KEYS["aes-256-cbc"],
                "cipher": "aes-256-cbc",
                "plaintext": plaintext,
                "cookie": "laravel_session",
            }
        ]
    )
    encrypter = LaravelEncrypter(app_key("aes-256-cbc"))
    assert session_id_from_cookie(cookie, "laravel_session", encrypter) is None


def test_cookie_prefix_is_laravels_hmac() -> None:
    key = b"k" * 32
    expected = hmac.new(key, b"laravel_sessionv2", hashlib.sha1).hexdigest() + "|"
    assert cookie_prefix("laravel_session", key) == expected and len(expected) == 41


# -- tampering and bad input -----------------------------------------------


def _rewrap(payload: str, **changes: Any) -> str:
    fields = json.loads(base64.b64decode(payload))
    fields.update(changes)
    return base64.b64encode(json.dumps(fields).encode()).decode()


def _flip(b64: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("cipher", list(LARAVEL_CIPHERS))
def test_every_tampered_field_is_refused(payloads: dict[str, str], cipher: str) -> None:
    payload = payloads[cipher]
    fields = json.loads(base64.b64decode(payload))
    encrypter = LaravelEncrypter(app_key(cipher), cipher)
    tampered = {
        "iv": _rewrap(payload, iv=_flip(fields["iv"])),
        "value": _rewrap(payload, value=_flip(fields["value"])),
        "value end": _rewrap(payload, value=_flip(fields["value"], -1)),
    }
    if cipher.endswith("cbc"):
        last = "1" if fields["mac"].endswith("0") else "0"
        tampered["mac"] = _rewrap(payload, mac=fields["mac"][:-1] + last)
        tampered["mac upper case"] = _rewrap(payload, mac=fields["mac"].upper())
        tampered["mac missing"] = _rewrap(payload, mac="")
        message = "the MAC is invalid"
    else:
        tampered["tag"] = _rewrap(payload, tag=_flip(fields["tag"]))
        message = "the GCM tag does not match"
    for what, bad in tampered.items():
        with pytest.raises(SessionDataError, match=message):
            encrypter.decrypt(bad)
        assert what


@pytest.mark.parametrize("cipher", list(LARAVEL_CIPHERS))
def test_another_key_is_refused(payloads: dict[str, str], cipher: str) -> None:
    size = LARAVEL_CIPHERS[cipher][0]
    stranger = LaravelEncrypter(os.urandom(size), cipher)
    with pytest.raises(SessionDataError, match="changed, or another key"):
        stranger.decrypt(payloads[cipher])


def test_a_payload_of_another_cipher_is_refused(payloads: dict[str, str]) -> None:
    gcm = LaravelEncrypter(KEYS["aes-256-cbc"], "aes-256-gcm")
    with pytest.raises(SessionDataError, match="16-byte iv does not fit aes-256-gcm"):
        gcm.decrypt(payloads["aes-256-cbc"])
    cbc = LaravelEncrypter(KEYS["aes-256-gcm"], "aes-256-cbc")
    with pytest.raises(SessionDataError, match="12-byte iv does not fit aes-256-cbc"):
        cbc.decrypt(payloads["aes-256-gcm"])
    # a GCM payload given a 16-byte iv still carries a tag CBC cannot use
    forged = _rewrap(payloads["aes-256-gcm"], iv=base64.b64encode(b"0" * 16).decode())
    with pytest.raises(SessionDataError, match="a tag on a aes-256-cbc payload"):
        cbc.decrypt(forged)
    no_tag = _rewrap(payloads["aes-256-gcm"], tag="")
    with pytest.raises(SessionDataError, match="needs a 16-byte tag"):
        LaravelEncrypter(KEYS["aes-256-gcm"], "aes-256-gcm").decrypt(no_tag)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not base64!", "the payload is not base64"),
        (base64.b64encode(b"{nope").decode(), "not JSON after base64-decoding"),
        (base64.b64encode(b"[1, 2]").decode(), "needs the strings iv, value and mac"),
        (base64.b64encode(b'{"iv": "", "value": ""}').decode(), "needs the strings iv"),
        (base64.b64encode(b'{"iv": 1, "value": "", "mac": ""}').decode(), "needs the strings"),
        (
            base64.b64encode(b'{"iv": "%%", "value": "", "mac": ""}').decode(),
            "iv is not base64",
        ),
        (
            base64.b64encode(b'{"iv": "", "value": "", "mac": "", "tag": 5}').decode(),
            "tag is not a string",
        ),
    ],
)
def test_malformed_payloads_are_refused(payload: str, message: str) -> None:
    with pytest.raises(SessionDataError, match=message):
        LaravelEncrypter(app_key("aes-256-cbc")).decrypt(payload)


def test_bad_ciphertext_with_a_valid_mac_is_refused() -> None:
    # only someone holding the key can make these; still no crash
    key = KEYS["aes-256-cbc"]
    iv = base64.b64encode(b"\0" * 16).decode()

    def signed(value: bytes) -> str:
        text = base64.b64encode(value).decode()
        mac = hmac.new(key, (iv + text).encode(), hashlib.sha256).hexdigest()
        return base64.b64encode(json.dumps({"iv": iv, "value": text, "mac": mac}).encode()).decode()

    encrypter = LaravelEncrypter(key)
    with pytest.raises(SessionDataError, match="not whole AES blocks"):
        encrypter.decrypt(signed(b"12345"))
    with pytest.raises(SessionDataError, match="bad padding"):
        encrypter.decrypt(signed(b"\0" * 32))


def test_session_id_from_a_tampered_cookie_raises() -> None:
    encrypter = LaravelEncrypter(app_key("aes-256-cbc"))
    with pytest.raises(SessionDataError):
        session_id_from_cookie("eyJpdiI6IjEifQ%3D%3D", "laravel_session", encrypter)


@pytest.mark.parametrize(
    ("key", "cipher", "message"),
    [
        ("base64:" + base64.b64encode(b"k" * 16).decode(), "aes-256-cbc", "is 16 bytes but"),
        ("base64:***", "aes-256-cbc", "not base64"),
        ("short", "aes-128-cbc", "is 5 bytes but aes-128-cbc needs 16"),
        (b"k" * 32, "aes-192-cbc", "unknown Laravel cipher 'aes-192-cbc'"),
    ],
)
def test_bad_keys_and_ciphers_are_configuration_errors(
    key: str | bytes, cipher: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LaravelEncrypter(key, cipher)


def test_a_raw_32_character_key_works_as_in_laravel() -> None:
    assert LaravelEncrypter("x" * 32).keys == (b"x" * 32,)
    assert "x" * 32 not in repr(LaravelEncrypter("x" * 32))


# -- stored sessions ----------------------------------------------------------

# The attributes a logged-in Laravel session holds, as each store writes
# them: the file store serialize()s them, the Redis cache store serialize()s
# that string again, session.encrypt encrypts the serialized string (and
# serialize()s it first, as encrypt() does), json serialization json_encodes.
PHP_STORES = r"""<?php
class Cart { public $items = ['book']; protected $total = 12.5; }
$attributes = [
    '_token' => 'csrf',
    '_previous' => ['url' => 'http://127.0.0.1/home'],
    '_flash' => ['old' => [], 'new' => []],
    'login_web_' . sha1('Illuminate\Auth\SessionGuard') => 42,
    'name' => 'Zoë',
    'cart' => new Cart,
];
$key = base64_decode($argv[1]);
$iv = random_bytes(16);
$value = openssl_encrypt(serialize(serialize($attributes)), 'aes-256-cbc', $key, 0, $iv);
$iv = base64_encode($iv);
$mac = hash_hmac('sha256', $iv . $value, $key);
$tag = '';
$encrypted = base64_encode(json_encode(compact('iv', 'value', 'mac', 'tag'), JSON_UNESCAPED_SLASHES));
unset($attributes['cart']);
echo json_encode([
    'file' => base64_encode(serialize(['cart' => new Cart] + $attributes)),
    'redis' => base64_encode(serialize(serialize(['cart' => new Cart] + $attributes))),
    'encrypted_file' => base64_encode($encrypted),
    'encrypted_redis' => base64_encode(serialize($encrypted)),
    'json' => base64_encode(json_encode($attributes)),
    'json_empty' => base64_encode(json_encode([])),
]);
"""


@pytest.fixture(scope="module")
def stored() -> dict[str, bytes]:
    require_php("openssl")
    done = run_php(PHP_STORES, args=[base64.b64encode(KEYS["aes-256-cbc"]).decode()])
    return {name: base64.b64decode(data) for name, data in json.loads(done.stdout).items()}


@pytest.mark.parametrize("store", ["file", "redis", "encrypted_file", "encrypted_redis"])
def test_sessions_as_each_store_writes_them(stored: dict[str, bytes], store: str) -> None:
    encrypter = LaravelEncrypter(app_key("aes-256-cbc"))
    session = decode_laravel_session(stored[store], encrypter=encrypter)
    assert session["_token"] == "csrf" and session["name"] == "Zoë"
    assert session["_previous"] == {"url": "http://127.0.0.1/home"}
    assert session["_flash"] == {"old": [], "new": []}
    assert laravel_user_id(session) == 42 and laravel_user_id(session, "admin") is None
    assert session["cart"] == PhpObject(
        "Cart", {"items": ["book"], "total": 12.5}, {"items": "public", "total": "protected"}
    )


def test_json_serialized_sessions(stored: dict[str, bytes]) -> None:
    session = decode_laravel_session(stored["json"])
    assert laravel_user_id(session) == 42 and session["name"] == "Zoë"
    assert decode_laravel_session(stored["json_empty"]) == {}
    assert decode_laravel_session(b"") == {}


def test_an_encrypted_session_needs_the_key(stored: dict[str, bytes]) -> None:
    with pytest.raises(SessionDataError, match="encrypted .session.encrypt is true.: give the"):
        decode_laravel_session(stored["encrypted_redis"])
    stranger = LaravelEncrypter(os.urandom(32))
    with pytest.raises(SessionDataError, match="the MAC is invalid"):
        decode_laravel_session(stored["encrypted_file"], encrypter=stranger)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage", "starts with b'garbage', neither serialized, JSON nor an encrypted"),
        (b"i:5;", "starts with b'i:5;', neither"),
        (b's:4:"i:5;";', "starts with b'i:5;', neither"),
        (b's:4:"N;N;";', "starts with b'N;N;', neither"),
        (b'"a string"', "neither serialized"),
        (b's:3:"abc"', "truncated, expected ';' at byte 9"),
        (b"a:1:{i:0;i:1;", "truncated, expected '}' at byte 13"),
        (b"{bad json", "not valid JSON"),
        (b'{"a": 1} x', "not valid JSON"),
    ],
)
def test_malformed_stored_sessions_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(SessionDataError, match=re.escape(message)):
        decode_laravel_session(data)


def test_an_empty_wrapped_session_is_empty() -> None:
    assert decode_laravel_session(b's:0:"";') == {}
    assert decode_laravel_session(b"a:0:{}") == {}
    assert decode_laravel_session(b"[1]") == {"0": 1}


def test_stores_nested_beyond_what_laravel_writes_are_refused() -> None:
    data = b"a:1:{i:0;N;}"
    for _ in range(4):
        data = b's:%d:"%s";' % (len(data), data)
    with pytest.raises(SessionDataError, match="nested deeper than any Laravel store"):
        decode_laravel_session(data)


def test_cache_keys() -> None:
    assert laravel_cache_keys(SESSION_ID) == [
        f"laravel_database_laravel_cache_{SESSION_ID}",
        f"laravel_database_laravel_cache:{SESSION_ID}",
        f"laravel:{SESSION_ID}",
    ]
    assert laravel_cache_keys("x", app_name="My Shop", store="memcached")[:2] == [
        "my_shop_cache_x",
        "my_shop_cache:x",
    ]
    with pytest.raises(ConfigurationError, match="use redis or memcached"):
        laravel_cache_keys("x", store="file")
