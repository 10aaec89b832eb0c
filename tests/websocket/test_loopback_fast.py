"""Real loopback sockets with independent clients: the fast path and write-through on TCP."""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.testing import RecordingComponent
from tests.support.memory import ws_protocol
from tests.support.timing import seconds
from tests.support.tls import self_signed


class LoopbackTests(TestCase):
    @inlineCallbacks
    def serve(self, component, **options):
        ws = WsServer(component, log_connections=False, **options)
        server = IoServer(HttpServer(ws), "tcp:0:interface=127.0.0.1", reactor)
        port = yield server.listen()
        self.addCleanup(server.stopService)
        return f"ws://127.0.0.1:{port.getHost().port}/"

    @inlineCallbacks
    def test_echo_many_sizes_and_pipelined(self):
        component = RecordingComponent(echo=True)
        url = yield self.serve(component)
        sizes = [0, 1, 125, 126, 1000, 65535, 65536, 300000]
        payloads = [os.urandom(n) for n in sizes] + ["é" * 100, "text"]

        def client():
            with connect(url, compression=None, open_timeout=seconds(5), max_size=None) as ws:
                for p in payloads:  # pipelined: all sent before any is read
                    ws.send(p)
                return [ws.recv(timeout=seconds(5)) for _ in payloads]

        got = yield deferToThread(client)
        self.assertEqual(got, payloads)
        protocol = ws_protocol(component.events[0][1])
        self.assertTrue(protocol._fast_rx and protocol._fast_tx)
        from twisted.internet import tcp

        self.assertIs(type(protocol.transport), tcp.Server)

    @inlineCallbacks
    def test_deflate_with_websockets_client_and_limit_after_inflation(self):
        component = RecordingComponent(echo=True)
        url = yield self.serve(component, compression="deflate", max_message_size=10000)

        def client():
            # the websockets client offers permessage-deflate by default
            with connect(url, open_timeout=seconds(5)) as ws:
                extensions = ws.response.headers["Sec-WebSocket-Extensions"]
                ws.send("small " * 100)
                echoed = ws.recv(timeout=seconds(5))
                # 100 KB of zeros deflates to ~100 bytes on the wire
                ws.send(b"\x00" * 100000)
                try:
                    ws.recv(timeout=seconds(5))
                except ConnectionClosedError as exc:
                    return extensions, echoed, exc.rcvd.code
                return extensions, echoed, None

        extensions, echoed, code = yield deferToThread(client)
        self.assertIn("permessage-deflate", extensions)
        self.assertIn("client_max_window_bits=12", extensions)
        pmd = ws_protocol(component.events[0][1])._perMessageCompress
        self.assertEqual((pmd.server_max_window_bits, pmd.client_max_window_bits), (12, 12))
        self.assertEqual(pmd.mem_level, 4)
        self.assertEqual(echoed, "small " * 100)
        self.assertEqual(code, 1009)


class TlsTests(TestCase):
    @inlineCallbacks
    def test_fast_path_over_tls_writes_through_the_transport(self):
        """TLS: frames still take the fast receive path; sends go through TLS's write."""
        import ssl

        cert, key = self_signed()
        component = RecordingComponent(echo=True)
        ws = WsServer(component, log_connections=False)
        server = IoServer(
            HttpServer(ws), f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}", reactor
        )
        port = yield server.listen()
        self.addCleanup(server.stopService)
        url = f"wss://127.0.0.1:{port.getHost().port}/"
        payloads = ["tls", os.urandom(70000), "é" * 1000]

        def client():
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with connect(url, ssl=context, compression=None, open_timeout=seconds(5), max_size=None) as c:
                for p in payloads:
                    c.send(p)
                return [c.recv(timeout=seconds(5)) for _ in payloads]

        got = yield deferToThread(client)
        self.assertEqual(got, payloads)
        protocol = ws_protocol(component.events[0][1])
        self.assertTrue(protocol._fast_rx)
        from twisted.internet import tcp

        self.assertIsNot(type(protocol.transport), tcp.Server)
