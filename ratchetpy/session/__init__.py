"""
PHP sessions in ratchetpy: Ratchet's ``SessionProvider`` and what it reads
(the PHP application's session stores, serializers and Laravel's cookie).

.. code-block:: python

    from ratchetpy.session import FilesHandler, SessionProvider

    app.route("/chat", Chat(), session="files:/var/lib/php/sessions")
    # or, as in Ratchet:
    IoServer.factory(HttpServer(SessionProvider(WsServer(Chat()), FilesHandler("/var/lib/php/sessions"))), 8080)

``conn.session`` (a ``Session``) then has the PHP site's session, read-only:
``conn.session.get("name")``. See docs/sessions.md.
"""

from __future__ import annotations

from .formats import SERIALIZERS, decode_session, detect_serializer
from .handlers import (
    FilesHandler,
    NativeFileSessionHandler,
    NullSessionHandler,
    SessionHandler,
    SessionRecord,
    check_session_id,
    is_session_id,
)
from .memcached_handler import MemcachedHandler, MemcachedSessionHandler, MemcacheSessionHandler
from .provider import SessionProvider
from .redis_handler import RedisHandler, RedisSessionHandler
from .serialize import PhpCustomObject, PhpEnum, PhpObject, unserialize
from .session import FlashBag, MetadataBag, Session
from .spec import handler_from_spec

__all__ = [
    "FilesHandler",
    "FlashBag",
    "MemcacheSessionHandler",
    "MemcachedHandler",
    "MemcachedSessionHandler",
    "MetadataBag",
    "NativeFileSessionHandler",
    "NullSessionHandler",
    "PhpCustomObject",
    "PhpEnum",
    "PhpObject",
    "RedisHandler",
    "RedisSessionHandler",
    "SERIALIZERS",
    "Session",
    "SessionHandler",
    "SessionProvider",
    "SessionRecord",
    "check_session_id",
    "decode_session",
    "detect_serializer",
    "handler_from_spec",
    "is_session_id",
    "unserialize",
]
