"""
Connection limits in memory, on a task clock: ``max_connections`` and
``max_connections_per_ip`` refuse with 503 + Retry-After, places come back
however a connection ends, refusals are logged once per burst, and an
``App``'s limits hold across its routes. (On real sockets:
tests/integration/test_limits_loopback.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import App, ConfigurationError, HttpServer, IoServer, WsServer
from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket.admission import BURST_QUIET, Admission, Refusal, address_key
from tests.support.memory import WsPeer, ws_protocol
from tests.support.wire import handshake_request

PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "stock"])


def v4(host: str) -> IPv4Address:
    return IPv4Address("TCP", host, 40000)


def v6(host: str) -> IPv6Address:
    return IPv6Address("TCP", host, 40000)


class Served:
    """One ``HttpServer(WsServer(...))`` on an IoServer with a Clock; peers connect to it."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("log_connections", False)
        self.component = RecordingComponent()
        self.ws = WsServer(self.component, **options)
        self.reactor = MemoryReactorClock()
        self.server = IoServer(HttpServer(self.ws), 0, reactor=self.reactor)

    def peer(self, address: IPv4Address | IPv6Address | None = None) -> WsPeer:
        return WsPeer(server=self.server, peer=address)

    def connect(self, address: IPv4Address | IPv6Address | None = None) -> tuple[WsPeer, Any]:
        """A peer and its handshake response (101 or the refusal)."""
        peer = self.peer(address)
        return peer, peer.handshake()

    @property
    def refused(self) -> dict[str, int]:
        return dict(self.ws.hub.counters.refused)


def assert_503(response: Any, retry_after: str = "5") -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == retry_after


@PATHS
def test_max_connections_refuses_with_503_and_retry_after(fast_path: bool) -> None:
    served = Served(max_connections=2, fast_path=fast_path)
    a, b = served.peer().open(), served.peer().open()
    refused, response = served.connect()
    assert_503(response)
    assert not refused.memory.transport.connected
    assert served.refused == {"max_connections": 1}
    assert served.ws.hub.counters.refused_status[503] == 1
    assert served.component.kinds() == ["open", "open"]  # the refused one never reached it
    # Both admitted clients still work.
    a.client.send_text(b"still here")
    a.pump()
    assert served.component.messages() == ["still here"]
    assert served.ws.admission.open == 2 and b.client.state.name == "OPEN"


@PATHS
def test_a_place_comes_back_after_a_closing_handshake(fast_path: bool) -> None:
    served = Served(max_connections=1, fast_path=fast_path)
    a = served.peer().open()
    assert_503(served.connect()[1])
    a.client.send_close(1000)
    a.pump()
    # The server echoed the close and dropped TCP; the transport reports the loss.
    a.memory.lose()
    assert served.ws.admission.open == 0
    served.peer().open()
    assert served.ws.admission.open == 1


def test_a_place_comes_back_after_a_drop_and_a_server_close() -> None:
    served = Served(max_connections=1)
    a = served.peer().open()
    a.memory.lose()  # the peer vanished: no closing handshake
    assert served.ws.admission.open == 0
    b = served.peer().open()
    ws_protocol(b.memory.conn).conn.abort()
    assert served.ws.admission.open == 0
    c = served.peer().open()
    ws_protocol(c.memory.conn).conn.close(1000)
    c.pump()  # the client answers the close
    c.memory.lose()
    assert served.ws.admission.open == 0
    served.peer().open()


def test_a_place_comes_back_when_the_handshake_never_completes(monkeypatch) -> None:
    """A connection taken over whose handshake Autobahn refuses frees its place."""
    import ratchetpy.websocket.server as server_module

    served = Served(max_connections=1)
    # A head Autobahn refuses (unsupported version) once it took the connection.
    real = server_module.autobahn_head
    monkeypatch.setattr(
        server_module,
        "autobahn_head",
        lambda *a, **k: real(*a, **k).replace(b"Version: 13", b"Version: 7"),
    )
    peer, response = served.connect()
    assert response.status_code == 400  # Autobahn's refusal, not ours
    if peer.memory.transport.connected:
        peer.memory.lose()
    assert served.ws.admission.open == 0
    assert served.component.kinds() == []
    monkeypatch.setattr(server_module, "autobahn_head", real)
    served.peer().open()


def test_a_place_comes_back_when_taking_over_raises(monkeypatch) -> None:
    import ratchetpy.websocket.server as server_module

    served = Served(max_connections=1)

    def broken(conn: Any, protocol: Any) -> None:
        raise RuntimeError("take_over broke")

    monkeypatch.setattr(server_module, "take_over", broken)
    _, response = served.connect()
    assert response.status_code == 500
    assert served.ws.admission.open == 0


