"""
phpws test helpers: an in-memory App with the three phpws resources
(``PhpWsMemory``), and a raw-socket client reading exactly what one
``recv()`` returns (``RawClient``), as phpWebSocketServer's clients do.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.app import App
from ratchetpy.phpws import PhpWsServer, PhpWsSettings
from tests.support.memory import MemoryConnection
from tests.support.processes import Twistd
from tests.support.timing import seconds
from tests.support.wire import (
    OP_TEXT,
    client_frame,
    handshake_request,
    parse_server_frames,
)

NEXT = b'{"opcode":"next","fyi":""}'


def phpws_request(
    path: str = "/web",
    *,
    php: bool = False,
    ident: str | None = None,
    origin: str | None = "http://127.0.0.1",
    host: str = "127.0.0.1",
    extra: str = "",
) -> bytes:
    """A handshake as phpWebSocketServer's clients send it (PHP: Client-Type and Ident)."""
    lines = extra
    if origin is not None:
        lines += f"Origin: {origin}\r\n"
    if php:
        lines += f"Client-Type: php\r\nIdent: {ident or ''}\r\nallowRemote: ''\r\n"
    elif ident is not None:
        lines += f"Ident: {ident}\r\n"
    return handshake_request(path, host=host, extra=lines)


def text(payload: str | bytes) -> bytes:
    """A masked client text frame."""
    return client_frame(OP_TEXT, payload.encode() if isinstance(payload, str) else payload)


class MemoryClient:
    """One client of a ``PhpWsMemory`` server."""

    def __init__(self, memory: MemoryConnection) -> None:
        self.memory = memory
        raw = memory.take()
        self.head, _, rest = raw.partition(b"\r\n\r\n")
        self._pending = rest

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    @property
    def connected(self) -> bool:
        return bool(self.memory.transport.connected)

    @property
    def conn(self) -> Any:
        from tests.support.memory import ws_protocol

        return ws_protocol(self.memory.conn).conn

    def frames(self) -> list[tuple[int, bytes]]:
        """Every frame written to this client since the last call, as (first byte, payload)."""
        data = self._pending + self.memory.take()
        self._pending = b""
        return parse_server_frames(data)

    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.frames()]

    def send(self, payload: str | bytes) -> None:
        self.memory.feed(text(payload), one_byte_at_a_time=False)

    def feed(self, data: bytes) -> None:
        self.memory.feed(data, one_byte_at_a_time=False)


class PhpWsMemory:
    """
    An ``App`` on a MemoryReactorClock routing ``/``, ``/web`` and ``/php``
    to phpws (one hub), the catch-all after them, as ``twistd ratchetpy``
    does for ``--route /web=phpws`` and friends.
    """

    def __init__(self, settings: PhpWsSettings | None = None, resource: Any = None) -> None:
        self.clock = MemoryReactorClock()
        self.settings = settings or PhpWsSettings()
        self.app = App("*", reactor=self.clock, listen=["tcp:0:interface=127.0.0.1"], log_connections=False)
        self.servers = {}
        for path in ("/", "/web", "/php"):
            server = PhpWsServer(resource if path == "/web" else None, settings=self.settings, log_connections=False)
            self.servers[path] = server
            self.app.route(path, server, ["*"])
        self.app.route(
            "/{unknown<.*>}",
            PhpWsServer(catch_all=True, settings=self.settings, log_connections=False),
            ["*"],
        )

    @property
    def hub(self) -> Any:
        return self.app.hub

    @property
    def clients(self) -> Any:
        return self.servers["/web"].clients

    def connect(self, path: str = "/web", *, peer: str = "127.0.0.1", **request: Any) -> MemoryClient:
        memory = MemoryConnection(
            None, server=self.app.servers[0], peer=IPv4Address("TCP", peer, 40000)
        )
        memory.feed(phpws_request(path, **request), one_byte_at_a_time=False)
        return MemoryClient(memory)

    def advance(self, seconds: float = 0.05) -> None:
        """Let the clock run in 10 ms steps (the pacing of PHP-type clients, pings)."""
        steps = max(1, round(seconds / 0.01))
        for _ in range(steps):
            self.clock.advance(seconds / steps)

    def ready(self, path: str = "/web", **request: Any) -> tuple[MemoryClient, str]:
        """A client that got its ready; ``(client, uuid)``."""
        client = self.connect(path, **request)
        if request.get("php"):
            self.advance(self.settings.php_gap + 0.02)
        frames = client.payloads()
        assert frames and json.loads(frames[0])["opcode"] == "ready", frames
        return client, json.loads(frames[0])["uuid"]


class RawClient:
    """
    A blocking raw-socket client on 127.0.0.1 that records what each
    ``recv()`` returned, so a test sees how frames were split into reads.
    """

    def __init__(self, port: int, path: str = "/web", **request: Any) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=seconds(5))
        self.sock.sendall(phpws_request(path, **request))
        self.buffer = b""

    def read_once(self, size: int = 65536) -> bytes:
        """One ``recv()`` (b"" at EOF)."""
        return self.sock.recv(size)

    def read_head(self) -> tuple[bytes, bytes]:
        """Read until the 101's end; ``(head, whatever came in the same reads after it)``."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed during the handshake: {data!r}")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        self.buffer = rest
        return head, rest

    def frame(self) -> tuple[int, bytes]:
        """The next whole frame (reading as needed)."""
        while True:
            parsed = _one_frame(self.buffer)
            if parsed is not None:
                frame, used = parsed
                self.buffer = self.buffer[used:]
                return frame
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed with {self.buffer!r} unread")
            self.buffer += chunk

    def packet(self) -> dict[str, Any]:
        first, payload = self.frame()
        assert first == 0x81, (first, payload)
        value: dict[str, Any] = json.loads(payload)
        return value

    def send(self, payload: str | bytes) -> None:
        self.sock.sendall(text(payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def at_eof(self) -> bool:
        """True if the server closed (whatever was left unread is discarded)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def silent(self, wait: float = 0.3) -> bool:
        """True if nothing arrives within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(seconds(5))
        self.buffer += chunk
        return False

    def close(self) -> None:
        self.sock.close()


def _one_frame(data: bytes) -> tuple[tuple[int, bytes], int] | None:
    if len(data) < 2:
        return None
    first, n = data[0], data[1] & 0x7F
    i = 2
    if n == 126:
        if len(data) < 4:
            return None
        (n,) = struct.unpack("!H", data[2:4])
        i = 4
    elif n == 127:
        if len(data) < 10:
            return None
        (n,) = struct.unpack("!Q", data[2:10])
        i = 10
    if len(data) < i + n:
        return None
    return (first, data[i : i + n]), i + n


TEST_PHP_GAP = seconds(0.15)
"""The PHP-client gap of the tests' servers: wider than the default 0.04 s so
that a test process the loaded machine deschedules for a while still reads
the 101 alone (the 5 ms-late readers of the tests are what the gap is for)."""


def serve_phpws(tmp: Path, *args: str) -> Iterator[Twistd]:
    """``twistd -n ratchetpy`` with ``/``, ``/web`` and ``/php`` = phpws (and ``args``), until the generator ends."""
    server = Twistd(
        tmp, "--route", "/=phpws", "--route", "/web=phpws", "--route", "/php=phpws",
        "--phpws-php-gap", str(TEST_PHP_GAP), *args,
    )
    try:
        server.wait_listening()
        yield server
    finally:
        server.kill()
