"""
Laravel's encrypted session cookie and its session stores, read without PHP.

Laravel encrypts every cookie (``EncryptCookies``) with its ``Encrypter``
and the app key (``APP_KEY``), so a WebSocket server needs the key to learn
the session id. What Laravel writes, and what this module reads:

Encrypted payload (``Illuminate\\Encryption\\Encrypter``)
    base64 of the JSON ``{"iv", "value", "mac", "tag"}``: ``iv`` is the
    base64 IV (16 bytes for CBC, 12 for GCM), ``value`` the base64
    ciphertext (PKCS#7 padded for CBC), ``mac`` the hex HMAC-SHA256 over
    ``iv . value`` (the two base64 texts) with the key for CBC and empty for
    GCM, ``tag`` the base64 16-byte GCM tag (empty for CBC; Laravel before 9
    wrote no ``tag``). Ciphers: ``aes-128-cbc``, ``aes-256-cbc`` (Laravel's
    default), ``aes-128-gcm``, ``aes-256-gcm`` (any case, as in
    ``config/app.php``), with 16- or 32-byte keys. ``APP_PREVIOUS_KEYS``
    are tried after the key, as Laravel 11 does.
The session cookie (``laravel_session``, or ``<app name slug>_session``)
    the encrypted session id, not serialized (Laravel >= 5.6.30). Since
    Laravel 6.18.27/7.22 the plaintext starts with
    ``hash_hmac('sha1', <cookie name> . 'v2', <key>) . '|'``, binding it to
    the cookie's name; :func:`session_id_from_cookie` requires that prefix
    unless told the app is older. A session id is 40 ASCII letters and
    digits (Laravel's ``Store::isValidId``); anything else is no id.
The stored session (:func:`decode_laravel_session`)
    ``serialize($attributes)`` (or ``json_encode`` with Laravel 10.x+'s
    ``'serialization' => 'json'``), in the ``file`` store as it is (file
    ``storage/framework/sessions/<id>``) and in the ``redis``/``memcached``
    stores as a cache value: the Redis cache store serializes the string
    once more (``s:123:"a:3:{...}";``), memcached stores it as it is. With
    ``session.encrypt`` on, the data is an encrypted payload of the
    serialized string. The cache keys are in :func:`laravel_cache_keys`.

Every failure (bad base64 or JSON, a changed byte in the IV, value, MAC or
tag, a wrong key, a payload of another cipher) is a
:class:`~ratchetpy.exceptions.SessionDataError` whose message says which
check failed and never contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ratchetpy.exceptions import ConfigurationError, SessionDataError
from ratchetpy.session.serialize import unserialize

__all__ = [
    "LARAVEL_CIPHERS",
    "LaravelEncrypter",
    "cookie_prefix",
    "decode_laravel_session",
    "laravel_cache_keys",
    "laravel_user_id",
    "session_id_from_cookie",
]

#: Laravel's ciphers: key size in bytes and whether it is AEAD (GCM).
LARAVEL_CIPHERS: dict[str, tuple[int, bool]] = {
    "aes-128-cbc": (16, False),
    "aes-256-cbc": (32, False),
    "aes-128-gcm": (16, True),
    "aes-256-gcm": (32, True),
}

# Laravel's SessionGuard stores the user id under "login_<guard>_" + sha1 of
# its own class name.
_GUARD_HASH = hashlib.sha1(b"Illuminate\\Auth\\SessionGuard").hexdigest()
_SESSION_ID = re.compile(r"[A-Za-z0-9]{40}")
# A cookie or stored payload larger than this is no Laravel payload.
_MAX_PAYLOAD = 4 * 1024 * 1024
_MAX_SESSION = 16 * 1024 * 1024


def _strict_b64(text: str | bytes, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SessionDataError(f"Laravel payload: {what} is not base64") from None


def _parse_key(key: str | bytes, size: int, cipher: str, name: str) -> bytes:
    if isinstance(key, str):
        if key.startswith("base64:"):
            try:
                raw = base64.b64decode(key[7:], validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(
                    f"{name} starts with 'base64:' but the rest is not base64: "
                    "copy APP_KEY from the Laravel app's .env as it is"
                ) from None
        else:
            raw = key.encode("utf-8")
    else:
        raw = bytes(key)
    if len(raw) != size:
        raise ConfigurationError(
            f"{name} is {len(raw)} bytes but {cipher} needs {size}: give APP_KEY as the "
            "Laravel app's .env has it ('base64:...') and its cipher (config/app.php 'cipher')"
        )
    return raw


class LaravelEncrypter:
    """
    Decrypts what Laravel's ``Encrypter`` encrypted.

    Args:
        key: ``APP_KEY``: ``"base64:..."`` as in ``.env``, a raw key string,
            or the key bytes.
        cipher: Laravel's ``config('app.cipher')``, any case.
        previous_keys: ``APP_PREVIOUS_KEYS`` (same forms), tried in order
            after ``key``.

    Raises:
        ConfigurationError: an unknown cipher, or a key that is not base64
            or not the cipher's size (the message names what to fix).
    """

    def __init__(
        self,
        key: str | bytes,
        cipher: str = "aes-256-cbc",
        *,
        previous_keys: Sequence[str | bytes] = (),
    ) -> None:
        name = cipher.lower()
        if name not in LARAVEL_CIPHERS:
            raise ConfigurationError(
                f"unknown Laravel cipher {cipher!r}: use one of {', '.join(LARAVEL_CIPHERS)}"
            )
        size, self._aead = LARAVEL_CIPHERS[name]
        self.cipher = name
        self._keys = [_parse_key(key, size, name, "the Laravel key")] + [
            _parse_key(old, size, name, f"previous key {index + 1}")
            for index, old in enumerate(previous_keys)
        ]

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The key, then the previous keys (raw bytes; never log them)."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"LaravelEncrypter(cipher={self.cipher!r}, keys={len(self._keys)})"

    def decrypt(self, payload: str | bytes, *, unserialize: bool = False) -> Any:
        """
        Decrypt a payload of Laravel's ``encrypt()``/``encryptString()``.

        Args:
            payload: the base64 text (a cookie value after URL-decoding).
            unserialize: decode the plaintext with PHP's ``unserialize``, as
                Laravel's ``decrypt()`` does by default (what ``encrypt()``
                wrote); cookies and ``encryptString()`` are not serialized.

        Returns:
            The plaintext bytes, or the decoded value with ``unserialize``.

        Raises:
            SessionDataError: the payload is malformed, of another cipher,
                changed (MAC or GCM tag check fails) or of another key.
        """
        if len(payload) > _MAX_PAYLOAD:
            raise SessionDataError(f"Laravel payload is {len(payload)} bytes, over the limit")
        decoded = _strict_b64(payload, "the payload")
        try:
            fields = json.loads(decoded)
        except ValueError:
            raise SessionDataError("Laravel payload: not JSON after base64-decoding") from None
        if not isinstance(fields, dict) or not all(
            isinstance(fields.get(name), str) for name in ("iv", "value", "mac")
        ):
            raise SessionDataError("Laravel payload: needs the strings iv, value and mac")
        tag_text = fields.get("tag")
        if tag_text is not None and not isinstance(tag_text, str):
            raise SessionDataError("Laravel payload: tag is not a string")
        iv = _strict_b64(fields["iv"], "iv")
        if len(iv) != (12 if self._aead else 16):
            raise SessionDataError(
                f"Laravel payload: a {len(iv)}-byte iv does not fit {self.cipher} "
                "(is the cipher right?)"
            )
        tag = _strict_b64(tag_text, "tag") if tag_text else None
        ciphertext = _strict_b64(fields["value"], "value")
        if self._aead:
            if tag is None or len(tag) != 16:
                raise SessionDataError(
                    f"Laravel payload: {self.cipher} needs a 16-byte tag (is the cipher right?)"
                )
            plaintext = self._open_gcm(iv, ciphertext, tag)
        else:
            if tag is not None:
                raise SessionDataError(
                    f"Laravel payload: a tag on a {self.cipher} payload (is the cipher right?)"
                )
            plaintext = self._open_cbc(fields["iv"], fields["value"], fields["mac"], iv, ciphertext)
        if unserialize:
            return _unserialize(plaintext)
        return plaintext

    def _open_gcm(self, iv: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        for key in self._keys:
            try:
                return AESGCM(key).decrypt(iv, ciphertext + tag, None)
            except InvalidTag:
                continue
        raise SessionDataError(
            "Laravel payload: the GCM tag does not match (changed, or another key)"
        )

    def _open_cbc(
        self, iv_text: str, value_text: str, mac: str, iv: bytes, ciphertext: bytes
    ) -> bytes:
        signed = (iv_text + value_text).encode("utf-8")
        for key in self._keys:
            expected = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, mac.encode("utf-8")):
                break
        else:
            raise SessionDataError("Laravel payload: the MAC is invalid (changed, or another key)")
        if not ciphertext or len(ciphertext) % 16:
            raise SessionDataError("Laravel payload: the value is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise SessionDataError("Laravel payload: bad padding after decryption") from None


def _unserialize(plaintext: bytes) -> Any:
    try:
        return unserialize(plaintext)
    except SessionDataError as exc:
        raise SessionDataError(f"Laravel payload decrypted, but {exc}") from None


def cookie_prefix(cookie_name: str, key: bytes) -> str:
    """Laravel's ``CookieValuePrefix::create``: the hex HMAC-SHA1 of ``name . 'v2'``, then ``|``."""
    return hmac.new(key, (cookie_name + "v2").encode("utf-8"), hashlib.sha1).hexdigest() + "|"


