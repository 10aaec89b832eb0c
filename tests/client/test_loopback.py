"""
The Twisted client against real servers on 127.0.0.1: a ratchetpy App and
a plain Autobahn server started in the test (no ratchetpy code on the
server side), with the test's reactor.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from ratchetpy.app import App
from ratchetpy.client import (
    ClientError,
    ConnectFailed,
    ConnectionClosed,
    HandshakeRefused,
    HandshakeTimeout,
    SubprotocolRefused,
    connect,
)
from ratchetpy.interfaces import MessageComponentInterface
from ratchetpy.server.echo import EchoServer
from tests.client.components import Recorder
from tests.support import autobahn_server
from tests.support.timing import seconds


class SubprotocolEcho(EchoServer):
    def get_sub_protocols(self) -> list[str]:
        return ["chat.v2", "chat.v1"]


class Greeter(MessageComponentInterface):
    """Sends "hi <id>" on open; echoes in upper case."""

    def on_open(self, conn: Any) -> None:
        conn.send("hi")

    def on_message(self, conn: Any, msg: Any) -> None:
        conn.send(msg.upper() if isinstance(msg, str) else msg)

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        conn.close()


class AgainstRatchetpy(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/echo", EchoServer(), ["*"])
        self.app.route("/sub", SubprotocolEcho(), ["*"])
        self.app.route("/greet", Greeter(), ["*"])
        self.app.route("/strict", EchoServer(), ["allowed.example"])
        self.app.privilegedStartService()
        self.app.startService()
        self.port = self.app.servers[0].port.getHost().port
        self.addCleanup(self.app.stopService)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def connect(self, path: str, component: Any = None, **kw: Any) -> defer.Deferred[Any]:
        kw.setdefault("connect_timeout", seconds(10))
        kw.setdefault("handshake_timeout", seconds(10))
        return connect(self.url(path), component, reactor=self.reactor, **kw)

    @defer.inlineCallbacks
    def test_echo_round_trip_text_and_binary(self):
        conn = yield self.connect("/echo")
        self.assertEqual(conn.remote_address, "127.0.0.1")
        conn.send("héllo").send(b"\x00\xff")
        self.assertEqual((yield conn.receive()), "héllo")
        self.assertEqual((yield conn.receive()), b"\x00\xff")
        conn.close()
        with self.assertRaises(ConnectionClosed) as caught:
            yield conn.receive()
        self.assertEqual(caught.exception.code, 1000)

    @defer.inlineCallbacks
    def test_component_sees_open_messages_and_close_in_order(self):
        recorder = Recorder()
        first = recorder.wait("message", self.reactor, seconds(10))
        conn = yield self.connect("/greet", recorder)
        self.assertEqual(recorder.opens, 1)
        self.assertEqual((yield first), "hi")
        second = recorder.wait("message", self.reactor, seconds(10))
        conn.send("shout")
        self.assertEqual((yield second), "SHOUT")
        closed = recorder.wait("close", self.reactor, seconds(10))
        conn.close(4000, "bye")
        yield closed
        self.assertEqual([e[0] for e in recorder.events], ["open", "message", "message", "close"])
        self.assertEqual(recorder.closes[0][0], 4000)
        self.assertTrue(conn.closing)

    @defer.inlineCallbacks
    def test_subprotocol_negotiated(self):
        conn = yield self.connect("/sub", subprotocols=["chat.v1"])
        self.assertEqual(conn.sub_protocol, "chat.v1")
        conn.close()
        yield conn.when_closed()

    @defer.inlineCallbacks
    def test_subprotocol_refused_names_what_the_server_speaks(self):
        with self.assertRaises(SubprotocolRefused) as caught:
            yield self.connect("/sub", subprotocols=["chat.v9"])
        self.assertEqual(caught.exception.offered, ("chat.v9",))
        self.assertEqual(caught.exception.server_speaks, ("chat.v2", "chat.v1"))
        self.assertIn("chat.v9", str(caught.exception))

    @defer.inlineCallbacks
    def test_unknown_route_is_a_404_refusal(self):
        with self.assertRaises(HandshakeRefused) as caught:
            yield self.connect("/nowhere")
        self.assertEqual(caught.exception.status, 404)
        self.assertIn("404", str(caught.exception))

    @defer.inlineCallbacks
    def test_origin_check_refusal_is_a_403(self):
        with self.assertRaises(HandshakeRefused) as caught:
            yield self.connect("/strict", origin="http://evil.example")
        self.assertEqual(caught.exception.status, 403)
        # and with the right origin the same route opens
        conn = yield self.connect("/strict", origin="http://allowed.example")
        conn.close()
        yield conn.when_closed()

    def test_bad_options_raise_at_once(self):
        from ratchetpy.exceptions import ConfigurationError

        with self.assertRaises(ConfigurationError):
            connect("http://127.0.0.1/", reactor=self.reactor)
        with self.assertRaises(ConfigurationError):
            connect(self.url("/echo"), reactor=self.reactor, handshake_timeout=0)
        with self.assertRaises(ConfigurationError):
            connect(self.url("/echo"), reactor=self.reactor, subprotocols="chat")


class AgainstAutobahn(unittest.TestCase):
    """A server that is Autobahn alone."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.listening = autobahn_server.listen(reactor)
        self.addCleanup(self.listening.stopListening)
        self.url = f"ws://127.0.0.1:{self.listening.getHost().port}/"

    @defer.inlineCallbacks
    def test_echo_with_subprotocol(self):
        conn = yield connect(self.url, subprotocols=["echo.v1"], reactor=self.reactor)
        self.assertEqual(conn.sub_protocol, "echo.v1")
        conn.send("round").send(b"trip")
        self.assertEqual((yield conn.receive()), "round")
        self.assertEqual((yield conn.receive()), b"trip")
        conn.close()
        yield conn.when_closed()
        self.assertEqual(conn.close_code, 1000)

    @defer.inlineCallbacks
    def test_refusal_with_its_status_line(self):
        with self.assertRaises(HandshakeRefused) as caught:
            yield connect(self.url + "deny", reactor=self.reactor)
        # Autobahn puts the reason in the status line and sends no body
        self.assertEqual((caught.exception.status, caught.exception.reason), (403, "no entry here"))
        self.assertIn("answered 403 no entry here", str(caught.exception))

    @defer.inlineCallbacks
    def test_server_picking_no_subprotocol_is_a_refusal(self):
        with self.assertRaises(SubprotocolRefused):
            yield connect(self.url, subprotocols=["other.v1"], reactor=self.reactor)


