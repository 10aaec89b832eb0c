"""Encoding of the unmasked, unfragmented frames a server sends (RFC 6455 §5.2)."""

from __future__ import annotations

import struct

__all__ = ["encode_frame", "OP_TEXT", "OP_BINARY"]

OP_TEXT = 0x1
OP_BINARY = 0x2

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final (FIN) frame with ``opcode`` and ``payload``, no mask, no RSV bits."""
    first = 0x80 | opcode
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 0x10000:
        return _PACK_16(first, 126, length) + payload
    return _PACK_64(first, 127, length) + payload
