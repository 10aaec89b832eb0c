"""
The Twisted client in memory (a Clock, a StringTransport, the server
played by the test): keepalive timers, handshake timeout, refusal bodies,
the reconnect backoff and the bounded send queue.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.client import (
    ClientConnection,
    ConnectFailed,
    HandshakeRefused,
    HandshakeTimeout,
    KeepaliveTimeout,
    ReconnectingClient,
    SendQueueFull,
    connect,
)
from ratchetpy.client.protocol import BODY_WAIT
from ratchetpy.exceptions import ConfigurationError
from tests.client.components import Recorder
from tests.client.fake_server import FakeEndpoint

URL = "ws://example.test:8080/chat?room=1"
PING, PONG, TEXT, BINARY, CLOSE = 0x9, 0xA, 0x1, 0x2, 0x8


def opened(clock: MemoryReactorClock, component: Any = None, **kw: Any) -> tuple[Any, Any, Any]:
    endpoint = FakeEndpoint()
    d = connect(URL, component, reactor=clock, endpoint=endpoint, **kw)
    endpoint.peer.accept()
    results: list[Any] = []
    d.addBoth(results.append)
    assert isinstance(results[0], ClientConnection), results
    return results[0], endpoint.peer, endpoint


def fired(d: Any) -> bool:
    results: list[Any] = []
    d.addBoth(lambda r: results.append(r) or r)
    return bool(results)


def result_of(d: Any) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    value = results[0]
    return value.value if hasattr(value, "value") and hasattr(value, "trap") else value


def test_request_line_headers_and_subprotocol():
    clock = MemoryReactorClock()
    endpoint = FakeEndpoint()
    connect(
        URL,
        reactor=clock,
        endpoint=endpoint,
        subprotocols=["a.v1", "b.v1"],
        headers={"Authorization": "Bearer t"},
        origin="http://example.test",
    )
    request = endpoint.peer.request().decode()
    assert request.startswith("GET /chat?room=1 HTTP/1.1\r\n")
    assert "Authorization: Bearer t" in request
    assert "Origin: http://example.test" in request
    assert "Sec-WebSocket-Protocol: a.v1,b.v1" in request
    assert "User-Agent: ratchetpy/" in request


def test_keepalive_pings_and_drops_a_silent_peer():
    clock = MemoryReactorClock()
    recorder = Recorder()
    conn, peer, _ = opened(clock, recorder, keepalive_interval=10, keepalive_timeout=5)
    clock.advance(9.9)
    assert peer.frames() == []
    clock.advance(0.1)
    [(opcode, payload)] = peer.frames()
    assert opcode == PING
    peer.send(PONG, payload)  # answered: still open after the timeout
    clock.advance(5)
    assert not peer.transport.aborted
    clock.advance(5)  # the next ping, never answered
    assert [f[0] for f in peer.frames()] == [PING]
    clock.advance(4.9)
    assert not peer.transport.aborted
    clock.advance(0.1)
    assert peer.transport.aborted
    assert isinstance(conn.close_error, KeepaliveTimeout)
    assert recorder.closes == [(1006, str(conn.close_error), conn.close_error)]
    assert clock.getDelayedCalls() == []


def test_keepalive_off_sends_no_ping():
    clock = MemoryReactorClock()
    conn, peer, _ = opened(clock, keepalive_interval=None)
    clock.advance(3600)
    assert peer.frames() == []
    assert not conn.closing


def test_handshake_timeout_on_the_injected_clock():
    clock = MemoryReactorClock()
    endpoint = FakeEndpoint()
    d = connect(URL, reactor=clock, endpoint=endpoint, handshake_timeout=3)
    clock.advance(2.9)
    assert not fired(d)
    clock.advance(0.1)
    error = result_of(d)
    assert isinstance(error, HandshakeTimeout)
    assert "3 s" in str(error)
    assert endpoint.peer.transport.aborted


def test_refusal_body_without_length_waits_a_bounded_time():
    clock = MemoryReactorClock()
    endpoint = FakeEndpoint()
    d = connect(URL, reactor=clock, endpoint=endpoint)
    endpoint.peer.protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\nX-Why: origin\r\n\r\nOrigin not al")
    assert not fired(d)
    clock.advance(BODY_WAIT)
    error = result_of(d)
    assert isinstance(error, HandshakeRefused)
    assert (error.status, error.reason, error.body) == (403, "Forbidden", b"Origin not al")
    assert error.headers["x-why"] == "origin"
    assert "403 Forbidden" in str(error) and "Origin not al" in str(error)


def test_refusal_with_content_length_needs_no_wait():
    clock = MemoryReactorClock()
    endpoint = FakeEndpoint()
    d = connect(URL, reactor=clock, endpoint=endpoint)
    endpoint.peer.protocol.dataReceived(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!")
    error = result_of(d)
    assert isinstance(error, HandshakeRefused) and error.body == b"nope!"
    assert clock.getDelayedCalls() == []


def test_component_errors_go_to_on_error_and_the_connection_stays():
    clock = MemoryReactorClock()

    class Faulty(Recorder):
        def on_message(self, conn: Any, msg: Any) -> None:
            raise RuntimeError("bad " + msg)

    component = Faulty()
    conn, peer, _ = opened(clock, component)
    peer.send(TEXT, b"x")
    assert [str(e) for e in component.errors] == ["bad x"]
    assert not conn.closing


def test_component_with_php_names_is_refused():
    from ratchetpy.exceptions import ComponentError

    class Php:
        def onMessage(self, conn: Any, msg: Any) -> None: ...

    with pytest.raises(ComponentError):
        connect(URL, Php(), reactor=MemoryReactorClock(), endpoint=FakeEndpoint())


# -- ReconnectingClient --------------------------------------------------------


class LoginFirst(Recorder):
    def on_open(self, conn: Any) -> None:
        super().on_open(conn)
        conn.send("login")


def reconnecting(endpoint: FakeEndpoint, **kw: Any) -> tuple[ReconnectingClient, MemoryReactorClock, Any]:
    clock = MemoryReactorClock()
    component = kw.pop("component", None) or LoginFirst()
    client = ReconnectingClient(
        URL, component, reactor=clock, endpoint=endpoint, random=lambda: 0.0, **kw
    )
    return client, clock, component


def test_backoff_grows_with_jitter_floor_and_resets_after_an_open():
    endpoint = FakeEndpoint(refuse=4)
    client, clock, component = reconnecting(
        endpoint, backoff_initial=1.0, backoff_max=4.0, keepalive_interval=None
    )
    client.startService()
    delays = []
    for _ in range(4):
        [call] = clock.getDelayedCalls()
        delays.append(call.getTime() - clock.seconds())
        clock.advance(delays[-1])
    # random() == 0: half of min(max, initial * 2**n)
    assert delays == [0.5, 1.0, 2.0, 2.0]
    assert endpoint.attempts == 5
    endpoint.peer.accept()
    assert component.opens == 1 and client.backoff.failures == 0
    endpoint.peer.transport.loseConnection()  # lost: the next wait starts small again
    [call] = clock.getDelayedCalls()
    assert call.getTime() - clock.seconds() == 0.5


def test_queue_is_bounded_and_flushed_after_on_open():
    endpoint = FakeEndpoint(refuse=1)
    client, clock, component = reconnecting(endpoint, max_queued=2, keepalive_interval=None)
    client.startService()
    client.send("one")
    client.send(b"two")
    with pytest.raises(SendQueueFull) as caught:
        client.send("three")
    assert "max_queued" in str(caught.value)
    assert list(client.queue) == ["one", b"two"]
    clock.advance(client.backoff.maximum)
    endpoint.peer.accept()
    # on_open's own message first, then the queue in order
    assert endpoint.peer.frames() == [(TEXT, b"login"), (TEXT, b"one"), (BINARY, b"two")]
    client.send("now")
    assert endpoint.peer.frames() == [(TEXT, b"now")]
    assert len(client.queue) == 0


def test_failed_handshake_is_retried_and_not_an_open():
    endpoint = FakeEndpoint()
    client, clock, component = reconnecting(endpoint, keepalive_interval=None)
    client.startService()
    endpoint.peer.protocol.dataReceived(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    assert component.opens == 0
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(client.backoff.maximum)
    assert endpoint.attempts == 2
    endpoint.peer.accept()
    assert component.opens == 1


def test_keepalive_timeout_reconnects():
    endpoint = FakeEndpoint()
    client, clock, component = reconnecting(endpoint, keepalive_interval=1, keepalive_timeout=1)
    client.startService()
    endpoint.peer.accept()
    clock.advance(1)
    clock.advance(1)  # ping unanswered
    assert isinstance(component.closes[0][2], KeepaliveTimeout)
    assert client.connection is None
    clock.advance(client.backoff.maximum)
    endpoint.peer.accept()
    assert component.opens == 2


def test_stop_closes_with_1000_and_stops_retrying():
    endpoint = FakeEndpoint()
    client, clock, component = reconnecting(endpoint, keepalive_interval=None)
    client.startService()
    endpoint.peer.accept()
    endpoint.peer.frames()
    stopped = client.stopService()
    [(opcode, payload)] = endpoint.peer.frames()
    assert opcode == CLOSE and payload[:2] == b"\x03\xe8"
    endpoint.peer.send(CLOSE, b"\x03\xe8")
    endpoint.peer.transport.loseConnection()
    assert stopped.called
    assert clock.getDelayedCalls() == []
    assert endpoint.attempts == 1


def test_reconnecting_client_options_are_checked():
    with pytest.raises(ConfigurationError):
        ReconnectingClient(URL, Recorder(), reactor=MemoryReactorClock(), max_queued=-1)
    with pytest.raises(ConfigurationError):
        ReconnectingClient(URL, None, reactor=MemoryReactorClock())
    with pytest.raises(ConfigurationError):
        ReconnectingClient(URL, Recorder(), reactor=MemoryReactorClock(), backoff_initial=0)


def test_connect_failure_is_explained():
    clock = MemoryReactorClock()
    d = connect(URL, reactor=clock, endpoint=FakeEndpoint(refuse=1))
    error = result_of(d)
    assert isinstance(error, ConnectFailed) and "example.test:8080" in str(error)


def test_receive_that_timed_out_does_not_swallow_the_next_message():
    clock = MemoryReactorClock()
    conn, peer, _ = opened(clock, keepalive_interval=None)
    waited = conn.receive().addTimeout(1, clock)
    clock.advance(1)
    from twisted.internet.defer import TimeoutError as DeferredTimeout

    assert isinstance(result_of(waited), DeferredTimeout)
    peer.send(TEXT, b"later")
    assert result_of(conn.receive()) == "later"


def test_message_over_the_limit_closes_with_1009():
    clock = MemoryReactorClock()
    recorder = Recorder()
    conn, peer, _ = opened(clock, recorder, max_message_size=10, keepalive_interval=None)
    peer.send(TEXT, b"x" * 11)
    [(opcode, payload)] = peer.frames()
    assert opcode == CLOSE and payload[:2] == (1009).to_bytes(2, "big")
    assert recorder.messages == []


def test_failures_are_logged_one_line_each(logged: list) -> None:
    endpoint = FakeEndpoint(refuse=1)
    client, clock, component = reconnecting(endpoint, keepalive_interval=None)
    client.startService()
    texts = [e.get("log_format", "") for e in logged if e.get("log_namespace") == "ratchetpy.client"]
    assert any("connection refused" in str(e.get("error", "")) for e in logged)
    assert sum("reconnecting to" in t for t in texts) == 1
    assert not any("Scheduling retry" in str(e.get("log_format", "")) for e in logged)


def test_stop_while_waiting_to_retry_leaves_nothing_scheduled():
    endpoint = FakeEndpoint(refuse=1)
    client, clock, component = reconnecting(endpoint, keepalive_interval=None)
    client.startService()
    assert len(clock.getDelayedCalls()) == 1
    client.send("queued")
    waiting = client.when_connected()
    stopped = client.stopService()
    assert "stopped" in str(result_of(waiting))
    assert fired(stopped)
    assert clock.getDelayedCalls() == [] and len(client.queue) == 0
    clock.advance(60)
    assert endpoint.attempts == 1 and component.opens == 0


def test_unusable_ca_file_is_a_configuration_error(tmp_path):
    from ratchetpy.client.sync import connect as sync_connect

    with pytest.raises(ConfigurationError, match="ca_file"):
        sync_connect("wss://127.0.0.1:1/", ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="ca_file"):
        connect("wss://127.0.0.1:1/", reactor=MemoryReactorClock(), ca_file=str(tmp_path / "missing.pem"))
    (tmp_path / "empty.pem").write_text("nothing here")
    with pytest.raises(ConfigurationError, match="no PEM certificate"):
        connect("wss://127.0.0.1:1/", reactor=MemoryReactorClock(), ca_file=str(tmp_path / "empty.pem"))


def test_server_that_never_drops_tcp_after_closing_is_dropped_on_our_clock():
    from twisted.internet import reactor as global_reactor

    before = len(global_reactor.getDelayedCalls())
    clock = MemoryReactorClock()
    recorder = Recorder()
    conn, peer, _ = opened(clock, recorder, close_timeout=2, keepalive_interval=None)
    peer.send(CLOSE, b"\x0f\xa0bye")  # 4000 "bye"
    [(opcode, payload)] = peer.frames()
    assert opcode == CLOSE  # answered
    assert len(global_reactor.getDelayedCalls()) == before
    clock.advance(1.9)
    assert not peer.transport.aborted
    clock.advance(0.1)
    assert peer.transport.aborted
    assert recorder.closes == [(4000, "bye", None)]  # the handshake itself was complete
    assert clock.getDelayedCalls() == []


def test_close_answered_then_dropped_in_time_is_clean():
    clock = MemoryReactorClock()
    recorder = Recorder()
    conn, peer, _ = opened(clock, recorder, close_timeout=2, keepalive_interval=None)
    conn.close(4001, "done")
    peer.send(CLOSE, b"\x0f\xa1done")
    peer.transport.loseConnection()
    assert recorder.closes == [(4001, "done", None)]
    assert clock.getDelayedCalls() == []


def test_cancelling_connect_aborts_the_handshake():
    from twisted.internet.defer import CancelledError

    clock = MemoryReactorClock()
    endpoint = FakeEndpoint()
    recorder = Recorder()
    d = connect(URL, recorder, reactor=clock, endpoint=endpoint)
    d.cancel()
    assert isinstance(result_of(d), CancelledError)
    assert endpoint.peer.transport.aborted
    assert recorder.opens == 0 and recorder.closes == []
    assert clock.getDelayedCalls() == []


def test_ipv6_host_header_has_brackets():
    endpoint = FakeEndpoint()
    connect("ws://[::1]:9001/x", reactor=MemoryReactorClock(), endpoint=endpoint)
    request = endpoint.peer.request().decode()
    assert "\r\nHost: [::1]:9001\r\n" in request
    assert request.startswith("GET /x HTTP/1.1")


def test_unread_messages_are_bounded_by_pausing_the_transport():
    from ratchetpy.client.protocol import Inbox

    clock = MemoryReactorClock()
    conn, peer, _ = opened(clock, keepalive_interval=None)
    for n in range(Inbox.max_queue):
        peer.send(TEXT, f"m{n}".encode())
    assert peer.transport.producerState == "paused"  # TCP pushes back on the server
    got = [result_of(conn.receive()) for _ in range(Inbox.max_queue // 2)]
    assert got == [f"m{n}" for n in range(Inbox.max_queue // 2)]
    assert peer.transport.producerState == "producing"  # half taken: reading again
    rest = [result_of(conn.receive()) for _ in range(Inbox.max_queue // 2)]
    assert rest[-1] == f"m{Inbox.max_queue - 1}"  # nothing lost
