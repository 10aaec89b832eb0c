# -*- test-case-name: tests.server.test_io,tests.test_connection -*-
"""
One connection served by ``IoServer``: ``IoConnection`` (what components
get), the protocol that feeds its events to the component (``_IoProtocol``)
and its factory, and the framework's ways in.

``take_over(conn, protocol)`` hands the transport to a new protocol (as
``WsServer`` does after the handshake): from then on the transport delivers
bytes straight to it, and the connection's loss reaches it first, before
``on_close`` travels down the component chain. ``feed`` delivers bytes as
if just read, ``taken_over_by`` names the protocol that took over,
``io_side`` finds the I/O side of a connection (or of a view on it), and
``stats_of`` the ``ServerStats`` of the server it came through.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IHandshakeListener
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .._handlers import HandlerHostBase, Serial, call_handler
from ..connection import AbstractConnectionDecorator
from ..interfaces import ConnectionInterface
from ._drain import OpenSet
from .ids import new_connection_id

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress

    from ..hub.stats import ServerStats
    from ._transport import IStreamTransport

__all__ = [
    "IoConnection",
    "take_over",
    "taken_over_by",
    "feed",
    "io_side",
    "stats_of",
]

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

