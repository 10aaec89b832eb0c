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
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
)
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IListeningPort,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .._handlers import HandlerHostBase, Serial, call_handler
from ..connection import AbstractConnectionDecorator
from ..exceptions import ComponentError, ConfigurationError
from ..interfaces import ConnectionInterface, check_component
from ._drain import OpenSet, close_all
from .backlog import DEFAULT_BACKLOG, server_from_string
from .ids import new_connection_id

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress

    from ..hub.stats import ServerStats
    from ._transport import IStreamTransport

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

_resource_ids = itertools.count(1)

_log = Logger(namespace="ratchetpy.server")


def _host_of(address: IAddress) -> str:
    host = getattr(address, "host", None)
    if host is not None:
        return str(host).strip("[]")
    name = getattr(address, "name", None)
    return "unix:" + (name.decode() if isinstance(name, bytes) else str(name or ""))


class IoConnection(ConnectionInterface):
    """
    A raw connection, as ``IoServer`` hands it to its component.

    Attributes:
        resource_id: an ``int`` unique in this process.
        id: a ``str`` unique across processes and hosts and unguessable
            (see ``ratchetpy.server.ids``); hand it to a backend to reach
            this connection later.
        remote_address: the peer's host (IPv6 without brackets).
        transport: the Twisted transport.
        http_request: set by ``HttpServer`` once a request head is parsed.

    Any other attribute you set is kept here and shared by every layer's
    view of the connection. Framework layers keep their own per-connection
    state elsewhere, so no name you set can break them.
    """

    # The framework's link to the connection lives in a slot with a mangled
    # name, outside the attribute bag (``__dict__``) that users write to.
    __slots__ = ("__io",)

    def __init__(self, io: _IoProtocol) -> None:
        self.__io = io
        self.transport: IStreamTransport = io.transport
        self.resource_id: int = next(_resource_ids)
        self.id: str = new_connection_id()
        self.remote_address: str = _host_of(self.transport.getPeer())

    @property
    def reactor(self) -> Any:
        """The reactor this connection runs on (for timers: ``conn.reactor.callLater``)."""
        return self.__io.reactor

    @property
    def closing(self) -> bool:
        """True once ``close()`` was called or the peer went away."""
        return self.__io.closing

    def send(self, data: str | bytes) -> IoConnection:
        """Write ``data`` (``str`` is encoded as UTF-8); dropped once closing."""
        io = self.__io
        if not io.closing:
            if isinstance(data, str):
                data = data.encode("utf-8")
            io.transport.write(data)
        return self

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush what is buffered, then close (``code`` is for WebSocket views)."""
        io = self.__io
        if not io.closing:
            io.closing = True
            io.transport.loseConnection()

    def abort(self) -> None:
        """Close at once, dropping anything not yet written."""
        io = self.__io
        io.closing = True
        io.transport.abortConnection()

    def __repr__(self) -> str:
        return f"<IoConnection #{self.resource_id} {self.remote_address}>"


def _io_of(conn: IoConnection) -> _IoProtocol:
    # The mangled slot, read from outside the class (typed by the annotation).
    io: _IoProtocol = conn._IoConnection__io
    return io


def take_over(conn: IoConnection, protocol: Protocol) -> None:
    """
    Hand ``conn``'s transport to ``protocol`` (``WsServer`` does this once
    the handshake is accepted): from now on the transport's bytes go to
    ``protocol.dataReceived`` and its loss to ``protocol.connectionLost``,
    before the component chain's ``on_close``. If ``protocol`` has
    ``going_away(code, reason)``, a server stop calls it.
    """
    _io_of(conn).take_over(protocol)


def feed(conn: IoConnection, data: bytes) -> None:
    """
    Deliver ``data`` as if just read: to the protocol that took ``conn``
    over, else to the component chain (``HttpServer`` passes bytes that
    came in the same read as the request head this way).
    """
    _io_of(conn).dataReceived(data)


def taken_over_by(conn: object) -> Protocol | None:
    """The protocol that took ``conn`` over (see ``take_over``), or ``None``."""
    if not isinstance(conn, IoConnection):
        return None
    return _io_of(conn).taken_over


def io_side(conn: object) -> _IoProtocol | None:
    """
    The I/O side of ``conn`` (or of the connection a view wraps), where the
    framework keeps per-connection transport state; ``None`` for anything
    that is not served by ``IoServer`` (a test double).
    """
    if isinstance(conn, AbstractConnectionDecorator):
        conn = conn.get_root()
    return _io_of(conn) if isinstance(conn, IoConnection) else None


@implementer(IHandshakeListener)
class _IoProtocol(HandlerHostBase, Protocol):
    """Feeds one connection's events to the component, routing errors."""

    # Narrower than Protocol's ``ITransport | None``: Twisted's makeConnection
    # sets it before connectionMade (where our code starts) and never clears it.
    transport: IStreamTransport
    _serial: Serial | None = None

    def __init__(self, component: Any, reactor: Any, open_set: OpenSet[_IoProtocol] | None = None) -> None:
        self.component = component
        self.reactor = reactor
        self.conn: IoConnection | None = None
        self.closing = False
        self.lost_reason: Failure | None = None
        self.taken_over: Protocol | None = None
        self._open_set = open_set
        self.tls_handshake_done = False
        self.abort_deadline: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.conn = IoConnection(self)
        if self._open_set is not None:
            self._open_set.add(self)
        call_handler(self, self.component.on_open, self.conn)

    def dataReceived(self, data: bytes) -> None:
        call_handler(self, self.component.on_message, self.conn, data)

    def take_over(self, protocol: Protocol) -> None:
        self.taken_over = protocol
        # Bound on the instance, the transport calls the new protocol
        # directly, whatever the transport type (TCP, TLS, UNIX).
        self.dataReceived = protocol.dataReceived  # type: ignore[method-assign]
        protocol.makeConnection(self.transport)

    def handshakeCompleted(self) -> None:
        # Twisted's TLS layer calls this (IHandshakeListener); until then a
        # refusal must abort (see ratchetpy.server.tls.tls_handshake_pending).
        self.tls_handshake_done = True

    def disarm_deadline(self) -> None:
        """Cancel the abort a refusal armed (see ``_abort.close_with_deadline``)."""
        call, self.abort_deadline = self.abort_deadline, None
        if call is not None and call.active():
            call.cancel()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        conn = self.conn
        if conn is None or self.lost_reason is not None:
            return  # on_close runs once per connection, whatever reports the loss
        self.closing = True
        self.lost_reason = reason
        self.disarm_deadline()
        try:
            protocol = self.taken_over
            if protocol is not None:
                try:
                    protocol.connectionLost(reason)
                except Exception:  # noqa: BLE001 - logged; on_close must still run
                    _log.failure(
                        "Tearing down connection #{rid} raised", rid=conn.resource_id
                    )
            call_handler(self, self.component.on_close, conn)
        finally:
            if self._open_set is not None:
                self._open_set.discard(self)
            if "_lost_hooks" in self.__dict__:
                from .._lost_hooks import run_lost_hooks

                run_lost_hooks(self)

    def going_away(self, code: int, reason: str) -> None:
        """Close for a server stop: 1001 over WebSocket, else after flushing."""
        protocol = self.taken_over
        going_away = getattr(protocol, "going_away", None)
        if going_away is not None:
            going_away(code, reason)
        elif self.transport is not None:
            self.closing = True
            self.transport.loseConnection()

    def abort(self) -> None:
        if self.transport is not None:
            self.closing = True
            self.transport.abortConnection()

    # -- ratchetpy._handlers.HandlerHostBase -------------------------------

    def _handler_parts(self) -> tuple[Any, Any, Any]:
        return self.component, self.conn, self.reactor

    def _handler_close(self) -> None:
        self.abort()

