"""
The fast data path against Autobahn's stock path: the same bytes in give the
same messages and the same bytes out, however the input is split.
"""

from __future__ import annotations

import itertools
import os
import struct

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from ratchetpy import HttpServer, WsServer
from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket import _fastpath
from ratchetpy.websocket._selfcheck import FASTPATH_ENV
from ratchetpy.websocket.protocol import FastWsServerProtocol
from tests.support.ci import require_tool
from tests.support.memory import WsPeer, ws_protocol
from tests.support.wire import (
    CLIENT_MASK,
    binary_frame_bytes,
    client_frame,
    close_frame_bytes,
    ping_frame_bytes,
    text_frame_bytes,
)


class Session:
    """One open connection on a StringTransport; feed raw client bytes."""

    def __init__(self, fast: bool = True, **ws_options) -> None:
        self.component = RecordingComponent(echo=True)
        ws = WsServer(self.component, log_connections=False, fast_path=fast, **ws_options)
        self.peer = WsPeer(stack=HttpServer(ws), one_byte_at_a_time=False).open()
        self.memory = self.peer.memory
        self.protocol = ws_protocol(self.memory.conn)
        self.stock_calls = 0
        consume = self.protocol.consumeData

        def counting() -> None:
            self.stock_calls += 1
            consume()

        self.protocol.consumeData = counting

    def feed(self, data: bytes, cuts: list[int] | None = None) -> tuple[list, bytes]:
        points = [0, *(cuts or []), len(data)]
        for a, b in itertools.pairwise(points):
            if b > a and self.memory.transport.connected:
                self.memory.transport.protocol.dataReceived(data[a:b])
        return self.component.messages(), self.memory.take()


def both(data: bytes, cuts: list[int] | None = None, **options) -> tuple[Session, tuple]:
    """Feed ``data`` to a fast and a stock server; assert identical results."""
    fast, stock = Session(True, **options), Session(False, **options)
    assert fast.protocol._fast_rx and not getattr(stock.protocol, "_fast_rx", False)
    got_fast, got_stock = fast.feed(data, cuts), stock.feed(data, cuts)
    assert got_fast == got_stock
    return fast, got_fast


ORDINARY = (
    text_frame_bytes("hello")
    + binary_frame_bytes(b"\x00\xff" * 10)
    + text_frame_bytes("")
    + text_frame_bytes("é" * 62)  # 124 bytes
    + binary_frame_bytes(os.urandom(125))
    + binary_frame_bytes(os.urandom(126))
    + text_frame_bytes("x" * 1000)
    + binary_frame_bytes(os.urandom(0xFFFF))
)


def test_ordinary_frames_in_one_read_take_the_fast_path():
    """Several complete frames in one read: all delivered, Autobahn's parser never runs."""
    session, (messages, out) = both(ORDINARY)
    assert len(messages) == 8 and messages[0] == "hello" and messages[3] == "é" * 62
    assert session.stock_calls == 0
    assert session.protocol.trafficStats.incomingWebSocketMessages == 8


def test_frames_split_at_every_byte_boundary():
    """Every two-way split of a stream of frames gives the same messages and output."""
    data = text_frame_bytes("héllo") + binary_frame_bytes(b"\x01" * 130) + text_frame_bytes("wörld")
    expected = None
    for cut in range(1, len(data)):
        session, (messages, out) = both(data, [cut])
        assert session.stock_calls == 0, cut
        if expected is None:
            expected = (messages, out)
        assert (messages, out) == expected, cut
    assert expected[0] == ["héllo", b"\x01" * 130, "wörld"]


def test_one_byte_at_a_time():
    data = ORDINARY[:3000]
    cuts = list(range(1, len(data)))
    session, (messages, _) = both(data, cuts)
    assert messages[:4] == ["hello", b"\x00\xff" * 10, "", "é" * 62]


def test_large_frame_with_64_bit_length_goes_to_autobahn():
    payload = os.urandom(70000)
    session, (messages, out) = both(binary_frame_bytes(payload) + text_frame_bytes("after"), [1000, 40000])
    assert messages == [payload, "after"]
    assert session.stock_calls > 0


