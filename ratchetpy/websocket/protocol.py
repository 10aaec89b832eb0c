# -*- test-case-name: tests.websocket.test_websocket -*-
"""
The Autobahn protocol that carries one WebSocket connection to a component.

Autobahn parses frames, answers pings, runs the closing handshake and
enforces limits; this subclass turns its callbacks into Ratchet's
``on_open/on_message/on_close/on_error`` and routes exceptions (see
``ratchetpy._handlers`` for async handlers and the exception policy).

Two classes: ``WsServerProtocol`` uses only Autobahn's documented data
path; ``FastWsServerProtocol`` adds the fast path. ``WsServer`` picks one
from the self-check (``_selfcheck.fastpath_available``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._handlers import HandlerHostBase, Serial, call_handler, handle_result
from .._lost_hooks import run_lost_hooks
from ..http.response import POWERED_BY
from ..hub.stats import Traffic
from ._engine import STATE_OPEN, WebSocketServerProtocol
from ._fastpath import FastPathMixin
from ._hardening import HardeningMixin
from .connection import WsConnection
from .flow import SendBufferWatch

if TYPE_CHECKING:
    from autobahn.websocket.types import ConnectionRequest

    from ..server._transport import IStreamTransport
    from ..server.io import IoConnection
    from .admission import Slot
    from .server import WsServer

__all__ = ["WsServerProtocol", "FastWsServerProtocol"]

_log = Logger(namespace="ratchetpy.websocket")


def _truncate_utf8(text: str, limit: int = 123) -> bytes:
    # A close frame's payload is at most 125 bytes: 2 for the code, 123 left.
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


# ignore[misc]: see FastWsServerProtocol below (Autobahn's own bases clash).
class WsServerProtocol(HandlerHostBase, WebSocketServerProtocol):  # type: ignore[misc]
    """
    One WebSocket connection, built by ``WsServer`` once the HTTP layers
    have accepted the request.
    """

    # Narrower than Protocol's ``ITransport | None``: a TCP, TLS or UNIX
    # transport, once take_over connected it.
    transport: IStreamTransport | None

    # Class defaults, so connections that never need them cost no slot.
    _serial: Serial | None = None
    _flow: SendBufferWatch | None = None
    _fastpath_wanted = False
    _slot: Slot | None = None
    last_activity: float = 0.0
    """Reactor time of the open and then of each message received (and of
    each pong, with ``WsServer(idle_counts_pongs=True)``)."""
    # Traffic counters of the stock path (the fast class reads Autobahn's).
    _rx_messages = 0
    _rx_bytes = 0
    _tx_messages = 0
    _tx_bytes = 0

    def __init__(
        self, server: WsServer, io_conn: IoConnection, sub_protocol: str | None
    ) -> None:
        super().__init__()
        self.factory = server._factory
        self._server = server
        self._component = server.component
        self._sub_protocol = sub_protocol
        self._opened = False
        self._fastpath_wanted = server.fast_path
        self.conn: WsConnection = WsConnection(io_conn, self)

    # -- Autobahn callbacks ------------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> tuple[str | None, dict[str, str]]:
        return self._sub_protocol, {"X-Powered-By": POWERED_BY[0]}

    def onOpen(self) -> None:
        self._opened = True
        server = self._server
        self.last_activity = server._reactor.seconds()
        server._track_open(self)
        server.hub.counters.connection_opened(self)
        if server.register:
            server.hub.register(self.conn)
        if self._server.log_connections:
            _log.info(
                "WebSocket #{rid} from {peer} opened {path}",
                rid=self.conn.resource_id,
                peer=self.conn.remote_address,
                path=self.conn.http_request.path,
            )
        call_handler(self, self._component.on_open, self.conn)

    def dataReceived(self, data: bytes) -> None:
        self._rx_bytes += len(data)
        super().dataReceived(data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._rx_messages += 1
        self._deliver(payload if isBinary else payload.decode("utf-8"))

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        self._tx_bytes += len(data)
        super().sendData(data, sync, chopsize)

    def traffic(self) -> Traffic:
        """Messages and bytes in and out so far (bytes on the wire)."""
        return Traffic(self._rx_messages, self._rx_bytes, self._tx_messages, self._tx_bytes)

    def _seconds(self) -> float:
        # The reactor's clock. WsServer replaces this on its per-server class
        # with the reactor's own bound method: one call per message, no
        # attribute chain (see WsServer._build_protocol_class).
        return float(self._server._reactor.seconds())

    def _deliver(self, msg: str | bytes) -> None:
        # One message to the component, from the fast path or from Autobahn.
        self.last_activity = self._seconds()
        if self._serial is not None:
            call_handler(self, self._component.on_message, self.conn, msg)
            return
        try:
            result = self._component.on_message(self.conn, msg)
        except Exception as exc:  # noqa: BLE001 - goes to on_error (ratchetpy._handlers)
            self._handler_error(exc)
            return
        except BaseException as exc:  # noqa: BLE001 - see ratchetpy._handlers
            self._handler_fatal(exc)
            return
        if result is not None:
            handle_result(self, result)

    def onPong(self, payload: bytes) -> None:
        if self._server.idle_counts_pongs:
            self.last_activity = self._server._reactor.seconds()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        try:
            super().connectionLost(reason)
        finally:
            # However the connection ended (closing handshake, drop, a
            # handshake that never completed), its admission place is free.
            slot = self._slot
            if slot is not None:
                self._slot = None
                slot.release()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        # Autobahn cancels its other timers when TCP is lost, but not this one;
        # left alone it would keep the protocol alive until close_timeout.
        timer = getattr(self, "closeHandshakeTimeoutCall", None)
        if timer is not None:
            if timer.active():
                timer.cancel()
            self.closeHandshakeTimeoutCall = None
        if not self._opened:
            return
        self._opened = False
        conn = self.conn
        conn.close_code = code if wasClean else 1006
        if conn.close_code is None:
            conn.close_code = 1005
        conn.close_reason = reason if wasClean else ""
        if self._server.log_connections:
            _log.info(
                "WebSocket #{rid} from {peer} closed {path} ({code})",
                rid=conn.resource_id,
                peer=conn.remote_address,
                path=self.conn.http_request.path,
                code=conn.close_code,
            )
        flow = self._flow
        if flow is not None:
            flow.cancel()
        self._server.hub.counters.connection_closed(self, conn.close_code)
        try:
            call_handler(self, self._component.on_close, conn)
        finally:
            # After on_close (which may still read the hub), so a shutdown
            # waiting on this sees it finished.
            run_lost_hooks(self)
            self._server._track_close(self)

    # -- used by WsConnection and WsServer ---------------------------------

    def send_message(self, data: str | bytes) -> None:
        """Send ``data`` as one text or binary message, if still open."""
        if self.state != STATE_OPEN:
            return
        if isinstance(data, str):
            payload, opcode = data.encode("utf-8"), 1
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload, opcode = bytes(data), 2
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        flow = self._flow
        if flow is not None and flow.should_drop():
            return
        if self._fast_send(payload, opcode):
            self._tx_messages += 1
            return
        self._tx_messages += 1
        if not self.websocket_extensions_in_use:
            # sendMessage would also apply the *incoming* size limit to what
            # the application sends; a server's own messages are not limited.
            self.sendFrame(opcode=opcode, payload=payload)
        else:
            # Autobahn leaves sendMessage unannotated.
            self.sendMessage(payload, opcode == 2)  # type: ignore[no-untyped-call]
        self._after_buffered(len(payload))

    def send_frame_bytes(self, frame: bytes) -> None:
        """Write an already encoded frame (see ``broadcast``)."""
        flow = self._flow
        if flow is not None and flow.should_drop():
            return
        self._tx_messages += 1
        if not self._fast_write_frame(frame):
            self.sendData(frame)
            self._after_buffered(len(frame))

    @property
    def compressed(self) -> bool:
        """True when an extension (permessage-deflate) is in use: frames differ per connection."""
        return bool(self.websocket_extensions_in_use)

    # The stock path: no fast send. FastWsServerProtocol overrides these.

    def _fast_send(self, payload: bytes, opcode: int) -> bool:
        return False

    def _fast_write_frame(self, frame: bytes) -> bool:
        return False

    def _after_buffered(self, size: int) -> None:
        # A write may have left bytes queued: apply the send-buffer policy.
        server = self._server
        if server.max_buffered_bytes is None and not server._flow_hooks:
            return
        flow = self._flow
        if flow is None:
            flow = self._flow = SendBufferWatch(self)
        flow.check(size)

    def close_with(self, code: int, reason: str = "") -> None:
        """Send a close frame (once) and start the closing handshake."""
        if self.state == STATE_OPEN:
            self.sendCloseFrame(
                code=code,
                reasonUtf8=_truncate_utf8(reason) if reason else None,
                isReply=False,
            )

    def going_away(self, code: int = 1001, reason: str = "Server shutting down") -> None:
        """Close for a server stop (``IoServer``'s graceful shutdown)."""
        if self.state == STATE_OPEN:
            self.close_with(code, reason)
        elif self.transport is not None and not self._opened:
            self.transport.abortConnection()

    # -- ratchetpy._handlers.HandlerHostBase -------------------------------

    _handler_close_text = "closing WebSocket #{rid} with 1011"

    def _handler_parts(self) -> tuple[Any, Any, Any]:
        return self._component, self.conn, self._server._reactor

    def _handler_close(self) -> None:
        self.close_with(1011)



# ignore[misc]: with more than one base, mypy compares every pair of classes
# in the MRO, and Autobahn's own WebSocketAdapterProtocol and
# WebSocketProtocol declare ``peer`` and ``_transport_details`` differently.
class FastWsServerProtocol(FastPathMixin, HardeningMixin, WsServerProtocol):  # type: ignore[misc]
    """
    ``WsServerProtocol`` with the fast data path (see ``_fastpath``) and the
    defences against hostile peers (see ``_hardening``). Used whenever the
    self-check passed; ``fast_path=False`` only turns the fast path off.
    """

    @property
    def compressed(self) -> bool:
        return self._perMessageCompress is not None

    def traffic(self) -> Traffic:
        # Autobahn's counters, which the fast path keeps too (checked names).
        stats = self.trafficStats
        return Traffic(
            stats.incomingWebSocketMessages,
            stats.incomingOctetsWireLevel,
            self._tx_messages,
            stats.outgoingOctetsWireLevel,
        )
