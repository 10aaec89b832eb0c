# -*- test-case-name: tests.client.test_protocol_memory -*-
"""
The Autobahn client protocol behind ``ClientConnection``.

Autobahn does the framing, masking, ping answers and closing handshake; this
subclass turns its callbacks into the component's ``on_open``/
``on_message``/``on_close``/``on_error`` (with the server's rules for async
handlers and errors, ``ratchetpy._handlers``), and turns every way an
opening can fail into one ``ClientError`` on ``opened``:

- a non-101 answer: Autobahn drops the connection at the status line; we
  wait for up to ``MAX_BODY`` bytes of the body first (bounded by the
  Content-Length, the connection's end or ``BODY_WAIT`` seconds), since the
  body usually says why (a 403 from an origin check, a 404 route);
- a 101 without one of the offered subprotocols: Autobahn would open it;
- the handshake timeout, TLS failures and anything Autobahn rejects.

All timers (handshake, close, keepalive) run on the injected reactor: the
factory's ``_batched_timer`` is ``ratchetpy.websocket._engine``'s plain
``callLater`` stand-in, not txaio's global one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.protocol import WebSocketProtocol, parseHttpHeader
from autobahn.websocket.types import ConnectingRequest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._handlers import HandlerHostBase, Serial, call_handler
from ..exceptions import (
    ClientError,
    HandshakeRefused,
    HandshakeTimeout,
    KeepaliveTimeout,
    SubprotocolRefused,
)
from ..version import __version__
from ..websocket._engine import _ReactorTimer
from .connection import ClientConnection
from .options import ClientOptions, Target
from .tls import tls_error

__all__ = ["ClientFactory", "ClientProtocol", "MAX_BODY", "BODY_WAIT"]

_log = Logger(namespace="ratchetpy.client")

MAX_BODY = 1024
"""Bytes of a refusal's body kept for ``HandshakeRefused.body``."""

BODY_WAIT = 1.0
"""Seconds to wait for a refusal's body after its head."""

MAX_HEAD = 64 * 1024
"""A response head longer than this is not HTTP we want to parse."""

_STATE_OPEN: int = WebSocketProtocol.STATE_OPEN
_STATE_CONNECTING: int = WebSocketProtocol.STATE_CONNECTING


def _truncate_utf8(text: str, limit: int = 123) -> bytes:
    # A close frame's payload is at most 125 bytes: 2 for the code, 123 left.
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


class Inbox:
    """
    The component of a connection opened without one: it keeps messages
    for ``ClientProtocol.receive()``.
    """

    max_queue = 64
    """Messages kept unread before the client stops reading from the server
    (TCP backpressure); it reads again once half of them are taken."""

    def __init__(self) -> None:
        self.messages: deque[str | bytes] = deque()
        self.waiting: deque[Deferred[str | bytes]] = deque()
        self.closed: ClientError | None = None
        self.transport: Any = None
        self.paused = False

    def on_open(self, conn: ClientConnection) -> None:
        pass

    def on_message(self, conn: ClientConnection, msg: str | bytes) -> None:
        while self.waiting:
            d = self.waiting.popleft()
            if not d.called:  # not a receive() that timed out or was cancelled
                d.callback(msg)
                return
        self.messages.append(msg)
        if len(self.messages) >= self.max_queue and not self.paused and self.transport is not None:
            # A caller that reads slower than the server sends must not
            # make this queue grow without end: let TCP push back instead.
            self.paused = True
            self.transport.pauseProducing()

    def take(self) -> str | bytes:
        """The oldest unread message; reading resumes once the queue is half empty."""
        msg = self.messages.popleft()
        if self.paused and len(self.messages) <= self.max_queue // 2:
            self.paused = False
            if self.transport is not None:
                self.transport.resumeProducing()
        return msg

    def on_close(self, conn: ClientConnection) -> None:
        from ..exceptions import ConnectionClosed

        self.closed = ConnectionClosed(conn.close_code or 1005, conn.close_reason)
        while self.waiting:
            d = self.waiting.popleft()
            if not d.called:
                d.errback(self.closed)

    def on_error(self, conn: ClientConnection, exc: Exception) -> None:
        _log.failure("client inbox of {conn!r} failed", Failure(exc), conn=conn)


class ClientFactory(WebSocketClientFactory):
    """
    Builds the ``ClientProtocol`` of each connection to one URL, with one
    component and one set of options.
    """

    def __init__(
        self, target: Target, options: ClientOptions, component: Any, reactor: Any
    ) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            url=target.url,
            reactor=reactor,
            protocols=list(options.subprotocols),
            origin=options.origin,
            headers=dict(options.headers),
            useragent=options.user_agent or f"ratchetpy/{__version__}",
        )
        self._batched_timer = _ReactorTimer(reactor)
        size = options.max_message_size or 0
        interval = options.keepalive_interval or 0
        self.setProtocolOptions(  # type: ignore[no-untyped-call]
            openHandshakeTimeout=options.handshake_timeout,
            closeHandshakeTimeout=options.close_timeout,
            maxMessagePayloadSize=size,
            maxFramePayloadSize=size,
            autoPingInterval=interval,
            autoPingTimeout=options.keepalive_timeout if interval else 0,
            # a protocol error or an oversized message closes with its code
            # (1002, 1007, 1009) instead of a bare TCP drop
            failByDrop=False,
            # Autobahn would wait for the server to drop TCP on txaio's
            # global-reactor timer; ClientProtocol.onCloseFrame does it on ours
            serverConnectionDropTimeout=0,
        )
        self.target = target
        self.options = options
        self.component = component
        self.clock = reactor

    on_protocol: Callable[[ClientProtocol], object] | None = None
    """Called with each protocol built (``ReconnectingClient`` watches them)."""

    def buildProtocol(self, addr: Any) -> ClientProtocol:
        protocol = ClientProtocol(self)
        if self.on_protocol is not None:
            self.on_protocol(protocol)
        return protocol