def test_interleaved_ping_and_close_frames_keep_their_order():
    data = text_frame_bytes("a") + ping_frame_bytes(b"ping!") + text_frame_bytes("b") + close_frame_bytes(1000, b"bye")
    session, (messages, out) = both(data)
    assert messages == ["a", "b"]
    # echo a, pong, echo b, close echo: in that order on the wire
    assert out.index(b"\x81\x01a") < out.index(b"\x8a\x05ping!") < out.index(b"\x81\x01b")
    assert out.endswith(b"\x88\x05\x03\xe8bye")


def test_fragmented_message_is_reassembled_by_autobahn():
    data = text_frame_bytes("frag", fin=False) + client_frame(0x0, b"ment", fin=False) + client_frame(0x0, b"ed") + text_frame_bytes("next")
    session, (messages, _) = both(data, [3, 9])
    assert messages == ["fragmented", "next"]


@pytest.mark.parametrize(
    "bad",
    [
        text_frame_bytes("ok") + client_frame(0x1, b"\xff\xfe"),  # invalid UTF-8
        text_frame_bytes("ok") + client_frame(0x1, b"caf\xc3"),  # truncated sequence at the end
        text_frame_bytes("ok") + client_frame(0x1, b"\xed\xa0\x80"),  # a surrogate
        # invalid at a fragment boundary: c3 then a non-continuation byte
        text_frame_bytes("ok") + client_frame(0x1, b"caf\xc3", fin=False) + client_frame(0x0, b"(", fin=True),
    ],
)
def test_invalid_utf8_closes_with_1007(bad):
    session, (messages, out) = both(bad)
    assert messages == ["ok"]
    assert b"\x88" in out and struct.pack("!H", 1007) in out


def test_utf8_split_across_fragments_is_valid():
    data = client_frame(0x1, b"caf\xc3", fin=False) + client_frame(0x0, b"\xa9")
    session, (messages, _) = both(data)
    assert messages == ["café"]


def test_oversize_message_closes_with_1009():
    data = text_frame_bytes("small") + binary_frame_bytes(b"x" * 200)
    session, (messages, out) = both(data, max_message_size=100)
    assert messages == ["small"]
    assert struct.pack("!H", 1009) in out


@pytest.mark.parametrize(
    "bad",
    [
        text_frame_bytes("x", rsv=1),
        text_frame_bytes("x", rsv=4),
        client_frame(0x3, b"x"),  # reserved data opcode
        client_frame(0xB, b"x"),  # reserved control opcode
        text_frame_bytes("x", mask=None),  # unmasked client frame
        text_frame_bytes("x" * 10, long_form=True),  # non-minimal 16-bit length
    ],
)
def test_protocol_violations_close_with_1002(bad):
    session, (messages, out) = both(text_frame_bytes("ok") + bad + text_frame_bytes("never"))
    assert messages == ["ok"]
    assert struct.pack("!H", 1002) in out


def test_fast_send_frames_match_autobahn():
    """What the fast send writes is byte-identical to Autobahn's sendFrame."""
    for payload in ["", "a", "é" * 100, "z" * 200, b"\x00" * 70000]:
        fast, stock = Session(True), Session(False)
        ws_protocol(fast.memory.conn).conn.send(payload)
        ws_protocol(stock.memory.conn).conn.send(payload)
        assert fast.memory.take() == stock.memory.take()


def test_compression_negotiated_uses_the_stock_path():
    component = RecordingComponent(echo=True)
    peer = WsPeer(stack=HttpServer(WsServer(component, compression="deflate", log_connections=False)))
    peer.client.available_extensions = [ClientPerMessageDeflateFactory()]
    peer.open()
    protocol = ws_protocol(peer.memory.conn)
    assert protocol._perMessageCompress is not None
    assert not protocol._fast_rx and not protocol._fast_tx
    events = peer.send_text("compressed " * 50)
    assert component.messages() == ["compressed " * 50]
    assert events[0].data.decode() == "compressed " * 50


def test_compression_offer_declined_by_default():
    component = RecordingComponent(echo=True)
    peer = WsPeer(stack=HttpServer(WsServer(component, log_connections=False)))
    peer.client.available_extensions = [ClientPerMessageDeflateFactory()]
    response = peer.handshake()
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert ws_protocol(peer.memory.conn)._fast_rx


