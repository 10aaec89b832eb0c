"""App: Ratchet's facade and its wrapping rules, in memory (on real sockets: integration/test_app_loopback.py)."""

from __future__ import annotations

import sys
import types

import pytest
from twisted.internet.testing import MemoryReactor

from ratchetpy import EchoServer, WsServer
from ratchetpy.app import App, wrap_component
from ratchetpy.exceptions import ComponentError
from ratchetpy.http.controllers import HealthCheck
from ratchetpy.http.origin import OriginCheck
from tests.support.memory import http_exchange
from tests.support.wire import handshake_request


def test_defaults_are_ratchets():
    """App() listens on 127.0.0.1:8080 and expects Host localhost, as Ratchet."""
    reactor = MemoryReactor()
    app = App(reactor=reactor)
    app.privilegedStartService()
    port, _, _, interface = reactor.tcpServers[0]
    assert (port, interface) == (8080, "127.0.0.1")
    assert len(reactor.tcpServers) == 1, "no second (Flash policy) port"
    assert app.http_host == "localhost"


def test_message_component_gets_ws_server_with_keepalive():
    """A message component is wrapped in WsServer with a 30 s keepalive."""
    ws = wrap_component(EchoServer())
    assert isinstance(ws, WsServer) and ws.keep_alive_interval == 30


def test_http_components_are_used_as_they_are():
    """A WsServer or HTTP controller is routed as is, with no keepalive added."""
    ws = WsServer(EchoServer())
    assert wrap_component(ws) is ws and ws.keep_alive_interval == 0
    health = HealthCheck()
    assert wrap_component(health) is health


def test_non_component_is_refused():
    """Routing something that is not a component fails with a clear message."""
    with pytest.raises(ComponentError, match="not a component"):
        App(reactor=MemoryReactor()).route("/x", object())


def test_wamp_component_is_wrapped_in_wamp_server(monkeypatch):
    """A WAMP app (on_call/on_publish) becomes WsServer(WampServer(app)) with keepalive."""
    made = []

    class WampServer(EchoServer):
        def __init__(self, app):
            made.append(app)

        def get_sub_protocols(self):
            return ["wamp"]

    fake = types.ModuleType("ratchetpy.wamp")
    fake.WampServer = WampServer
    monkeypatch.setitem(sys.modules, "ratchetpy.wamp", fake)

    class Pusher(EchoServer):
        def on_call(self, conn, id, topic, params): ...
        def on_publish(self, conn, topic, event, exclude, eligible): ...

    pusher = Pusher()
    ws = wrap_component(pusher)
    assert made == [pusher] and isinstance(ws.component, WampServer)
    assert ws.sub_protocols == ["wamp"] and ws.keep_alive_interval == 30


def test_route_defaults_to_same_site_origins():
    """Without allowed origins a route only accepts Origin http_host (Ratchet)."""
    app = App("example.com", reactor=MemoryReactor())
    routed = app.route("/chat", EchoServer())
    assert isinstance(routed, OriginCheck) and routed.allowed_origins == ["example.com"]
    assert isinstance(app.route("/open", EchoServer(), ["*"]), WsServer)


def test_gates_in_ratchets_order():
    """404 (path/Host), 405, 403, then the handshake's 426 — as Ratchet's App."""
    app = App("localhost", reactor=MemoryReactor())
    app.route("/echo", EchoServer(), ["example.com"])
    assert http_exchange(app.router, handshake_request("/nope"))[0].startswith(b"HTTP/1.1 404 ")
    assert http_exchange(app.router, handshake_request("/echo", host="127.0.0.1"))[0].startswith(b"HTTP/1.1 404 ")
    assert http_exchange(app.router, handshake_request("/echo", method="PUT"))[0].startswith(b"HTTP/1.1 405 ")
    assert http_exchange(app.router, handshake_request("/echo"))[0].startswith(b"HTTP/1.1 403 ")
    plain = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nOrigin: http://example.com\r\n\r\n"
    assert http_exchange(app.router, plain)[0].startswith(b"HTTP/1.1 426 ")
    ok = handshake_request("/echo", extra="Origin: https://example.com:8443\r\n")
    assert http_exchange(app.router, ok)[0].startswith(b"HTTP/1.1 101 ")


def test_route_http_host_overrides_the_apps():
    """route(..., http_host=) makes that route answer another host."""
    app = App("localhost", reactor=MemoryReactor())
    app.route("/echo", EchoServer(), ["*"], http_host="chat.example.com")
    assert http_exchange(app.router, handshake_request("/echo", host="localhost"))[0].startswith(b"HTTP/1.1 404 ")
    assert http_exchange(app.router, handshake_request("/echo", host="chat.example.com"))[0].startswith(b"HTTP/1.1 101 ")


def test_tls_dict_listens_with_ssl(tls_files):
    """tls={'local_cert':..., 'local_pk':...} (Ratchet's context keys) serves TLS."""
    cert, key = tls_files
    reactor = MemoryReactor()
    app = App(reactor=reactor, tls={"local_cert": cert, "local_pk": key})
    app.privilegedStartService()
    assert len(reactor.sslServers) == 1 and reactor.tcpServers == []


def test_listen_endpoints_replace_port():
    """listen= takes endpoint descriptions, one IoServer each, on one stack."""
    reactor = MemoryReactor()
    app = App(reactor=reactor, listen=["tcp:9001:interface=127.0.0.1", "tcp:9002"])
    app.privilegedStartService()
    assert [s[0] for s in reactor.tcpServers] == [9001, 9002]
    assert app.servers[0].app is app.servers[1].app


def test_app_blacklist_refuses_blocked_peers():
    """app.blacklist sits under HttpServer: a blocked peer gets no answer at all."""
    from tests.support.memory import MemoryConnection

    app = App("localhost", reactor=MemoryReactor())
    app.route("/echo", EchoServer(), ["*"])
    assert app.servers[0].app is app.blacklist
    app.blacklist.block_address("127.0.0.0/8")
    memory = MemoryConnection(app.blacklist)
    memory.feed(handshake_request("/echo"), one_byte_at_a_time=False)
    assert memory.take() == b""
    assert memory.transport.disconnecting or not memory.transport.connected
