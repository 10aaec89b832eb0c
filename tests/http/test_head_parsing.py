"""Where a request head ends: find_head_end() and HttpServer, any line endings."""

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import HttpServer
from ratchetpy.http.request import find_head_end, parse_request_head
from tests.support.memory import HttpRecorder, MemoryConnection

# One head per way its last two lines can end; the parser reads all alike.
HEADS = {
    "crlf": b"GET /chat?a=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n",
    "lf": b"GET /chat?a=1 HTTP/1.1\nHost: h\nX-A: 1\n\n",
    "crlf-lf": b"GET /chat?a=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\n",
    "lf-crlf": b"GET /chat?a=1 HTTP/1.1\nHost: h\nX-A: 1\n\r\n",
    "mixed": b"GET /chat?a=1 HTTP/1.1\nHost: h\r\nX-A: 1\n\r\n",
}
# Bytes that follow a head in the same read (a first frame); they hold
# terminator-like bytes that must not move the end.
TRAILER = b"\x81\x85\n\n\r\n\r\n"


@pytest.mark.parametrize("name", HEADS)
def test_find_head_end_in_one_buffer(name):
    """The end is just past the blank line, whatever follows."""
    head = HEADS[name]
    assert find_head_end(head) == len(head)
    assert find_head_end(head + TRAILER) == len(head)
    request = parse_request_head(head)
    assert (request.path, request.headers["x-a"]) == ("/chat", "1")


@pytest.mark.parametrize("name", HEADS)
def test_find_head_end_at_every_split_of_two_reads(name):
    """A terminator straddling two reads is found, never one read early."""
    head = HEADS[name]
    data = head + TRAILER
    for split in range(len(data) + 1):
        first = data[:split]
        found = find_head_end(first)
        assert found == (len(head) if split >= len(head) else -1), split
        if found < 0:
            assert find_head_end(data, searched=split) == len(head), split


@pytest.mark.parametrize("name", HEADS)
def test_find_head_end_byte_by_byte(name):
    """Fed one byte at a time, the end is found on the head's last byte."""
    head = HEADS[name]
    buffer = bytearray()
    for byte in head + TRAILER:
        searched = len(buffer)
        buffer.append(byte)
        end = find_head_end(buffer, searched)
        if end >= 0:
            break
    assert (len(buffer), end) == (len(head), len(head))  # stopped on the head's last byte


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r",
        b"GET / HTTP/1.1\r\nHost: h\r\r\n",
        b"GET / HTTP/1.1\r\nHost: h\n\r\r\n",
        b"GET / HTTP/1.1\r\r\rHost: h",
    ],
)
def test_no_blank_line_no_end(data):
    """A CR alone does not end a line, so these heads are incomplete."""
    assert find_head_end(data) == -1


def test_searched_skips_what_was_already_searched():
    """Bytes well before `searched` are not searched again (a contract, for speed)."""
    data = b"\n\nGET"
    assert find_head_end(data, searched=0) == 2
    assert find_head_end(data, searched=len(data)) == -1


@pytest.mark.parametrize("name", HEADS)
def test_http_server_answers_any_line_ending_at_once(name):
    """An LF-only (or mixed) head opens at once: no wait for the 408."""
    clock = MemoryReactorClock()
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner, request_timeout=5), reactor=clock)
    memory.feed(HEADS[name] + b"rest", one_byte_at_a_time=False)
    assert [e[0] for e in inner.events] == ["open", "message"]
    assert inner.events[1][1] == b"rest"
    assert inner.events[0][1].raw == HEADS[name]
    assert clock.getDelayedCalls() == []
    assert memory.transport.connected


@pytest.mark.parametrize("name", HEADS)
def test_http_server_any_split_into_two_reads(name):
    """Through HttpServer, every split point gives one open and the exact rest."""
    data = HEADS[name] + TRAILER
    for split in range(1, len(data)):
        inner = HttpRecorder()
        memory = MemoryConnection(HttpServer(inner))
        memory.feed(data[:split], one_byte_at_a_time=False)
        memory.feed(data[split:], one_byte_at_a_time=False)
        assert inner.events[0] == ("open", memory.conn.http_request), split
        assert memory.conn.http_request.raw == HEADS[name], split
        assert b"".join(e[1] for e in inner.events[1:]) == TRAILER, split


def test_http_server_lf_head_over_the_limit_gets_431():
    """The size limit counts the head up to its LF-LF end."""
    inner = HttpRecorder()
    memory = MemoryConnection(HttpServer(inner, max_request_size=64))
    memory.feed(b"GET / HTTP/1.1\nCookie: " + b"x" * 60 + b"\n\n", one_byte_at_a_time=False)
    assert memory.take().startswith(b"HTTP/1.1 431 ")
    assert inner.events == []
