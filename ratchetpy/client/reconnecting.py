# -*- test-case-name: tests.client.test_reconnecting -*-
"""
``ReconnectingClient``: one WebSocket connection kept open for as long as
the service runs.

Built on Twisted's ``ClientService``: every lost connection (the server
restarted, a keepalive timeout, a failed handshake) is made again after a
wait from ``ratchetpy.redis.backoff.Backoff`` (exponential with jitter, so
many clients do not come back in the same instant). The wait grows with
each failure and starts over once a handshake succeeds, which TCP
connecting alone does not count as (``Backoff`` keeps its own count:
``ClientService`` resets its count when TCP connects, and it learns of a
failed handshake only as a lost connection).

While disconnected, ``send()`` queues up to ``max_queued`` messages and
delivers them, in order, after the next ``on_open`` (so a message sent
by ``on_open`` itself, such as a login, goes first). Over that bound
``send()`` raises ``SendQueueFull``: a message is never dropped without
the caller knowing.
"""

from __future__ import annotations

import random as _random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.internet import ClientService
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure
from zope.interface import implementer, provider

from ..exceptions import ClientError, ConfigurationError, SendQueueFull
from ..redis.backoff import Backoff
from .connect import build_factory, client_endpoint, connect_error, target_and_reactor
from .connection import ClientConnection
from .options import DEFAULT_MAX_MESSAGE_SIZE, ClientOptions

__all__ = ["ReconnectingClient"]

_log = Logger(namespace="ratchetpy.client")


@implementer(IStreamClientEndpoint)
class _ExplainingEndpoint:
    """An endpoint whose connection failures become ``ClientError``s."""

    def __init__(self, endpoint: Any, explain: Callable[[BaseException], ClientError]) -> None:
        self._endpoint = endpoint
        self._explain = explain

    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = self._endpoint.connect(factory)

        def explain(failure: Failure) -> Failure:
            error = self._explain(failure.value)  # type: ignore[arg-type]
            _log.warn("WebSocket client: {error}", error=str(error))
            return Failure(error)

        return d.addErrback(explain)

    def __repr__(self) -> str:
        return repr(self._endpoint)


@provider(ILogObserver)
def _discard(event: dict[str, Any]) -> None:
    pass


class _QuietClientService(ClientService):
    """``ClientService`` without its own "Scheduling retry" line: ours names the URL."""

    _log = Logger(observer=_discard)


