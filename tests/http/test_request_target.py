"""The request-target forms (RFC 9112 §3.2): origin, absolute, asterisk and authority."""

import pytest

from ratchetpy import BadRequest, HttpError
from ratchetpy.http.request import normalize_authority, parse_request_head
from ratchetpy.http.router import Router
from ratchetpy.testing import RecordingComponent


@pytest.mark.parametrize(
    "target,path,query,authority",
    [
        ("http://example.com/chat?room=1", "/chat", "room=1", "example.com"),
        ("https://example.com:8443/a/b", "/a/b", "", "example.com:8443"),
        ("ws://example.com/chat", "/chat", "", "example.com"),
        ("WSS://Example.com/", "/", "", "Example.com"),
        ("http://example.com", "/", "", "example.com"),
        ("http://example.com?x=1", "/", "x=1", "example.com"),
        ("http://[::1]:9000/chat", "/chat", "", "[::1]:9000"),
    ],
)
def test_absolute_form_is_accepted(target, path, query, authority):
    """Path, query and authority come from an absolute-form target (RFC 9112 §3.2.2)."""
    request = parse_request_head(f"GET {target} HTTP/1.1\r\nHost: other:1\r\n\r\n".encode())
    assert request.target == target
    assert (request.path, request.query_string, request.authority) == (path, query, authority)
    assert request.origin_form == path + (f"?{query}" if query else "")
    assert request.headers["host"] == "other:1"


def test_absolute_form_authority_overrides_host():
    """Request.host (routing, same-host origins) follows the target, not the Host field."""
    request = parse_request_head(
        b"GET http://Chat.Example:8080/x HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    )
    assert request.host == "chat.example"
    assert parse_request_head(b"GET http://[::1]/ HTTP/1.1\r\nHost: a\r\n\r\n").host == "::1"


def test_origin_form_authority_is_the_host_field():
    request = parse_request_head(b"GET /x?y HTTP/1.1\r\nHost: Example.com:80 \r\n\r\n")
    assert (request.authority, request.host, request.origin_form) == ("Example.com:80", "example.com", "/x?y")
    assert parse_request_head(b"GET / HTTP/1.1\r\n\r\n").authority == ""


def test_router_routes_absolute_form_by_its_host_and_path():
    """A Router matches an absolute-form request on the target's host and path."""
    router = Router()
    router.add("/chat", RecordingComponent(), host="chat.example")
    request = parse_request_head(
        b"GET http://chat.example/chat HTTP/1.1\r\nHost: other.example\r\n\r\n"
    )
    assert router.match(request)[0] == 200
    request = parse_request_head(
        b"GET http://other.example/chat HTTP/1.1\r\nHost: chat.example\r\n\r\n"
    )
    assert router.match(request)[0] == 404


def test_options_asterisk_is_accepted():
    request = parse_request_head(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (request.target, request.path, request.authority) == ("*", "*", "h")


@pytest.mark.parametrize(
    "target,words",
    [
        ("*", "only valid with OPTIONS"),
        ("example.com:443", "for CONNECT only"),
        ("chat", "neither a path"),
        ("ftp://example.com/chat", "scheme 'ftp'"),
        ("http:///chat", "no valid host"),
        ("http://user:pw@example.com/chat", "userinfo"),
        ("http://exa mple/", None),
        ("http://example.com:80x/", "no valid host"),
        ("http://[zz::1]/", "no valid host"),
        ("http:/example.com/chat", "neither a path"),
    ],
)
def test_other_targets_of_a_get_are_refused(target, words):
    """A GET with another target form gets 400 and a detail that says what to send."""
    with pytest.raises(BadRequest) as info:
        parse_request_head(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert info.value.status == 400
    if words:
        assert words in info.value.detail


def test_connect_is_not_served():
    """CONNECT host:port (authority-form) gets 501: this is not a proxy."""
    with pytest.raises(HttpError) as info:
        parse_request_head(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert info.value.status == 501
    assert "not a proxy" in info.value.detail


@pytest.mark.parametrize(
    "value,normal",
    [
        ("example.com", "example.com"),
        ("example.com:8080", "example.com:8080"),
        ("example.com:", "example.com"),
        ("127.0.0.1:9000", "127.0.0.1:9000"),
        ("[::1]", "[::1]"),
        ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("caf%C3%A9.example", "caf%C3%A9.example"),
        ("", None),
        (":80", None),
        ("a b", None),
        ("a:b", None),
        ("a:123456", None),
        ("::1", None),
        ("[::1", None),
        ("[1.2.3.4]", None),
        ("user@host", None),
        ("h\x85Host: x", None),
        ("bücher.example", None),
        ("a/b", None),
    ],
)
def test_normalize_authority(value, normal):
    assert normalize_authority(value) == normal
