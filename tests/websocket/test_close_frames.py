"""
Invalid close and control frames from a hostile peer, and how the server
ends the TCP connection.

An invalid close frame (1-byte payload, a code an endpoint may not send,
a reason that is not UTF-8, a payload over 125 bytes) gets a close frame
with 1002 (1007 for the reason), after everything queued before it (the 101,
earlier messages), then a clean TCP close: on the fast and the stock path,
over TLS and with permessage-deflate. Before the fix the stock path answered
with a bare RST (Autobahn read the invalid frame as the reply to its own
1002 and aborted the connection, discarding the queued bytes).
"""

from __future__ import annotations

import socket
import ssl
import zlib
from typing import Any

import pytest
from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket._limits import close_frame_problem, control_frame_problem
from tests.support.memory import MemoryConnection, Transport, open_memory, ws_protocol
from tests.support.timing import seconds
from tests.support.tls import self_signed
from tests.support.wire import (
    client_frame,
    close_payload,
    handshake_request,
    parse_server_bytes,
    server_close_bytes,
)

HANDSHAKE = handshake_request(end=False)  # more header lines may follow
DEFLATE_OFFER = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"


LEN1 = b"received close control frame with payload len 1"  # Autobahn's wording
OVER_125 = b"control frame with payload length > 125 octets"  # Autobahn's wording

# (name, frame the client sends, close frame the server must answer with)
INVALID_CLOSES: list[tuple[str, bytes, bytes]] = [
    ("1-byte payload", client_frame(8, b"\x03"), server_close_bytes(1002, LEN1)),
    *[
        (f"code {code}", client_frame(8, close_payload(code)),
         server_close_bytes(1002, b"invalid close code %d" % code))
        for code in (0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535)
    ],
    ("reason not UTF-8", client_frame(8, close_payload(1000, b"ok \xff\xfe")),
     server_close_bytes(1007, b"close reason is not valid UTF-8 (byte 3)")),
    ("reason cut inside a code point", client_frame(8, close_payload(1000, "é".encode()[:1])),
     server_close_bytes(1007, b"close reason is not valid UTF-8 (byte 0)")),
    ("126-byte payload", client_frame(8, close_payload(1000, b"a" * 124)),
     server_close_bytes(1002, OVER_125)),
]


def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


