# -*- test-case-name: tests.test_websocket -*-
"""
The Autobahn protocol that carries one WebSocket connection to a component.

Autobahn parses frames, answers pings, runs the closing handshake and
enforces limits; this subclass turns its callbacks into Ratchet's
``on_open/on_message/on_close/on_error`` and routes exceptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from ..http.response import POWERED_BY
from ._engine import STATE_OPEN, WebSocketServerProtocol
from ._fastpath import FastPathMixin
from .connection import WsConnection
from .flow import SendBufferWatch

if TYPE_CHECKING:
    from .server import WsServer

__all__ = ["WsServerProtocol"]

_log = Logger(namespace="ratchetpy.websocket")


def _truncate_utf8(text: str, limit: int = 123) -> bytes:
    # A close frame's payload is at most 125 bytes: 2 for the code, 123 left.
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


class WsServerProtocol(FastPathMixin, WebSocketServerProtocol):
    """
    One WebSocket connection, built by ``WsServer`` once the HTTP layers
    have accepted the request.
    """

    def __init__(
        self, server: WsServer, io_conn: Any, sub_protocol: str | None
    ) -> None:
        super().__init__()
        self.factory = server._factory
        self._server = server
        self._component = server.component
        self._sub_protocol = sub_protocol
        self._opened = False
        self._fastpath_wanted = server.fast_path
        self._flow: SendBufferWatch | None = None
        self.conn = WsConnection(io_conn, self)

    # -- Autobahn callbacks ------------------------------------------------

    def onConnect(self, request: Any) -> tuple[str | None, dict[str, str]]:
        return self._sub_protocol, {"X-Powered-By": POWERED_BY[0]}

    def onOpen(self) -> None:
        self._opened = True
        self._server._track_open(self)
        if self._server.log_connections:
            _log.info(
                "WebSocket #{rid} from {peer} opened {path}",
                rid=self.conn.resource_id,
                peer=self.conn.remote_address,
                path=self.http_request_path,
            )
        try:
            self._component.on_open(self.conn)
        except Exception as exc:
            self._route_error(exc)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self._fast_deliver(payload if isBinary else payload.decode("utf-8"))

    def _fast_deliver(self, msg: str | bytes) -> None:
        # One message to the component, from the fast path or from Autobahn.
        try:
            self._component.on_message(self.conn, msg)
        except Exception as exc:
            self._route_error(exc)

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
                path=self.http_request_path,
                code=conn.close_code,
            )
        try:
            self._component.on_close(conn)
        except Exception as exc:
            self._route_error(exc)
        finally:
            # After on_close, so a shutdown waiting on this sees it finished.
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
            return
        if self._perMessageCompress is None:
            # sendMessage would also apply the *incoming* size limit to what
            # the application sends; a server's own messages are not limited.
            self.sendFrame(opcode=opcode, payload=payload)
        else:
            self.sendMessage(payload, opcode == 2)
        self._after_buffered(len(payload))

    def send_frame_bytes(self, frame: bytes) -> None:
        """Write an already encoded frame (see ``broadcast``)."""
        flow = self._flow
        if flow is not None and flow.should_drop():
            return
        if not self._fast_write_frame(frame):
            self.sendData(frame)
            self._after_buffered(len(frame))

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

    def _route_error(self, exc: Exception) -> None:
        try:
            self._component.on_error(self.conn, exc)
        except Exception:
            _log.failure(
                "on_error of {component!r} raised while handling {error!r}; "
                "closing WebSocket #{rid} with 1011",
                component=self._component,
                error=exc,
                rid=self.conn.resource_id,
            )
            self.close_with(1011)
