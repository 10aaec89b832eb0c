"""Swoole-style servers in memory: a ``Server`` on a clock, its WebSocket peers and raw HTTP connections."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from ratchetpy.swoole import Server
from tests.support.memory import MemoryConnection, WsPeer


def memory_server(**settings: Any) -> Server:
    """A ``Server`` on a ``MemoryReactorClock`` whose message handler echoes (replace it with ``on``)."""
    settings.setdefault("log_connections", False)
    server = Server("127.0.0.1", 0, reactor=MemoryReactorClock(), **settings)
    server.on("message", lambda s, frame: s.push(frame.fd, frame.data))
    return server


def peer(server: Server, path: str = "/", **options: Any) -> WsPeer:
    """A ``websockets`` sans-I/O client of ``server`` (its App is built on first use)."""
    app = server.app
    return WsPeer(stack=app.blacklist, server=app.servers[0], path=path, **options)


def raw(server: Server, data: bytes = b"", one_byte_at_a_time: bool = False) -> MemoryConnection:
    """A raw connection to ``server`` that was sent ``data``."""
    app = server.app
    memory = MemoryConnection(None, server=app.servers[0])
    if data:
        memory.feed(data, one_byte_at_a_time)
    return memory


def http_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Parse one response: status, headers by lower-cased name (repeats joined by '\\n'), body."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = headers[key] + "\n" + value.strip() if key in headers else value.strip()
    return status, headers, body


def only_fd(server: Server) -> str:
    """The id of the one connection ``server`` has."""
    (fd,) = server.connections
    return fd