class ReconnectingClient(Service):
    """
    A client that reconnects: start it (``startService()`` or add it to
    an ``Application``) and it connects, and connects again whenever the
    connection is lost, until stopped.

    The component's ``on_open`` is called for each new connection (log in
    and subscribe there) and ``on_close`` for each lost one.

    Args:
        url: ``ws://`` or ``wss://``.
        component: ``on_open``/``on_message``/``on_close``/``on_error``.
        reactor: the reactor (default: the global one).
        max_queued: messages ``send()`` keeps while disconnected.
        backoff_initial: the longest first wait before reconnecting, seconds.
        backoff_max: no wait is longer.
        backoff_factor: how much the longest wait grows per failure.
        random: a 0-argument callable returning a float in [0, 1), for
            the jitter (tests pass a fixed one).
        endpoint: a Twisted client endpoint to use instead of the URL's.
        **options: ``connect()``'s options (``subprotocols``, ``headers``,
            ``keepalive_interval``, ``ca_file``, ...).

    Raises:
        ConfigurationError: a bad URL or option.
        ComponentError: ``component`` lacks a handler.
    """

    def __init__(
        self,
        url: str,
        component: Any,
        *,
        reactor: Any = None,
        max_queued: int = 1000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_factor: float = 2.0,
        random: Callable[[], float] = _random.random,
        endpoint: Any = None,
        subprotocols: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        origin: str | None = None,
        connect_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        close_timeout: float = 5.0,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float = 20.0,
        ca_file: str | None = None,
        trust_root: Any = None,
        tls: Any = None,
        insecure: bool = False,
        user_agent: str | None = None,
    ) -> None:
        if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 0:
            raise ConfigurationError(f"max_queued must be a count of 0 or more, not {max_queued!r}")
        if component is None:
            raise ConfigurationError(
                "ReconnectingClient needs a component: its on_open runs after each reconnect"
            )
        self.options = ClientOptions(
            subprotocols=subprotocols,
            headers=dict(headers or {}),
            origin=origin,
            user_agent=user_agent,
            connect_timeout=connect_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            ca_file=ca_file,
            trust_root=trust_root,
            tls=tls,
            insecure=insecure,
        )
        self.target, reactor = target_and_reactor(url, reactor)
        self._reactor = reactor
        self.component = component
        self.max_queued = max_queued
        self.backoff = Backoff(backoff_initial, backoff_max, backoff_factor, random)
        self.queue: deque[str | bytes] = deque()
        self.connection: ClientConnection | None = None
        """The open connection, or ``None`` while (re)connecting."""
        self.connections = 0
        """How many connections have opened so far."""
        self._waiting: list[Deferred[ClientConnection]] = []
        factory = build_factory(self.target, self.options, component, reactor)
        factory.on_protocol = self._watch
        if endpoint is None:
            endpoint = client_endpoint(reactor, self.target, self.options)
        self._service = _QuietClientService(
            _ExplainingEndpoint(
                endpoint, lambda exc: connect_error(self.target, self.options, exc)
            ),
            factory,
            retryPolicy=self._retry_delay,
            clock=reactor,
        )

    # -- sending -----------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """
        Send ``data`` now if connected, else queue it for the next connection.

        Raises:
            SendQueueFull: disconnected and ``max_queued`` messages already wait.
            TypeError: ``data`` is neither ``str`` nor ``bytes``.
        """
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        conn = self.connection
        if conn is not None and not conn.closing:
            conn.send(data)
            return
        if len(self.queue) >= self.max_queued:
            raise SendQueueFull(
                f"{self.target.url} is not connected and {self.max_queued} messages already "
                "wait (max_queued); this one was not queued"
            )
        self.queue.append(data)

    def when_connected(self) -> Deferred[ClientConnection]:
        """
        The open connection: now if there is one, else when the next opens.
        Fails with ``ClientError`` if the client is stopped first.
        """
        if self.connection is not None and not self.connection.closing:
            return succeed(self.connection)
        d: Deferred[ClientConnection] = Deferred()
        self._waiting.append(d)
        return d

    # -- the service ---------------------------------------------------------------

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._service.startService()

    def stopService(self) -> Deferred[None]:
        """
        Close the connection (1000, waiting up to ``close_timeout`` for the
        server's answer) and stop reconnecting. Queued messages are dropped
        and ``when_connected()`` Deferreds fail.
        """
        super().stopService()  # type: ignore[no-untyped-call]
        conn = self.connection
        closing: Deferred[Any] = succeed(None)
        if conn is not None and not conn.closing:
            protocol = self._protocol
            conn.close(1000, "client stopping")
            if protocol is not None:
                closing = protocol.closed
        self.queue.clear()
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.errback(ClientError(f"{self.target.url}: the client was stopped"))
        d: Deferred[Any] = closing.addBoth(lambda _: self._service.stopService())
        return d.addBoth(lambda _: None)

    # -- ClientService hooks ---------------------------------------------------------

    _protocol: Any = None

    def _retry_delay(self, attempt: int) -> float:
        delay = self.backoff.next_delay()
        _log.info(
            "WebSocket client: reconnecting to {url} in {delay:.2f} s (attempt {attempt})",
            url=self.target.url,
            delay=delay,
            attempt=attempt,
        )
        return delay

    def _watch(self, protocol: Any) -> None:
        # Not ClientService's prepareConnection: a handshake that fails by
        # losing the connection would reach its state machine twice.
        opened: Deferred[ClientConnection] = protocol.opened
        opened.addCallbacks(lambda conn: self._opened(protocol, conn), self._open_failed)

    def _opened(self, protocol: Any, conn: ClientConnection) -> ClientConnection:
        self.backoff.reset()
        self.connections += 1
        self._protocol = protocol
        self.connection = conn
        protocol.closed.addCallback(self._closed, protocol)
        _log.info("WebSocket client: connected to {url}", url=self.target.url)
        while self.queue and not conn.closing:
            conn.send(self.queue.popleft())
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(conn)
        return conn

    def _open_failed(self, failure: Failure) -> None:
        _log.warn(
            "WebSocket client: {url}: {error}", url=self.target.url, error=str(failure.value)
        )

    def _closed(self, conn: ClientConnection, protocol: Any) -> None:
        if self._protocol is protocol:
            self._protocol = None
            self.connection = None
        if self.running:
            _log.info(
                "WebSocket client: connection to {url} closed ({code} {reason}); reconnecting",
                url=self.target.url,
                code=conn.close_code,
                reason=conn.close_reason,
            )
