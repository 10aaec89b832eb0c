# -*- test-case-name: tests.phpws.test_packets -*-
"""
phpWebSocketServer's JSON packets: what its clients send and read.

Every packet is one JSON text message with an ``opcode``. The server sends
``ready`` (with the client's uuid) after the handshake, ``next`` after every
data message, and ``close`` (optionally with an ``error``) before it drops
a connection. Forwarded packets (``echo``, ``feedback``) are re-encoded as
PHP's ``json_encode`` does with default flags, which clients parse the same
as the original text: ``/`` becomes ``\\/``, non-ASCII becomes ``\\uXXXX``,
whitespace goes, key order and unknown keys stay.
"""

from __future__ import annotations

import json
from typing import Any

from ..exceptions import PhpWsPacketError

__all__ = [
    "NEXT",
    "PING_PAYLOAD",
    "InvalidPacket",
    "close_packet",
    "decode_packet",
    "php_json_encode",
    "ready_packet",
]

NEXT = '{"opcode":"next","fyi":""}'
"""The acknowledgement of every inbound data message (exactly these bytes)."""

PING_PAYLOAD = b'{"opcode":"PING"}'
"""The payload of the server's ping frames to browser clients."""


InvalidPacket = PhpWsPacketError
"""A data message that is not JSON (or empty): the connection is closed."""


def php_json_encode(value: Any) -> str:
    """
    ``value`` encoded as PHP's ``json_encode($value)`` with default flags.

    Non-ASCII characters become ``\\uXXXX`` escapes, ``/`` becomes ``\\/``,
    there is no whitespace; dicts keep their key order.
    """
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    # "/" occurs only inside strings in JSON text, so this touches strings only.
    return text.replace("/", "\\/")


def _no_constants(name: str) -> Any:
    # PHP's json_decode refuses NaN and Infinity; so do we.
    raise InvalidPacket(f"{name} is not JSON")


def decode_packet(message: str | bytes) -> Any:
    """
    Decode one data message (text, or binary holding UTF-8 JSON).

    Returns:
        The JSON value: usually a dict with an ``opcode``, but arrays,
        numbers and strings are valid packets too (they are only acked).

    Raises:
        InvalidPacket: the message is empty, not UTF-8, or not JSON.
    """
    if isinstance(message, (bytes, bytearray, memoryview)):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPacket(f"a binary message that is not UTF-8 ({exc.reason})") from None
    if not message.strip():
        raise InvalidPacket("an empty message")
    try:
        return json.loads(message, parse_constant=_no_constants)
    except InvalidPacket:
        raise
    except ValueError as exc:
        raise InvalidPacket(f"not JSON ({exc})") from None
    except RecursionError:
        raise InvalidPacket("JSON nested too deeply") from None


def ready_packet(uuid: str) -> str:
    """``{"opcode":"ready","uuid":...}``: the first message of every client."""
    return php_json_encode({"opcode": "ready", "uuid": uuid})


def close_packet(error: str | None = None) -> str:
    """``{"opcode":"close"}``, or with ``"error"``: sent before the server drops a client."""
    if error is None:
        return '{"opcode":"close"}'
    return php_json_encode({"opcode": "close", "error": error})