def session_id_from_cookie(
    cookie_value: str,
    cookie_name: str,
    encrypter: LaravelEncrypter,
    *,
    require_prefix: bool = True,
) -> str | None:
    """
    The session id in Laravel's encrypted session cookie.

    Args:
        cookie_value: the value from the ``Cookie`` header (URL-encoded as
            browsers send it, or already decoded).
        cookie_name: the cookie's name (Laravel's ``config('session.cookie')``),
            which the value's prefix is bound to.
        encrypter: a :class:`LaravelEncrypter` with the app's key.
        require_prefix: ``False`` for Laravel before 6.18.27/7.22, whose
            cookies carry the bare session id (or, before 5.6.30, the
            serialized id).

    Returns:
        The 40-character session id, or ``None`` when the cookie decrypts
        but holds no valid id for this cookie name (Laravel then starts a
        new session too).

    Raises:
        SessionDataError: the cookie is not a Laravel payload this key
            opens (tampered, another app's key, truncated).
    """
    plaintext = encrypter.decrypt(unquote(cookie_value.strip()))
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for key in encrypter.keys:
        prefix = cookie_prefix(cookie_name, key)
        if text.startswith(prefix):
            candidate = text[len(prefix) :]
            break
    else:
        if require_prefix:
            return None
        candidate = text
        if candidate.startswith("s:"):
            try:
                value = unserialize(plaintext)
            except SessionDataError:
                return None
            candidate = value if isinstance(value, str) else ""
    return candidate if _SESSION_ID.fullmatch(candidate) else None


