"""Plain HTTP controllers routed beside WebSocket routes."""

from __future__ import annotations

from ratchetpy.http.controllers import HealthCheck, StaticResponse
from ratchetpy.http.router import Route, Router
from tests.support.memory import http_exchange


def test_static_response_has_type_length_and_closes():
    """A page is sent with Content-Type and Content-Length, then the connection closes."""
    router = Router([Route("/", StaticResponse("<p>hé</p>"))])
    data, memory = http_exchange(router, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/html; charset=utf-8" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert body == "<p>hé</p>".encode()
    assert not memory.transport.connected


def test_head_gets_the_length_without_the_body():
    """HEAD gets the same head, with the body's length, and no body."""
    router = Router([Route("/", StaticResponse("abc", "text/plain"))])
    data, _ = http_exchange(router, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 3" in head and body == b""


def test_health_check_answers_ok():
    """The health check answers 200 ok."""
    router = Router([Route("/health", HealthCheck())])
    data, _ = http_exchange(router, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"ok\n")