def test_per_ip_limit_counts_each_address() -> None:
    served = Served(max_connections_per_ip=2)
    served.peer(v4("10.0.0.1")).open()
    served.peer(v4("10.0.0.1")).open()
    assert_503(served.connect(v4("10.0.0.1"))[1])
    # An IPv4-mapped IPv6 peer (dual-stack socket) is the same address.
    assert_503(served.connect(v6("::ffff:10.0.0.1"))[1])
    assert served.refused == {"max_connections_per_ip": 2}
    served.peer(v4("10.0.0.2")).open()
    assert served.ws.admission.count_for("10.0.0.1") == 2
    assert served.ws.admission.count_for("::ffff:10.0.0.1") == 2
    assert served.ws.admission.count_for("10.0.0.2") == 1


def test_per_ip_limit_ipv6_addresses_count_on_their_own() -> None:
    served = Served(max_connections_per_ip=1)
    served.peer(v6("2001:db8::1")).open()
    # The same address written differently is the same address.
    assert_503(served.connect(v6("2001:DB8:0:0::1"))[1])
    served.peer(v6("2001:db8::2")).open()
    served.peer(v6("::1")).open()
    served.peer(v4("127.0.0.1")).open()  # not the same host as ::1 by address
    assert served.ws.admission.open == 4


def test_both_limits_and_which_one_refused() -> None:
    served = Served(max_connections=3, max_connections_per_ip=2, retry_after=30)
    served.peer(v4("10.0.0.1")).open()
    served.peer(v4("10.0.0.1")).open()
    assert_503(served.connect(v4("10.0.0.1"))[1], "30")
    served.peer(v4("10.0.0.2")).open()
    assert_503(served.connect(v4("10.0.0.3"))[1], "30")
    assert served.refused == {"max_connections_per_ip": 1, "max_connections": 1}


