# -*- test-case-name: tests.session.test_handlers -*-
"""
Session handlers from one line of text, for ``--session-handler`` and
``SessionProvider(component, "files:/var/lib/php/sessions")``.

====================================================  ===========================================
``files:/var/lib/php/sessions``                       ``FilesHandler`` (PHP's ``files``); also
                                                      ``files:2;/path`` and a bare ``/path``
``redis://127.0.0.1:6379/0`` (``rediss://``,          ``RedisHandler``; ``?prefix=`` sets the key
``unix://``, phpredis's ``tcp://H:P?database=N``)     prefix (default: phpredis's and Symfony's)
``memcached:127.0.0.1:11211``                         ``MemcachedHandler`` (php-memcached's keys,
                                                      then Symfony's)
====================================================  ===========================================

For Laravel (``laravel=True``) the defaults are Laravel's: session files
named by the id alone (``storage/framework/sessions/<id>``) and the Redis
keys of an app named "laravel": ``laravel_database_laravel_cache_<id>``
(Laravel 11+: the redis connection's prefix ``laravel_database_`` then the
cache prefix), ``laravel_database_laravel_cache:<id>`` (5.8-10) and
``laravel:<id>`` (5.0-5.7). Give ``?prefix=`` for another ``APP_NAME``
(``laravel_cache_keys("", app_name=...)`` computes them).
"""

from __future__ import annotations

from typing import Any

from ..exceptions import ConfigurationError
from .handlers import FilesHandler, SessionHandler

__all__ = ["handler_from_spec", "LARAVEL_REDIS_PREFIX", "LARAVEL_REDIS_PREFIXES", "HANDLER_FORMS"]

LARAVEL_REDIS_PREFIXES = (
    "laravel_database_laravel_cache_",
    "laravel_database_laravel_cache:",
    "laravel:",
)
"""Where Laravel's redis session driver keeps a session of an app named "laravel",
before the id: Laravel 11+, 5.8-10, 5.0-5.7 (``ratchetpy.session.laravel.laravel_cache_keys``)."""
LARAVEL_REDIS_PREFIX = LARAVEL_REDIS_PREFIXES[0]

HANDLER_FORMS = "files:/var/lib/php/sessions, redis://127.0.0.1:6379/0 or memcached:127.0.0.1:11211"


def handler_from_spec(spec: str, *, laravel: bool = False, reactor: Any = None) -> SessionHandler:
    """
    The handler ``spec`` describes (see the module docs).

    Raises:
        ConfigurationError: a form not listed, or a bad path, URL or
            address in it; the message shows the forms.
    """
    text = spec.strip() if isinstance(spec, str) else ""
    if not text:
        raise ConfigurationError(f"no session handler given; give one of {HANDLER_FORMS}")
    scheme = text.split(":", 1)[0].lower()
    if scheme == "files" or text.startswith("/"):
        path = text[6:] if scheme == "files" else text
        return FilesHandler(path, prefix="" if laravel else "sess_", reactor=reactor)
    if scheme in ("redis", "rediss", "unix", "tcp", "tls"):
        from .redis_handler import RedisHandler, redis_url_from_save_path

        url, prefix = redis_url_from_save_path(text)
        prefixes: str | tuple[str, ...] | None = prefix
        if prefix is None and laravel:
            prefixes = LARAVEL_REDIS_PREFIXES
        return RedisHandler(url, prefix=prefixes, reactor=reactor)
    if scheme == "memcached":
        from .memcached_handler import MemcachedHandler

        if laravel:
            raise ConfigurationError(
                "Laravel's memcached session store is not supported; use its file or redis driver"
            )
        return MemcachedHandler(text, reactor=reactor)
    raise ConfigurationError(f"unknown session handler {spec!r}; give one of {HANDLER_FORMS}")
