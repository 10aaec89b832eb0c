"""
Bare HTTP responses that end a connection (Ratchet's ``CloseResponseTrait``).

Every ``close_response`` ends its connection within a bound, whatever the
peer does: a TLS connection whose handshake has not finished is aborted
(nothing could be sent on it), and any other is closed after the response
with an abort ``CLOSE_DEADLINE`` seconds later if the peer has not let it
close by then.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from ..interfaces import ConnectionInterface
from ..server._abort import CLOSE_DEADLINE, abort_connection, close_with_deadline
from ..server.tls import tls_handshake_pending
from ..version import VERSION

__all__ = ["close_response", "render_response", "POWERED_BY", "CLOSE_DEADLINE"]

POWERED_BY: list[str] = [VERSION]
"""The ``X-Powered-By`` value; set ``POWERED_BY[0] = "Ratchet/0.4.4"`` to mimic PHP."""


def render_response(
    status: int,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    body: bytes = b"",
    powered_by_first: bool = False,
) -> bytes:
    """
    Render a response head (and ``body``) as bytes.

    With no body the response is bare, as Ratchet sends it: status line,
    ``headers``, ``X-Powered-By``, blank line; the closing of the
    connection delimits it. ``powered_by_first`` puts ``X-Powered-By``
    before ``headers``, the order of Ratchet's Router responses.
    """
    phrase = reason or HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {phrase}"]
    powered_by = f"X-Powered-By: {POWERED_BY[0]}"
    if powered_by_first:
        lines.append(powered_by)
    lines.extend(f"{name}: {value}" for name, value in headers)
    if not powered_by_first:
        lines.append(powered_by)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def close_response(
    conn: ConnectionInterface,
    status: int,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    body: bytes = b"",
    powered_by_first: bool = False,
    *,
    abort_after: float | None = None,
    refusal: str | None = None,
) -> None:
    """
    Send a response on ``conn`` and close it once written.

    If the peer has not let the connection close ``abort_after`` seconds
    later (it does not read, or does not answer TLS's ``close_notify``),
    the connection is aborted. On TLS before the handshake has completed
    the response is not sent: the connection is aborted at once.

    Every response of 400 or more is counted as a refusal in the server's
    ``ServerStats`` (``Hub.stats()``, the metrics).

    Args:
        abort_after: seconds before the abort; ``CLOSE_DEADLINE`` by default.
        refusal: the reason the refusal is counted under (by default one
            named after ``status``, see ``ratchetpy.hub.stats``).
    """
    if status >= 400:
        from ..server.io import stats_of

        stats = stats_of(conn)
        if stats is not None:
            stats.refusal(status, refusal)
    if tls_handshake_pending(conn):
        abort_connection(conn)
        return
    conn.send(render_response(status, headers, reason, body, powered_by_first))
    close_with_deadline(conn, abort_after)
