"""
Pure frame helpers: the unmasked, unfragmented frames a server sends (RFC
6455 §5.2) and the close codes an endpoint may send (§7.4). No Autobahn.
"""

from __future__ import annotations

import struct

__all__ = ["encode_frame", "encode_header", "is_valid_close_code", "OP_TEXT", "OP_BINARY"]

OP_TEXT = 0x1
OP_BINARY = 0x2

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def encode_header(opcode: int, length: int) -> bytes:
    """The header of a final, unmasked server frame of ``length`` bytes."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 0x10000:
        return _PACK_16(0x80 | opcode, 126, length)
    return _PACK_64(0x80 | opcode, 127, length)


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final (FIN) frame with ``opcode`` and ``payload``, no mask, no RSV bits."""
    return encode_header(opcode, len(payload)) + payload


def is_valid_close_code(code: int) -> bool:
    """True for codes an endpoint may send (RFC 6455 §7.4, IANA registry)."""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999
