# -*- test-case-name: tests.test_tls_handshake -*-
"""
Closes that cannot hang: a hard deadline after a refusal's graceful close.

A refusal writes a short response and calls ``loseConnection()``, which
only ends the connection once the peer cooperates: TCP waits until the
response is flushed (a peer that never reads, with a full window, holds the
socket forever), and TLS waits for the peer's ``close_notify``. Each such
socket costs a file descriptor and tens of KB, so a few hundred silent peers
could lock everyone out. ``close_with_deadline`` bounds the wait: it arms an
``abortConnection()`` ``CLOSE_DEADLINE`` seconds later, disarmed by
``disarm_deadline`` when the connection is lost first (``IoServer`` calls it).
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from ..connection import AbstractConnectionDecorator

__all__ = ["CLOSE_DEADLINE", "abort_connection", "close_with_deadline", "disarm_deadline"]

_log = Logger(namespace="ratchetpy.server")

CLOSE_DEADLINE = 5.0
"""
Seconds a refused connection may take to close gracefully before it is
aborted: ample for a client to read a short response on a slow link, short
enough that silent peers cannot pile up.
"""


def innermost(conn: Any) -> Any:
    """The connection under every decorator view (where shared state lives)."""
    while isinstance(conn, AbstractConnectionDecorator):
        conn = conn.get_connection()
    return conn


def abort_connection(conn: Any) -> None:
    """Drop ``conn`` at once, discarding anything not yet written."""
    root = innermost(conn)
    abort = getattr(root, "abort", None)
    if callable(abort):
        abort()
    else:
        root.transport.abortConnection()


def close_with_deadline(conn: Any, delay: float | None = None) -> None:
    """
    Close ``conn`` gracefully, and abort it if it is still open ``delay`` s later.

    The deadline runs on the connection's own reactor (``conn.reactor``, or
    ``conn._reactor``); a connection without one (``FakeConnection``) is
    just closed.

    Args:
        conn: the connection, or a decorator view of it.
        delay: seconds before the abort; ``CLOSE_DEADLINE`` by default.
    """
    root = innermost(conn)
    # Armed before close(): a transport that loses the connection at once
    # (in-memory ones do) then disarms it through IoServer straight away.
    if getattr(root, "_lost_reason", None) is None and getattr(root, "_abort_deadline", None) is None:
        reactor = getattr(root, "reactor", None) or getattr(root, "_reactor", None)
        if reactor is not None:
            seconds = CLOSE_DEADLINE if delay is None else delay
            root._abort_deadline = reactor.callLater(seconds, _deadline_passed, root, seconds)
    conn.close()


def disarm_deadline(conn: Any) -> None:
    """Cancel the abort ``close_with_deadline`` armed (the connection is gone)."""
    root = innermost(conn)
    call = getattr(root, "_abort_deadline", None)
    if call is not None:
        root._abort_deadline = None
        if call.active():
            call.cancel()


def _deadline_passed(conn: Any, delay: float) -> None:
    conn._abort_deadline = None
    if getattr(conn, "_lost_reason", None) is not None:
        return
    _log.info(
        "Aborted connection #{rid} from {peer}: still open {delay} s after it was refused "
        "(the peer neither read the response nor closed); nothing to fix unless it is "
        "frequent, then look for stuck or hostile clients",
        rid=getattr(conn, "resource_id", None),
        peer=getattr(conn, "remote_address", None),
        delay=delay,
    )
    abort_connection(conn)
