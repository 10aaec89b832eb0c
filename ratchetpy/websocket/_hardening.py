# -*- test-case-name: tests.websocket.test_close_frames,tests.websocket.test_ws_limits -*-
"""
Hostile peers: invalid close and control frames, fragment floods, closes
that never finish.

Autobahn's defaults let an invalid close frame end in a bare RST that
discards everything queued (the 101, earlier messages, our 1002), buffer a
control frame of any declared length, keep a fragmented message as one
``bytes`` object per fragment, and wait forever for a peer that stops
reading during a close. ``HardeningMixin`` fixes each, by overriding
Autobahn hooks that are not public API; so it is part of the protocol
class only when the self-check of those names passed (see
``_selfcheck.HARDENING_NAMES``), whether or not the fast path is used.
The rules themselves are pure functions in ``_limits``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._engine import STATE_CLOSED, STATE_OPEN, WebSocketServerProtocol
from ._limits import close_frame_problem, control_frame_problem, fragment_limit
from ._tcpwrite import buffered_bytes

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ..server._transport import IStreamTransport
    from .connection import WsConnection

__all__ = ["HardeningMixin"]

_log = Logger(namespace="ratchetpy.websocket")


def _truncate_utf8(text: str, limit: int = 123) -> bytes:
    # A close frame's payload is at most 125 bytes: 2 for the code, 123 left.
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


class HardeningMixin:
    """Mixed into the protocol class ahead of ``WsServerProtocol``."""

    # These come from the host class (WsServerProtocol and Autobahn).
    state: int
    conn: WsConnection
    factory: Any  # Autobahn's, with our _batched_timer (see _engine.build_factory)
    transport: IStreamTransport | None
    current_frame: Any
    message_data: Any
    closeHandshakeTimeout: float
    maxMessagePayloadSize: int
    failedByMe: bool
    wasClean: bool
    wasNotCleanReason: str  # what mypy infers from Autobahn; we only ever set a str

    if TYPE_CHECKING:
        def sendCloseFrame(
            self, code: int | None = None, reasonUtf8: bytes | None = None, isReply: bool = False
        ) -> None: ...

    # Class defaults, so a connection that never meets these costs no slot.

    _max_message_fragments: int | None = None
    """Frames one message may arrive in: ``None`` derives it from the size
    limit (see ``_limits.fragment_limit``), 0 is unlimited. Set on the
    per-server class."""
    _message_frames = 0
    _drain_timer: IDelayedCall | None = None

    def _dataReceived(self, data: bytes) -> None:
        """
        Bytes from the peer for Autobahn; ignored once the connection is closed.

        Autobahn appends every read to its buffer even after the connection
        was failed or closed (it only stops parsing), so a peer could grow
        it until the TCP connection is gone.
        """
        if self.state == STATE_CLOSED:
            return
        super()._dataReceived(data)  # type: ignore[misc]

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
        super().onFrameBegin()  # type: ignore[misc]

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
            return super().onCloseFrame(code, reasonRaw)  # type: ignore[misc, no-any-return]
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
        super().dropConnection(abort)  # type: ignore[misc]

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
        super().connectionLost(reason)  # type: ignore[misc]

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
        cls: Any = type(self)  # the host class, with Autobahn's streaming hooks
        if (
            cls.onMessageBegin is not WebSocketServerProtocol.onMessageBegin
            or cls.onMessageFrame is not WebSocketServerProtocol.onMessageFrame
            or cls.onMessageEnd is not WebSocketServerProtocol.onMessageEnd
        ):
            super()._onMessageFrame(payload)  # type: ignore[misc]
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
