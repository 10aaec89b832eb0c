# -*- test-case-name: tests.websocket.test_websocket -*-
"""
``WsServer``: the WebSocket layer, wrapping your component.

Once the HTTP layers below have accepted a request, ``WsServer`` checks the
handshake (Ratchet's statuses: 400/405/426/505), then hands the connection to
an Autobahn protocol which completes the handshake and carries every frame.
From then on bytes go from the transport to Autobahn directly, and so does
the connection's loss (see ``ratchetpy.server.io.take_over``): WebSocket
teardown never depends on the layers below forwarding ``on_close``.

``WsServer`` keeps no per-connection state of its own: the protocol that
took the connection over is reachable from the connection's I/O side, and
the open protocols are in ``_open`` for a graceful stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import ConfigurationError
from ..http.interfaces import HttpServerInterface
from ..http.request import Request
from ..http.response import close_response
from ..interfaces import ConnectionInterface, check_component
from ..server._drain import OpenSet, close_all
from ..server.io import IoConnection, feed, take_over, taken_over_by
from ._engine import build_factory
from ._selfcheck import fastpath_available
from .admission import DEFAULT_RETRY_AFTER, Admission, Refusal
from .compression import deflate_acceptor
from .connection import WsConnection
from .flow import OVERFLOW_POLICIES
from .handshake import autobahn_head, negotiate
from .idle import IdleSweeper
from .protocol import FastWsServerProtocol, WsServerProtocol

if TYPE_CHECKING:
    from ..hub import Hub

__all__ = ["WsServer", "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_MAX_BUFFERED_BYTES"]

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
"""Largest message (and frame) accepted by default; bigger ones close with 1009."""

DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024
"""Outgoing bytes a connection may have queued before ``overflow_policy`` applies."""

_log = Logger(namespace="ratchetpy.websocket")


def _limit(name: str, value: int | None) -> int:
    if value is None:
        return 0  # Autobahn's "unlimited"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int or None, not {value!r}")
    return value


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


class WsServer(HttpServerInterface):
    """
    Serve ``component`` over WebSocket.

    Args:
        component: a message component; if it has ``get_sub_protocols()``
            (``WsServerInterface``) those subprotocols are negotiated.
        max_message_size: largest incoming message in bytes, after
            reassembly (``None``: unlimited); over it the peer gets 1009.
        max_frame_size: largest incoming frame (default: the message limit).
        max_message_fragments: most frames one incoming message may arrive
            in; over it the peer gets 1009. Default: ``max_message_size //
            64``, at least 1024 (16384 at 1 MiB); no limit when
            ``max_message_size`` is ``None``.
        open_timeout: seconds for the opening handshake to complete.
        close_timeout: seconds to wait for the peer's close frame after ours.
        strict_sub_protocols: refuse (426) a client whose offered
            subprotocols do not match, as Ratchet does.
        log_connections: log each connection's open and close at info level.
        fast_path: use the fast data path for ordinary frames (see
            ``ratchetpy.websocket._fastpath``); ``RATCHETPY_FASTPATH=0`` in
            the environment turns it off for every server.
        max_buffered_bytes: outgoing bytes one connection may have queued
            (client not reading) before ``overflow_policy`` applies
            (``None``: unlimited). See ``ratchetpy.websocket.flow``.
        overflow_policy: ``"close"`` (with ``overflow_close_code``),
            ``"drop"`` (that client's messages until it drains) or
            ``"notify"`` (only the component's ``on_backpressure``).
        overflow_close_code: the close code for the ``"close"`` policy.
        compression: ``None`` (default: decline permessage-deflate, as
            Ratchet does) or ``"deflate"`` to accept it with bounded memory
            (window bits <= ``deflate_window_bits``, memLevel
            ``deflate_mem_level``). Compressed connections leave the fast path;
            ``max_message_size`` applies after inflation.
        hub: the ``Hub`` this server counts its connections in and, with
            ``register``, makes them reachable through (``conn.hub``). By
            default a hub of its own; ``App`` gives all its routes one.
        register: register every connection with the hub on open, so code
            anywhere can ``push`` to it by ``conn.id``. By default, what the
            component's ``register_with_hub`` attribute says (the built-in
            chat sets it), else ``False``.
        max_connections: most WebSocket connections at once (open or in
            their handshake); a request over it gets ``503`` with
            ``Retry-After``. ``None`` (default): no limit. See
            ``ratchetpy.websocket.admission``.
        max_connections_per_ip: most at once from one IP address (IPv4-mapped
            IPv6 counts as IPv4; behind a proxy, the proxy's); ``None``
            (default): no limit.
        retry_after: the ``Retry-After`` seconds of those 503s.
        admission: an ``Admission`` to count in, shared with other servers
            (``App`` gives its routes one), instead of the limits above.
        idle_timeout: close a client with 1001 once it has sent no message
            for this many seconds (``None``, default: never). See
            ``ratchetpy.websocket.idle``.
        idle_counts_pongs: count pongs (answers to keepalive pings) as
            activity; by default only messages count, since browsers pong
            by themselves.
    """

    def __init__(
        self,
        component: Any,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_message_fragments: int | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 5.0,
        strict_sub_protocols: bool = True,
        log_connections: bool = True,
        fast_path: bool = True,
        max_buffered_bytes: int | None = DEFAULT_MAX_BUFFERED_BYTES,
        overflow_policy: str = "close",
        overflow_close_code: int = 1008,
        compression: str | None = None,
        deflate_window_bits: int = 12,
        deflate_mem_level: int = 4,
        hub: Hub | None = None,
        register: bool | None = None,
        max_connections: int | None = None,
        max_connections_per_ip: int | None = None,
        retry_after: int = DEFAULT_RETRY_AFTER,
        admission: Admission | None = None,
        idle_timeout: float | None = None,
        idle_counts_pongs: bool = False,
    ) -> None:
        check_component(
            component, ("on_open", "on_message", "on_close", "on_error"), "WsServer"
        )
        self.component = component
        get_sub_protocols = getattr(component, "get_sub_protocols", None)
        self.sub_protocols: list[str] = list(get_sub_protocols()) if get_sub_protocols else []
        self.strict_sub_protocols = bool(strict_sub_protocols)
        self.log_connections = log_connections
        message = _limit("max_message_size", max_message_size)
        frame = message if max_frame_size is None else _limit("max_frame_size", max_frame_size)
        self.max_message_fragments: int | None = (
            None
            if max_message_fragments is None
            else _limit("max_message_fragments", max_message_fragments)
        )
        self._options: dict[str, Any] = {
            "maxMessagePayloadSize": message,
            "maxFramePayloadSize": frame,
            "openHandshakeTimeout": _seconds("open_timeout", open_timeout),
            "closeHandshakeTimeout": _seconds("close_timeout", close_timeout),
            # Ratchet compatibility: echo the peer's close code and reason, and
            # fail with a close frame (code + reason) rather than a bare drop.
            "echoCloseCodeReason": True,
            "failByDrop": False,
            "webStatus": False,
            "utf8validateIncoming": True,
        }
        self.fast_path = bool(fast_path)
        self.max_buffered_bytes: int | None = (
            None if max_buffered_bytes is None else _limit("max_buffered_bytes", max_buffered_bytes)
        )
        if overflow_policy not in OVERFLOW_POLICIES:
            raise ConfigurationError(
                f"overflow_policy must be one of {OVERFLOW_POLICIES}, not {overflow_policy!r}"
            )
        self.overflow_policy = overflow_policy
        if overflow_close_code not in (1008, 1011, 1013) and not 4000 <= overflow_close_code <= 4999:
            raise ConfigurationError(
                f"overflow_close_code must be 1008, 1011, 1013 or 4000-4999, not {overflow_close_code!r}"
            )
        self.overflow_close_code = overflow_close_code
        self._flow_hooks = any(
            hasattr(component, name) for name in ("on_backpressure", "on_drain")
        )
        if compression not in (None, "deflate"):
            raise ConfigurationError(
                f"compression must be None or 'deflate', not {compression!r}"
            )
        self.compression = compression
        if compression == "deflate":
            self._options["perMessageCompressionAccept"] = deflate_acceptor(
                deflate_window_bits, deflate_mem_level
            )
        from ..hub import Hub

        self._hub_given = hub is not None
        self.hub: Hub = hub if hub is not None else Hub()
        self._offer_hub()
        if register is None:
            register = bool(getattr(component, "register_with_hub", False))
        self.register = bool(register)
        if admission is not None and (max_connections, max_connections_per_ip) != (None, None):
            raise ConfigurationError(
                "give WsServer either admission= or max_connections/max_connections_per_ip, not both"
            )
        self._admission_given = admission is not None
        self.admission: Admission = (
            admission
            if admission is not None
            else Admission(max_connections, max_connections_per_ip, retry_after=retry_after)
        )
        self.idle_timeout: float | None = (
            None if idle_timeout is None else _seconds("idle_timeout", idle_timeout)
        )
        self.idle_counts_pongs = bool(idle_counts_pongs)
        self._idle: IdleSweeper | None = (
            None
            if self.idle_timeout is None
            else IdleSweeper(self.idle_timeout, lambda: self._open, lambda: self._reactor)
        )
        self._factory: Any = None
        self._reactor: Any = None
        self._protocol_class: Any = None
        self._trimmed = False
        # Open connections (handshake done, on_close not yet run), for
        # graceful shutdown.
        self._open: OpenSet[WsServerProtocol] = OpenSet()

    # -- configuration (Ratchet names) -------------------------------------

    def set_strict_sub_protocol_check(self, enable: bool) -> WsServer:
        """Ratchet's ``setStrictSubProtocolCheck``."""
        self.strict_sub_protocols = bool(enable)
        return self

    def enable_keep_alive(self, loop: Any = None, interval: float = 30) -> WsServer:
        """
        Ping every connection each ``interval`` seconds and close those
        whose pong has not come back by the next ping.

        Accepts Ratchet's ``enableKeepAlive($loop, 30)`` shape as well as
        ``enable_keep_alive(30)`` and ``enable_keep_alive(interval=30)``.
        ``interval=0`` turns keepalive off.
        """
        if isinstance(loop, (int, float)) and not isinstance(loop, bool):
            interval = loop
        if interval == 0:
            self._set_options(autoPingInterval=0, autoPingTimeout=0)
        else:
            seconds = _seconds("interval", interval)
            self._set_options(autoPingInterval=seconds, autoPingTimeout=seconds)
        return self

    @property
    def keep_alive_interval(self) -> float:
        """Seconds between keepalive pings; 0 when off."""
        return float(self._options.get("autoPingInterval", 0))

    def _set_options(self, **options: Any) -> None:
        self._options.update(options)
        if self._factory is not None:
            self._factory.setProtocolOptions(**options)
            if self._trimmed:
                from ._trim import refresh_protocol_class

                refresh_protocol_class(self._protocol_class, self._factory)

    def _factory_for(self, reactor: Any) -> Any:
        if self._factory is None or self._reactor is not reactor:
            self._factory = build_factory(reactor, self._options)
            self._reactor = reactor
            self._protocol_class = self._build_protocol_class(self._factory)
        return self._factory

    def _build_protocol_class(self, factory: Any) -> type[WsServerProtocol]:
        # The self-check runs here, on the first connection of the first
        # WsServer, never at import.
        if fastpath_available():
            from ._trim import bind_protocol_class

            # Options and initial flags live on a per-server class, so each
            # open connection need not keep its own copies (memory per idle
            # connection); see _trim.trim_after_open. With fast_path=False
            # the class still carries the hostile-peer defences.
            cls: type[WsServerProtocol] = bind_protocol_class(FastWsServerProtocol, factory)
            cls._trim_wanted = self.fast_path  # type: ignore[attr-defined]
            cls._max_message_fragments = self.max_message_fragments  # type: ignore[attr-defined]
            cls._seconds = staticmethod(self._reactor.seconds)  # type: ignore[method-assign]
            self._trimmed = True
            return cls
        # The self-check failed: stock Autobahn, a plain subclass with no
        # private name on the data path (and Autobahn's own handling of
        # hostile peers).
        self._trimmed = False
        return type(
            WsServerProtocol.__name__,
            (WsServerProtocol,),
            {
                "__module__": WsServerProtocol.__module__,
                "factory": factory,
                "_seconds": staticmethod(self._reactor.seconds),
            },
        )

    def use_hub(self, hub: Hub) -> None:
        """
        Count and register in ``hub`` from now on, unless a hub was given
        to the constructor (``App`` calls this for the routes it serves).
        """
        if not self._hub_given:
            self.hub = hub
            self._hub_given = True
            self._offer_hub()

    def _offer_hub(self) -> None:
        # A component that spans processes through the hub (WampServer's
        # topics) learns which one, before any connection opens.
        use_hub = getattr(self.component, "use_hub", None)
        if callable(use_hub):
            use_hub(self.hub)

    def use_admission(self, admission: Admission) -> None:
        """
        Count in ``admission`` (an ``App``'s, shared by its routes) from now
        on, unless one was given to the constructor. Limits of this server's
        own apply on top: its ``Admission`` gets ``admission`` as parent.
        """
        if self._admission_given or admission is self.admission:
            return
        self._admission_given = True
        if self.admission.limited:
            self.admission.parent = admission
        else:
            self.admission = admission

    # -- open connections and graceful shutdown ------------------------------

    @property
    def connections(self) -> list[WsConnection]:
        """The open connections (handshake done, ``on_close`` not yet called)."""
        return [protocol.conn for protocol in self._open]

    def _track_open(self, protocol: WsServerProtocol) -> None:
        self._open.add(protocol)
        if self._idle is not None:
            self._idle.opened(protocol)

    def _track_close(self, protocol: WsServerProtocol) -> None:
        self._open.discard(protocol)
        if self._idle is not None:
            self._idle.closed(len(self._open))

    def close_all(
        self,
        code: int = 1001,
        reason: str = "Server shutting down",
        timeout: float | None = 10.0,
    ) -> Deferred[int]:
        """
        Close every open connection with ``code`` (1001 Going Away) and wait.

        Each peer gets a close frame; ``on_close`` runs for each connection
        as its closing handshake completes. Connections still open after
        ``timeout`` seconds are dropped (their ``on_close`` still runs).

        Returns:
            A Deferred that fires once no connection is left, with the
            number of connections that had to be dropped; at the latest
            ``timeout`` plus one second from now, whatever components and
            peers do.
        """
        if len(self._open):
            _log.info(
                "Closing {count} WebSocket connection(s) with {code}",
                count=len(self._open),
                code=code,
            )
        return close_all(
            self._open,
            self._reactor,
            lambda protocol: protocol.close_with(code, reason),
            _abort,
            timeout,
            "WebSocket connection(s)",
        )

    # -- HttpServerInterface -----------------------------------------------

    def on_open(self, conn: ConnectionInterface, request: Request) -> None:
        result = negotiate(request, self.sub_protocols, self.strict_sub_protocols)
        if not result.accepted:
            _log.info(
                "Refused WebSocket handshake from {peer} with {status}: {detail}",
                peer=conn.remote_address,
                status=result.status,
                detail=result.detail,
            )
            close_response(conn, result.status, result.headers, result.reason)
            return
        if not isinstance(conn, IoConnection):
            raise TypeError(
                f"WsServer takes over the transport of an IoConnection, not {type(conn).__name__}: "
                "serve it with IoServer(HttpServer(WsServer(...)))"
            )
        slot = None
        if self.admission.limited:
            outcome = self.admission.admit(conn.remote_address, conn.reactor)
            if isinstance(outcome, Refusal):
                # Logged once per burst by the Admission, not per client.
                close_response(conn, 503, outcome.headers, refusal=outcome.reason)
                return
            slot = outcome
        try:
            conn.http_request = request
            self._factory_for(conn.reactor)
            protocol = self._protocol_class(self, conn, result.sub_protocol)
            if slot is not None:
                # Released by the protocol once the connection is gone.
                protocol._slot = slot
            take_over(conn, protocol)
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        # Autobahn completes the handshake from a head rebuilt from our parse
        # (never the raw bytes, which its parser could read differently).
        protocol.dataReceived(
            autobahn_head(request, result.sub_protocol, extensions=self.compression is not None)
        )
        # Save memory on long-lived connections; lookups rebuild the index.
        request.headers._compact()

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        # Once a connection is taken over its bytes go to the protocol
        # directly; only a layer that calls on_message itself comes here.
        if isinstance(msg, bytes) and taken_over_by(conn) is not None:
            feed(conn, msg)  # type: ignore[arg-type]

    def on_close(self, conn: ConnectionInterface) -> None:
        # Nothing to do: the protocol was told of the loss by the transport
        # itself, before on_close came down the chain.
        pass

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        protocol = taken_over_by(conn)
        if isinstance(protocol, WsServerProtocol) and protocol._opened:
            protocol._handler_error(exc)
        elif protocol is None:
            _log.failure(
                "Error during the WebSocket handshake of {peer}",
                Failure(exc),
                peer=conn.remote_address,
            )
            close_response(conn, 500)
        else:
            conn.abort()


def _abort(protocol: WsServerProtocol) -> None:
    transport = protocol.transport
    if transport is not None:
        transport.abortConnection()
