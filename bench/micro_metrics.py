"""
What one Prometheus scrape costs the server, in process, without sockets.

    python bench/micro_metrics.py [--connections 100,1000,10000]

For each count, that many WebSocket connections are opened through
``IoServer(HttpServer(WsServer(echo)))`` on StringTransports (each having
echoed one message), and a full scrape is timed: a ``GET /metrics`` fed to
the ``MetricsController`` routed on the same stack, response rendered
(``ratchetpy.hub.metrics``: the hub's counters read at scrape time, plus the
process and GC metrics). Prints the best of 7 timings of 50 scrapes, with and
without the process metrics, and what one scrape per second is as a share of
one CPU second.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ratchetpy import HttpServer, IoServer, Router, WsServer
from ratchetpy.hub.metrics import MetricsController, metrics_registry

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
MASK = b"\x01\x02\x03\x04"
FRAME = bytes([0x81, 0x80 | 5]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"hello"))


class Echo:
    def on_open(self, conn: Any) -> None:
        pass

    def on_message(self, conn: Any, msg: Any) -> None:
        conn.send(msg)

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        pass


def connect(server: IoServer, data: bytes) -> tuple[Any, StringTransport]:
    protocol = server.protocol_factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1))
    protocol.makeConnection(transport)
    protocol.dataReceived(data)
    return protocol, transport


def scrape_cost(connections: int, process: bool) -> float:
    """Best seconds per scrape with ``connections`` open WebSockets."""
    reactor = MemoryReactorClock()
    ws = WsServer(Echo(), log_connections=False)
    router = Router()
    router.add("/", ws)
    router.add("/metrics", MetricsController(metrics_registry(ws.hub.counters, ws.hub, process=process)))
    server = IoServer(HttpServer(router), 0, reactor=reactor)
    keep = [connect(server, HANDSHAKE + FRAME) for _ in range(connections)]
    assert ws.hub.counters.open == connections
    protocol, transport = connect(server, SCRAPE)
    body = transport.value()
    assert body.startswith(b"HTTP/1.1 200 OK"), body[:200]
    assert f"ratchetpy_connections_open {connections:.1f}".encode() in body
    best = float("inf")
    n = 50
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(n):
            connect(server, SCRAPE)
        best = min(best, (time.perf_counter() - start) / n)
    del keep
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", default="100,1000,10000")
    args = parser.parse_args()
    for count in (int(c) for c in args.connections.split(",")):
        with_process = scrape_cost(count, True)
        alone = scrape_cost(count, False)
        print(
            f"{count:6d} connections: {with_process * 1e3:6.3f} ms per scrape "
            f"({alone * 1e3:6.3f} ms without process/GC metrics); "
            f"one scrape per second = {with_process * 100:.3f} % of a CPU"
        )


if __name__ == "__main__":
    main()