class InvalidCloseOverLoopback(TestCase):
    """A real listening server and a raw-socket client per case."""

    timeout = 60

    @inlineCallbacks
    def serve(self, tls: bool = False, **options: Any) -> Any:
        self.component = RecordingComponent(echo=True)
        ws = WsServer(self.component, log_connections=False, **options)
        if tls:
            cert, key = self.certificate()
            endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        else:
            endpoint = "tcp:0:interface=127.0.0.1"
        server = IoServer(HttpServer(ws), endpoint, reactor)
        port = yield server.listen()
        self.addCleanup(server.stopService)
        return port.getHost().port

    def certificate(self) -> tuple[str, str]:
        return self_signed()

    @staticmethod
    def exchange(port: int, tls: bool, deflate: bool, bad: bytes, one_write: bool) -> bytes:
        """Handshake, one text message, then ``bad``; everything read until EOF."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=seconds(5))
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        head = HANDSHAKE + (DEFLATE_OFFER if deflate else b"") + b"\r\n"
        hello = client_frame(1, b"hello")
        received = b""
        with sock:
            if one_write:
                # The hostile shape: all in one read, before any reply is written.
                sock.sendall(head + hello + bad)
            else:
                sock.sendall(head)
                while b"\r\n\r\n" not in received:
                    chunk = sock.recv(4096)
                    assert chunk, "closed during the handshake"
                    received += chunk
                sock.sendall(hello)
                while b"hello" not in received and b"\xcaH\xcd" not in received:
                    received += sock.recv(4096)
                sock.sendall(bad)
            while True:
                chunk = sock.recv(65536)  # ConnectionResetError here is the bug
                if not chunk:
                    return received
                received += chunk

    @inlineCallbacks
    def check_all(self, tls: bool = False, deflate: bool = False, **options: Any) -> Any:
        port = yield self.serve(tls, **options)
        expected_events = 0
        for name, bad, expected_close in INVALID_CLOSES:
            for one_write in (True, False):
                data = yield deferToThread(self.exchange, port, tls, deflate, bad, one_write)
                head, frames = parse_server_bytes(data)
                case = f"{name}, {'one write' if one_write else 'separate writes'}"
                self.assertTrue(head.startswith(b"HTTP/1.1 101 "), case)
                self.assertEqual(len(frames), 2, f"{case}: {frames!r}")
                (echo_first, echo), (close_first, close) = frames
                if deflate:
                    self.assertEqual((echo_first, inflate(echo)), (0xC1, b"hello"), case)
                else:
                    self.assertEqual((echo_first, echo), (0x81, b"hello"), case)
                self.assertEqual(bytes((close_first, len(close))) + close, expected_close, case)
                expected_events += 1
                yield self.closed(expected_events)
        closes = [event[1] for event in self.component.events if event[0] == "close"]
        # The peer's close frame was invalid: no clean closing handshake.
        self.assertEqual({conn.close_code for conn in closes}, {1006})

    @inlineCallbacks
    def closed(self, count: int) -> Any:
        for _ in range(int(seconds(5) / 0.01)):
            if sum(1 for event in self.component.events if event[0] == "close") >= count:
                return
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.fail(f"on_close did not run for connection {count}")

    def test_fast_path(self) -> Any:
        return self.check_all()

    def test_stock_path(self) -> Any:
        return self.check_all(fast_path=False)

    def test_tls(self) -> Any:
        return self.check_all(tls=True)

    def test_tls_stock_path(self) -> Any:
        return self.check_all(tls=True, fast_path=False)

    def test_compression(self) -> Any:
        return self.check_all(deflate=True, compression="deflate")

    @inlineCallbacks
    def test_valid_close_still_echoed_and_clean(self) -> Any:
        """Control case: a valid close is echoed, the app sees its code, TCP ends with FIN."""
        port = yield self.serve()
        bad = client_frame(8, close_payload(4001, "café".encode()))
        data = yield deferToThread(self.exchange, port, False, False, bad, True)
        _, frames = parse_server_bytes(data)
        self.assertEqual(frames[-1], (0x88, close_payload(4001, "café".encode())))
        yield self.closed(1)
        self.assertEqual(self.component.events[-1][1].close_code, 4001)


# -- deterministic cases on an in-memory transport ------------------------------


@pytest.mark.parametrize("fast_path", [True, False])
def test_oversize_control_frame_is_not_buffered(fast_path: bool) -> None:
    """A ping declaring 2**40 bytes: 1002 and TCP closed at the header, payload never kept."""
    memory = open_memory(fast_path=fast_path)
    protocol = ws_protocol(memory.conn)
    memory.feed(client_frame(9, b"", length=1 << 40) + b"\x00" * 65536, False)
    assert memory.take() == server_close_bytes(1002, OVER_125)
    assert not memory.transport.connected
    assert not memory.transport.aborted
    memory.feed(b"\x00" * 65536, False)  # a read already under way when we closed
    assert len(protocol.data) < 70000
    assert [call for call in memory.reactor.getDelayedCalls() if call.active()] == []


def test_completed_closing_handshake_closes_gracefully() -> None:
    """Server-initiated close answered by the peer: FIN after the queue, not an RST."""
    component = RecordingComponent()
    memory = open_memory(component)
    conn = component.events[0][1]
    conn.send("last words")
    conn.close(1001, "bye")
    assert memory.take() == b"\x81\x0alast words" + server_close_bytes(1001, b"bye")
    memory.feed(client_frame(8, close_payload(1001)), False)
    assert not memory.transport.connected
    assert not memory.transport.aborted  # Autobahn would abortConnection() here
    assert conn.close_code == 1001


def test_invalid_reply_to_our_close_sends_no_second_close() -> None:
    """We closed first; the peer replies with code 999: TCP closes, no second close frame."""
    component = RecordingComponent()
    memory = open_memory(component)
    conn = component.events[0][1]
    conn.close(1000)
    assert memory.take() == server_close_bytes(1000, b"")
    memory.feed(client_frame(8, close_payload(999)), False)
    assert memory.take() == b""
    assert not memory.transport.connected and not memory.transport.aborted
    assert conn.close_code == 1006


def test_frames_after_an_invalid_close_are_not_processed() -> None:
    """Nothing after the invalid close frame reaches the app or gets an answer."""
    component = RecordingComponent()
    memory = open_memory(component)
    memory.feed(
        client_frame(8, close_payload(1005)) + client_frame(1, b"late") + client_frame(9, b"p"),
        False,
    )
    assert memory.take() == server_close_bytes(1002, b"invalid close code 1005")
    assert component.kinds() == ["open", "close"]


class StuckTransport(Transport):
    """A transport whose peer has stopped reading: loseConnection never completes."""

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.aborted = True
        super().loseConnection()


def stuck_memory(component: Any, **options: Any) -> MemoryConnection:
    memory = MemoryConnection(HttpServer(WsServer(component, **options)), transport_class=StuckTransport)
    memory.feed(handshake_request(), False)
    assert memory.take().startswith(b"HTTP/1.1 101 ")
    return memory


@pytest.mark.parametrize(
    "frame",
    [client_frame(8, close_payload(1000)), client_frame(8, close_payload(999))],
    ids=["valid close", "invalid close"],
)
def test_peer_that_stops_reading_is_aborted_after_close_timeout(frame: bytes) -> None:
    """A graceful close the peer never lets finish is aborted after close_timeout."""
    component = RecordingComponent()
    memory = stuck_memory(component, close_timeout=3)
    memory.feed(frame, False)
    assert memory.transport.disconnecting and not memory.transport.aborted
    memory.reactor.advance(2.9)
    assert not memory.transport.aborted
    memory.reactor.advance(0.2)
    assert memory.transport.aborted
    assert component.kinds() == ["open", "close"]
    assert memory.reactor.getDelayedCalls() == []


def test_drain_timer_cancelled_when_the_close_completes() -> None:
    component = RecordingComponent()
    memory = open_memory(component)
    memory.feed(client_frame(8, close_payload(1000)), False)
    assert not memory.transport.connected
    assert [call for call in memory.reactor.getDelayedCalls() if call.active()] == []


# -- the rules themselves ----------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999])
def test_codes_a_peer_may_send(code: int) -> None:
    assert close_frame_problem(code, None) is None
    assert close_frame_problem(code, "fine ✓".encode()) is None


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65535])
def test_codes_a_peer_may_not_send(code: int) -> None:
    # 1014 is registered with IANA but Autobahn refuses it; this check agrees with Autobahn.
    assert close_frame_problem(code, None) == (1002, f"invalid close code {code}")


def test_empty_close_and_bad_reason() -> None:
    assert close_frame_problem(None, None) is None
    assert close_frame_problem(1000, b"\xed\xa0\x80") == (1007, "close reason is not valid UTF-8 (byte 0)")


@pytest.mark.parametrize(
    ("opcode", "length", "invalid"),
    [(8, 0, False), (8, 1, True), (8, 2, False), (8, 125, False), (8, 126, True),
     (9, 125, False), (9, 126, True), (10, 1 << 40, True), (1, 1 << 40, False), (0, 1, False)],
)
def test_control_frame_header_rule(opcode: int, length: int, invalid: bool) -> None:
    assert (control_frame_problem(opcode, length) is not None) is invalid
