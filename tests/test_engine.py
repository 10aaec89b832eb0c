"""
Every Autobahn/Twisted internal ratchetpy relies on is still there.

These fail loudly when an upgrade moves a private name; the fast path would
then switch itself off at import (see ``_engine.FASTPATH_AVAILABLE``), so
production stays correct, but the upgrade needs re-verifying: run this
file, ``tests/test_fastpath.py`` and the Autobahn TestSuite
(``tests/conformance/ats.py``), then add the versions to VERIFIED_VERSIONS
and setup.cfg's pins.
"""

from __future__ import annotations

import socket

import autobahn
import pytest
import twisted
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.websocket import _engine
from ratchetpy.websocket._engine import (
    DIRECT_WRITE_TYPES,
    FASTPATH_NAMES,
    REQUIRED_NAMES,
    TRANSPORT_NAMES,
    WebSocketServerProtocol,
    direct_write,
    fastpath_problems,
)
from tests.helpers import WsPeer
from ratchetpy.testing import RecordingComponent


def test_installed_versions_were_verified():
    """An Autobahn or Twisted release not verified with the fast path fails here."""
    assert autobahn.__version__ in _engine.VERIFIED_VERSIONS["autobahn"], (
        f"autobahn {autobahn.__version__} is not in VERIFIED_VERSIONS: re-verify the fast path"
    )
    assert twisted.__version__ in _engine.VERIFIED_VERSIONS["twisted"], (
        f"Twisted {twisted.__version__} is not in VERIFIED_VERSIONS: re-verify the fast path"
    )


def test_self_check_passes_and_fast_path_is_available():
    assert fastpath_problems() == []
    assert _engine.FASTPATH_AVAILABLE is True


def test_class_names_exist():
    for name in REQUIRED_NAMES["protocol_class"] + FASTPATH_NAMES["protocol_class"]:
        assert hasattr(WebSocketServerProtocol, name), name
    for name in REQUIRED_NAMES["factory_class"]:
        assert hasattr(_engine.WebSocketServerFactory, name), name


def test_instance_names_exist_on_an_open_connection():
    peer = WsPeer(RecordingComponent()).open()
    protocol = peer.memory.conn._ws_protocol
    for name in REQUIRED_NAMES["protocol_instance"] + FASTPATH_NAMES["protocol_instance"]:
        assert hasattr(protocol, name), name
    for name in FASTPATH_NAMES["traffic_stats"]:
        assert hasattr(protocol.trafficStats, name), name
    for name in REQUIRED_NAMES["factory_instance"]:
        assert hasattr(protocol.factory, name), name


def test_config_attrs_are_what_autobahn_copies_per_connection():
    """trim_after_open relies on Autobahn copying exactly these from the factory."""
    assert set(_engine.CONFIG_ATTRS) == set(
        WebSocketServerProtocol.CONFIG_ATTRS_COMMON + WebSocketServerProtocol.CONFIG_ATTRS_SERVER
    )
    assert set(WebSocketServerProtocol.CONFIG_ATTRS) == set(_engine.CONFIG_ATTRS)


def test_per_server_class_carries_the_options():
    """Options live on the per-server class; Autobahn copies none per connection."""
    peer = WsPeer(RecordingComponent()).open()
    protocol = peer.memory.conn._ws_protocol
    cls = type(protocol)
    assert cls.CONFIG_ATTRS == ()
    for name in _engine.CONFIG_ATTRS:
        assert name in cls.__dict__, name
        assert name not in protocol.__dict__, name
    assert protocol.maxMessagePayloadSize == 1024 * 1024


def test_self_check_reports_a_missing_name(monkeypatch):
    from autobahn.websocket.protocol import WebSocketProtocol

    monkeypatch.delattr(WebSocketProtocol, "consumeData")
    problems = fastpath_problems()
    assert any("consumeData" in p for p in problems)


def test_importing_the_engine_warns_and_disables_on_failure(monkeypatch):
    monkeypatch.setattr(_engine, "fastpath_problems", lambda: ["autobahn X.y"])
    with pytest.warns(RuntimeWarning, match="fast data path disabled"):
        assert _engine._self_check() is False


def _tcp_transport():
    """A real connected tcp.Server transport (and its peer socket)."""
    from twisted.internet import tcp
    from twisted.internet.protocol import Protocol

    a, b = socket.socketpair()
    a.setblocking(False)
    transport = tcp.Server(a, Protocol(), ("127.0.0.1", 1), None, 1, MemoryReactorClock())
    return transport, b


def test_transport_names_exist_on_a_tcp_server():
    transport, peer = _tcp_transport()
    try:
        assert type(transport) in DIRECT_WRITE_TYPES
        for name in TRANSPORT_NAMES:
            assert hasattr(transport, name), name
    finally:
        peer.close()
        transport.socket.close()


def test_direct_write_sends_at_once_and_buffers_in_order():
    transport, peer = _tcp_transport()
    try:
        assert direct_write(transport, b"first") is False
        assert peer.recv(100) == b"first"
        # something buffered: everything after it must queue behind it
        transport.write(b"queued")
        assert direct_write(transport, b"second") is True
        with pytest.raises(BlockingIOError):
            peer.recv(100, socket.MSG_DONTWAIT)
        transport.doWrite()
        assert peer.recv(100) == b"queuedsecond"
    finally:
        peer.close()
        transport.socket.close()


def test_direct_write_leaves_a_partial_send_to_the_transport():
    transport, peer = _tcp_transport()
    try:
        big = b"x" * (16 * 1024 * 1024)  # more than the socket buffer takes
        assert direct_write(transport, big) is True
        assert _engine.buffered_bytes(transport) > 0
        assert _engine.buffered_bytes(transport) < len(big)
    finally:
        peer.close()
        transport.socket.close()


def test_other_transports_always_use_write():
    from twisted.internet.testing import StringTransport

    t = StringTransport()
    direct_write(t, b"abc")
    assert t.value() == b"abc"


def test_open_connection_keeps_little_per_connection_state():
    """Memory per idle connection: the trimmed protocol keeps ~20 attributes, no handshake copy."""
    component = RecordingComponent(echo=True)
    first = WsPeer(component).open()
    peer = WsPeer(stack=first.memory.protocol.component, one_byte_at_a_time=False).open()
    protocol = peer.memory.conn._ws_protocol
    state = protocol.__dict__
    for name in _engine.HANDSHAKE_LEFTOVERS + ("send_queue",) + _engine.CONFIG_ATTRS:
        assert name not in state, name
    assert len(state) <= 20, sorted(state)
    # trimmed state still reads right, and the connection still works
    assert protocol.http_request_path == "/" and protocol.current_frame is None
    assert peer.send_text("still fine")[0].data == b"still fine"
    assert "send_queue" not in protocol.__dict__


def test_fast_path_off_keeps_autobahn_state_untrimmed():
    from ratchetpy import HttpServer, WsServer

    peer = WsPeer(stack=HttpServer(WsServer(RecordingComponent(), fast_path=False))).open()
    assert "http_headers" in peer.memory.conn._ws_protocol.__dict__