class _IoFactory(Factory):
    noisy = False

    def __init__(self, component: Any, reactor: Any, stats: ServerStats | None = None) -> None:
        self.component = component
        self.reactor = reactor
        self.open: OpenSet[_IoProtocol] = OpenSet()
        self._stats = stats

    @property
    def stats(self) -> ServerStats | None:
        """Where refusals are counted (see ``IoServer``)."""
        if self._stats is None:
            self._stats = _find_stats(self.component)
        return self._stats

    def logPrefix(self) -> str:
        # Twisted names the listening port after this ("ratchetpy starting on 8080").
        return "ratchetpy"

    def buildProtocol(self, addr: IAddress | None) -> _IoProtocol:
        protocol = _IoProtocol(self.component, self.reactor, self.open)
        protocol.factory = self
        return protocol


def _find_stats(component: Any) -> ServerStats | None:
    # Follow .component links down (HttpServer → Router? → WsServer).
    for _ in range(16):
        hub = getattr(component, "hub", None)
        counters = getattr(hub, "counters", None)
        if counters is not None:
            return counters  # type: ignore[no-any-return]
        component = getattr(component, "component", None)
        if component is None:
            return None
    return None


def stats_of(conn: object) -> ServerStats | None:
    """The ``ServerStats`` of the server ``conn`` came through, if any."""
    io = io_side(conn)
    factory = getattr(io, "factory", None)
    return factory.stats if isinstance(factory, _IoFactory) else None


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
