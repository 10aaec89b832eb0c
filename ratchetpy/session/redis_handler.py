# -*- test-case-name: tests.session.test_handlers,tests.session.test_php_sessions -*-
"""
``RedisHandler``: sessions PHP keeps in Redis, read with ``ratchetpy.redis``.

Keys, as the PHP side writes them:

- phpredis (``session.save_handler=redis``): ``PHPREDIS_SESSION:<id>``,
  or ``<prefix><id>`` with ``?prefix=`` in its ``session.save_path``;
- Symfony's ``RedisSessionHandler``: ``sf_s<id>`` (its ``prefix`` option);
- Laravel's redis session driver: see ``ratchetpy.session.spec``
  (``LARAVEL_REDIS_PREFIXES``).

With no prefix given the handler looks for both phpredis's and Symfony's
keys in one ``MGET`` (phpredis's wins if both exist). The values are the
serialized session as ``session_encode()`` gives it; Redis expires them
itself (phpredis and Symfony set a TTL of ``session.gc_maxlifetime``).

A Redis that is down does not hold connections back: reads fail at once
(``SessionStoreUnavailable``) and the provider gives empty sessions until
it is back; the client reconnects by itself. Only before the very first
connection is made does a read wait for it (bounded by the provider's
``load_timeout``), so the first clients after a start are not turned away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twisted.internet import defer
from twisted.python.failure import Failure

from ..exceptions import (
    ConfigurationError,
    RedisError,
    RedisReplyError,
    SessionDataError,
    SessionStoreUnavailable,
)
from ..redis.client import RedisClient
from ..redis.url import RedisConfig
from .handlers import DEFAULT_MAX_SESSION_SIZE, SessionHandler, SessionRecord, check_session_id

__all__ = [
    "RedisHandler",
    "RedisSessionHandler",
    "PHPREDIS_PREFIX",
    "SYMFONY_PREFIX",
    "redis_url_from_save_path",
]

PHPREDIS_PREFIX = "PHPREDIS_SESSION:"
"""phpredis's default session key prefix."""

SYMFONY_PREFIX = "sf_s"
"""Symfony's ``RedisSessionHandler`` default key prefix."""


def redis_url_from_save_path(save_path: str) -> tuple[str, str | None]:
    """
    A Redis URL and key prefix from phpredis's ``session.save_path``
    (``tcp://127.0.0.1:6379?database=2&prefix=app:&auth=secret``), or from a
    ``redis://``/``rediss://``/``unix://`` URL whose ``?prefix=`` is the
    session key prefix. ``database`` becomes the database number, ``auth``
    the password; ``timeout`` is kept. The prefix is ``None`` when not given.

    Raises:
        ConfigurationError: not a URL of these schemes.
    """
    if "," in save_path:
        raise ConfigurationError(
            f"give one Redis server, not a list ({save_path.split(',')[0]}...): "
            "ratchetpy reads sessions from one server"
        )
    parts = urlsplit(save_path.strip())
    scheme = {"tcp": "redis", "tls": "rediss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"not a Redis URL: {save_path.split('?')[0]!r}; give redis://HOST:PORT/DB "
            "or phpredis's tcp://HOST:PORT?database=N"
        )
    prefix: str | None = None
    kept: list[tuple[str, str]] = []
    netloc = parts.netloc
    path = parts.path
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "prefix":
            prefix = value
        elif name == "database":
            if scheme == "unix":
                kept.append(("db", value))
            else:
                path = "/" + value
        elif name == "auth":
            if scheme == "unix":
                kept.append(("password", value))
            else:
                host = netloc.rpartition("@")[2]
                netloc = f":{value}@{host}"
        elif name in ("persistent", "weight", "retry_interval", "read_timeout"):
            continue  # phpredis connection tuning with no meaning here
        else:
            kept.append((name, value))
    return urlunsplit((scheme, netloc, path, urlencode(kept), "")), prefix


