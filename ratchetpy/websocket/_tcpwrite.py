"""
Writes straight to a TCP socket when Twisted has nothing buffered.

Used by the fast path only (see ``_selfcheck``): it reads Twisted
``tcp.Connection`` internals listed in ``_selfcheck.TRANSPORT_NAMES``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

__all__ = ["DIRECT_WRITE_TYPES", "direct_write", "buffered_bytes"]

DIRECT_WRITE_TYPES: tuple[type, ...] = (tcp.Server,)
"""Transport types (exactly these, not subclasses) eligible for write-through."""


def direct_write(transport: Any, data: bytes) -> bool:
    """
    Write ``data`` to ``transport``, straight to the socket when nothing is
    buffered (saves a reactor turn and two epoll_ctl calls per message).

    Order is preserved: once anything is buffered, everything goes through
    ``transport.write``. TLS and other transports always use ``write``.
    Returns True when some bytes are left in the transport's buffer.
    """
    if (
        type(transport) in DIRECT_WRITE_TYPES
        and not transport.dataBuffer
        and not transport._tempDataLen
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
    ):
        try:
            sent = transport.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # Let Twisted find and report the error in its own write path.
            transport.write(data)
            return True
        if sent == len(data):
            return False
        transport.write(data[sent:])
        return True
    transport.write(data)
    return bool(getattr(transport, "_tempDataLen", 1) or getattr(transport, "dataBuffer", b""))


def buffered_bytes(transport: Any) -> int:
    """Bytes written to ``transport`` that the kernel has not yet taken."""
    total = 0
    # TLS wraps the TCP transport: count its pending application data too.
    app_buffer = getattr(transport, "_appSendBuffer", None)
    if app_buffer:
        total += sum(len(chunk) for chunk in app_buffer)
    inner = getattr(transport, "transport", None)
    if inner is not None and hasattr(inner, "dataBuffer") and not hasattr(transport, "dataBuffer"):
        transport = inner
    data_buffer = getattr(transport, "dataBuffer", None)
    if data_buffer is not None:
        total += len(data_buffer) - getattr(transport, "offset", 0)
        total += getattr(transport, "_tempDataLen", 0)
    return total
