"""twistd ratchetpy --route PATH=module:server with a Swoole-style server: options and makeService."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.swoole import Server
from ratchetpy.swoole.events import PrefixRoute
from ratchetpy.tap import makeService
from tests.support.memory import MemoryConnection, WsPeer, text_event
from tests.support.swoole import http_response
from tests.support.tap import error, parse
from tests.support.wire import handshake_request


def test_a_swoole_server_is_a_route_target():
    options = parse("--route", "/=tests.support.swoole_targets:make_server", "--route", "/echo")
    components = dict(options["route_components"])
    assert isinstance(components["/"], Server)


def test_the_example_resolves():
    options = parse("--route", "/=examples.swoole_server:ws_server")
    import examples.swoole_server

    assert dict(options["route_components"])["/"] is examples.swoole_server.ws_server


def test_make_service_serves_it_after_the_exact_routes():
    """The Swoole server's prefix route comes last, so /echo stays the echo; everything else is Swoole's."""
    options = parse("--route", "/=tests.support.swoole_targets:make_server", "--route", "/echo", "--quiet")
    app = makeService(options, reactor=MemoryReactorClock())
    routes = app.router.routes
    assert [r.path for r in routes] == ["/echo", "/"] and isinstance(routes[-1], PrefixRoute)
    server = dict(options["route_components"])["/"]
    assert server.app is app and server.hub is app.hub

    def client(path):
        return WsPeer(stack=app.blacklist, server=app.servers[0], path=path)

    swoole = client("/any/where")
    swoole.client.send_request(swoole.client.connect())
    assert swoole.pump()[1:] == [text_event("welcome")]
    assert swoole.send_text("x") == [text_event("swoole:x")]
    assert client("/echo").open().send_text("y") == [text_event("y")]
    http = MemoryConnection(None, server=app.servers[0])
    http.feed(b"POST /status HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", one_byte_at_a_time=False)
    assert http_response(http.take())[::2] == (200, b"http /status")


def test_origins_apply_to_its_websockets():
    """--origin restricts the Swoole server's WebSocket clients as it does every route's."""
    options = parse("--route", "/=tests.support.swoole_targets:make_server", "--origin", "good.example")
    app = makeService(options, reactor=MemoryReactorClock())
    bad = MemoryConnection(None, server=app.servers[0])
    bad.feed(handshake_request(extra="Origin: http://evil.example\r\n"), one_byte_at_a_time=False)
    assert bad.take().startswith(b"HTTP/1.1 403 ")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--route", "/=tests.support.swoole_targets:NO_MESSAGE_HANDLER"], "needs a 'message' handler"),
        (["--route", "/=ratchetpy.swoole:Server"], "needs a 'message' handler"),
        (["--route", "/r/{x}=tests.support.swoole_targets:make_server"], "without parameters"),
        (
            ["--route", "/=examples.swoole_server:ws_server", "--route", "/b=examples.swoole_server:ws_server"],
            "routed twice",
        ),
    ],
)
def test_mistakes_are_one_line(args, words):
    message = error(*args)
    assert message.startswith("twistd ratchetpy: error: --route ") and words in message
