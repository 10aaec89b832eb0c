# -*- test-case-name: tests.server.test_io -*-
"""
The bottom of every stack: TCP (or TLS, or UNIX) connections into components.

``IoServer`` listens on a Twisted endpoint and drives one component with the
raw bytes of each connection: ``on_open(conn)``, ``on_message(conn, data)``
for every read, ``on_close(conn)`` once, and ``on_error(conn, exc)`` for
anything those raise. Without ``HttpServer`` on top that is a raw TCP
application (the tutorial's telnet chat).

A layer above may take the connection over (``WsServer`` does once the
WebSocket handshake is done): from then on the transport delivers bytes
straight to the new protocol, so no per-message work happens here, and the
connection's loss reaches that protocol first, straight from the transport,
before ``on_close`` travels down the component chain (which then serves only
the HTTP-level layers). WebSocket teardown therefore never depends on every
layer in between forwarding ``on_close``.

Stopping the service stops listening and closes every connection: a
WebSocket gets 1001 (Going Away), other connections are closed after what
is buffered is written. Those still open after ``shutdown_timeout`` are
dropped, and the stop finishes within that timeout plus a second whatever
components do (see ``_drain``).

The connection side (``IoConnection``, ``take_over``, ``feed``,
``io_side``, the per-connection protocol) is in
``ratchetpy.server.connection``; its names are importable from here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
)
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import ComponentError, ConfigurationError
from ..interfaces import check_component
from ._drain import close_all
from .backlog import DEFAULT_BACKLOG, server_from_string

# Defined in .connection; re-exported here, where they used to live.
from .connection import IoConnection, _IoFactory, feed, io_side, take_over, taken_over_by
from .connection import _host_of as _host_of
from .connection import _IoProtocol as _IoProtocol
from .connection import stats_of as stats_of

if TYPE_CHECKING:
    from ..hub.stats import ServerStats

__all__ = [
    "IoServer",
    "IoConnection",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "take_over",
    "taken_over_by",
    "feed",
    "io_side",
]

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
"""Seconds a stop waits for connections to close before dropping them."""

_log = Logger(namespace="ratchetpy.server")


def _default_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class IoServer(Service):
    """
    Serve ``component`` on an endpoint; a Twisted service.

    Args:
        component: the outermost component (``HttpServer(...)`` for
            WebSocket, or a plain message component for raw TCP).
        endpoint_or_port: an ``int`` port (all interfaces), a Twisted
            endpoint description such as ``"tcp:8080:interface=127.0.0.1"``
            or ``"ssl:8443:privateKey=key.pem:certKey=cert.pem"``, or an
            ``IStreamServerEndpoint``.
        reactor: the reactor to use; the global one by default.
        shutdown_timeout: seconds a stop waits for connections to close
            (WebSocket clients get 1001) before dropping them.
        stats: the ``ServerStats`` refusals (404, 403, 503, ...) are counted
            in; by default those of the first ``WsServer`` found under
            ``component`` (``App`` passes its hub's).

    Attributes:
        component: the component (``app`` is the same, Ratchet's name).
    """

    def __init__(
        self,
        component: Any,
        endpoint_or_port: int | str | IStreamServerEndpoint,
        reactor: Any = None,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        stats: ServerStats | None = None,
    ) -> None:
        check_component(
            component, ("on_open", "on_message", "on_close", "on_error"), "IoServer"
        )
        if getattr(component, "needs_request", False):
            raise ComponentError(
                f"IoServer hands raw bytes to its component, but {type(component).__name__} "
                "expects a parsed HTTP request: wrap it, IoServer(HttpServer(component), ...)"
            )
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, (int, float))
            or shutdown_timeout < 0
        ):
            raise ConfigurationError(
                f"shutdown_timeout must be a number of seconds >= 0, not {shutdown_timeout!r}"
            )
        self.component = component
        self.reactor = reactor if reactor is not None else _default_reactor()
        self.shutdown_timeout = float(shutdown_timeout)
        self.endpoint = self._endpoint(endpoint_or_port)
        self.protocol_factory = _IoFactory(component, self.reactor, stats)
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None
        self._stop_reactor_on_failure = False

    @property
    def app(self) -> Any:
        """The component (Ratchet's ``$server->app``)."""
        return self.component

    @classmethod
    def factory(
        cls,
        component: Any,
        port: int = 80,
        address: str = "0.0.0.0",
        reactor: Any = None,
    ) -> IoServer:
        """
        Ratchet's ``IoServer::factory``: serve ``component`` on ``address:port``.

        Listens with a backlog of ``DEFAULT_BACKLOG`` (Twisted's is 50).
        """
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be an int from 0 to 65535, not {port!r}")
        reactor = reactor if reactor is not None else _default_reactor()
        endpoint_type = TCP6ServerEndpoint if ":" in address else TCP4ServerEndpoint
        endpoint = endpoint_type(reactor, port, backlog=DEFAULT_BACKLOG, interface=address)
        return cls(component, endpoint, reactor)

    @property
    def loop(self) -> Any:
        """The reactor, under the name Ratchet users know (``$server->loop``)."""
        return self.reactor

    def _endpoint(self, spec: int | str | IStreamServerEndpoint) -> IStreamServerEndpoint:
        if isinstance(spec, bool):
            raise ConfigurationError(f"not an endpoint or port: {spec!r}")
        if isinstance(spec, int):
            if not 0 <= spec <= 65535:
                raise ConfigurationError(f"port must be from 0 to 65535, not {spec}")
            return TCP4ServerEndpoint(self.reactor, spec, backlog=DEFAULT_BACKLOG)
        if isinstance(spec, str):
            try:
                return server_from_string(self.reactor, spec)
            except Exception as exc:
                raise ConfigurationError(
                    f"bad endpoint description {spec!r}: {exc} "
                    "(try 'tcp:8080:interface=127.0.0.1')"
                ) from exc
        if IStreamServerEndpoint.providedBy(spec):
            return spec
        raise ConfigurationError(f"not an endpoint or port: {spec!r}")

    def listen(self) -> Deferred[IListeningPort]:
        """Start listening; fires with the listening port."""
        if self._listening is None:
            d = self.endpoint.listen(self.protocol_factory)

            def listening(port: IListeningPort) -> IListeningPort:
                self.port = port
                _log.info("Listening on {address}", address=port.getHost())
                return port

            self._listening = d.addCallback(listening)
        return self._listening

    def privilegedStartService(self) -> None:
        # Bind here so a privileged port can be bound before twistd drops root.
        Service.privilegedStartService(self)
        self.listen().addErrback(self._listen_failed)

    def startService(self) -> None:
        Service.startService(self)
        if self._listening is None:
            self.listen().addErrback(self._listen_failed)

    def _listen_failed(self, failure: Failure) -> None:
        _log.failure("Cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        self._listening = None
        if self._stop_reactor_on_failure and self.reactor.running:
            self.reactor.stop()

    @property
    def connection_count(self) -> int:
        """Connections open now (raw, HTTP and WebSocket)."""
        return len(self.protocol_factory.open)

    def stop_listening(self) -> Deferred[None]:
        """Stop accepting connections; open ones are left alone."""
        port, self.port, self._listening = self.port, None, None
        if port is None:
            return succeed(None)
        _log.info("Stopped listening on {address}", address=port.getHost())
        # stopListening returns a Deferred or None, a union no overload of
        # maybeDeferred accepts; maybeDeferred itself takes either.
        stopped: Deferred[None] = maybeDeferred(port.stopListening)  # type: ignore[call-overload]
        return stopped

    def close_connections(
        self,
        code: int = 1001,
        reason: str = "Server shutting down",
        timeout: float | None = None,
    ) -> Deferred[int]:
        """
        Close every open connection: WebSockets with ``code`` and ``reason``,
        others once their buffered bytes are written. Those still open after
        ``timeout`` seconds (default ``shutdown_timeout``) are dropped.

        Returns:
            A Deferred that fires, with the number dropped, once every
            connection is closed; at the latest ``timeout`` plus one second
            from now, whatever components and peers do.
        """
        timeout = self.shutdown_timeout if timeout is None else timeout
        count = self.connection_count
        if count:
            _log.info(
                "Closing {count} connection(s) (WebSocket: {code}), waiting up to {timeout} s",
                count=count,
                code=code,
                timeout=timeout,
            )
        return close_all(
            self.protocol_factory.open,
            self.reactor,
            lambda io: io.going_away(code, reason),
            lambda io: io.abort(),
            timeout,
        )

    def drop_connections(self) -> None:
        """Drop every open connection now, without a closing handshake."""
        for io in self.protocol_factory.open:
            io.abort()

    def stopService(self) -> Deferred[None]:
        """Stop listening, then close every connection (see ``close_connections``)."""
        Service.stopService(self)
        stopped = self.stop_listening()
        closed = self.close_connections()
        waits: list[Deferred[Any]] = [stopped, closed]  # results unused: any type
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    def run(self) -> None:
        """
        Listen and run the reactor until it is stopped (Ratchet's ``run()``).

        SIGTERM or Ctrl-C stop gracefully: WebSocket clients get 1001 and
        ``shutdown_timeout`` seconds to answer; a second signal drops them
        at once.
        """
        from ._run import run_service

        self._stop_reactor_on_failure = True
        run_service(self, self.reactor, self.drop_connections)
