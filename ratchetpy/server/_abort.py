# -*- test-case-name: tests.server.test_tls_handshake -*-
"""
Closes that cannot hang: a hard deadline after a refusal's graceful close.

A refusal writes a short response and calls ``loseConnection()``, which
only ends the connection once the peer cooperates: TCP waits until the
response is flushed (a peer that never reads, with a full window, holds the
socket forever), and TLS waits for the peer's ``close_notify``. Each such
socket costs a file descriptor and tens of KB, so a few hundred silent peers
could lock everyone out. ``close_with_deadline`` bounds the wait: it arms an
``abortConnection()`` ``CLOSE_DEADLINE`` seconds later, disarmed when the
connection is lost first (``IoServer``'s protocol does it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from ..interfaces import ConnectionInterface

if TYPE_CHECKING:
    from .io import _IoProtocol

__all__ = ["CLOSE_DEADLINE", "abort_connection", "close_with_deadline"]

_log = Logger(namespace="ratchetpy.server")

CLOSE_DEADLINE = 5.0
"""
Seconds a refused connection may take to close gracefully before it is
aborted: ample for a client to read a short response on a slow link, short
enough that silent peers cannot pile up.
"""


def abort_connection(conn: ConnectionInterface) -> None:
    """Drop ``conn`` at once, discarding anything not yet written."""
    from .io import io_side

    io = io_side(conn)
    if io is not None:
        io.abort()
        return
    abort = getattr(conn, "abort", None)
    if callable(abort):
        abort()
    else:
        conn.transport.abortConnection()


def close_with_deadline(conn: ConnectionInterface, delay: float | None = None) -> None:
    """
    Close ``conn`` gracefully, and abort it if it is still open ``delay`` s later.

    The deadline runs on the connection's own reactor and is kept on its
    I/O side (never in the attribute bag); a connection not served by
    ``IoServer`` (``FakeConnection``) is just closed.

    Args:
        conn: the connection, or a decorator view of it.
        delay: seconds before the abort; ``CLOSE_DEADLINE`` by default.
    """
    from .io import io_side

    io = io_side(conn)
    # Armed before close(): a transport that loses the connection at once
    # (in-memory ones do) then disarms it straight away.
    if io is not None and io.lost_reason is None and io.abort_deadline is None:
        seconds = CLOSE_DEADLINE if delay is None else delay
        io.abort_deadline = io.reactor.callLater(seconds, _deadline_passed, io, seconds)
    conn.close()


def _deadline_passed(io: _IoProtocol, delay: float) -> None:
    io.abort_deadline = None
    if io.lost_reason is not None:
        return
    conn = io.conn
    _log.info(
        "Aborted connection #{rid} from {peer}: still open {delay} s after it was refused "
        "(the peer neither read the response nor closed); nothing to fix unless it is "
        "frequent, then look for stuck or hostile clients",
        rid=getattr(conn, "resource_id", None),
        peer=getattr(conn, "remote_address", None),
        delay=delay,
    )
    io.abort()
