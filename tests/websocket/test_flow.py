"""
Backpressure on real loopback sockets: a client that stops reading cannot
grow the server's memory without bound, and reading can be paused.
"""

from __future__ import annotations

import os
import struct

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.testing import RecordingComponent
from tests.support.loopback import raw_ws_client
from tests.support.memory import WsPeer, ws_protocol
from tests.support.timing import seconds
from tests.support.wire import parse_server_frames, text_frame_bytes

LIMIT = 256 * 1024
CHUNK = b"x" * 65536


class Holder(RecordingComponent):
    """Keeps the open connection and fires Deferreds on open/close/drain."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.opened: Deferred = Deferred()
        self.closed: Deferred = Deferred()
        self.drained: Deferred = Deferred()
        self.pressure: list[int] = []
        self.conn = None

    def on_open(self, conn) -> None:
        super().on_open(conn)
        self.conn = conn
        self.opened.callback(conn)

    def on_close(self, conn) -> None:
        super().on_close(conn)
        self.closed.callback(conn)

    def on_backpressure(self, conn, amount) -> None:
        self.pressure.append(amount)

    def on_drain(self, conn) -> None:
        if not self.drained.called:
            self.drained.callback(conn)


class _Server:
    timeout = 30  # trial: a broken stream must fail, not hang the suite
    @inlineCallbacks
    def serve(self, component, **options):
        ws = WsServer(component, log_connections=False, max_buffered_bytes=LIMIT, **options)
        server = IoServer(HttpServer(ws), "tcp:0:interface=127.0.0.1", reactor)
        port = yield server.listen()
        self.addCleanup(server.stopService)
        return port.getHost().port

    def open_client(self, port):
        d = deferToThread(raw_ws_client, port)

        def keep(sock):
            self.addCleanup(sock.close)
            return sock

        return d.addCallback(keep)


class SlowReaderTests(_Server, TestCase):
    @inlineCallbacks
    def test_drop_policy_bounds_the_buffer_and_drains(self):
        """A non-reading client: buffered bytes stay under the limit plus one message."""
        component = Holder()
        port = yield self.serve(component, overflow_policy="drop")
        sock = yield self.open_client(port)
        conn = yield component.opened
        peak = 0
        for _ in range(400):  # 25 MiB at a client that does not read
            conn.send(CHUNK)
            peak = max(peak, conn.buffered_amount)
        self.assertLessEqual(peak, LIMIT + len(CHUNK) + 16)
        self.assertGreater(conn.dropped_messages, 300)
        self.assertEqual(len(component.pressure), 1)
        self.assertFalse(conn.closing)

        def read_all():
            # read until the server has nothing more queued for us
            sock.settimeout(seconds(1))
            total = 0
            try:
                while True:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
            except TimeoutError:
                pass
            return total

        yield deferToThread(read_all)
        yield component.drained
        self.assertLessEqual(conn.buffered_amount, LIMIT // 2)

    @inlineCallbacks
    def test_close_policy_closes_a_slow_reader_with_1008(self):
        component = Holder()
        port = yield self.serve(component, overflow_policy="close", close_timeout=0.2)
        yield self.open_client(port)  # a client that never reads
        conn = yield component.opened
        peak = 0
        for _ in range(400):
            conn.send(CHUNK)
            peak = max(peak, conn.buffered_amount)
        self.assertTrue(conn.closing)
        self.assertLessEqual(peak, LIMIT + 2 * len(CHUNK))
        # the client never answers the close: the close timeout drops it
        yield component.closed
        self.assertEqual(conn.close_code, 1006)

    @inlineCallbacks
    def test_pause_and_resume_reading(self):
        component = Holder()
        port = yield self.serve(component)
        sock = yield self.open_client(port)
        conn = yield component.opened
        conn.pause_reading()
        yield deferToThread(sock.sendall, text_frame_bytes("one") + text_frame_bytes("two"))
        yield deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(component.messages(), [])
        conn.resume_reading()
        for _ in range(200):
            if len(component.messages()) == 2:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(component.messages(), ["one", "two"])


class SendBufferUnitTests(TestCase):
    def test_bad_policy_is_refused(self):
        from ratchetpy.exceptions import ConfigurationError

        with self.assertRaises(ConfigurationError):
            WsServer(RecordingComponent(), overflow_policy="explode")
        with self.assertRaises(ConfigurationError):
            WsServer(RecordingComponent(), overflow_close_code=1000)
        with self.assertRaises(ConfigurationError):
            WsServer(RecordingComponent(), max_buffered_bytes=0)

    def test_buffered_amount_is_zero_on_memory_transport(self):
        peer = WsPeer(RecordingComponent()).open()
        conn = ws_protocol(peer.memory.conn).conn
        conn.send("x")
        self.assertEqual(conn.buffered_amount, 0)
        self.assertEqual(conn.dropped_messages, 0)
        self.assertEqual(struct.calcsize("!H"), 2)


class BroadcastIntegrityTests(_Server, TestCase):
    @inlineCallbacks
    def test_broadcast_to_a_slow_reader_keeps_every_byte_in_order(self):
        """Partial sends and queued writes: the stream stays exact, nothing doubled."""
        from ratchetpy.websocket import broadcast

        component = Holder()
        ws_port = yield self.serve(component, overflow_policy="notify")
        sock = yield self.open_client(ws_port)
        conn = yield component.opened
        messages = [struct.pack("!I", k) + os.urandom(40000) for k in range(150)]
        for m in messages:  # ~6 MB at a client that is not reading yet
            self.assertEqual(broadcast([conn], m), 1)
        self.assertGreater(conn.buffered_amount, 0)
        expected = sum(len(m) + 4 for m in messages)

        def read_all():
            sock.settimeout(seconds(10))
            data = b""
            while len(data) < expected:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            return data

        data = yield deferToThread(read_all)
        self.assertEqual([payload for _, payload in parse_server_frames(data)], messages)
        yield component.drained