class Failures(unittest.TestCase):
    """Servers that do not work: refused, silent, never accepting."""

    timeout = 60

    def _listener(self) -> socket.socket:
        """A loopback TCP listener, closed after the test; the test does the serving."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.addCleanup(listener.close)
        return listener

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor

    @defer.inlineCallbacks
    def test_connection_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: refused
            with self.assertRaises(ConnectFailed) as caught:
                yield connect(f"ws://127.0.0.1:{port}/", reactor=self.reactor)
        self.assertIn("refused", str(caught.exception))

    @defer.inlineCallbacks
    def test_handshake_timeout_when_the_server_never_answers(self):
        listener = self._listener()  # accepted by the kernel, never answered
        port = listener.getsockname()[1]
        with self.assertRaises(HandshakeTimeout) as caught:
            yield connect(f"ws://127.0.0.1:{port}/", reactor=self.reactor, handshake_timeout=0.5)
        self.assertIsInstance(caught.exception, TimeoutError)

    @defer.inlineCallbacks
    def test_refusal_body_is_read_and_bounded(self):
        body = b"no entry: " + b"x" * 5000
        listener = self._listener()

        def serve() -> None:
            peer, _ = listener.accept()
            with peer:
                peer.recv(4096)
                peer.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                peer.sendall(body)
                try:
                    peer.recv(1)  # until the client hangs up
                except OSError:
                    pass

        threading.Thread(target=serve, daemon=True).start()
        port = listener.getsockname()[1]
        with self.assertRaises(HandshakeRefused) as caught:
            yield connect(f"ws://127.0.0.1:{port}/", reactor=self.reactor)
        self.assertEqual(caught.exception.status, 403)
        self.assertEqual(caught.exception.reason, "Forbidden")
        self.assertEqual(caught.exception.body, body[:1024])
        self.assertIn("no entry", str(caught.exception))

    @defer.inlineCallbacks
    def test_server_hanging_up_during_handshake(self):
        listener = self._listener()

        def serve() -> None:
            peer, _ = listener.accept()
            peer.recv(4096)
            peer.close()

        threading.Thread(target=serve, daemon=True).start()
        with self.assertRaises(ClientError) as caught:
            yield connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", reactor=self.reactor)
        self.assertIn("before the handshake finished", str(caught.exception))
