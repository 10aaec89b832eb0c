"""broadcast(): framed once, skips closed connections, per-connection compression."""

from __future__ import annotations

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode

from ratchetpy import HttpServer, WsServer
from ratchetpy.testing import FakeConnection, RecordingComponent
from ratchetpy.websocket.broadcast import PreparedMessage, broadcast, deliver, prepare
from tests.support.memory import WsPeer, ws_protocol


def peers(n, **options):
    component = RecordingComponent()
    stack = HttpServer(WsServer(component, log_connections=False, **options))
    out = [WsPeer(stack=stack, one_byte_at_a_time=False).open() for _ in range(n)]
    return component, out


def ws_conn(peer):
    return ws_protocol(peer.memory.conn).conn


def test_broadcast_reaches_every_open_connection_with_one_frame():
    component, ps = peers(3)
    conns = [ws_conn(p) for p in ps]
    fake = FakeConnection()
    assert broadcast(conns + [fake], "héllo") == 4
    outs = [p.memory.take() for p in ps]
    assert outs[0] == outs[1] == outs[2] == b"\x81\x06h\xc3\xa9llo"
    assert fake.sent == ["héllo"]


def test_broadcast_skips_closing_connections():
    component, ps = peers(2)
    a, b = (ws_conn(p) for p in ps)
    b.close(1000)
    ps[1].memory.take()
    assert broadcast([a, b], b"\x00\x01") == 1
    assert ps[0].memory.take() == b"\x82\x02\x00\x01"
    assert ps[1].memory.take() == b""


def test_compressed_connection_gets_its_own_frame():
    component = RecordingComponent()
    stack = HttpServer(WsServer(component, log_connections=False, compression="deflate"))
    plain = WsPeer(stack=stack, one_byte_at_a_time=False).open()
    deflate = WsPeer(stack=stack, one_byte_at_a_time=False)
    deflate.client.available_extensions = [ClientPerMessageDeflateFactory()]
    deflate.open()
    assert broadcast([ws_conn(plain), ws_conn(deflate)], "z" * 500) == 2
    events = deflate.pump()
    assert events[0].opcode == Opcode.TEXT and events[0].data == b"z" * 500
    assert plain.pump()[0].data == b"z" * 500


def test_prepare_and_deliver_compose_to_broadcast():
    component, ps = peers(2)
    prepared = prepare("x")
    assert isinstance(prepared, PreparedMessage) and prepare(prepared) is prepared
    assert deliver([ws_conn(p) for p in ps], prepared) == 2
    assert [p.memory.take() for p in ps] == [b"\x81\x01x", b"\x81\x01x"]


def test_broadcast_refuses_other_types():
    import pytest

    with pytest.raises(TypeError):
        broadcast([], 42)
