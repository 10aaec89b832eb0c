"""App on real loopback sockets: clients chat, plain HTTP routes, graceful stop, a port in use."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ratchetpy.app import App, ListenError
from ratchetpy.http.controllers import HealthCheck
from ratchetpy.testing import RecordingComponent
from tests.support.loopback import start_app
from tests.support.timing import seconds
from tests.support.wire import handshake_request


class LoopbackTests(unittest.TestCase):
    """App on real loopback sockets, with the websockets client in threads."""

    timeout = 20

    def setUp(self):
        from twisted.internet import reactor

        self.chat = RecordingComponent()
        self.peers = []

        chat = self.chat

        class Chat(RecordingComponent):
            def on_open(self, conn):
                super().on_open(conn)
                chat.events.append(("open", conn))

            def on_message(self, conn, msg):
                for event in self.events:
                    if event[0] == "open" and event[1] is not conn and not event[1].closing:
                        event[1].send(msg)

            def on_close(self, conn):
                chat.events.append(("close", conn))

        self.app = App("localhost", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/chat", Chat(), ["*"])
        self.app.route("/health", HealthCheck(), ["*"])
        self.port = start_app(self, self.app)

    def url(self, path):
        return f"ws://localhost:{self.port}{path}"

    @defer.inlineCallbacks
    def test_two_clients_chat(self):
        """A message from one client reaches the other, not the sender."""

        def talk():
            with connect(self.url("/chat")) as a, connect(self.url("/chat")) as b:
                a.send("hello")
                return b.recv(timeout=seconds(5))

        self.assertEqual((yield threads.deferToThread(talk)), "hello")

    @defer.inlineCallbacks
    def test_health_check_and_404(self):
        """Plain HTTP routes answer; unknown paths get 404."""

        def fetch():
            with urllib.request.urlopen(f"http://localhost:{self.port}/health") as r:
                body = r.read()
            try:
                urllib.request.urlopen(f"http://localhost:{self.port}/nope")
            except urllib.error.HTTPError as exc:
                return body, exc.code

        self.assertEqual((yield threads.deferToThread(fetch)), (b"ok\n", 404))

    @defer.inlineCallbacks
    def test_wrong_host_gets_404(self):
        """Connecting as 127.0.0.1 when http_host is localhost gets 404 (Ratchet's rule)."""

        def attempt():
            try:
                with connect(f"ws://127.0.0.1:{self.port}/chat"):
                    return None
            except InvalidStatus as exc:
                return exc.response.status_code

        self.assertEqual((yield threads.deferToThread(attempt)), 404)

    @defer.inlineCallbacks
    def test_stop_closes_every_client_with_1001(self):
        """Stopping the App sends 1001 to each client and runs on_close for each."""
        opened = defer.Deferred()
        closed_codes = []

        def client():
            with connect(self.url("/chat")) as ws:
                from twisted.internet import reactor

                reactor.callFromThread(opened.callback, None)
                try:
                    ws.recv(timeout=seconds(10))
                except ConnectionClosed:
                    closed_codes.append(ws.close_code)

        done = threads.deferToThread(client)
        yield opened
        yield self.app.stopService()
        yield done
        self.assertEqual(closed_codes, [1001])
        kinds = [e[0] for e in self.chat.events]
        self.assertEqual(kinds, ["open", "close"])
        self.assertEqual(self.app.ws_servers[0].connections, [])

    @defer.inlineCallbacks
    def test_stop_drops_clients_that_do_not_answer(self):
        """A client that never answers the close is dropped after the timeout."""
        self.app.shutdown_timeout = 0.2
        ws = self.app.ws_servers[0]
        ws._set_options(closeHandshakeTimeout=30)
        sock = socket.create_connection(("127.0.0.1", self.port))
        self.addCleanup(sock.close)
        sock.sendall(handshake_request("/chat", host=f"localhost:{self.port}"))
        # Wait for the handshake to complete on the server.
        while not ws.connections:
            yield threads.deferToThread(lambda: None)
        dropped = yield ws.close_all(1001, "bye", timeout=0.2)
        self.assertEqual(dropped, 1)
        self.assertEqual(ws.connections, [])
        self.assertEqual([e[0] for e in self.chat.events], ["open", "close"])


class ListenErrorTests(unittest.TestCase):
    """A port in use is reported as one clear error."""

    def test_port_in_use(self):
        """privilegedStartService raises ListenError naming the endpoint and the fix."""
        from twisted.internet import reactor

        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        app = App(reactor=reactor, listen=[f"tcp:{port}:interface=127.0.0.1"])
        with self.assertRaises(ListenError) as caught:
            app.privilegedStartService()
        self.assertIn(f"tcp:{port}", str(caught.exception))
        self.assertIn("free port", str(caught.exception))
