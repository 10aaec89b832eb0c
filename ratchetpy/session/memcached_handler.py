# -*- test-case-name: tests.session.test_handlers,tests.session.test_php_sessions -*-
"""
``MemcachedHandler``: sessions PHP keeps in memcached.

php-memcached (``session.save_handler=memcached``, ``session.save_path=
HOST:PORT``) stores each session under ``memc.sess.key.<id>``
(``memcached.sess_prefix``) while a request holds the lock key
``lock.memc.sess.key.<id>``; Symfony's ``MemcachedSessionHandler`` uses
``sf2s<id>``. The values are the serialized session as
``session_encode()`` gives it, expired by memcached itself after
``session.gc_maxlifetime``.

One connection (Twisted's ``MemCacheProtocol``, text protocol, which reads
what php-memcached's binary protocol wrote) is kept by a ``ClientService``
that reconnects with backoff. While memcached is down reads fail at once
(``SessionStoreUnavailable``: the provider gives empty sessions and logs
the outage once); it comes back by itself. A read that gets no answer
within ``timeout`` drops the connection, which is then made again.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.protocols.memcache import MemCacheProtocol
from twisted.python.failure import Failure

from ..exceptions import ConfigurationError, SessionDataError, SessionStoreUnavailable
from .handlers import DEFAULT_MAX_SESSION_SIZE, SessionHandler, SessionRecord, check_session_id

__all__ = [
    "MemcachedHandler",
    "MemcachedSessionHandler",
    "MemcacheSessionHandler",
    "PHP_MEMCACHED_PREFIX",
    "SYMFONY_MEMCACHED_PREFIX",
    "parse_memcached_address",
]

PHP_MEMCACHED_PREFIX = "memc.sess.key."
"""php-memcached's default session key prefix (``memcached.sess_prefix``)."""

SYMFONY_MEMCACHED_PREFIX = "sf2s"
"""Symfony's ``MemcachedSessionHandler`` default key prefix."""

_MAX_KEY = 250  # memcached's key length limit
_PHP_MEMCACHED_COMPRESSED = 1 << 4  # php-memcached's MEMC_VAL_COMPRESSED flag


def parse_memcached_address(address: str) -> tuple[str, int]:
    """
    ``(host, port)`` from ``HOST:PORT``, ``[V6]:PORT`` or a bare ``HOST``
    (port 11211); php-memcached's ``session.save_path`` form. ``memcached:``
    or ``memcached://`` in front is accepted.

    Raises:
        ConfigurationError: a list of servers, or a port that is not 1-65535.
    """
    text = address.strip()
    for scheme in ("memcached://", "memcached:"):
        if text.startswith(scheme):
            text = text[len(scheme):]
            break
    if "," in text:
        raise ConfigurationError(
            f"give one memcached server, not a list ({text}): ratchetpy reads sessions from one server"
        )
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1 or (text.count(":") == 2 and text.split(":")[1].isdigit()):
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    port_text = port_text.partition(":")[0]  # php-memcached's HOST:PORT:WEIGHT
    if not host:
        raise ConfigurationError(f"memcached address {address!r} has no host; give HOST:PORT, e.g. 127.0.0.1:11211")
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ConfigurationError(f"memcached address {address!r}: the port must be 1-65535")
    return host, int(port_text or 11211)


class _Protocol(MemCacheProtocol):
    handler: MemcachedHandler | None = None

    def connectionLost(self, reason: Failure | None = None) -> None:
        MemCacheProtocol.connectionLost(self, reason)
        if self.handler is not None:
            self.handler._lost(self)