class RedisHandler(SessionHandler):
    """
    Read sessions from Redis.

    Args:
        redis: a ``redis://`` URL (``?prefix=`` sets the session key
            prefix), phpredis's ``tcp://HOST:PORT?database=N`` save path,
            a ``RedisConfig``, or a ``RedisClient`` you run yourself (then
            its own ``prefix`` is not used: give ``prefix`` here).
        prefix: the key prefix, or prefixes to try in order (one ``MGET``);
            ``None`` (default) tries phpredis's ``PHPREDIS_SESSION:`` and
            Symfony's ``sf_s``.
        reactor: the reactor (default: the one given to ``start``).
        max_size: a bigger value is refused (``SessionDataError``).
    """

    def __init__(
        self,
        redis: str | RedisConfig | RedisClient,
        *,
        prefix: str | Sequence[str] | None = None,
        reactor: Any = None,
        max_size: int = DEFAULT_MAX_SESSION_SIZE,
    ) -> None:
        self._own = not isinstance(redis, RedisClient)
        self.client: RedisClient | None = None
        self._config: RedisConfig | None = None
        if isinstance(redis, RedisClient):
            self.client = redis
            config = redis.config
        else:
            if isinstance(redis, str):
                url, url_prefix = redis_url_from_save_path(redis)
                config = RedisConfig.from_url(url)
                if prefix is None:
                    prefix = url_prefix
            else:
                config = redis
                if prefix is None and config.prefix:
                    prefix = config.prefix
            self._config = config.with_options(prefix="")
        if prefix is None:
            self.prefixes: tuple[str, ...] = (PHPREDIS_PREFIX, SYMFONY_PREFIX)
        elif isinstance(prefix, str):
            self.prefixes = (prefix,)
        else:
            self.prefixes = tuple(prefix)
        if not self.prefixes:
            raise ConfigurationError("RedisHandler(prefix=...) needs at least one prefix")
        self.max_size = max_size
        self.description = f"Redis at {config.address} (keys {' or '.join(p + '<id>' for p in self.prefixes)})"
        self._reactor = reactor
        self._ever_usable = False
        self._waiting: list[defer.Deferred[None]] = []
        if self.client is not None:
            self._ever_usable = self.client.connected

    def start(self, reactor: Any) -> None:
        if self.client is not None:
            return
        assert self._config is not None
        self.client = RedisClient(self._config, self._reactor or reactor)
        self.client.on_usable = self._usable
        self.client.startService()

    def stop(self) -> defer.Deferred[None]:
        client, waiting = self.client, self._waiting
        self._waiting = []
        for waiter in waiting:
            waiter.errback(SessionStoreUnavailable("the session handler was stopped"))
        if client is None or not self._own:
            return defer.succeed(None)
        self.client = None
        return client.stopService()

    def _usable(self) -> None:
        self._ever_usable = True
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)

    def keys_of(self, session_id: str) -> list[str]:
        """The keys ``session_id`` may be under, in the order they are preferred."""
        check_session_id(session_id)
        return [prefix + session_id for prefix in self.prefixes]

    def read_record(self, session_id: str) -> defer.Deferred[SessionRecord | None]:
        try:
            keys = self.keys_of(session_id)
        except SessionDataError:
            return defer.fail()
        if self.client is None:
            self.start(self._reactor or _global_reactor())
        client = self.client
        assert client is not None
        if not client.connected and not self._ever_usable and self._own and client.outage_started is None:
            # Still making the first connection: wait for it (the provider's
            # load_timeout bounds the wait). Once an attempt failed, reads
            # fail fast like during any outage.
            waiter: defer.Deferred[None] = defer.Deferred(
                lambda d: self._waiting.remove(d) if d in self._waiting else None
            )
            self._waiting.append(waiter)
            return waiter.addCallback(lambda _: self._get(keys))
        return self._get(keys)

    def _get(self, keys: list[str]) -> defer.Deferred[SessionRecord | None]:
        client = self.client
        if client is None:
            return defer.fail(SessionStoreUnavailable("the session handler was stopped"))
        asked = client.execute("MGET", *keys) if len(keys) > 1 else client.execute("GET", keys[0])
        return asked.addCallbacks(self._found, _unavailable)

    def _found(self, reply: Any) -> SessionRecord | None:
        values = reply if isinstance(reply, list) else [reply]
        for value in values:
            if value is None:
                continue
            if not isinstance(value, bytes):
                raise SessionDataError(f"the session key holds a {type(value).__name__}, not a string")
            if len(value) > self.max_size:
                raise SessionDataError(f"the session holds {len(value)} bytes, over the limit of {self.max_size}")
            return SessionRecord(value)
        return None


def _unavailable(failure: Failure) -> Failure:
    error = failure.value
    if isinstance(error, RedisError):
        # WRONGTYPE and the like are errors of the data, not of the server.
        if isinstance(error, RedisReplyError):
            raise SessionDataError(f"Redis refused the read: {error}")
        raise SessionStoreUnavailable(str(error))
    return failure


def _global_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


RedisSessionHandler = RedisHandler
"""Symfony's (and Ratchet users') name for the Redis session handler."""