# ignore[misc]: Autobahn's own bases declare ``peer`` differently (as for
# the server's WsServerProtocol).
class ClientProtocol(HandlerHostBase, WebSocketClientProtocol):  # type: ignore[misc]
    """
    One client connection. ``opened`` fires with its ``ClientConnection``
    once the handshake succeeded (after ``on_open`` was called) or fails
    with a ``ClientError``; ``closed`` fires after ``on_close``.
    """

    _serial: Serial | None = None
    _handler_close_text = "closing client connection #{rid} with 1011"

    def __init__(self, factory: ClientFactory) -> None:
        super().__init__()
        self.factory = factory
        self._target = factory.target
        self._options = factory.options
        self._component = factory.component
        self.conn = ClientConnection(self, factory.target.url)
        self.opened: Deferred[ClientConnection] = Deferred(self._cancel_open)
        self.closed: Deferred[ClientConnection] = Deferred()
        self._did_open = False
        self._failure: ClientError | None = None
        self._lost: BaseException | None = None
        self._refusal: tuple[int, str, dict[str, str]] | None = None
        self._body_timer: Any = None
        self._drop_timer: Any = None
        self._cancelled = False

    # -- for ClientConnection ------------------------------------------------

    def is_open_now(self) -> bool:
        return bool(self.state == _STATE_OPEN)

    def send_message(self, data: str | bytes) -> None:
        if isinstance(data, str):
            payload, binary = data.encode("utf-8"), False
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload, binary = bytes(data), True
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        if self.state == _STATE_OPEN:
            self.sendMessage(payload, binary)  # type: ignore[no-untyped-call]

    def close_with(self, code: int, reason: str = "") -> None:
        if self.state == _STATE_OPEN:
            self.sendCloseFrame(
                code=code, reasonUtf8=_truncate_utf8(reason) if reason else None, isReply=False
            )
        elif self.state == _STATE_CONNECTING and self.transport is not None:
            self._failure = self._failure or ClientError(
                f"{self._target.url}: closed by the client before the handshake finished"
            )
            self.transport.abortConnection()

    def receive(self) -> Deferred[str | bytes]:
        """The next message (see ``ClientConnection.receive``)."""
        inbox = self._component
        if not isinstance(inbox, Inbox):
            raise ClientError(
                "receive() works on connections opened without a component; "
                "this one delivers messages to its component's on_message"
            )
        if inbox.messages:
            return succeed(inbox.take())
        if inbox.closed is not None:
            return fail(inbox.closed)
        d: Deferred[str | bytes] = Deferred()
        inbox.waiting.append(d)
        return d

    # -- Twisted ---------------------------------------------------------------

    def connectionMade(self) -> None:
        if isinstance(self._component, Inbox):
            self._component.transport = self.transport
        peer = self.transport.getPeer() if self.transport is not None else None
        self.conn.remote_address = str(getattr(peer, "host", peer or ""))
        super().connectionMade()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = reason.value
        if self._drop_timer is not None and self._drop_timer.active():
            self._drop_timer.cancel()
        if self._refusal is not None and self._failure is None:
            self._refused()  # the server closed before the whole body came
        super().connectionLost(reason)

    # -- Autobahn --------------------------------------------------------------

    def processHandshake(self) -> Any:
        if self._refusal is not None:
            self._check_body()
            return None
        end = self.data.find(b"\r\n\r\n")
        if end < 0:
            if len(self.data) > MAX_HEAD:
                self._fail(ClientError(f"{self._target.url}: response head over {MAX_HEAD} bytes"))
            return None
        status_line, headers, _ = parseHttpHeader(self.data[: end + 4])
        parts = status_line.split(None, 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return super().processHandshake()  # type: ignore[no-untyped-call]  # Autobahn names what is wrong
        if status != 101:
            self._refusal = (status, parts[2] if len(parts) > 2 else "", dict(headers))
            self.data = self.data[end + 4 :]
            self._body_timer = self.factory.clock.callLater(BODY_WAIT, self._refused)
            self._check_body()
            return None
        offered = self._options.subprotocols
        if offered and not headers.get("sec-websocket-protocol", "").strip():
            self._fail(SubprotocolRefused(self._target.url, offered))
            return None
        return super().processHandshake()  # type: ignore[no-untyped-call]

    def onCloseFrame(self, code: int, reasonRaw: bytes) -> bool | None:
        result = super().onCloseFrame(code, reasonRaw)
        # The closing handshake is done (our close answered, or theirs
        # answered by Autobahn): the server is to drop TCP now. If it does
        # not within close_timeout, we do.
        if self.state != WebSocketProtocol.STATE_CLOSED and self._drop_timer is None:
            self._drop_timer = self.factory.clock.callLater(
                self._options.close_timeout, self._server_kept_tcp
            )
        return result

    def _server_kept_tcp(self) -> None:
        # Both close frames were exchanged, so on_close still reports the
        # server's code and reason; only the TCP connection lingered.
        self.dropConnection(abort=True)

    def onConnecting(self, transport_details: Any) -> ConnectingRequest:
        # Autobahn writes "Host: <host>:<port>", which for an IPv6 address
        # needs the brackets of the URL.
        factory = self.factory
        return ConnectingRequest(
            host=self._target.host_header,
            port=self._target.port,
            resource=self._target.resource,
            headers=factory.headers,
            useragent=factory.useragent,
            origin=factory.origin,
            protocols=factory.protocols,
        )

    def onOpenHandshakeTimeout(self) -> None:
        if self.state == _STATE_CONNECTING and self._failure is None:
            self._failure = HandshakeTimeout(
                f"{self._target.url}: no answer to the WebSocket handshake within "
                f"{self._options.handshake_timeout:g} s"
            )
        super().onOpenHandshakeTimeout()

    def onAutoPingTimeout(self) -> None:
        error = KeepaliveTimeout(
            f"{self._target.url}: no answer to a ping within "
            f"{self._options.keepalive_timeout:g} s; dropped the connection"
        )
        self.conn.close_error = error
        _log.warn("{error}", error=str(error), url=self._target.url)
        super().onAutoPingTimeout()

    def onOpen(self) -> None:
        if self.opened.called:  # cancelled by the caller meanwhile
            return
        self._did_open = True
        self.conn.response_headers = dict(self.http_headers)
        call_handler(self, self._component.on_open, self.conn)
        self.opened.callback(self.conn)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        msg: str | bytes = payload if isBinary else payload.decode("utf-8")
        call_handler(self, self._component.on_message, self.conn, msg)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._body_timer is not None and self._body_timer.active():
            self._body_timer.cancel()
        if not self._did_open:
            if not self.opened.called and not self._cancelled:
                self.opened.errback(self._open_failure())
            return
        conn = self.conn
        conn.close_code = code if code is not None else 1005
        conn.close_reason = reason or ""
        if conn.close_error is not None:
            conn.close_reason = str(conn.close_error)
        call_handler(self, self._component.on_close, conn)
        self.closed.callback(conn)

    # -- ratchetpy._handlers.HandlerHostBase -----------------------------------

    def _handler_parts(self) -> tuple[Any, Any, Any]:
        return self._component, self.conn, self.factory.clock

    def _handler_close(self) -> None:
        self.close_with(1011)

    # -- opening failures --------------------------------------------------------

    def _cancel_open(self, opened: Deferred[ClientConnection]) -> None:
        # connect()'s Deferred was cancelled before the handshake finished:
        # it fails with CancelledError, and the connection is aborted
        self._cancelled = True
        if self.transport is not None:
            self.transport.abortConnection()

    def _fail(self, error: ClientError) -> None:
        self._failure = error
        self.wasNotCleanReason = str(error)
        self.dropConnection(abort=True)

    def _check_body(self) -> None:
        assert self._refusal is not None
        length = self._refusal[2].get("content-length", "")
        want = min(int(length), MAX_BODY) if length.strip().isdigit() else MAX_BODY
        if len(self.data) >= want:
            self._refused()

    def _refused(self) -> None:
        if self._failure is not None or self._refusal is None:
            return
        status, reason, headers = self._refusal
        offered = self._options.subprotocols
        speaks = headers.get("sec-websocket-protocol", "")
        error: ClientError
        versions = [v.strip() for v in headers.get("sec-websocket-version", "13").split(",")]
        if status == 426 and offered and "13" in versions:
            # 426 although the server speaks our version 13: Ratchet's (and
            # ratchetpy's) answer to subprotocols it does not speak, naming
            # those it does, if any.
            error = SubprotocolRefused(
                self._target.url, offered, [p.strip() for p in speaks.split(",") if p.strip()]
            )
        else:
            error = HandshakeRefused(
                self._target.url, status, reason, headers, bytes(self.data[:MAX_BODY])
            )
        if self.transport is not None and self.state != WebSocketProtocol.STATE_CLOSED:
            self._fail(error)
        else:
            self._failure = error

    def _open_failure(self) -> ClientError:
        if self._failure is not None:
            return self._failure
        if self._lost is not None:
            tls = tls_error(self._target, self._lost)
            if tls is not None:
                return tls
        if self.wasNotCleanReason and self.droppedByMe:
            return ClientError(f"{self._target.url}: bad handshake answer: {self.wasNotCleanReason}")
        return ClientError(
            f"{self._target.url}: the server closed the connection before the handshake finished"
        )
