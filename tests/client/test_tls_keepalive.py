"""
The Twisted client on 127.0.0.1 against servers that test its defences:
TLS with a self-signed CA (trusted, untrusted, wrong host name), a server
that completes the handshake and then stops reading (keepalive), and a port
whose backlog is full (connect timeout).
"""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.trial import unittest

from ratchetpy.client import ConnectTimeout, KeepaliveTimeout, TlsError, connect
from ratchetpy.server.tls import tls_options
from tests.client.components import Recorder
from tests.support import autobahn_server
from tests.support.timing import seconds
from tests.support.tls import self_signed

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class TlsServer(unittest.TestCase):
    """A plain Autobahn echo server behind TLS, with a certificate for ``host``."""

    timeout = 60
    host = "localhost"

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        directory = Path(self.mktemp())
        directory.mkdir()
        self.cert, key = self_signed(directory, host=self.host)
        options = tls_options(self.cert, key)
        self.listening = reactor.listenSSL(
            0, autobahn_server.echo_factory(reactor), options, interface="127.0.0.1"
        )
        self.addCleanup(self.listening.stopListening)
        self.port = self.listening.getHost().port


class TrustedCa(TlsServer):
    @defer.inlineCallbacks
    def test_wss_with_the_ca_file_works(self):
        conn = yield connect(
            f"wss://127.0.0.1:{self.port}/", reactor=self.reactor, ca_file=self.cert
        )
        conn.send("secret")
        self.assertEqual((yield conn.receive()), "secret")
        conn.close()
        yield conn.when_closed()

    @defer.inlineCallbacks
    def test_without_the_ca_the_certificate_is_not_trusted(self):
        with self.assertRaises(TlsError) as caught:
            yield connect(f"wss://127.0.0.1:{self.port}/", reactor=self.reactor)
        self.assertIn("not trusted", str(caught.exception))
        self.assertIn("ca_file", str(caught.exception))

    @defer.inlineCallbacks
    def test_insecure_skips_the_checks(self):
        conn = yield connect(f"wss://127.0.0.1:{self.port}/", reactor=self.reactor, insecure=True)
        conn.close()
        yield conn.when_closed()


class WrongHostName(TlsServer):
    host = "other.test"  # the certificate also holds 127.0.0.1, not "localhost"

    @defer.inlineCallbacks
    def test_certificate_for_another_name_is_refused(self):
        with self.assertRaises(TlsError) as caught:
            yield connect(
                f"wss://localhost:{self.port}/", reactor=self.reactor, ca_file=self.cert
            )
        self.assertIn("not valid for 'localhost'", str(caught.exception))


class SilentAfterHandshake(Protocol):
    """Answers the upgrade with a 101, then never reads nor writes again."""

    def __init__(self) -> None:
        self.head = b""

    def dataReceived(self, data: bytes) -> None:
        self.head += data
        if b"\r\n\r\n" not in self.head or self.transport is None:
            return
        key = next(
            line.split(b":", 1)[1].strip()
            for line in self.head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.transport.pauseProducing()  # stop reading: pings pile up unanswered


class Keepalive(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_a_peer_that_stops_answering_is_dropped(self):
        from twisted.internet import reactor

        listening = reactor.listenTCP(
            0, Factory.forProtocol(SilentAfterHandshake), interface="127.0.0.1"
        )
        self.addCleanup(listening.stopListening)
        recorder = Recorder()
        closed = recorder.wait("close", reactor, seconds(20))
        conn = yield connect(
            f"ws://127.0.0.1:{listening.getHost().port}/",
            recorder,
            reactor=reactor,
            keepalive_interval=0.2,
            keepalive_timeout=0.3,
        )
        yield closed
        self.assertEqual(conn.close_code, 1006)
        self.assertIsInstance(conn.close_error, KeepaliveTimeout)
        self.assertEqual(recorder.closes, [(1006, str(conn.close_error), conn.close_error)])


class ConnectTimeoutTest(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_a_port_that_accepts_nothing_times_out(self):
        from twisted.internet import reactor

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers: list[Any] = []
        for _ in range(4):  # fill the accept queue: later SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        self.addCleanup(lambda: [s.close() for s in [*fillers, listener]])
        with self.assertRaises(ConnectTimeout) as caught:
            yield connect(f"ws://127.0.0.1:{port}/", reactor=reactor, connect_timeout=0.5)
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertIn(f"127.0.0.1:{port}", str(caught.exception))
