"""Router: Ratchet's gates in order (404 route+Host, 405, then the component)."""

from __future__ import annotations

import pytest

from ratchetpy import WsServer
from ratchetpy.exceptions import ConfigurationError
from ratchetpy.http.controllers import StaticResponse
from ratchetpy.http.router import Route, Router
from ratchetpy.testing import RecordingComponent
from tests.support.memory import http_exchange
from tests.support.wire import handshake_request


class Recorder:
    """An HttpServerInterface-shaped component recording the request it got."""

    def __init__(self) -> None:
        self.requests = []
        self.closed = 0

    def on_open(self, conn, request):
        self.requests.append(request)

    def on_message(self, conn, msg):
        pass

    def on_close(self, conn):
        self.closed += 1

    def on_error(self, conn, exc):
        raise exc


def test_unknown_path_gets_bare_404_and_close(logged):
    """An unknown path gets Ratchet's bare 404 and the connection closes."""
    router = Router()
    router.add("/echo", WsServer(RecordingComponent()))
    data, memory = http_exchange(router, handshake_request("/nope"))
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"X-Powered-By" in data and b"Content-Length" not in data
    assert not memory.transport.connected
    assert any("404" in str(e.get("log_format", "")) and e.get("path") == "/nope" for e in logged)


def test_trailing_slash_does_not_match():
    """``/echo/`` is not ``/echo`` (Ratchet answers 404)."""
    router = Router([Route("/echo", WsServer(RecordingComponent()))])
    data, _ = http_exchange(router, handshake_request("/echo/"))
    assert data.startswith(b"HTTP/1.1 404 ")


def test_404_comes_before_websocket_checks_for_plain_get():
    """A plain GET on an unknown path gets 404, not the handshake's 426."""
    router = Router([Route("/echo", WsServer(RecordingComponent()))])
    data, _ = http_exchange(router, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 404 ")


def test_host_must_match_ignoring_case_and_port(logged):
    """The Host header must equal the route's host; port and case are ignored."""
    router = Router([Route("/echo", WsServer(RecordingComponent()), host="localhost")])
    data, _ = http_exchange(router, handshake_request("/echo", host="127.0.0.1:9100"))
    assert data.startswith(b"HTTP/1.1 404 ")
    fix = [e for e in logged if e.get("fix")]
    assert "localhost" in fix[-1]["fix"] and "http_host" in fix[-1]["fix"]
    data, _ = http_exchange(router, handshake_request("/echo", host="LOCALHOST:9103"))
    assert data.startswith(b"HTTP/1.1 101 ")


def test_host_pattern_captures_parameters():
    """A host pattern may capture a parameter, as Symfony's host requirements do."""
    recorder = Recorder()
    router = Router([Route("/ws", recorder, host="{tenant}.example.com")])
    http_exchange(router, handshake_request("/ws", host="acme.example.com"))
    assert recorder.requests[0].route_params == {"tenant": "acme"}


def test_wrong_method_gets_405_with_allow():
    """A POST to a GET route gets 405 with ``Allow: GET``."""
    router = Router([Route("/echo", WsServer(RecordingComponent()))])
    data, memory = http_exchange(router, handshake_request("/echo", method="POST"))
    head = data.decode().split("\r\n")
    assert head[0] == "HTTP/1.1 405 Method Not Allowed"
    # Ratchet's Router order: X-Powered-By, then Allow (the negotiator's is reversed).
    assert [h.split(":")[0] for h in head[1:3]] == ["X-Powered-By", "Allow"]
    assert head[2] == "Allow: GET"
    assert not memory.transport.connected


def test_405_only_after_host_matches():
    """A method mismatch on a route whose Host does not match is a 404."""
    router = Router([Route("/echo", WsServer(RecordingComponent()), host="localhost")])
    data, _ = http_exchange(router, handshake_request("/echo", method="POST", host="other"))
    assert data.startswith(b"HTTP/1.1 404 ")


def test_head_reaches_the_component_like_get():
    """HEAD matches a GET route (Symfony), so WsServer answers with its own 405."""
    router = Router([Route("/echo", WsServer(RecordingComponent()))])
    data, _ = http_exchange(router, handshake_request("/echo", method="HEAD"))
    assert data.startswith(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nX-Powered-By: ")


def test_route_params_exposed_and_merged_into_query_with_query_winning():
    """``/chat/{room}`` fills route_params and the query; the query string wins."""
    recorder = Recorder()
    router = Router([Route("/chat/{room}/{user}", recorder)])
    http_exchange(router, handshake_request("/chat/lobby/ann?user=bob&x=1"))
    request = recorder.requests[0]
    assert request.route_params == {"room": "lobby", "user": "ann"}
    assert request.query == {"room": "lobby", "user": "bob", "x": "1"}


def test_requirement_restricts_a_parameter():
    """``{id<\\d+>}`` only matches digits."""
    recorder = Recorder()
    router = Router([Route("/item/{id<\\d+>}", recorder)])
    data, _ = http_exchange(router, handshake_request("/item/abc"))
    assert data.startswith(b"HTTP/1.1 404 ")
    http_exchange(router, handshake_request("/item/42"))
    assert recorder.requests[0].route_params == {"id": "42"}


def test_percent_encoded_path_is_decoded_before_matching():
    """``/caf%C3%A9`` matches the route ``/café``, as Symfony decodes the path."""
    recorder = Recorder()
    router = Router([Route("/room/{name}", recorder)])
    http_exchange(router, handshake_request("/room/caf%C3%A9"))
    assert recorder.requests[0].route_params == {"name": "café"}


def test_valid_request_is_handed_to_the_websocket_server():
    """A matching request completes the handshake and reaches the app."""
    app = RecordingComponent()
    router = Router([Route("/echo", WsServer(app))])
    data, memory = http_exchange(router, handshake_request("/echo"))
    assert data.startswith(b"HTTP/1.1 101 ")
    assert app.kinds() == ["open"]
    memory.lose()
    assert app.kinds() == ["open", "close"]


def test_refused_connection_ignores_later_bytes_and_close():
    """After a 404, further bytes and the close land in the no-op controller."""
    recorder = Recorder()
    router = Router([Route("/echo", recorder)])
    _, memory = http_exchange(router, handshake_request("/nope") + b"\x81\x85junk")
    memory.lose()
    assert recorder.requests == [] and recorder.closed == 0


def test_a_class_controller_is_instantiated_per_connection():
    """A class given as controller gets one instance per connection (Ratchet)."""
    instances = []

    class Page(StaticResponse):
        def __init__(self):
            super().__init__("hi", "text/plain")
            instances.append(self)

    router = Router([Route("/", Page)])
    for _ in range(2):
        data, _ = http_exchange(router, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.endswith(b"\r\n\r\nhi")
    assert len(instances) == 2


@pytest.mark.parametrize("path", ["chat", "/a/{x}/{x}", "/a/{x<(>}"])
def test_bad_patterns_are_refused(path):
    """A path without '/', a repeated parameter or a bad requirement is refused."""
    with pytest.raises(ConfigurationError):
        Route(path, None)


def test_non_component_controller_is_refused():
    """A controller without the component methods is refused when added."""
    with pytest.raises(TypeError):
        Router().add("/x", object())
