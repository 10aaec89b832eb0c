"""
Every Autobahn/Twisted internal ratchetpy relies on is still there.

These fail loudly when an upgrade moves a private name; the fast path would
then switch itself off on the first WsServer (see ``_selfcheck``), so
production stays correct, but the upgrade needs re-verifying: run this
file, ``tests/websocket/test_fastpath.py`` and the Autobahn TestSuite
(``tests/conformance/ats.py``), then add the versions to VERIFIED_VERSIONS.
"""

from __future__ import annotations

import socket

import autobahn
import pytest
import twisted
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket import _engine, _selfcheck, _trim
from ratchetpy.websocket._engine import REQUIRED_NAMES, WebSocketServerProtocol
from ratchetpy.websocket._selfcheck import (
    FASTPATH_NAMES,
    TRANSPORT_NAMES,
    fastpath_problems,
)
from ratchetpy.websocket._tcpwrite import (
    DIRECT_WRITE_TYPES,
    buffered_bytes,
    direct_write,
)
from tests.support.memory import WsPeer, ws_protocol


def test_installed_versions_were_verified():
    """An Autobahn or Twisted release not verified with the fast path fails here."""
    assert autobahn.__version__ in _selfcheck.VERIFIED_VERSIONS["autobahn"], (
        f"autobahn {autobahn.__version__} is not in VERIFIED_VERSIONS: re-verify the fast path"
    )
    assert twisted.__version__ in _selfcheck.VERIFIED_VERSIONS["twisted"], (
        f"Twisted {twisted.__version__} is not in VERIFIED_VERSIONS: re-verify the fast path"
    )


def test_self_check_passes_and_fast_path_is_available():
    assert fastpath_problems() == []
    assert _selfcheck.version_problems() == []
    assert _selfcheck.fastpath_available() is True


def test_class_names_exist():
    for name in (
        REQUIRED_NAMES["protocol_class"]
        + FASTPATH_NAMES["protocol_class"]
        + FASTPATH_NAMES["hardening_class"]
    ):
        assert hasattr(WebSocketServerProtocol, name), name
    for name in REQUIRED_NAMES["factory_class"]:
        assert hasattr(_engine.WebSocketServerFactory, name), name


def test_instance_names_exist_on_an_open_connection():
    peer = WsPeer(RecordingComponent()).open()
    protocol = ws_protocol(peer.memory.conn)
    for name in (
        REQUIRED_NAMES["protocol_instance"]
        + FASTPATH_NAMES["protocol_instance"]
        + FASTPATH_NAMES["hardening_instance"]
    ):
        assert hasattr(protocol, name), name
    for name in FASTPATH_NAMES["traffic_stats"]:
        assert hasattr(protocol.trafficStats, name), name
    for name in REQUIRED_NAMES["factory_instance"]:
        assert hasattr(protocol.factory, name), name


def test_config_attrs_are_what_autobahn_copies_per_connection():
    """trim_after_open relies on Autobahn copying exactly these from the factory."""
    assert set(_trim.config_attrs()) == set(
        WebSocketServerProtocol.CONFIG_ATTRS_COMMON + WebSocketServerProtocol.CONFIG_ATTRS_SERVER
    )
    assert set(WebSocketServerProtocol.CONFIG_ATTRS) == set(_trim.config_attrs())


def test_per_server_class_carries_the_options():
    """Options live on the per-server class; Autobahn copies none per connection."""
    peer = WsPeer(RecordingComponent()).open()
    protocol = ws_protocol(peer.memory.conn)
    cls = type(protocol)
    assert cls.CONFIG_ATTRS == ()
    for name in _trim.config_attrs():
        assert name in cls.__dict__, name
        assert name not in protocol.__dict__, name
    assert protocol.maxMessagePayloadSize == 1024 * 1024


def test_self_check_reports_a_missing_name(monkeypatch):
    from autobahn.websocket.protocol import WebSocketProtocol

    monkeypatch.delattr(WebSocketProtocol, "consumeData")
    problems = fastpath_problems()
    assert any("consumeData" in p for p in problems)


@pytest.fixture
def fresh_self_check():
    """Run the lazy self-check again in this test, and forget its result after."""
    _selfcheck._reset()
    yield
    _selfcheck._reset()


def test_a_failed_check_warns_once_and_servers_use_the_stock_path(
    monkeypatch, fresh_self_check
):
    import warnings

    from ratchetpy import HttpServer, WsServer
    from ratchetpy.websocket._fastpath import FastPathMixin

    monkeypatch.setattr(_selfcheck, "fastpath_problems", lambda: ["autobahn X.y"])
    with pytest.warns(RuntimeWarning, match="fast data path disabled: autobahn X.y"):
        assert _selfcheck.fastpath_available() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _selfcheck.fastpath_available() is False  # no second warning
        peer = WsPeer(stack=HttpServer(WsServer(RecordingComponent(echo=True)))).open()
    protocol = ws_protocol(peer.memory.conn)
    assert not isinstance(protocol, FastPathMixin)
    assert "http_headers" in protocol.__dict__  # not trimmed either
    assert peer.send_text("stock")[0].data == b"stock"


def test_an_unverified_version_disables_the_fast_path(monkeypatch, fresh_self_check):
    monkeypatch.setattr(twisted, "__version__", "99.1.0")
    monkeypatch.delenv(_selfcheck.FASTPATH_ENV, raising=False)
    with pytest.warns(RuntimeWarning, match=r"twisted 99\.1\.0 is not a verified version"):
        assert _selfcheck.fastpath_available() is False


def test_force_allows_an_unverified_version(monkeypatch, fresh_self_check):
    monkeypatch.setattr(twisted, "__version__", "99.1.0")
    monkeypatch.setenv(_selfcheck.FASTPATH_ENV, "force")
    assert _selfcheck.fastpath_available() is True


def test_importing_ratchetpy_runs_no_check_and_warns_nothing():
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('error');"
        "import ratchetpy, ratchetpy.websocket._selfcheck as s;"
        "assert s._checked is None, 'the self-check ran at import';"
        "import sys; assert 'twisted.internet.reactor' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


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
        assert buffered_bytes(transport) > 0
        assert buffered_bytes(transport) < len(big)
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
    protocol = ws_protocol(peer.memory.conn)
    state = protocol.__dict__
    for name in _trim.HANDSHAKE_LEFTOVERS + ("send_queue",) + _trim.config_attrs():
        assert name not in state, name
    assert len(state) <= 20, sorted(state)
    # trimmed state still reads right, and the connection still works
    assert protocol.http_request_path == "/" and protocol.current_frame is None
    assert peer.send_text("still fine")[0].data == b"still fine"
    assert "send_queue" not in protocol.__dict__


def test_fast_path_off_keeps_autobahn_state_untrimmed():
    from ratchetpy import HttpServer, WsServer

    peer = WsPeer(stack=HttpServer(WsServer(RecordingComponent(), fast_path=False))).open()
    assert "http_headers" in ws_protocol(peer.memory.conn).__dict__


def test_install_requirements_have_no_upper_bound_on_twisted_or_autobahn():
    """A library pinned to a one-month window cannot sit beside a newer Twisted."""
    from importlib.metadata import requires

    pins = [r for r in requires("ratchetpy") or [] if r.lower().startswith(("twisted", "autobahn"))]
    assert sorted(p.split(";")[0].replace(" ", "").lower() for p in pins) == [
        "autobahn>=26.10.2",
        "twisted>=26.10.0",
    ]
