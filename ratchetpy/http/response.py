"""Bare HTTP responses that end a connection (Ratchet's ``CloseResponseTrait``)."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from ..version import VERSION

__all__ = ["close_response", "render_response", "POWERED_BY"]

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
    conn: Any,
    status: int,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    body: bytes = b"",
    powered_by_first: bool = False,
) -> None:
    """Send a response on ``conn`` and close it once written."""
    conn.send(render_response(status, headers, reason, body, powered_by_first))
    conn.close()
