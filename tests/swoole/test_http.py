"""The 'request' handler in memory: Swoole's Http\\Request and Http\\Response on the WebSocket port."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred

from ratchetpy.swoole import SwooleError
from ratchetpy.swoole.http import BODY_TIMEOUT
from tests.support.swoole import http_response, memory_server, raw


def serve(handler, **settings):
    server = memory_server(**settings)
    server.on("request", handler)
    return server


def exchange(server, data, one_byte_at_a_time=False):
    memory = raw(server, data, one_byte_at_a_time)
    return http_response(memory.take()), memory


def test_get_request_fields_and_a_full_response():
    seen = []

    def handler(request, response):
        seen.append(request)
        response.status(201, "Made")
        response.header("Content-Type", "application/json")
        response.header("X-Count", 3)
        response.end('{"ok": true}')

    ((status, headers, body), memory) = exchange(
        serve(handler), b"GET /api/items?page=2&q=a+b HTTP/1.1\r\nHost: example\r\nCookie: sid=abc\r\n\r\n"
    )
    assert status == 201
    assert headers["content-type"] == "application/json" and headers["x-count"] == "3"
    assert headers["content-length"] == str(len(body)) and headers["connection"] == "close"
    assert body == b'{"ok": true}'
    assert not memory.transport.connected  # one request per connection
    (request,) = seen
    assert request.get == {"page": "2", "q": "a b"} and request.cookie == {"sid": "abc"}
    assert request.header["host"] == "example"
    assert request.server["request_method"] == "GET" and request.server["path_info"] == "/api/items"
    assert request.server["server_protocol"] == "HTTP/1.1"
    assert isinstance(request.fd, str) and request.post == {} and request.files == {}


@pytest.mark.parametrize("one_byte_at_a_time", [False, True])
def test_form_post_body(one_byte_at_a_time):
    """A form body is in request.post and raw_content(), whether it came at once or byte by byte."""
    seen = []

    def handler(request, response):
        seen.append((request.get_method(), request.post, request.raw_content()))
        response.end("got " + request.post["msg"])

    body = b"msg=hello+there&n=1"
    head = b"POST /push HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    ((status, _, answer), _) = exchange(
        serve(handler), head + b"Content-Length: %d\r\n\r\n" % len(body) + body, one_byte_at_a_time
    )
    assert (status, answer) == (200, b"got hello there")
    assert seen == [("POST", {"msg": "hello there", "n": "1"}, body)]


def test_json_body_stays_raw():
    seen = []
    server = serve(lambda request, response: seen.append((request.post, request.raw_content())))
    body = b'{"a": 1}'
    exchange(server, b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n" + body)
    assert seen == [({}, body)]


def test_expect_100_continue_is_answered():
    server = serve(lambda request, response: response.end(request.raw_content()))
    memory = raw(server, b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert memory.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    memory.feed(b"abc")
    assert http_response(memory.take())[2] == b"abc"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"Transfer-Encoding: chunked\r\n", 411),
        (b"Content-Length: ten\r\n", 400),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        (b"Content-Length: 101\r\n", 413),
    ],
)
def test_bodies_that_cannot_be_read_are_refused(head, status, logged):
    called = []
    server = serve(lambda request, response: called.append(request), package_max_length=100)
    ((got, _, _), memory) = exchange(server, b"POST / HTTP/1.1\r\nHost: h\r\n" + head + b"\r\n")
    assert got == status and called == []
    assert any(e.get("status") == status and e.get("detail") for e in logged)


def test_a_body_that_never_arrives_gets_408():
    server = serve(lambda request, response: response.end("late"))
    memory = raw(server, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    server.reactor.advance(BODY_TIMEOUT - 0.1)
    assert memory.take() == b""
    server.reactor.advance(0.2)
    assert http_response(memory.take())[0] == 408


def test_a_handler_that_does_not_end_gets_an_empty_200():
    """As in Swoole, a response nobody ended is ended when the handler returns."""
    ((status, headers, body), _) = exchange(serve(lambda request, response: None), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (status, headers["content-length"], body) == (200, "0", b"")
    assert headers["content-type"] == "text/html"


def test_detach_keeps_the_response_for_later():
    kept = []

    def handler(request, response):
        response.detach()
        kept.append(response)

    server = serve(handler)
    memory = raw(server, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert memory.take() == b""
    assert kept[0].is_writable()
    server.reactor.callLater(1, kept[0].end, "later")
    server.reactor.advance(1)
    assert http_response(memory.take())[2] == b"later"
    assert kept[0].end("again") is False and not kept[0].is_writable()


def test_async_handler_answers_when_done():
    pending = Deferred()

    async def handler(request, response):
        value = await pending
        response.end(value)

    server = serve(handler)
    memory = raw(server, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert memory.take() == b""
    pending.callback("done")
    assert http_response(memory.take())[2] == b"done"


def test_write_sends_chunks():
    def handler(request, response):
        response.write("one,")
        response.write(b"two")
        response.end()

    ((status, headers, body), _) = exchange(serve(handler), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status == 200 and headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert body == b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n"


def test_write_to_an_http_10_client_is_not_chunked():
    def handler(request, response):
        response.write("a")
        response.end("b")

    ((_, headers, body), memory) = exchange(serve(handler), b"GET / HTTP/1.0\r\n\r\n")
    assert "transfer-encoding" not in headers and body == b"ab"
    assert not memory.transport.connected


def test_head_gets_the_length_without_the_body():
    ((status, headers, body), _) = exchange(
        serve(lambda request, response: response.end("12345")), b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    assert (status, headers["content-length"], body) == (200, "5", b"")


def test_redirect_and_cookies():
    def handler(request, response):
        response.cookie("sid", "a b", path="/app", httponly=True, samesite="Lax")
        response.cookie("theme", "dark")
        response.redirect("/login", 301)

    ((status, headers, _), _) = exchange(serve(handler), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status == 301 and headers["location"] == "/login"
    assert headers["set-cookie"].split("\n") == ["sid=a%20b; path=/app; samesite=Lax; httponly", "theme=dark; path=/"]


def test_a_raising_handler_gets_500_and_is_logged(logged):
    def handler(request, response):
        raise KeyError("missing")

    server = serve(handler)
    ((status, _, _), _) = exchange(server, b"GET /broken HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status == 500
    failure = next(e for e in logged if e.get("log_failure"))
    assert isinstance(failure["log_failure"].value, KeyError) and failure["path"] == "/broken"
    ((status, _, _), _) = exchange(server, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status == 500  # still serving; the next request gets the same handler


def test_a_handler_raising_after_write_cuts_the_response():
    def handler(request, response):
        response.write("partial")
        raise RuntimeError("oops")

    memory = raw(serve(handler), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    data = memory.take()
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"7\r\npartial\r\n")
    assert not memory.transport.connected


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda r: r.header("X-Bad", "a\r\nSet-Cookie: x=1"), "line breaks"),
        (lambda r: r.header("Bad Name", "v"), "not a valid header name"),
        (lambda r: r.status(99), "100 to 599"),
        (lambda r: r.status(200, "OK\r\nX: y"), "one line"),
        (lambda r: r.cookie("a;b", "v"), "cookie name"),
        (lambda r: r.end(42), "str or bytes"),
    ],
)
def test_malformed_response_calls_raise(call, words):
    errors = []

    def handler(request, response):
        try:
            call(response)
        except SwooleError as exc:
            errors.append(str(exc))
        response.end("fine")

    ((status, _, body), _) = exchange(serve(handler), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (status, body) == (200, b"fine")
    assert len(errors) == 1 and words in errors[0]


def test_calls_after_end_return_false():
    results = []

    def handler(request, response):
        results.append(response.end("x"))
        results.extend([response.end("y"), response.write("z"), response.header("A", "b"), response.status(404)])

    ((_, _, body), _) = exchange(serve(handler), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert body == b"x" and results == [True, False, False, False, False]


def test_upgrade_requests_still_reach_the_websocket_side():
    """With a request handler, Upgrade: websocket requests are still WebSockets."""
    from tests.support.wire import handshake_request

    server = serve(lambda request, response: response.end("http"))
    memory = raw(server, handshake_request("/anything"))
    assert memory.take().startswith(b"HTTP/1.1 101 ")