def _session_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    if isinstance(value, dict):
        return {
            key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key): item
            for key, item in value.items()
        }
    raise SessionDataError(
        f"Laravel session: the attributes are {type(value).__name__}, not an array"
    )


def _looks_encrypted(data: bytes) -> bool:
    # base64 of '{"iv":' starts "eyJpdiI6"; of '{"value"' etc. "eyJ".
    return data.startswith(b"eyJ")


def decode_laravel_session(
    data: bytes, *, encrypter: LaravelEncrypter | None = None, max_depth: int = 64
) -> dict[str, Any]:
    """
    Decode a session as Laravel's file, Redis or memcached store holds it.

    Accepts ``serialize($attributes)`` as the file and memcached stores
    write it, the Redis cache store's extra ``serialize()`` around that,
    ``json_encode`` (``'serialization' => 'json'``), and, with
    ``encrypter``, the encrypted payload of ``session.encrypt``. Keys are
    ``str``.

    Common attributes: ``_token`` (CSRF), ``_previous`` (``{"url": ...}``),
    ``_flash``, and the logged-in user's id under
    ``login_<guard>_59ba36addc2b2f9401580f014c7f58ea4e30989d``
    (:func:`laravel_user_id`).

    Raises:
        SessionDataError: the data is none of these, is encrypted and no
            ``encrypter`` is given (or it cannot open it), or is malformed.
    """
    if len(data) > _MAX_SESSION:
        raise SessionDataError(f"Laravel session is {len(data)} bytes, over the limit")
    data = bytes(data)
    # At most: cache serialize() -> encrypted payload -> serialize() -> array.
    for _ in range(4):
        if not data:
            return {}
        head = data[:2]
        if head in (b"s:", b"S:"):
            inner = unserialize(data, max_depth=max_depth)
            if not isinstance(inner, str | bytes):
                raise SessionDataError("Laravel session: a serialized value that is not a string")
            data = inner.encode("utf-8") if isinstance(inner, str) else inner
        elif head == b"a:":
            return _session_dict(unserialize(data, max_depth=max_depth))
        elif data[:1] in (b"{", b"["):
            try:
                attributes = json.loads(data)
            except ValueError:
                raise SessionDataError("Laravel session: not valid JSON") from None
            return _session_dict(attributes)
        elif _looks_encrypted(data):
            if encrypter is None:
                raise SessionDataError(
                    "Laravel session is encrypted (session.encrypt is true): give the app key"
                )
            data = encrypter.decrypt(data.decode("ascii", "replace"))
        else:
            raise SessionDataError(
                f"Laravel session: starts with {data[:8]!r}, neither serialized, JSON nor "
                "an encrypted payload"
            )
    raise SessionDataError("Laravel session: nested deeper than any Laravel store writes")


