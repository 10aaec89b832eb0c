# -*- test-case-name: tests.test_websocket -*-
"""
The Autobahn protocol that carries one WebSocket connection to a component.

Autobahn parses frames, answers pings, runs the closing handshake and
enforces limits; this subclass turns its callbacks into Ratchet's
``on_open/on_message/on_close/on_error`` and routes exceptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..http.response import POWERED_BY
from ._engine import STATE_CLOSED, STATE_OPEN, WebSocketServerProtocol, buffered_bytes
from ._fastpath import FastPathMixin
from ._limits import close_frame_problem, control_frame_problem, fragment_limit
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

    # -- hostile peers: invalid close/control frames, fragments, closing -----
    #
    # Class defaults, so a connection that never meets these costs no slot.

    _max_message_fragments: int | None = None
    """Frames one message may arrive in: ``None`` derives it from the size
    limit (see ``_limits.fragment_limit``), 0 is unlimited. Set on the
    per-server class."""
    _message_frames = 0
    _drain_timer: Any = None

    def _dataReceived(self, data: bytes) -> None:
        """
        Bytes from the peer for Autobahn; ignored once the connection is closed.

        Autobahn appends every read to its buffer even after the connection
        was failed or closed (it only stops parsing), so a peer could grow
        it until the TCP connection is gone.
        """
        if self.state == STATE_CLOSED:
            return
        super()._dataReceived(data)

    def onFrameBegin(self) -> None:
        """
        A frame header was parsed: stop at an invalid control frame header.

        For a control frame declaring more than 125 bytes (or a close frame
        declaring 1), Autobahn has already sent 1002, but would then read
        and keep the whole declared payload (up to 2**63 bytes) before
        anything else happens; the connection is closed here instead.
        """
        frame: Any = self.current_frame
        if frame.opcode > 7:
            problem = control_frame_problem(frame.opcode, frame.length)
            if problem is not None:
                self._fail_and_close(1002, problem)
                return
        super().onFrameBegin()

    def onCloseFrame(self, code: int | None, reasonRaw: bytes | None) -> bool | None:
        """
        The peer's close frame: answer an invalid one with 1002/1007.

        A close code an endpoint may not send (999, 1004-1006, 1015, 5000,
        ...) gets 1002 and a reason that is not UTF-8 gets 1007; then the
        TCP connection is closed once everything queued before (the 101,
        earlier messages, this close frame) is written. A valid close frame
        is Autobahn's to handle.

        Returns:
            True when the frame was invalid (Autobahn processes no more).
        """
        problem = close_frame_problem(code, reasonRaw)
        if problem is None:
            return super().onCloseFrame(code, reasonRaw)
        fail_code, detail = problem
        self._fail_and_close(fail_code, detail)
        return True

    def _fail_and_close(self, code: int, detail: str) -> None:
        # Fail the connection (RFC 6455 §7.1.7): send our close frame if none
        # was sent, process nothing more, close TCP once what is queued is
        # written. Autobahn (failByDrop=False) would go on parsing instead:
        # an invalid close frame then reads as the peer's reply, completing
        # the handshake with abortConnection(), an RST that discards every
        # byte still queued, our close frame included.
        if self.state == STATE_CLOSED:
            return
        self.failedByMe = True
        self.wasClean = False
        self.wasNotCleanReason = detail
        if self.state == STATE_OPEN:
            # isReply: no closing-handshake timer, TCP closes right away.
            self.sendCloseFrame(code=code, reasonUtf8=_truncate_utf8(detail), isReply=True)
        self.dropConnection(abort=False)

    def dropConnection(self, abort: bool = False) -> None:
        """
        Close the TCP connection, gracefully unless a timeout asked to abort.

        Autobahn aborts (RST, queued bytes discarded) once a closing
        handshake completes; here a completed handshake (``wasClean``)
        closes gracefully, so what was queued before the close frame is
        delivered. A graceful close the peer does not let finish (it stops
        reading) is aborted after ``close_timeout``.
        """
        if self.state != STATE_CLOSED:
            if self.wasClean:
                abort = False
            if not abort:
                # Armed first: loseConnection may report the loss at once.
                self._start_drain_timer()
        super().dropConnection(abort)

    def _start_drain_timer(self) -> None:
        timeout = self.closeHandshakeTimeout
        if self._drain_timer is None and timeout and timeout > 0:
            self._drain_timer = self.factory._batched_timer.call_later(
                timeout, self._drain_timed_out
            )

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        transport = self.transport
        if transport is None:
            return
        _log.info(
            "WebSocket #{rid} from {peer}: {pending} bytes still unread by the peer "
            "{timeout}s after the close; aborting the connection "
            "(WsServer(close_timeout=) sets this wait)",
            rid=self.conn.resource_id,
            peer=self.conn.remote_address,
            pending=buffered_bytes(transport),
            timeout=self.closeHandshakeTimeout,
        )
        transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The connection is gone: cancel the drain timer, then Autobahn's handling."""
        timer = self._drain_timer
        if timer is not None:
            self._drain_timer = None
            if timer.active():
                timer.cancel()
        super().connectionLost(reason)

    def _onMessageFrame(self, payload: list[bytes]) -> None:
        """
        A frame of a fragmented message is complete: append it, bounded.

        Autobahn keeps a message as a list with one ``bytes`` object per
        chunk: a message of 1,000,000 one-byte fragments (7 MB on the wire,
        1 MB of payload) held ~42 MB. From the second frame on, the message
        is kept in one ``bytearray`` instead, and a message may have at most
        ``fragment_limit(...)`` frames (1009 beyond). This hook is private
        to Autobahn's Twisted adapter, not one of the streaming hooks
        (``onMessageFrame`` ...), so the fast path stays on; a subclass that
        overrides those hooks gets Autobahn's stock assembly.
        """
        cls = type(self)
        if (
            cls.onMessageBegin is not WebSocketServerProtocol.onMessageBegin
            or cls.onMessageFrame is not WebSocketServerProtocol.onMessageFrame
            or cls.onMessageEnd is not WebSocketServerProtocol.onMessageEnd
        ):
            super()._onMessageFrame(payload)
            return
        # Autobahn's onMessageBegin made this list; its onMessageEnd joins it.
        data: list[Any] = self.message_data
        if not data:
            # The first frame as Autobahn keeps it: unfragmented messages
            # cost nothing more.
            data.extend(payload)
            self._message_frames = 1
            return
        frames = self._message_frames + 1
        self._message_frames = frames
        limit = fragment_limit(self.maxMessagePayloadSize, self._max_message_fragments)
        if limit and frames > limit:
            self._too_many_fragments(limit)
            return
        if len(data) != 1 or type(data[0]) is not bytearray:
            data[:] = [bytearray().join(data)]
        buffer: bytearray = data[0]
        for chunk in payload:
            buffer += chunk

    def _too_many_fragments(self, limit: int) -> None:
        self.message_data = []  # never delivered: free it now
        _log.warn(
            "WebSocket #{rid} from {peer}: a message arrived in more than {limit} "
            "fragments; closing with 1009. If legitimate clients fragment this "
            "finely, raise WsServer(max_message_fragments=)",
            rid=self.conn.resource_id,
            peer=self.conn.remote_address,
            limit=limit,
        )
        # Closed at once rather than after the peer's close reply: it may
        # still be sending fragments, each costing Autobahn ~20 us to discard.
        self._fail_and_close(1009, f"message split into more than {limit} fragments")
