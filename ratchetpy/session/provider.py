# -*- test-case-name: tests.session.test_provider,tests.session.test_php_sessions -*-
"""
``SessionProvider``: Ratchet's session layer, between ``HttpServer`` (or
the ``Router``) and ``WsServer``.

.. code-block:: python

    provider = SessionProvider(WsServer(Chat()), FilesHandler("/var/lib/php/sessions"))
    IoServer.factory(HttpServer(provider), 8080).run()
    # in Chat.on_open: conn.send("Hello " + conn.session.get("name", "guest"))

On each request it reads the session cookie (``session.name``, default
``PHPSESSID``), loads the session through the handler, decodes it with the
serializer (``php``, ``php_binary`` or ``php_serialize``; detected when not
given), and sets ``conn.session`` (a :class:`~ratchetpy.session.session.Session`)
**before** the wrapped component's ``on_open`` runs. Bytes the client sends
meanwhile are kept and handed on after it.

Nothing about a session ever fails a connection: no cookie, an id PHP could
not have made, a session the store does not have, one past
``session.gc_maxlifetime``, data that does not decode, or a store that is
down or slower than ``load_timeout`` all give an empty session (its
``status`` says which) and a log line saying what to fix. A store outage
is logged once, and once again when reads succeed again.

With ``laravel_key`` (the application's ``APP_KEY``) the cookie is
Laravel's encrypted ``laravel_session``: it is decrypted to find the
session id, and the data is decoded as Laravel's stores write it (see
``ratchetpy.session.laravel``). A tampered cookie gives an empty session.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import ConfigurationError, SessionDataError, SessionStoreUnavailable
from ..http.interfaces import HttpServerInterface
from ..http.request import Request
from ..interfaces import ConnectionInterface, check_component
from .handlers import SessionHandler, SessionRecord, check_session_id
from .session import META_KEY, Session

__all__ = [
    "SessionProvider",
    "DEFAULT_LOAD_TIMEOUT",
    "DEFAULT_SESSION_NAME",
    "LARAVEL_SESSION_NAME",
    "SESSION_OPTIONS",
]

_log = Logger(namespace="ratchetpy.session")

DEFAULT_LOAD_TIMEOUT = 3.0
"""Seconds a session may take to load before the connection opens with an empty one."""

DEFAULT_SESSION_NAME = "PHPSESSID"
LARAVEL_SESSION_NAME = "laravel_session"
DEFAULT_GC_MAXLIFETIME = 1440
LARAVEL_LIFETIME = 120 * 60  # config/session.php 'lifetime' => 120 (minutes)

SESSION_OPTIONS = (
    "auto_start",
    "cache_limiter",
    "cookie_domain",
    "cookie_httponly",
    "cookie_lifetime",
    "cookie_path",
    "cookie_samesite",
    "cookie_secure",
    "gc_divisor",
    "gc_maxlifetime",
    "gc_probability",
    "lazy_write",
    "name",
    "referer_check",
    "save_handler",
    "save_path",
    "serialize_handler",
    "sid_bits_per_character",
    "sid_length",
    "use_cookies",
    "use_only_cookies",
    "use_strict_mode",
    "use_trans_sid",
)
"""The php.ini ``session.*`` names ``options`` accepts (with or without ``session.``).
Only ``name``, ``serialize_handler`` and ``gc_maxlifetime`` change what is read;
the others are accepted so a Ratchet options array ports as is."""


HELD_BYTES = 64 * 1024
"""Bytes a client may send while its session loads before the server stops
reading from it (TCP backpressure) until the session is there."""


class _Pending:
    """A connection whose session is loading; what it sent meanwhile."""

    __slots__ = ("request", "buffer", "loading", "paused")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.buffer = bytearray()
        self.loading: defer.Deferred[Any] | None = None
        self.paused: Any = None


def _read_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for raw, value in (options or {}).items():
        key = str(raw).removeprefix("session.")
        if key not in SESSION_OPTIONS and not key.startswith("upload_progress."):
            raise ConfigurationError(
                f"unknown session option {raw!r}; options take php.ini session.* names: "
                + ", ".join(SESSION_OPTIONS)
            )
        result[key] = value
    return result


class SessionProvider(HttpServerInterface):
    """
    Give each connection ``conn.session``, the PHP application's session.

    Args:
        component: what to wrap: a ``WsServer`` (as in Ratchet 0.4), or a
            message component, which gets a ``WsServer`` with keepalive
            around it (Ratchet's older docs wrote it that way).
        handler: where the sessions are: a ``SessionHandler``
            (``FilesHandler``, ``RedisHandler``, ``MemcachedHandler``), or
            a description such as ``"files:/var/lib/php/sessions"``,
            ``"redis://127.0.0.1:6379/0"`` or ``"memcached:127.0.0.1:11211"``
            (see :func:`ratchetpy.session.spec.handler_from_spec`).
        options: php.ini ``session.*`` settings (``{"name": "MYSESS",
            "gc_maxlifetime": 3600}``; the ``session.`` prefix is optional).
        serializer: ``"php"``, ``"php_binary"`` or ``"php_serialize"``
            (``session.serialize_handler``); ``None`` detects it per session.
        laravel_key: Laravel's ``APP_KEY`` (``base64:...``): read Laravel's
            encrypted session cookie (default name ``laravel_session``).
        laravel_cipher: Laravel's ``config('app.cipher')``.
        laravel_previous_keys: ``APP_PREVIOUS_KEYS``, tried after the key.
        laravel_legacy_cookie: accept cookies without the cookie-name
            prefix Laravel 6.18.27/7.22 added (older apps only: the prefix
            binds the value to the cookie's name).
        load_timeout: seconds a session may take to load; past it the
            connection opens with an empty session.
        reactor: the reactor (default: each connection's).
        now: the wall clock, for expiry (tests).

    Raises:
        ConfigurationError: an unknown option or serializer, a bad Laravel
            key; the message names the fix.
    """

    def __init__(
        self,
        component: Any,
        handler: SessionHandler | str,
        options: Mapping[str, Any] | None = None,
        serializer: str | None = None,
        *,
        laravel_key: str | bytes | None = None,
        laravel_cipher: str = "aes-256-cbc",
        laravel_previous_keys: Sequence[str | bytes] = (),
        laravel_legacy_cookie: bool = False,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        reactor: Any = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(component, HttpServerInterface):
            from ..wrapping import wrap_component

            component = wrap_component(component)
        check_component(component, ("on_open", "on_message", "on_close", "on_error"), "SessionProvider")
        self.component = component
        self.options = _read_options(options)
        laravel = laravel_key is not None
        if isinstance(handler, str):
            from .spec import handler_from_spec

            handler = handler_from_spec(handler, laravel=laravel, reactor=reactor)
        if not isinstance(handler, SessionHandler):
            raise ConfigurationError(
                f"handler must be a SessionHandler (FilesHandler, RedisHandler, MemcachedHandler) "
                f"or a description such as 'files:/var/lib/php/sessions', not {type(handler).__name__}"
            )
        self.handler = handler
        default_name = LARAVEL_SESSION_NAME if laravel else DEFAULT_SESSION_NAME
        self.name = str(self.options.get("name") or default_name)
        if not self.name or any(c in self.name for c in "=,; \t\r\n"):
            raise ConfigurationError(f"session.name {self.name!r} cannot be a cookie name; e.g. PHPSESSID")
        self.serializer = _check_serializer(serializer or self.options.get("serialize_handler"))
        lifetime = self.options.get("gc_maxlifetime", LARAVEL_LIFETIME if laravel else DEFAULT_GC_MAXLIFETIME)
        try:
            self.gc_maxlifetime = int(lifetime)
        except (TypeError, ValueError):
            self.gc_maxlifetime = -1
        if self.gc_maxlifetime < 1:
            raise ConfigurationError(
                f"session.gc_maxlifetime must be a whole number of seconds, 1 or more, not {lifetime!r}"
            )
        if isinstance(load_timeout, bool) or not isinstance(load_timeout, (int, float)) or not load_timeout > 0:
            raise ConfigurationError(f"load_timeout must be a positive number of seconds, not {load_timeout!r}")
        self.load_timeout = float(load_timeout)
        self.encrypter: Any = None
        self.laravel_legacy_cookie = bool(laravel_legacy_cookie)
        if laravel_key is not None:
            from .laravel import LaravelEncrypter

            try:
                self.encrypter = LaravelEncrypter(
                    laravel_key, laravel_cipher, previous_keys=laravel_previous_keys
                )
            except (ConfigurationError, SessionDataError) as exc:
                raise ConfigurationError(f"laravel_key: {exc}") from None
        self._reactor = reactor
        self._now = now
        self._pending: WeakKeyDictionary[ConnectionInterface, _Pending] = WeakKeyDictionary()
        self._started = False
        self._down = False

    @property
    def laravel(self) -> bool:
        """True when reading Laravel's encrypted cookie and stores."""
        return self.encrypter is not None

    # -- the store ------------------------------------------------------------

    def start(self, reactor: Any = None) -> None:
        """Connect the handler to its store now (otherwise done on the first connection)."""
        if not self._started:
            self._started = True
            self.handler.start(self._reactor or reactor or _global_reactor())

    def stop(self) -> defer.Deferred[None]:
        """Disconnect the handler from its store."""
        self._started = False
        return self.handler.stop()

    def load(self, session_id: str, reactor: Any = None) -> defer.Deferred[tuple[dict[str, Any], str]]:
        """
        Read and decode ``session_id``: fires with ``(data, status)``, never
        fails (see :class:`Session` for the statuses); logs what went wrong.
        """
        reactor = self._reactor or reactor or _global_reactor()
        self.start(reactor)
        try:
            check_session_id(session_id)
            reading = self.handler.read_record(session_id)
        except Exception as exc:  # noqa: BLE001 - a handler's bug must not fail the connection
            reading = defer.fail(exc)
        timer = reactor.callLater(self.load_timeout, reading.cancel)

        def stop_timer(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        reading.addBoth(stop_timer)
        return reading.addCallbacks(self._decode, self._failed, callbackArgs=(session_id,), errbackArgs=(session_id,))

    def _decode(self, record: SessionRecord | None, session_id: str) -> tuple[dict[str, Any], str]:
        if self._down:
            self._down = False
            _log.info("Session store {store} answers again", store=self.handler.description)
        if record is None:
            _log.debug("No session {sid} in {store}", sid=_short(session_id), store=self.handler.description)
            return {}, "missing"
        now = self._now()
        if record.modified is not None and now - record.modified > self.gc_maxlifetime:
            _log.debug("Session {sid} expired (gc_maxlifetime)", sid=_short(session_id))
            return {}, "expired"
        try:
            if self.laravel:
                from .laravel import decode_laravel_session

                data = decode_laravel_session(record.data, encrypter=self.encrypter)
            else:
                from .formats import decode_session

                data = decode_session(record.data, self.serializer)
        except (SessionDataError, ConfigurationError) as exc:
            _log.warn(
                "Session {sid} in {store} cannot be decoded ({error}); serving an empty session. "
                "Check that the serializer matches PHP's session.serialize_handler "
                "(given: {serializer}) and that the store holds PHP sessions",
                sid=_short(session_id),
                store=self.handler.description,
                error=exc,
                serializer=self.serializer or "auto-detect",
            )
            return {}, "invalid"
        if _symfony_expired(data.get(META_KEY), now, self.gc_maxlifetime):
            _log.debug("Session {sid} expired (Symfony metadata)", sid=_short(session_id))
            return {}, "expired"
        return data, "found"

    def _failed(self, failure: Failure, session_id: str) -> tuple[dict[str, Any], str]:
        error = failure.value
        if isinstance(error, SessionDataError):
            _log.info(
                "Session {sid} not read: {error}; serving an empty session",
                sid=_short(session_id),
                error=error,
            )
            return {}, "invalid"
        if isinstance(error, defer.CancelledError):
            why = f"no answer within {self.load_timeout:g} s (SessionProvider load_timeout)"
        elif isinstance(error, SessionStoreUnavailable):
            why = str(error)
        else:
            _log.failure("Reading session {sid} failed", failure, sid=_short(session_id))
            return {}, "unavailable"
        if not self._down:
            self._down = True
            _log.warn(
                "Session store {store} unavailable: {why}; connections get empty sessions "
                "until it answers again",
                store=self.handler.description,
                why=why,
            )
        return {}, "unavailable"

    # -- the cookie ----------------------------------------------------------

    def session_id_of(self, request: Request) -> tuple[str | None, str]:
        """``(session id, "")`` from ``request``'s cookie, or ``(None, status)`` with why not."""
        value = request.cookies.get(self.name)
        if value is None or value == "":
            return None, "no-cookie"
        if self.encrypter is not None:
            from .laravel import session_id_from_cookie

            try:
                found = session_id_from_cookie(
                    value, self.name, self.encrypter, require_prefix=not self.laravel_legacy_cookie
                )
            except SessionDataError as exc:
                found = None
                detail = str(exc)
            else:
                detail = "it holds no session id for this cookie name"
            if found is None:
                _log.info(
                    "Laravel cookie {name} could not be decrypted ({detail}); serving an empty "
                    "session (is laravel_key the application's APP_KEY, and the cipher its app.cipher?)",
                    name=self.name,
                    detail=detail,
                )
                return None, "invalid"
            value = found
        try:
            return check_session_id(value), ""
        except SessionDataError as exc:
            _log.info(
                "Cookie {name} holds no valid session id ({error}); serving an empty session",
                name=self.name,
                error=exc,
            )
            return None, "invalid"

    # -- HttpServerInterface ---------------------------------------------------

    def on_open(self, conn: ConnectionInterface, request: Request) -> Any:
        session_id, status = self.session_id_of(request)
        if session_id is None:
            conn.session = Session({}, "", self.name, status=status)
            return self.component.on_open(conn, request)
        state = self._pending[conn] = _Pending(request)
        loading = self.load(session_id, getattr(conn, "reactor", None))
        state.loading = loading
        loading.addCallback(self._loaded, conn, session_id)
        loading.addErrback(self._open_failed, conn)
        return None

    def _loaded(self, result: tuple[dict[str, Any], str], conn: ConnectionInterface, session_id: str) -> None:
        state = self._pending.pop(conn, None)
        if state is None or conn.closing:
            return  # the client left while its session loaded
        if state.paused is not None:
            state.paused.resumeProducing()
        data, status = result
        reactor = getattr(conn, "reactor", None)
        conn.session = Session(
            data,
            session_id,
            self.name,
            status=status,
            loader=lambda: self.load(session_id, reactor),
        )
        try:
            self.component.on_open(conn, state.request)
        except Exception as exc:  # noqa: BLE001 - as IoServer would route it
            self.component.on_error(conn, exc)
            return
        if state.buffer and not conn.closing:
            self.component.on_message(conn, bytes(state.buffer))

    def _open_failed(self, failure: Failure, conn: ConnectionInterface) -> None:
        _log.failure("Opening a connection after its session loaded failed", failure)
        conn.close()

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        state = self._pending.get(conn)
        if state is None:
            return self.component.on_message(conn, msg)
        state.buffer += msg.encode("utf-8") if isinstance(msg, str) else msg
        if len(state.buffer) > HELD_BYTES and state.paused is None:
            # A client may not make the server hold more than this while a
            # slow store answers (load_timeout bounds the wait, not the bytes).
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.pauseProducing()
                state.paused = transport
        return None

    def on_close(self, conn: ConnectionInterface) -> Any:
        if self._pending.pop(conn, None) is not None:
            # The component never saw this connection open; the load ends
            # by itself (load_timeout bounds it) and finds no one waiting.
            return None
        return self.component.on_close(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        return self.component.on_error(conn, exc)


def _check_serializer(name: object) -> str | None:
    if name is None or name == "":
        return None
    from .formats import SERIALIZERS

    if name not in SERIALIZERS:
        raise ConfigurationError(
            f"unknown session serializer {name!r}; PHP's session.serialize_handler is one of "
            f"{', '.join(SERIALIZERS)} (or leave it out to detect it)"
        )
    return str(name)


def _symfony_expired(meta: Any, now: float, gc_maxlifetime: int) -> bool:
    if not isinstance(meta, dict):
        return False
    used = meta.get("u")
    if not isinstance(used, int) or isinstance(used, bool) or used <= 0:
        return False
    lifetime = meta.get("l")
    if isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0 and used + lifetime < now:
        return True
    return used + gc_maxlifetime < now


def _short(session_id: str) -> str:
    # Enough to tell sessions apart in a log, not enough to steal one.
    return session_id[:6] + "..."


def _global_reactor() -> Any:
    from twisted.internet import reactor

    return reactor