class MemcachedHandler(SessionHandler):
    """
    Read sessions from one memcached server.

    Args:
        host: the server's host (or ``HOST:PORT``, php-memcached's save path).
        port: its port.
        prefix: the key prefix; ``None`` (default) tries php-memcached's
            ``memc.sess.key.`` then Symfony's ``sf2s``.
        timeout: seconds to connect, and for each read's answer.
        reactor: the reactor (default: the one given to ``start``).
        max_size: a bigger value is refused (``SessionDataError``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        prefix: str | None = None,
        timeout: float = 3.0,
        reactor: Any = None,
        max_size: int = DEFAULT_MAX_SESSION_SIZE,
    ) -> None:
        if port is None:
            host, port = parse_memcached_address(host)
        if any(c in (prefix or "") for c in " \r\n\t\0"):
            raise ConfigurationError(f"a memcached key prefix cannot hold spaces or control characters: {prefix!r}")
        self.host, self.port = host, port
        self.prefixes: tuple[str, ...] = (
            (PHP_MEMCACHED_PREFIX, SYMFONY_MEMCACHED_PREFIX) if prefix is None else (prefix,)
        )
        self.timeout = timeout
        self.max_size = max_size
        self.description = f"memcached at {host}:{port} (keys {' or '.join(p + '<id>' for p in self.prefixes)})"
        self._reactor = reactor
        self._service: ClientService | None = None
        self.protocol: _Protocol | None = None
        self._ever_connected = False
        self._first_failed = False

    def start(self, reactor: Any) -> None:
        if self._service is not None:
            return
        reactor = self._reactor = self._reactor or reactor
        endpoint_class = TCP6ClientEndpoint if ":" in self.host else TCP4ClientEndpoint
        endpoint = endpoint_class(reactor, self.host, self.port, timeout=self.timeout)
        factory = Factory.forProtocol(self._build)
        factory.noisy = False
        # Back within 5 s of memcached's return (Twisted's default waits up to a minute).
        retry = backoffPolicy(initialDelay=0.5, maxDelay=5.0)
        self._service = ClientService(endpoint, factory, retryPolicy=retry, clock=reactor)
        self._service.startService()

    def stop(self) -> defer.Deferred[None]:
        service, self._service = self._service, None
        if service is None:
            return defer.succeed(None)
        stopped: defer.Deferred[None] = service.stopService()
        return stopped

    def _build(self) -> _Protocol:
        protocol = _Protocol(timeOut=self.timeout)  # type: ignore[no-untyped-call]
        protocol.callLater = self._reactor.callLater  # type: ignore[method-assign]  # its timeouts on our reactor
        protocol.handler = self
        self.protocol = protocol
        self._ever_connected = True
        return protocol

    def _lost(self, protocol: _Protocol) -> None:
        if self.protocol is protocol:
            self.protocol = None

    def keys_of(self, session_id: str) -> list[bytes]:
        """The keys ``session_id`` may be under, in the order they are preferred."""
        check_session_id(session_id)
        keys = [(prefix + session_id).encode("ascii") for prefix in self.prefixes]
        if all(len(key) > _MAX_KEY for key in keys):
            raise SessionDataError(f"session id too long for a memcached key (at most {_MAX_KEY} bytes with the prefix)")
        return [key for key in keys if len(key) <= _MAX_KEY]

    def read_record(self, session_id: str) -> defer.Deferred[SessionRecord | None]:
        try:
            keys = self.keys_of(session_id)
        except SessionDataError:
            return defer.fail()
        if self._service is None:
            self.start(self._reactor or _global_reactor())
        assert self._service is not None
        protocol = self.protocol
        if protocol is not None and protocol.connected and not protocol._disconnected:
            return self._get(protocol, keys)
        if self._ever_connected or self._first_failed:
            return defer.fail(
                SessionStoreUnavailable(f"memcached at {self.host}:{self.port} is unreachable (reconnecting)")
            )
        # The first connection is still being made: wait for it (the
        # provider's load_timeout bounds the wait); if it fails, reads fail
        # fast from then on, as during any outage.
        waited: defer.Deferred[Any] = self._service.whenConnected(failAfterFailures=1)
        # Fired from the reactor, not from inside ClientService's state
        # machine, so that what runs next may stop the service.
        relayed: defer.Deferred[Any] = defer.Deferred(lambda _: waited.cancel())

        def relay(result: Any) -> None:
            if not relayed.called:
                if isinstance(result, Failure):
                    relayed.errback(result)
                else:
                    relayed.callback(result)

        waited.addBoth(lambda result: self._reactor.callLater(0, relay, result) and None)
        return relayed.addCallbacks(lambda p: self._get(p, keys), self._first_attempt_failed)

    def _first_attempt_failed(self, failure: Failure) -> Failure:
        if failure.check(defer.CancelledError):
            return failure
        self._first_failed = True
        raise SessionStoreUnavailable(
            f"memcached at {self.host}:{self.port} is unreachable ({failure.getErrorMessage()})"
        )

    def _get(self, protocol: MemCacheProtocol, keys: list[bytes]) -> defer.Deferred[SessionRecord | None]:
        asked: defer.Deferred[Any] = protocol.getMultiple(keys)

        def found(values: dict[bytes, tuple[int, Any]]) -> SessionRecord | None:
            for key in keys:
                flags, value = values.get(key, (0, None))
                if value is None:
                    continue
                if flags & _PHP_MEMCACHED_COMPRESSED:
                    raise SessionDataError(
                        f"the session under {key.decode()} was compressed by php-memcached's "
                        "Memcached class (values over memcached.compression_threshold, 2000 bytes); "
                        "turn compression off for the sessions' Memcached client "
                        "(Memcached::OPT_COMPRESSION => false)"
                    )
                if len(value) > self.max_size:
                    raise SessionDataError(f"the session holds {len(value)} bytes, over the limit of {self.max_size}")
                return SessionRecord(bytes(value))
            return None

        def failed(failure: Failure) -> Failure:
            if failure.check(SessionDataError):
                return failure
            raise SessionStoreUnavailable(
                f"memcached at {self.host}:{self.port} did not answer: {failure.getErrorMessage()}"
            )

        return asked.addCallbacks(found, failed)


def _global_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


MemcachedSessionHandler = MemcachedHandler
"""Symfony's name for the memcached (php-memcached) session handler."""

MemcacheSessionHandler = MemcachedHandler
"""The name in Ratchet's session docs (Symfony's old ``Memcache`` handler); same store."""
