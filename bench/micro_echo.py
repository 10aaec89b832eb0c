"""
In-process echo microbenchmark: the per-message CPU of ratchetpy's data path
alone, without sockets or a load client, so it is far less noisy than
``run.py`` on a shared machine.

    python bench/micro_echo.py                 # the ratchetpy first on sys.path
    PYTHONPATH=/path/to/other/tree python bench/micro_echo.py
    python bench/micro_echo.py --base c1f0b93 [--runs 7] [--tree PATH]

One connection through ``IoServer(HttpServer(WsServer(echo)))`` on a
StringTransport; 32-byte masked text frames are fed one per read and echoed
(the component reads ``conn.http_request.path`` per message, as
``servers.py`` does). Prints the best of 7 timings of 100,000 messages
(``--repeat``, ``-n``; on a shared machine many short timings, e.g.
``-n 20000 --repeat 35``, find quiet moments more often).
Compare two trees by running it alternately a few times; take the minima.

``--base REF`` does that: it unpacks ``git archive REF`` of the tree's
repository (with a C helper if the tree has one built, as ``run.py --base``
does), then runs this benchmark ``--runs`` times in each tree, alternating,
each in its own process, and prints every pair, the minima and the median
of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

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


def measure(n: int = N, repeat: int = 7) -> float:
    """The best of ``repeat`` timings of ``n`` messages, in seconds per message."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import MemoryReactorClock, StringTransport

    from ratchetpy import HttpServer, IoServer, WsServer

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
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            receive(frame)
        transport.clear()
        best = min(best, time.perf_counter() - start)
    return best / n


def run_in(tree: str, n: int, repeat: int) -> float:
    """``measure()`` in a new process importing ratchetpy from ``tree``, in seconds."""
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "-n", str(n), "--repeat", str(repeat)],
        env=env, cwd="/", capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    return float(out.split()[0]) / 1e6


def compare(tree: str, ref: str, runs: int, n: int, repeat: int) -> None:
    sys.path.insert(0, HERE)
    from run import git, prepare_base

    tmp = tempfile.mkdtemp(prefix="ratchetpy-micro-base-")
    try:
        base = prepare_base(tree, ref, tmp)
        head = git(tree, "rev-parse", "--short", "HEAD")
        dirty = " +changes" if git(tree, "status", "--porcelain", "--untracked-files=no") else ""
        print(f"tree {tree} at {head}{dirty} vs {ref} ({git(tree, 'rev-parse', '--short', ref)}); "
              f"{runs} runs each, alternating; best of {repeat} x {n:,} messages per run")
        pairs = []
        for i in range(runs):
            now, then = run_in(tree, n, repeat), run_in(base, n, repeat)
            pairs.append((now, then))
            print(f"  run {i + 1}: {now * 1e6:.3f} vs {then * 1e6:.3f} us/msg, ratio {now / then:.3f}",
                  flush=True)
        ratios = [a / b for a, b in pairs]
        best_now, best_then = min(a for a, _ in pairs), min(b for _, b in pairs)
        print(f"minima: {best_now * 1e6:.3f} vs {best_then * 1e6:.3f} us/msg "
              f"({best_now / best_then:.3f}x); median of the per-run ratios {statistics.median(ratios):.3f}x "
              f"(from {min(ratios):.3f} to {max(ratios):.3f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", metavar="REF", help="compare with git REF of --tree")
    parser.add_argument("--runs", type=int, default=7, help="with --base: runs per tree")
    parser.add_argument("--tree", default=os.path.dirname(HERE), help="with --base: the tree to measure")
    parser.add_argument("-n", type=int, default=N, help="messages per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per run (the best counts)")
    args = parser.parse_args()
    if args.base:
        compare(os.path.abspath(args.tree), args.base, args.runs, args.n, args.repeat)
    else:
        print(f"{measure(args.n, args.repeat) * 1e6:.3f} us/msg")


if __name__ == "__main__":
    main()
