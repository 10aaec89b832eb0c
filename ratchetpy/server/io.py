# -*- test-case-name: tests.test_io -*-
"""
The bottom of every stack: TCP (or TLS, or UNIX) connections into components.

``IoServer`` listens on a Twisted endpoint and drives one component with the
raw bytes of each connection: ``on_open(conn)``, ``on_message(conn, data)``
for every read, ``on_close(conn)`` once, and ``on_error(conn, exc)`` for
anything those raise. Without ``HttpServer`` on top that is a raw TCP
application (the tutorial's telnet chat).

A layer above may take the connection over (``WsServer`` does once the
WebSocket handshake is done): from then on the transport delivers bytes
straight to the new protocol, so no per-message work happens here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
)
from twisted.internet.interfaces import IHandshakeListener, IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..exceptions import ComponentError, ConfigurationError
from ..http.interfaces import HttpServerInterface
from ..interfaces import ConnectionInterface, check_component
from ._abort import disarm_deadline
from .backlog import DEFAULT_BACKLOG, server_from_string
from .tls import tls_handshake_completed

__all__ = ["IoServer", "IoConnection"]

_resource_ids = itertools.count(1)

_log = Logger(namespace="ratchetpy.server")


def _host_of(address: Any) -> str:
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
        remote_address: the peer's host (IPv6 without brackets).
        transport: the Twisted transport.
        http_request: set by ``HttpServer`` once a request head is parsed.

    Any other attribute you set is kept here and shared by every layer's
    view of the connection.
    """

    def __init__(self, protocol: _IoProtocol, reactor: Any) -> None:
        self._protocol = protocol
        self._reactor = reactor
        self._closing = False
        self._lost_reason: Failure | None = None
        self.transport = protocol.transport
        self.resource_id: int = next(_resource_ids)
        self.remote_address: str = _host_of(self.transport.getPeer())

    @property
    def closing(self) -> bool:
        """True once ``close()`` was called or the peer went away."""
        return self._closing

    def send(self, data: str | bytes) -> IoConnection:
        """Write ``data`` (``str`` is encoded as UTF-8); dropped once closing."""
        if not self._closing:
            if isinstance(data, str):
                data = data.encode("utf-8")
            self.transport.write(data)
        return self

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush what is buffered, then close (``code`` is for WebSocket views)."""
        if not self._closing:
            self._closing = True
            self.transport.loseConnection()

    def abort(self) -> None:
        """Close at once, dropping anything not yet written."""
        self._closing = True
        self.transport.abortConnection()

    def _take_over(self, protocol: Protocol) -> None:
        """
        Hand the transport's incoming bytes to ``protocol`` from now on.

        Binding ``dataReceived`` on the instance makes the transport call
        the new protocol directly, whatever the transport type (TCP, TLS,
        UNIX). Connection loss still travels down the component chain, so
        every layer sees ``on_close``.
        """
        self._protocol.dataReceived = protocol.dataReceived  # type: ignore[method-assign]
        protocol.makeConnection(self.transport)

    def __repr__(self) -> str:
        return f"<IoConnection #{self.resource_id} {self.remote_address}>"


@implementer(IHandshakeListener)
class _IoProtocol(Protocol):
    """Feeds one connection's events to the component, routing errors."""

    def __init__(self, component: Any, reactor: Any) -> None:
        self.component = component
        self.reactor = reactor
        self.conn: IoConnection | None = None

    def connectionMade(self) -> None:
        self.conn = IoConnection(self, self.reactor)
        self._call(self.component.on_open, self.conn)

    def dataReceived(self, data: bytes) -> None:
        self._call(self.component.on_message, self.conn, data)

    def handshakeCompleted(self) -> None:
        # Twisted's TLS layer calls this; until then a refusal must abort.
        if self.conn is not None:
            tls_handshake_completed(self.conn)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        conn = self.conn
        if conn is None or conn._lost_reason is not None:
            return  # on_close runs once per connection, whatever reports the loss
        conn._closing = True
        conn._lost_reason = reason
        disarm_deadline(conn)
        self._call(self.component.on_close, conn)

    def _call(self, method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except Exception as exc:
            self._error(exc)

    def _error(self, exc: Exception) -> None:
        conn = self.conn
        try:
            self.component.on_error(conn, exc)
        except Exception:
            _log.failure(
                "on_error of {component!r} raised while handling {error!r}; "
                "closing connection #{rid}",
                component=self.component,
                error=exc,
                rid=getattr(conn, "resource_id", None),
            )
            if conn is not None:
                conn.abort()


class _IoFactory(Factory):
    noisy = False

    def __init__(self, component: Any, reactor: Any) -> None:
        self.component = component
        self.reactor = reactor

    def logPrefix(self) -> str:
        # Twisted names the listening port after this ("ratchetpy starting on 8080").
        return "ratchetpy"

    def buildProtocol(self, addr: Any) -> _IoProtocol:
        return _IoProtocol(self.component, self.reactor)


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
    """

    def __init__(
        self,
        component: Any,
        endpoint_or_port: int | str | IStreamServerEndpoint,
        reactor: Any = None,
    ) -> None:
        check_component(
            component, ("on_open", "on_message", "on_close", "on_error"), "IoServer"
        )
        if isinstance(component, HttpServerInterface):
            raise ComponentError(
                f"IoServer hands raw bytes to its component, but {type(component).__name__} "
                "expects a parsed HTTP request: wrap it, IoServer(HttpServer(component), ...)"
            )
        self.app = component
        self.reactor = reactor if reactor is not None else _default_reactor()
        self.endpoint = self._endpoint(endpoint_or_port)
        self.protocol_factory = _IoFactory(component, self.reactor)
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None
        self._stop_reactor_on_failure = False

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

    def stopService(self) -> Deferred[None] | None:
        Service.stopService(self)
        port, self.port, self._listening = self.port, None, None
        if port is not None:
            _log.info("Stopped listening on {address}", address=port.getHost())
            return maybeDeferred(port.stopListening)
        return None

    def run(self) -> None:
        """Listen and run the reactor until it is stopped (Ratchet's ``run()``)."""
        import sys

        from twisted.logger import globalLogBeginner, textFileLogObserver

        if not getattr(globalLogBeginner, "_began_by_ratchetpy", False):
            globalLogBeginner.beginLoggingTo(
                [textFileLogObserver(sys.stdout)], redirectStandardIO=False
            )
            globalLogBeginner._began_by_ratchetpy = True  # type: ignore[attr-defined]
        self._stop_reactor_on_failure = True
        self.reactor.callWhenRunning(self.startService)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stopService)
        self.reactor.run()
