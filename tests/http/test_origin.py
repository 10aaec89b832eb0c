"""OriginCheck: host-only comparison, 403 before the handshake checks."""

from __future__ import annotations

import pytest
from twisted.logger import globalLogPublisher

from ratchetpy import WsServer
from ratchetpy.http.origin import SAME_HOST, OriginCheck, origin_host
from ratchetpy.testing import RecordingComponent
from tests.support.memory import http_exchange
from tests.support.wire import handshake_request


def check(*allowed, allow_missing=False):
    app = RecordingComponent()
    return OriginCheck(WsServer(app), list(allowed), allow_missing=allow_missing), app


@pytest.mark.parametrize(
    "origin, ok",
    [
        ("http://example.com", True),
        ("http://example.com:8080", True),  # the port is ignored
        ("https://EXAMPLE.com", True),  # so is the scheme, and case
        ("http://evil.example", False),
        ("http://example.com.evil.example", False),
        ("null", False),
    ],
)
def test_only_the_origin_host_is_compared(origin, ok):
    """The Origin's host, not its scheme or port, decides (Ratchet's rule)."""
    component, app = check("example.com")
    data, _ = http_exchange(component, handshake_request(extra=f"Origin: {origin}\r\n"))
    if ok:
        assert data.startswith(b"HTTP/1.1 101 ")
        assert app.kinds() == ["open"]
    else:
        assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert b"Content-Length" not in data
        assert app.kinds() == []


def test_bare_host_origin_passes_the_check():
    """A bare ``example.com`` Origin passes OriginCheck, as in Ratchet.

    (Autobahn's handshake then refuses the malformed Origin with 400; no
    browser sends one.)
    """
    assert check("example.com")[0].is_allowed("example.com")


def test_missing_origin_is_refused_unless_allowed():
    """No Origin header gets 403 (Ratchet), unless allow_missing is set."""
    data, _ = http_exchange(check("example.com")[0], handshake_request())
    assert data.startswith(b"HTTP/1.1 403 ")
    data, _ = http_exchange(check("example.com", allow_missing=True)[0], handshake_request())
    assert data.startswith(b"HTTP/1.1 101 ")


def test_403_comes_before_the_handshake_checks():
    """A plain GET with a bad Origin gets 403, not 426."""
    data, _ = http_exchange(check("example.com")[0], b"GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 403 ")


def test_star_allows_everything_including_no_origin():
    """``*`` allows every origin and clients without one."""
    component, _ = check("*")
    assert component.is_allowed("http://anything.example")
    assert component.is_allowed(None)


def test_wildcard_subdomains():
    """``*.example.com`` allows subdomains, not the bare domain or look-alikes."""
    component, _ = check("*.example.com")
    assert component.is_allowed("https://chat.example.com")
    assert not component.is_allowed("https://example.com")
    assert not component.is_allowed("https://badexample.com")


def test_url_entries_are_read_as_hosts():
    """An entry written as a URL matches its host (in Ratchet it never matches)."""
    component, _ = check("http://example.com:8080")
    assert component.is_allowed("https://example.com")


def test_same_host_compares_with_the_host_header():
    """``same-host`` allows a page served from the host the client connected to."""
    component, _ = check(SAME_HOST)
    data, _ = http_exchange(component, handshake_request(host="chat.local:8080", extra="Origin: http://chat.local:8080\r\n"))
    assert data.startswith(b"HTTP/1.1 101 ")
    data, _ = http_exchange(component, handshake_request(host="chat.local:8080", extra="Origin: http://evil.example\r\n"))
    assert data.startswith(b"HTTP/1.1 403 ")


def test_allowed_origins_can_change_later():
    """``allowed_origins`` is a list that may be extended after construction."""
    component, _ = check("example.com")
    component.allowed_origins.append("example.org")
    assert component.is_allowed("http://example.org")


def test_403_is_logged_with_the_origin_and_the_fix():
    """The refusal log names the refused origin and how to allow it."""
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        http_exchange(check("example.com")[0], handshake_request(extra="Origin: http://evil.example:3000\r\n"))
    finally:
        globalLogPublisher.removeObserver(events.append)
    refusal = [e for e in events if e.get("why")][-1]
    assert "http://evil.example:3000" in refusal["why"]
    assert "--origin evil.example" in refusal["fix"]


def test_refused_connection_does_not_reach_on_close():
    """The wrapped component sees nothing of a refused connection."""
    component, app = check("example.com")
    _, memory = http_exchange(component, handshake_request(extra="Origin: http://evil.example\r\n"))
    memory.lose()
    assert app.kinds() == []


@pytest.mark.parametrize(
    "value, host",
    [("http://a.example:1", "a.example"), ("a.example:1", "a.example"), ("[::1]:80", "::1"), ("http://[::1]:80", "::1")],
)
def test_origin_host(value, host):
    """origin_host strips scheme, port and brackets."""
    assert origin_host(value) == host