def laravel_user_id(session: dict[str, Any], guard: str = "web") -> Any:
    """The id of the user logged in with ``guard`` (Laravel's ``SessionGuard``), or ``None``."""
    return session.get(f"login_{guard}_{_GUARD_HASH}")


def _slug(name: str) -> str:
    # Laravel's Str::slug($name, '_') for ASCII names.
    return "_".join(re.findall(r"[a-z0-9]+", name.lower()))


def laravel_cache_keys(
    session_id: str, *, app_name: str = "laravel", store: str = "redis"
) -> list[str]:
    """
    The keys Laravel's cache-backed session stores use for ``session_id``,
    newest Laravel first (look them up in order).

    ``redis``: Laravel 11+ ``<slug>_database_<slug>_cache_<id>`` (the
    Redis connection's prefix then the cache prefix), Laravel 5.8-10
    ``<slug>_database_<slug>_cache:<id>``, Laravel 5.0-5.7
    ``laravel:<id>``. ``memcached``: the same without the
    ``<slug>_database_`` connection prefix. ``slug`` is ``APP_NAME``
    lower-cased with ``_`` between words. Apps that set ``CACHE_PREFIX`` or
    ``REDIS_PREFIX`` use their own: read the key with those instead.
    """
    if store not in ("redis", "memcached"):
        raise ConfigurationError(f"unknown Laravel cache store {store!r}: use redis or memcached")
    slug = _slug(app_name) or "laravel"
    connection = f"{slug}_database_" if store == "redis" else ""
    return [
        f"{connection}{slug}_cache_{session_id}",
        f"{connection}{slug}_cache:{session_id}",
        f"laravel:{session_id}",
    ]