def test_subclass_with_streaming_hooks_uses_the_stock_path(monkeypatch):
    frames = []

    class Streaming(FastWsServerProtocol):
        def onMessageFrame(self, payload):
            frames.append(payload)
            super().onMessageFrame(payload)

    import ratchetpy.websocket.server as server_module

    monkeypatch.setattr(server_module, "FastWsServerProtocol", Streaming)
    session = Session(True)
    assert isinstance(session.protocol, Streaming)
    assert not session.protocol._fast_rx
    messages, _ = session.feed(text_frame_bytes("hi"))
    assert messages == ["hi"] and frames


def test_kill_switch_env(monkeypatch):
    monkeypatch.setenv(FASTPATH_ENV, "0")
    session = Session(True)
    assert not session.protocol._fast_rx and not session.protocol._fast_tx
    messages, out = session.feed(text_frame_bytes("hi"))
    assert messages == ["hi"] and session.stock_calls == 1


def test_failed_self_check_falls_back(monkeypatch):
    from ratchetpy.websocket import _selfcheck

    monkeypatch.setattr(_selfcheck, "_checked", False)
    session = Session(True)
    assert not isinstance(session.protocol, _fastpath.FastPathMixin)
    messages, _ = session.feed(text_frame_bytes("hi") + binary_frame_bytes(b"b"))
    assert messages == ["hi", b"b"] and session.stock_calls >= 1


def test_app_closing_mid_read_hands_the_rest_to_autobahn():
    class CloseOnFirst(RecordingComponent):
        def on_message(self, conn, msg):
            super().on_message(conn, msg)
            conn.close(4000, "enough")

    component = CloseOnFirst()
    peer = WsPeer(stack=HttpServer(WsServer(component, log_connections=False)), one_byte_at_a_time=False).open()
    peer.memory.transport.protocol.dataReceived(text_frame_bytes("one") + text_frame_bytes("two"))
    out = peer.memory.take()
    assert component.messages()[0] == "one"
    assert out.startswith(b"\x88") and struct.pack("!H", 4000) in out


C_HELPER_MISSING = "the C helper ratchetpy.websocket._speedups is not built"
BUILD_C_HELPER = (
    "install with a C compiler (pip install -e . --config-settings editable_mode=compat, "
    "or python setup.py build_ext --inplace)"
)

UNMASKERS = {
    "python": _fastpath._py_unmask,
    "python+nvx": _fastpath._unmask_nvx if _fastpath._nvx_unmask else _fastpath._py_unmask,
    "c": _fastpath._c_unmask,
}


@pytest.mark.parametrize("impl", sorted(UNMASKERS))
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 9, 127, 511, 512, 513, 4096, 70001])
def test_unmask_matches_reference(n, impl):
    require_tool(UNMASKERS[impl] is not None, C_HELPER_MISSING, BUILD_C_HELPER)
    payload = os.urandom(n)
    expected = bytes(b ^ CLIENT_MASK[i % 4] for i, b in enumerate(payload))
    assert UNMASKERS[impl](CLIENT_MASK, payload) == expected


def test_c_helper_is_built_in_ci():
    """CI installs with a compiler: the C helper must be there, and be the default."""
    require_tool(_fastpath._c_unmask is not None, C_HELPER_MISSING, BUILD_C_HELPER)
    assert _fastpath.unmask is _fastpath._c_unmask


@pytest.mark.parametrize("impl", ["python", "python+nvx"])
def test_pure_python_fast_path(monkeypatch, impl):
    """The fast path without the C helper gives the same results."""
    monkeypatch.setattr(_fastpath, "unmask", UNMASKERS[impl])
    data = ORDINARY[:-65543] + text_frame_bytes("é" * 300)  # without the frame too big to self-buffer
    for cuts in ([], [200], [1500]):
        session, (messages, _) = both(data, cuts)
        assert len(messages) == 8 and messages[-1] == "é" * 300
        assert session.stock_calls == 0


def test_a_frame_dripped_byte_by_byte_is_streamed_by_autobahn():
    """A frame still incomplete after two reads goes to Autobahn (no re-joining per byte)."""
    payload = os.urandom(5000)
    data = binary_frame_bytes(payload) + text_frame_bytes("next")
    session = Session(True)
    for k in range(3000):
        session.memory.transport.protocol.dataReceived(data[k : k + 1])
    # mid-frame, Autobahn holds the frame and has consumed the drip so far
    assert session.protocol.current_frame is not None
    assert len(session.protocol.data) < 16
    assert session.stock_calls > 0
    messages, _ = session.feed(data[3000:])
    assert messages == [payload, "next"]
