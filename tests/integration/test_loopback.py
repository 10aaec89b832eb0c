"""
Real loopback sockets, real independent clients: the websockets library (in a
thread) and Autobahn's Twisted client (on the reactor).
"""

from __future__ import annotations

import socket
import time

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ratchetpy import EchoServer, HttpServer, MessageComponentInterface, WsServer
from tests.support.loopback import Served, in_thread
from tests.support.timing import seconds


class Chat(MessageComponentInterface):
    """The socketo.me tutorial chat, as a user would port it."""

    def __init__(self):
        self.clients = set()

    def on_open(self, conn):
        self.clients.add(conn)

    def on_message(self, from_, msg):
        if msg == "boom":
            raise RuntimeError("boom")
        for client in self.clients:
            if client is not from_:
                client.send(msg)

    def on_close(self, conn):
        self.clients.discard(conn)

    def on_error(self, conn, exc):
        conn.close()


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + seconds(timeout)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class WebSocketsClientTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def serve(self, component):
        self.served = yield Served(component).start()
        self.addCleanup(self.served.stop)
        return self.served

    @defer.inlineCallbacks
    def test_chat_relays_to_others_not_sender(self):
        """The ported Chat relays a message to two other clients and not back."""
        chat = Chat()
        served = yield self.serve(HttpServer(WsServer(chat)))

        def clients(url):
            with connect(url) as a, connect(url) as b, connect(url) as c:
                wait_for(lambda: len(chat.clients) == 3)
                a.send("hello")
                got = [b.recv(timeout=seconds(5)), c.recv(timeout=seconds(5))]
                try:
                    a.recv(timeout=seconds(0.3))
                    echoed = True
                except TimeoutError:
                    echoed = False
                b.send(b"\x00\x01\xff")
                got_binary = [a.recv(timeout=seconds(5)), c.recv(timeout=seconds(5))]
                return got, echoed, got_binary

        got, echoed, got_binary = yield in_thread(clients, served.url)
        self.assertEqual(got, ["hello", "hello"])
        self.assertFalse(echoed)
        self.assertEqual(got_binary, [b"\x00\x01\xff", b"\x00\x01\xff"])

    @defer.inlineCallbacks
    def test_error_in_one_client_does_not_hurt_others(self):
        """on_message raising: on_error closes that client (1000); the others keep chatting."""
        chat = Chat()
        served = yield self.serve(HttpServer(WsServer(chat)))

        def clients(url):
            with connect(url) as a, connect(url) as b, connect(url) as c:
                wait_for(lambda: len(chat.clients) == 3)
                a.send("boom")
                try:
                    a.recv(timeout=seconds(5))
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else None
                b.send("still fine")
                return code, c.recv(timeout=seconds(5))

        code, message = yield in_thread(clients, served.url)
        self.assertEqual((code, message), (1000, "still fine"))

    @defer.inlineCallbacks
    def test_close_code_and_reason_echoed(self):
        """The server echoes the client's close code and reason."""
        served = yield self.serve(HttpServer(WsServer(EchoServer())))

        def client(url):
            with connect(url) as ws:
                ws.close(4001, "custom")
                return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason

        result = yield in_thread(client, served.url)
        self.assertEqual(result, (4001, "custom"))

    @defer.inlineCallbacks
    def test_large_message_and_limit(self):
        """A 512 KiB message is echoed; one over the 1 MiB default closes with 1009."""
        served = yield self.serve(HttpServer(WsServer(EchoServer())))

        def client(url):
            with connect(url, max_size=None) as ws:
                ws.send(b"x" * 512 * 1024)
                size = len(ws.recv(timeout=seconds(10)))
                ws.send(b"y" * (1024 * 1024 + 1))
                try:
                    ws.recv(timeout=seconds(10))
                except ConnectionClosed as exc:
                    return size, exc.rcvd.code

        result = yield in_thread(client, served.url)
        self.assertEqual(result, (512 * 1024, 1009))

    @defer.inlineCallbacks
    def test_compression_offer_declined(self):
        """The websockets client offers permessage-deflate; the default server declines."""
        served = yield self.serve(HttpServer(WsServer(EchoServer())))

        def client(url):
            with connect(url) as ws:
                ws.send("plain")
                return ws.recv(timeout=seconds(5)), ws.response.headers.get("Sec-WebSocket-Extensions")

        result = yield in_thread(client, served.url)
        self.assertEqual(result, ("plain", None))


class AutobahnEcho(WebSocketClientProtocol):
    def onOpen(self):
        self.received = []
        self.sendMessage("héllo".encode(), isBinary=False)
        self.sendMessage(b"\x00\xff", isBinary=True)

    def onMessage(self, payload, isBinary):
        self.received.append((payload, isBinary))
        if len(self.received) == 2:
            self.sendClose(1000)

    def onClose(self, wasClean, code, reason):
        self.factory.done.callback((self.received, wasClean, code))


class AutobahnClientTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_echo_with_autobahn_client(self):
        """Autobahn's own client gets text as text and binary as binary, and a clean close."""
        served = yield Served(HttpServer(WsServer(EchoServer()))).start()
        self.addCleanup(served.stop)
        factory = WebSocketClientFactory(served.url, reactor=reactor)
        factory.protocol = AutobahnEcho
        factory.done = defer.Deferred()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", served.port)
        yield endpoint.connect(factory)
        received, clean, code = yield factory.done
        self.assertEqual(received, [("héllo".encode(), False), (b"\x00\xff", True)])
        self.assertTrue(clean)
        self.assertEqual(code, 1000)


class RawTcpTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_telnet_chat_over_raw_tcp(self):
        """Chat without HttpServer relays raw bytes between plain sockets."""
        chat = Chat()
        served = yield Served(chat).start()
        self.addCleanup(served.stop)

        def clients(port):
            a = socket.create_connection(("127.0.0.1", port), timeout=seconds(5))
            b = socket.create_connection(("127.0.0.1", port), timeout=seconds(5))
            try:
                wait_for(lambda: len(chat.clients) == 2)
                a.sendall(b"hi there\r\n")
                return b.recv(100)
            finally:
                a.close()
                b.close()

        data = yield in_thread(clients, served.port)
        self.assertEqual(data, b"hi there\r\n")