def test_bad_handshakes_are_refused_as_before_and_take_no_place() -> None:
    """The limits apply to valid handshakes: a plain GET still gets 426."""
    served = Served(max_connections=1)
    served.peer().open()
    peer = served.peer()
    peer.memory.feed(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", one_byte_at_a_time=False)
    assert peer.memory.take().startswith(b"HTTP/1.1 426 ")
    assert served.ws.admission.open == 1


def test_no_limits_by_default_counts_nothing() -> None:
    served = Served()
    assert served.ws.admission.limited is False
    peers = [served.peer().open() for _ in range(20)]
    assert served.ws.admission.open == 0  # not counted: no per-connection cost
    assert all(ws_protocol(p.memory.conn)._slot is None for p in peers)


# -- logged once per burst -----------------------------------------------------


def messages(logged: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [e for e in logged if text in e.get("log_format", "")]


def test_refusals_are_logged_once_per_burst(logged) -> None:
    served = Served(max_connections=1)
    served.peer().open()
    for _ in range(5):
        assert_503(served.connect()[1])
    starts = messages(logged, "Refusing WebSocket connections")
    assert len(starts) == 1
    assert starts[0]["reason"] == "max_connections" and starts[0]["limit"] == 1
    assert "--max-connections" in starts[0]["fix"]
    assert messages(logged, "Refused {count}") == []
    # Refusals a little apart keep the burst going.
    served.reactor.advance(BURST_QUIET - 1)
    assert_503(served.connect()[1])
    served.reactor.advance(BURST_QUIET - 1)
    assert messages(logged, "Refused {count}") == []
    served.reactor.advance(1)
    (summary,) = messages(logged, "Refused {count}")
    assert summary["count"] == 6 and summary["refused"] == {"max_connections": 6}
    assert summary["duration"] == BURST_QUIET - 1
    assert len(messages(logged, "Refusing WebSocket connections")) == 1
    # A later refusal starts a new burst.
    assert_503(served.connect()[1])
    assert len(messages(logged, "Refusing WebSocket connections")) == 2
    assert served.refused == {"max_connections": 7}


def test_app_stop_logs_the_burst_summary_and_leaves_no_timer(logged) -> None:
    reactor = MemoryReactorClock()
    app = App("localhost", reactor=reactor, max_connections=1, log_connections=False)
    app.route("/echo", RecordingComponent(), ["*"])
    WsPeer(server=app.servers[0], path="/echo").open()
    assert_503(WsPeer(server=app.servers[0], path="/echo").handshake())
    assert app.admission._burst_timer is not None
    app.stopService()
    (summary,) = messages(logged, "Refused {count}")
    assert summary["count"] == 1 and summary["why"] == "server stopping"
    assert app.admission._burst_timer is None


# -- App: one Admission for every route ----------------------------------------------


def test_app_limits_are_global_across_routes() -> None:
    reactor = MemoryReactorClock()
    app = App("localhost", reactor=reactor, max_connections=2, log_connections=False)
    app.route("/a", RecordingComponent(), ["*"])
    app.route("/b", RecordingComponent(), ["*"])
    own = WsServer(RecordingComponent(), log_connections=False)
    app.route("/c", own, ["*"])
    assert all(ws.admission is app.admission for ws in app.ws_servers)
    server = app.servers[0]
    WsPeer(server=server, path="/a").open()
    WsPeer(server=server, path="/c").open()
    assert_503(WsPeer(server=server, path="/b").handshake())
    assert dict(app.hub.counters.refused) == {"max_connections": 1}


def test_a_routes_own_limit_applies_on_top_of_the_apps() -> None:
    reactor = MemoryReactorClock()
    app = App("localhost", reactor=reactor, max_connections=3, log_connections=False)
    app.route("/a", RecordingComponent(), ["*"])
    admin = WsServer(RecordingComponent(), max_connections=1, log_connections=False)
    app.route("/admin", admin, ["*"])
    assert admin.admission.parent is app.admission
    server = app.servers[0]
    WsPeer(server=server, path="/admin").open()
    assert_503(WsPeer(server=server, path="/admin").handshake())  # the route's limit
    WsPeer(server=server, path="/a").open()
    WsPeer(server=server, path="/a").open()
    assert_503(WsPeer(server=server, path="/a").handshake())  # the App's: 3 in all
    assert app.admission.open == 3 and admin.admission.open == 1


def test_app_options_reach_every_wrapped_route() -> None:
    app = App(
        reactor=MemoryReactorClock(),
        max_connections_per_ip=4,
        retry_after=9,
        idle_timeout=60,
        idle_counts_pongs=True,
    )
    app.route("/a", RecordingComponent(), ["*"])
    (ws,) = app.ws_servers
    assert ws.admission is app.admission
    assert app.admission.max_connections_per_ip == 4 and app.admission.retry_after == 9
    assert ws.idle_timeout == 60 and ws.idle_counts_pongs is True


# -- unit: address keys and configuration ------------------------------------------


@pytest.mark.parametrize(
    "address, key",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::FFFF:c000:0207", "192.0.2.7"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::1", "::1"),
        ("unix:/run/ratchetpy.sock", None),
        ("unix:", None),
    ],
)
def test_address_key(address: str, key: str | None) -> None:
    assert address_key(address) == key


def test_unix_socket_peers_count_only_against_the_total() -> None:
    admission = Admission(2, 1)
    reactor = MemoryReactorClock()
    first = admission.admit("unix:", reactor)
    second = admission.admit("unix:", reactor)
    assert not isinstance(first, Refusal) and not isinstance(second, Refusal)
    third = admission.admit("unix:", reactor)
    assert isinstance(third, Refusal) and third.reason == "max_connections"
    first.release()
    first.release()  # a second release gives nothing back twice
    assert admission.open == 1


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_connections": 0}, "max_connections must be a positive int or None"),
        ({"max_connections": 1.5}, "max_connections must be a positive int or None"),
        ({"max_connections_per_ip": -1}, "max_connections_per_ip must be a positive int"),
        ({"max_connections_per_ip": True}, "max_connections_per_ip must be a positive int"),
        ({"retry_after": 0}, "retry_after must be a positive int"),
        ({"idle_timeout": 0}, "idle_timeout must be a positive number of seconds"),
        ({"idle_timeout": "10"}, "idle_timeout must be a positive number of seconds"),
        ({"admission": Admission(), "max_connections": 5}, "either admission= or max_connections"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WsServer(RecordingComponent(), **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_connections": 0}, "max_connections must be"),
        ({"idle_timeout": -3}, "idle_timeout must be"),
        ({"retry_after": 2.5}, "retry_after must be"),
    ],
)
def test_bad_app_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        App(reactor=MemoryReactorClock(), **options)


def test_handshake_request_helper_is_a_valid_handshake() -> None:
    # Guards the tests above: a refusal there is the limit, not a bad request.
    served = Served(max_connections=1)
    peer = served.peer()
    peer.memory.feed(handshake_request(), one_byte_at_a_time=False)
    assert peer.memory.take().startswith(b"HTTP/1.1 101 ")
