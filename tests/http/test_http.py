"""HttpServer and the request-head parser."""

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import BadRequest, HttpServer
from ratchetpy.http.request import parse_request_head
from tests.support.memory import HttpRecorder, MemoryConnection


def test_parse_valid_head():
    """Request line, headers (case-insensitive, repeats kept), query and cookies."""
    request = parse_request_head(
        b"GET /chat?room=1&room=2&x= HTTP/1.1\r\n"
        b"Host: Example.COM:8080\r\n"
        b"Cookie: PHPSESSID=abc123; theme=\"dark\"\r\n"
        b"Cookie: lang=fr\r\n"
        b"X-Thing: a\r\nx-thing: b\r\n\r\n"
    )
    assert (request.method, request.path, request.version) == ("GET", "/chat", "HTTP/1.1")
    assert request.query_string == "room=1&room=2&x="
    assert request.query == {"room": "2", "x": ""}
    assert request.host == "example.com"
    assert request.headers["X-THING"] == "a, b"
    assert request.get_header("x-thing") == ["a", "b"]
    assert request.get_header_line("X-Thing") == "a, b"
    assert request.cookies == {"PHPSESSID": "abc123", "theme": "dark", "lang": "fr"}
    assert request.raw.endswith(b"\r\n\r\n")


def test_parse_tolerates_bare_lf():
    """Bare LF line endings are accepted (RFC 9112 §2.2)."""
    request = parse_request_head(b"GET / HTTP/1.1\nHost: a\n\n")
    assert request.headers["host"] == "a"


def test_ipv6_host():
    """The host of a bracketed IPv6 Host header drops brackets and port."""
    assert parse_request_head(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").host == "::1"


@pytest.mark.parametrize(
    "head",
    [
        b"\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/x\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
    ],
)
def test_parse_rejects_malformed(head):
    """Malformed heads raise BadRequest (status 400) with a detail."""
    with pytest.raises(BadRequest) as info:
        parse_request_head(head)
    assert info.value.status == 400 and info.value.detail


def test_head_split_across_reads_then_trailing_bytes():
    """A head fed byte by byte reaches on_open once; bytes after it follow."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner))
    memory.feed(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\nBODY")
    assert [e[0] for e in inner.events] == ["open", "message", "message", "message", "message"]
    assert b"".join(e[1] for e in inner.events[1:]) == b"BODY"
    assert memory.conn.http_request.path == "/x"


def test_trailing_bytes_in_same_read_are_not_lost():
    """Bytes in the same read as the head go to on_message right after on_open."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner))
    memory.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nfirst-frame", one_byte_at_a_time=False)
    assert inner.events[1] == ("message", b"first-frame")


def test_oversized_head_gets_431_and_close():
    """A head over max_request_size gets a bare 431 and the connection closes."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner, max_request_size=128))
    memory.feed(b"GET / HTTP/1.1\r\nCookie: " + b"x" * 200, one_byte_at_a_time=False)
    response = memory.take()
    assert response.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"X-Powered-By: ratchetpy/" in response
    assert not memory.transport.connected
    assert inner.events == []


def test_default_limit_accepts_large_cookie_heads():
    """An 8 KiB cookie (413 under Ratchet's 4 KiB cap) is accepted by default."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner))
    memory.feed(
        b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=" + b"x" * 8192 + b"\r\n\r\n",
        one_byte_at_a_time=False,
    )
    assert inner.events[0][0] == "open"


def test_malformed_head_gets_400():
    """Garbage gets 400 Bad Request (Ratchet answers 500) and is closed."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner))
    memory.feed(b"HELLO\r\n\r\n")
    assert memory.take().startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert not memory.transport.connected
    assert inner.events == []


def test_slow_head_gets_408():
    """A head not complete within request_timeout gets 408."""
    clock = MemoryReactorClock()
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner, request_timeout=5), reactor=clock)
    memory.feed(b"GET / HTTP/1.1\r\n")
    clock.advance(4.9)
    assert memory.transport.connected
    clock.advance(0.2)
    assert memory.take().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert not memory.transport.connected


def test_timer_cancelled_once_head_arrives():
    """No timer is left once the head is parsed."""
    clock = MemoryReactorClock()
    memory = MemoryConnection(HttpServer(HttpRecorder()), reactor=clock)
    memory.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert clock.getDelayedCalls() == []


def test_on_close_only_after_head():
    """The inner component hears on_close only for connections it opened."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner))
    memory.feed(b"GET / HTT")
    memory.lose()
    assert inner.events == []
    inner2 = HttpRecorder()
    memory2 = MemoryConnection(HttpServer(inner2))
    memory2.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    memory2.lose()
    assert [e[0] for e in inner2.events] == ["open", "close"]


def test_exception_in_inner_on_open_reaches_on_error():
    """An exception from the inner on_open is routed to its on_error."""
    inner = HttpRecorder(fail_open=True)
    memory = MemoryConnection(HttpServer(inner))
    memory.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [e[0] for e in inner.events] == ["open", "error", "close"]
    assert str(inner.events[1][1]) == "boom"
    assert not memory.transport.connected


@pytest.mark.parametrize(
    "kwargs", [{"max_request_size": 10}, {"max_request_size": "big"}, {"request_timeout": 0}]
)
def test_bad_options_are_refused(kwargs):
    """Nonsense limits fail at construction with ConfigurationError."""
    from ratchetpy import ConfigurationError

    with pytest.raises(ConfigurationError):
        HttpServer(HttpRecorder(), **kwargs)
