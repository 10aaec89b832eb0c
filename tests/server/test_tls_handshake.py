"""
Connections that never finish TLS, or never let a refusal close, are dropped.

Loopback tests run a real wss ``App`` with a short ``request_timeout`` and
raw-socket clients that stall; in-memory tests drive the refusal deadline
with a clock.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from websockets.sync.client import connect
from zope.interface import directlyProvides
from zope.interface.verify import verifyObject

from ratchetpy import App, HttpServer, IoServer, WsServer
from ratchetpy.http.response import close_response
from ratchetpy.server import _abort
from ratchetpy.server._abort import CLOSE_DEADLINE
from ratchetpy.server.tls import tls_handshake_pending
from ratchetpy.testing import FakeConnection, RecordingComponent
from tests.support.timing import seconds
from tests.support.tls import self_signed

REQUEST_TIMEOUT = seconds(1.0)  # the wss client below must finish within it too


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _client_hello() -> bytes:
    """The bytes a TLS client sends first."""
    tls = _client_context().wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """
    Read until the server closes (EOF or reset); the time it took and the bytes.

    Raises:
        AssertionError: the server kept the connection open ``limit`` seconds.
    """
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {limit} s") from None
    return time.monotonic() - start, received


class StalledTlsClientTests(TestCase):
    """A real wss App on 127.0.0.1 whose request_timeout is REQUEST_TIMEOUT."""

    @inlineCallbacks
    def setUp(self) -> Any:
        cert, key = self_signed()
        app = App(
            "*",
            0,
            "127.0.0.1",
            reactor,
            tls={"local_cert": cert, "local_pk": key},
            log_connections=False,
        )
        app.http.request_timeout = REQUEST_TIMEOUT
        app.route("/echo", RecordingComponent(echo=True), ["*"])
        app.privilegedStartService()
        self.addCleanup(app.stopService)
        port = yield app.servers[0].listen()
        self.port = port.getHost().port

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=seconds(5))
        self.addCleanup(sock.close)
        return sock

    @inlineCallbacks
    def test_silent_client_is_dropped_after_request_timeout(self) -> Any:
        """A client that connects and sends nothing is closed, not kept forever."""
        sock = self.connect()
        elapsed, received = yield deferToThread(_read_until_closed, sock, seconds(5))
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT * 0.8)
        self.assertEqual(received, b"", "nothing can be sent before the handshake")

    @inlineCallbacks
    def test_half_a_client_hello_is_dropped(self) -> Any:
        """A client stuck in the middle of its ClientHello is closed too."""
        sock = self.connect()
        hello = _client_hello()
        sock.sendall(hello[: len(hello) // 2])
        elapsed, received = yield deferToThread(_read_until_closed, sock, seconds(5))
        self.assertGreaterEqual(elapsed, REQUEST_TIMEOUT * 0.8)
        self.assertEqual(received, b"")

    @inlineCallbacks
    def test_wss_clients_are_served_while_handshakes_stall(self) -> Any:
        """Stalled handshakes neither block a wss client nor outlive the timeout."""
        stalled = [self.connect() for _ in range(20)]
        url = f"wss://127.0.0.1:{self.port}/echo"

        def client() -> Any:
            with connect(url, ssl=_client_context(), open_timeout=seconds(5)) as ws:
                ws.send("over TLS")
                return ws.recv(timeout=seconds(5))

        echoed = yield deferToThread(client)
        self.assertEqual(echoed, "over TLS")
        closed = yield gatherResults(
            [deferToThread(_read_until_closed, sock, seconds(5)) for sock in stalled]
        )
        self.assertEqual([received for _, received in closed], [b""] * len(stalled))

    @inlineCallbacks
    def test_refused_tls_client_that_never_closes_is_aborted(self) -> Any:
        """
        After the handshake a 408 is sent; a client that neither reads it nor
        answers TLS's close_notify is aborted when the close deadline passes.
        """
        deadline = seconds(0.5)
        self.patch(_abort, "CLOSE_DEADLINE", deadline)
        sock = self.connect()

        def handshake_then_stall() -> tuple[float, bytes]:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = _client_context().wrap_bio(incoming, outgoing)
            start = time.monotonic()
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    incoming.write(sock.recv(65536))
            sock.sendall(outgoing.read())
            _, raw = _read_until_closed(sock, seconds(5))
            elapsed = time.monotonic() - start
            incoming.write(raw)
            plaintext = b""
            try:
                while chunk := tls.read(65536):
                    plaintext += chunk
            except (ssl.SSLZeroReturnError, ssl.SSLWantReadError):
                pass
            return elapsed, plaintext

        elapsed, plaintext = yield deferToThread(handshake_then_stall)
        self.assertTrue(plaintext.startswith(b"HTTP/1.1 408 "), plaintext)
        self.assertGreaterEqual(elapsed, (REQUEST_TIMEOUT + deadline) * 0.8)


# -- in memory: the deadline, and what counts as an unfinished handshake ----


class StuckTransport(StringTransport):
    """A TCP-like transport whose graceful close never completes (the peer does not read)."""

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        self.protocol.connectionLost(Failure(ConnectionLost()))


def _connect(request_timeout: float = 1.0, tls: bool = False) -> tuple[Any, Any, MemoryReactorClock]:
    clock = MemoryReactorClock()
    stack = HttpServer(WsServer(RecordingComponent()), request_timeout=request_timeout)
    protocol = IoServer(stack, 0, reactor=clock).protocol_factory.buildProtocol(None)
    transport = StuckTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 40000))
    if tls:
        # Twisted's TLS layer provides ISSLTransport (through INegotiated).
        directlyProvides(transport, ISSLTransport)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport, clock


def test_refusal_of_a_peer_that_never_reads_is_aborted_at_the_deadline() -> None:
    """A 408 is written and the connection closed; if it is still open CLOSE_DEADLINE s later, it is aborted."""
    protocol, transport, clock = _connect(request_timeout=1.0)
    clock.advance(1.0)
    assert transport.value().startswith(b"HTTP/1.1 408 ")
    assert transport.disconnecting and not transport.aborted
    clock.advance(CLOSE_DEADLINE - 0.01)
    assert not transport.aborted
    clock.advance(0.01)
    assert transport.aborted
    assert protocol.lost_reason is not None
    assert clock.getDelayedCalls() == []


def test_deadline_is_disarmed_when_the_peer_closes_first() -> None:
    """A refused peer that goes away leaves no timer behind."""
    protocol, transport, clock = _connect(request_timeout=1.0)
    clock.advance(1.0)
    assert len(clock.getDelayedCalls()) == 1
    protocol.connectionLost(Failure(ConnectionLost()))
    assert clock.getDelayedCalls() == []
    clock.advance(CLOSE_DEADLINE)
    assert not transport.aborted


def test_close_response_takes_the_deadline_from_abort_after() -> None:
    """abort_after overrides CLOSE_DEADLINE for one response."""
    protocol, transport, clock = _connect(request_timeout=None)
    close_response(protocol.conn, 503, abort_after=0.25)
    clock.advance(0.25)
    assert transport.value().startswith(b"HTTP/1.1 503 ") and transport.aborted


def test_timeout_before_the_tls_handshake_aborts_without_writing() -> None:
    """Before the TLS handshake the timeout aborts: nothing is written into TLS."""
    protocol, transport, clock = _connect(request_timeout=1.0, tls=True)
    assert tls_handshake_pending(protocol.conn)
    clock.advance(1.0)
    assert transport.aborted and transport.value() == b""
    assert clock.getDelayedCalls() == []


def test_refusals_wait_for_the_handshake_reported_by_twisted() -> None:
    """
    IoServer's protocol hears of the handshake through IHandshakeListener;
    before it a refusal aborts, after it the response is sent.
    """
    protocol, transport, clock = _connect(request_timeout=None, tls=True)
    assert verifyObject(IHandshakeListener, protocol)
    close_response(protocol.conn, 404)
    assert transport.aborted and transport.value() == b""

    protocol, transport, clock = _connect(request_timeout=None, tls=True)
    protocol.handshakeCompleted()
    assert not tls_handshake_pending(protocol.conn)
    close_response(protocol.conn, 404)
    assert transport.value().startswith(b"HTTP/1.1 404 ") and not transport.aborted
    assert transport.disconnecting and len(clock.getDelayedCalls()) == 1


def test_plain_tcp_is_never_pending_and_fake_connections_just_close() -> None:
    """Without TLS there is no handshake to wait for; a FakeConnection has no reactor to arm."""
    protocol, _, _ = _connect(request_timeout=None)
    assert not tls_handshake_pending(protocol.conn)
    fake = FakeConnection()
    close_response(fake, 404)
    assert fake.closing and fake.sent[0].startswith(b"HTTP/1.1 404 ")
