# -*- test-case-name: tests.http.test_controllers -*-
"""
Plain HTTP answers beside WebSocket routes: a health check, a page.

An ``HttpServerInterface`` routed through ``App`` or ``Router`` receives
the parsed request in ``on_open(conn, request)`` and may answer with an
ordinary HTTP response. ``HttpController`` does the bookkeeping: subclass
it and implement ``respond(request)``; the response is sent with
``Content-Type``, ``Content-Length`` and ``Connection: close``, then the
connection is closed (one request per connection, like Ratchet's own
responses). ``HEAD`` gets the same head without the body.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..interfaces import ConnectionInterface
from .interfaces import HttpServerInterface
from .request import Request
from .response import render_response

__all__ = ["HttpController", "HttpResponse", "StaticResponse", "HealthCheck", "send_response"]

HttpResponse = tuple[int, Sequence[tuple[str, str]], bytes]
"""``(status, headers, body)`` as returned by ``HttpController.respond``."""


def send_response(
    conn: ConnectionInterface,
    status: int,
    body: bytes = b"",
    content_type: str = "text/plain; charset=utf-8",
    headers: Sequence[tuple[str, str]] = (),
    head_only: bool = False,
) -> None:
    """Send a complete response with ``Content-Length`` and close ``conn``."""
    fields = [("Content-Type", content_type), *headers, ("Connection", "close")]
    if head_only or not body:
        fields.append(("Content-Length", str(len(body))))
        conn.send(render_response(status, fields))
    else:
        conn.send(render_response(status, fields, body=body))
    conn.close()


class HttpController(HttpServerInterface):
    """
    Base class of a component answering a request with a plain response.

    Subclasses implement ``respond(request)`` returning
    ``(status, headers, body)``; headers should include ``Content-Type``.
    """

    def respond(self, request: Request) -> HttpResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_open(self, conn: ConnectionInterface, request: Request) -> None:
        status, headers, body = self.respond(request)
        headers = list(headers)
        content_type = next(
            (v for n, v in headers if n.lower() == "content-type"),
            "application/octet-stream",
        )
        rest = [(n, v) for n, v in headers if n.lower() != "content-type"]
        send_response(conn, status, body, content_type, rest, request.method == "HEAD")

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        # A request body or pipelined requests: ignored, the connection closes.
        pass

    def on_close(self, conn: ConnectionInterface) -> None:
        pass

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        conn.close()


class StaticResponse(HttpController):
    """
    Answer every request with the same body (a page, a file's contents).

    Args:
        body: the body (``str`` is encoded as UTF-8).
        content_type: its ``Content-Type``.
        status: the status code.
        headers: extra response headers.
    """

    def __init__(
        self,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.content_type = content_type
        self.status = status
        self.headers = list(headers)

    def respond(self, request: Request) -> HttpResponse:
        return self.status, [("Content-Type", self.content_type), *self.headers], self.body


class HealthCheck(HttpController):
    """Answer ``200 OK`` with body ``ok`` (for load balancers and monitors)."""

    def respond(self, request: Request) -> HttpResponse:
        return 200, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")], b"ok\n"
