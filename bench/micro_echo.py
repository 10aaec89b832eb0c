"""
In-process echo microbenchmark: the per-message CPU of ratchetpy's data path
alone, without sockets or a load client, so it is far less noisy than
``run.py`` on a shared machine.

    python bench/micro_echo.py                 # the ratchetpy first on sys.path
    PYTHONPATH=/path/to/other/tree python bench/micro_echo.py

One connection through ``IoServer(HttpServer(WsServer(echo)))`` on a
StringTransport; 32-byte masked text frames are fed one per read and echoed
(the component reads ``conn.http_request.path`` per message, as
``servers.py`` does). Prints the best of 7 timings of 100,000 messages.
Compare two trees by running it alternately a few times; take the minima.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from ratchetpy import HttpServer, IoServer, WsServer

N = 100_000
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Echo:
    def on_open(self, conn: Any) -> None:
        pass

    def on_message(self, conn: Any, msg: Any) -> None:
        if conn.http_request.path == "/broadcast":
            return
        conn.send(msg)

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        pass


def main() -> None:
    reactor = MemoryReactorClock()
    server = IoServer(HttpServer(WsServer(Echo(), log_connections=False)), 0, reactor=reactor)
    protocol = server.protocol_factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1))
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE)
    transport.clear()
    mask = b"\x01\x02\x03\x04"
    payload = b"x" * 32
    frame = bytes([0x81, 0x80 | 32]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    receive = protocol.dataReceived
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(N):
            receive(frame)
        transport.clear()
        best = min(best, time.perf_counter() - start)
    print(f"{best / N * 1e6:.3f} us/msg")


if __name__ == "__main__":
    main()
