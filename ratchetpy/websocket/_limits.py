# -*- test-case-name: tests.websocket.test_close_frames,tests.websocket.test_ws_limits -*-
"""
Checks ``WsServerProtocol`` applies on top of Autobahn's: the validity of a
peer's close frame and of a control frame's length, and how many fragments
one incoming message may have.

Pure functions of their arguments, so each rule is testable on its own; the
protocol decides what to do (send 1002/1007/1009, close TCP).
"""

from __future__ import annotations

from ._engine import WebSocketServerProtocol

__all__ = [
    "MIN_MESSAGE_FRAGMENTS",
    "BYTES_PER_FRAGMENT",
    "fragment_limit",
    "close_frame_problem",
    "control_frame_problem",
]

MIN_MESSAGE_FRAGMENTS = 1024
"""Fragments every message may have, whatever the size limit."""

BYTES_PER_FRAGMENT = 64
"""Above ``MIN_MESSAGE_FRAGMENTS``, one more fragment per this many bytes of
``max_message_size``. Real clients fragment at 1-64 KiB (browsers do not
fragment at all); the Autobahn TestSuite's finest legitimate case is a
4 MiB message in 64-byte fragments (9.3.1), which this still accepts when
the size limit allows the message."""

_CONTROL_PAYLOAD_MAX = 125

# The codes a peer may put in a close frame: the ones Autobahn itself accepts
# (so this check and Autobahn's never disagree) plus the application and
# private ranges. Read with a fallback (RFC 6455 §7.4.1 and the IANA
# registry): importing ratchetpy must not fail if Autobahn renames it.
_ALLOWED_CLOSE_CODES = frozenset(
    getattr(
        WebSocketServerProtocol,
        "CLOSE_STATUS_CODES_ALLOWED",
        (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014),
    )
)


def fragment_limit(max_message_size: int, configured: int | None) -> int:
    """
    The largest number of frames one incoming message may arrive in.

    Args:
        max_message_size: Autobahn's ``maxMessagePayloadSize`` (0: unlimited).
        configured: an explicit limit, or ``None`` to derive it from
            ``max_message_size``.

    Returns:
        The limit; 0 means unlimited (no size limit and none configured).
    """
    if configured is not None:
        return configured
    if not max_message_size:
        return 0
    return max(MIN_MESSAGE_FRAGMENTS, max_message_size // BYTES_PER_FRAGMENT)


def control_frame_problem(opcode: int, length: int) -> str | None:
    """
    What is wrong with a control frame's header, or ``None``.

    Args:
        opcode: the frame's opcode (8 and above are control frames).
        length: its declared payload length.
    """
    if opcode < 8:
        return None
    if length > _CONTROL_PAYLOAD_MAX:
        return f"control frame (opcode {opcode}) declares {length} payload bytes, more than 125"
    if opcode == 8 and length == 1:
        return "close frame with a 1-byte payload (a close code takes 2)"
    return None


def close_frame_problem(code: int | None, reason: bytes | None) -> tuple[int, str] | None:
    """
    Whether a peer's close frame may be accepted (RFC 6455 §5.5.1, §7.4).

    Args:
        code: the close code, ``None`` for an empty close frame.
        reason: the raw reason bytes after the code, if any.

    Returns:
        ``None`` if valid, else the close code to fail the connection with
        (1002 for a code an endpoint may not send, 1007 for a reason that is
        not UTF-8) and a description of the problem.
    """
    if code is not None and code not in _ALLOWED_CLOSE_CODES and not 3000 <= code <= 4999:
        return 1002, f"invalid close code {code}"
    if reason:
        try:
            reason.decode("utf-8")
        except UnicodeDecodeError as exc:
            return 1007, f"close reason is not valid UTF-8 (byte {exc.start})"
    return None
