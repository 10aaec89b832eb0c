"""
Raw bytes on the wire: the client's opening handshake, client frames (masked,
or malformed on purpose), and parsers for what the server writes back.

Every builder here returns ``bytes``; the ``websockets`` ``Frame`` objects a
``WsPeer`` reports are in ``tests.support.memory`` (``text_event``,
``binary_event``).
"""

from __future__ import annotations

import struct
from typing import Any

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
"""RFC 6455's sample Sec-WebSocket-Key."""

WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
"""The Sec-WebSocket-Accept answering ``WS_KEY``."""

CLIENT_MASK = b"\x37\xfa\x21\x3d"
"""The masking key of every client frame built here (fixed, so bytes are reproducible)."""

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def handshake_request(
    path: str = "/",
    host: str = "localhost",
    method: str = "GET",
    extra: str = "",
    *,
    key: str = WS_KEY,
    end: bool = True,
) -> bytes:
    """
    A client's WebSocket opening handshake.

    Args:
        extra: more header lines, each ending ``\\r\\n``.
        end: add the blank line ending the head; ``False`` leaves it open so
            more header lines can follow.
    """
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}"
    )
    return (head + ("\r\n" if end else "")).encode()


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = CLIENT_MASK,
    length: int | None = None,
    long_form: bool = False,
) -> bytes:
    """
    One client frame as wire bytes.

    Args:
        rsv: the three RSV bits (``4`` is RSV1).
        mask: the masking key; ``None`` sends an unmasked frame (a protocol
            error from a client).
        length: the payload length the header declares, when it must differ
            from ``len(payload)``.
        long_form: declare a short payload with the 16-bit length form
            (a non-minimal length).
    """
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if n < 126 and not long_form:
        head = bytes((first, mask_bit | n))
    elif n < 0x10000:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text_frame_bytes(text: str, **options: Any) -> bytes:
    """A client text frame (``client_frame`` options apply)."""
    return client_frame(OP_TEXT, text.encode(), **options)


def binary_frame_bytes(data: bytes, **options: Any) -> bytes:
    """A client binary frame (``client_frame`` options apply)."""
    return client_frame(OP_BINARY, data, **options)


def continuation_frame_bytes(data: bytes, **options: Any) -> bytes:
    """A client continuation frame (``client_frame`` options apply)."""
    return client_frame(OP_CONTINUATION, data, **options)


def ping_frame_bytes(data: bytes = b"", **options: Any) -> bytes:
    """A client ping (``client_frame`` options apply)."""
    return client_frame(OP_PING, data, **options)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """A close frame's payload: the code, then the reason as given (maybe invalid)."""
    return struct.pack("!H", code) + reason


def close_frame_bytes(code: int | None = None, reason: bytes = b"", **options: Any) -> bytes:
    """A client close frame; no code gives an empty payload."""
    payload = b"" if code is None else close_payload(code, reason)
    return client_frame(OP_CLOSE, payload, **options)


def fragmented_bytes(opcode: int, payload: bytes, size: int) -> bytes:
    """``payload`` as one message of ``size``-byte client fragments (at least one frame)."""
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    return b"".join(
        client_frame(opcode if index == 0 else OP_CONTINUATION, piece, fin=index == len(pieces) - 1)
        for index, piece in enumerate(pieces)
    )


def server_close_bytes(code: int, reason: bytes = b"") -> bytes:
    """The exact (unmasked, short) close frame a server sends with ``code`` and ``reason``."""
    payload = close_payload(code, reason)
    return bytes((0x88, len(payload))) + payload


def parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked server frames, as (first byte, payload) pairs; fails on a truncated frame."""
    frames = []
    i = 0
    while i < len(data):
        first, n = data[i], data[i + 1] & 0x7F
        i += 2
        if n == 126:
            (n,) = struct.unpack("!H", data[i : i + 2])
            i += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", data[i : i + 8])
            i += 8
        assert i + n <= len(data), f"truncated frame in {data[:80]!r}"
        frames.append((first, data[i : i + n]))
        i += n
    return frames


def parse_server_bytes(data: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Everything a client read: the HTTP response head, then the frames after it."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no HTTP response head in {data[:80]!r}"
    return head, parse_server_frames(rest)
