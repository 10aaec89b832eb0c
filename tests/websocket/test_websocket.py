"""WsServer over an in-memory transport: messages, closes, errors, limits, keepalive."""


import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from websockets.frames import Close, Frame, Opcode

from ratchetpy import EchoServer, HttpServer, MessageComponentInterface, WsServer
from ratchetpy.testing import RecordingComponent
from tests.support.memory import WsPeer, binary_event, text_event
from tests.support.wire import client_frame


def closes(events):
    return [Close.parse(e.data) for e in events if isinstance(e, Frame) and e.opcode == Opcode.CLOSE]


def test_text_stays_text_and_binary_stays_binary():
    """Text arrives as str and is echoed as text; binary arrives as bytes, echoed as binary."""
    component = RecordingComponent(echo=True)
    peer = WsPeer(component).open()
    assert peer.send_text("héllo") == [text_event("héllo")]
    assert peer.send_binary(b"\x00\xff\xfe") == [binary_event(b"\x00\xff\xfe")]
    assert component.messages() == ["héllo", b"\x00\xff\xfe"]


def test_first_frame_in_the_handshake_read_is_delivered():
    """A frame sent in the same write as the handshake is not lost (Ratchet drops it)."""
    component = RecordingComponent(echo=True)
    peer = WsPeer(component, one_byte_at_a_time=False)
    peer.client.send_request(peer.client.connect())
    together = b"".join(peer.client.data_to_send()) + client_frame(1, b"early")
    peer.memory.feed(together, one_byte_at_a_time=False)
    peer.client.receive_data(peer.memory.take())
    events = peer.client.events_received()
    assert events[0].status_code == 101
    assert events[1:] == [text_event("early")]


def test_several_frames_in_one_read():
    """Two frames in one read give two messages, in order."""
    component = RecordingComponent(echo=True)
    peer = WsPeer(component).open()
    peer.memory.feed(client_frame(1, b"one") + client_frame(1, b"two"), one_byte_at_a_time=False)
    assert component.messages() == ["one", "two"]


def test_fragmented_message_with_ping_in_between():
    """Fragments reassemble into one message; a ping in the middle is answered first."""
    component = RecordingComponent(echo=True)
    peer = WsPeer(component).open()
    peer.memory.feed(
        client_frame(1, b"frag-", fin=False) + client_frame(9, b"abc") + client_frame(0, b"ment-", fin=False) + client_frame(0, b"ed")
    )
    peer.client.receive_data(peer.memory.take())
    events = peer.client.events_received()
    assert [e.opcode for e in events] == [Opcode.PONG, Opcode.TEXT]
    assert events[0].data == b"abc" and events[1].data == b"frag-ment-ed"


def test_client_close_is_echoed_verbatim():
    """The peer's close code and reason come back unchanged (as Ratchet); on_close once."""
    component = RecordingComponent()
    peer = WsPeer(component).open()
    peer.client.send_close(4001, "custom")
    events = peer.pump()
    assert closes(events) == [Close(4001, "custom")]
    assert component.kinds() == ["open", "close"]
    conn = component.events[-1][1]
    assert (conn.close_code, conn.close_reason) == (4001, "custom")
    assert not peer.memory.transport.connected


class Closer(RecordingComponent):
    def on_message(self, conn, msg):
        super().on_message(conn, msg)
        conn.close(4000, "bye")
        conn.send("after close")


def test_server_close_sends_code_and_drops_later_sends():
    """conn.close(code, reason) sends a close frame; a send after it is dropped quietly."""
    component = Closer()
    peer = WsPeer(component).open()
    events = peer.send_text("x")
    assert closes(events) == [Close(4000, "bye")]
    assert [e for e in events if e.opcode == Opcode.TEXT] == []
    assert component.kinds() == ["open", "message"]
    peer.pump()  # the client's reply to the close
    assert component.kinds() == ["open", "message", "close"]
    assert component.events[-1][1].closing


def test_close_without_reply_times_out_and_on_close_fires():
    """If the peer never answers our close frame, the connection drops after close_timeout."""
    clock = MemoryReactorClock()
    component = Closer()
    peer = WsPeer(stack=HttpServer(WsServer(component, close_timeout=2)), reactor=clock).open()
    peer.client.send_text(b"x")
    for data in peer.client.data_to_send():
        peer.memory.feed(data)
    assert component.kinds() == ["open", "message"]
    clock.advance(2.5)
    assert component.kinds() == ["open", "message", "close"]


def test_on_close_once_on_tcp_loss():
    """Losing TCP without a close frame gives one on_close with code 1006."""
    component = RecordingComponent()
    peer = WsPeer(component).open()
    peer.memory.lose()
    assert component.kinds() == ["open", "close"]
    assert component.events[-1][1].close_code == 1006


def test_invalid_close_code_is_refused():
    """close() with a code an endpoint may not send raises ValueError."""
    component = RecordingComponent()
    WsPeer(component).open()
    conn = component.events[0][1]
    for code in (0, 999, 1005, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            conn.close(code)


def test_send_rejects_other_types():
    """send() takes str or bytes only."""
    component = RecordingComponent()
    WsPeer(component).open()
    with pytest.raises(TypeError):
        component.events[0][1].send(42)


class Raiser(MessageComponentInterface):
    def __init__(self, where, on_error_raises=False):
        self.where = where
        self.on_error_raises = on_error_raises
        self.errors = []
        self.closed = 0

    def on_open(self, conn):
        if self.where == "open":
            raise KeyError("in open")

    def on_message(self, conn, msg):
        if self.where == "message":
            raise ValueError("in message")
        conn.send(msg)

    def on_close(self, conn):
        self.closed += 1
        if self.where == "close":
            raise RuntimeError("in close")

    def on_error(self, conn, exc):
        self.errors.append(exc)
        if self.on_error_raises:
            raise ZeroDivisionError("in on_error")


@pytest.mark.parametrize("where", ["open", "message"])
def test_exception_goes_to_on_error_and_connection_stays_open(where):
    """An exception in on_open/on_message reaches on_error; the connection stays usable."""
    component = Raiser(where)
    peer = WsPeer(component).open()
    events = peer.send_text("still here")
    assert [type(e) for e in component.errors] == [KeyError if where == "open" else ValueError]
    if where == "open":
        assert events == [text_event("still here")]
    assert peer.memory.transport.connected


def test_exception_in_on_close_goes_to_on_error():
    """An exception in on_close reaches on_error, once."""
    component = Raiser("close")
    peer = WsPeer(component).open()
    peer.memory.lose()
    assert component.closed == 1
    assert [type(e) for e in component.errors] == [RuntimeError]


def test_exception_in_on_error_is_logged_and_closes_1011():
    """If on_error raises, the traceback is logged and the connection closed with 1011."""
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        component = Raiser("message", on_error_raises=True)
        peer = WsPeer(component).open()
        events = peer.send_text("x")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert closes(events) == [Close(1011, "")]
    failures = [e for e in logged if "log_failure" in e]
    assert failures and failures[0]["log_failure"].check(ZeroDivisionError)


def test_oversized_message_closes_1009():
    """A message over max_message_size closes with 1009 before on_message."""
    component = RecordingComponent()
    peer = WsPeer(stack=HttpServer(WsServer(component, max_message_size=100))).open()
    events = peer.send_text("x" * 101)
    assert [c.code for c in closes(events)] == [1009]
    assert component.messages() == []


def test_oversized_fragmented_message_closes_1009():
    """The limit applies to the reassembled message, not only to frames."""
    component = RecordingComponent()
    peer = WsPeer(stack=HttpServer(WsServer(component, max_message_size=100))).open()
    peer.memory.feed(client_frame(1, b"a" * 60, fin=False) + client_frame(0, b"b" * 60), one_byte_at_a_time=False)
    peer.client.receive_data(peer.memory.take())
    assert [c.code for c in closes(peer.client.events_received())] == [1009]
    assert component.messages() == []


@pytest.mark.parametrize(
    "frame,code",
    [
        (client_frame(1, b"\xff\xfe"), 1007),
        (client_frame(1, b"ok", mask=None), 1002),
        (client_frame(1, b"ok", rsv=4), 1002),
        (client_frame(3, b"ok"), 1002),
        (client_frame(0, b"ok"), 1002),
        (client_frame(9, b"x" * 126), 1002),
    ],
    ids=["invalid-utf8", "unmasked", "rsv", "opcode-3", "continuation-first", "big-ping"],
)
def test_protocol_errors_close_with_the_right_code(frame, code):
    """Bad frames close with 1002/1007 and never reach on_message."""
    component = RecordingComponent()
    peer = WsPeer(component).open()
    peer.memory.feed(frame, one_byte_at_a_time=False)
    peer.client.receive_data(peer.memory.take())
    assert [c.code for c in closes(peer.client.events_received())] == [code]
    assert component.messages() == []


def test_keepalive_pings_and_drops_silent_peer():
    """With keepalive, a ping goes out each interval; a peer that never pongs is dropped."""
    clock = MemoryReactorClock()
    component = RecordingComponent()
    ws = WsServer(component).enable_keep_alive(30)
    peer = WsPeer(stack=HttpServer(ws), reactor=clock).open()
    clock.advance(30.5)
    sent = peer.memory.take()
    assert sent[:1] == b"\x89", "a ping frame"
    assert component.kinds() == ["open"]
    clock.advance(30.5)
    assert component.kinds() == ["open", "close"]
    assert component.events[-1][1].close_code == 1006


def test_keepalive_keeps_ponging_peer():
    """A peer that answers pings stays connected."""
    clock = MemoryReactorClock()
    component = RecordingComponent()
    ws = WsServer(component)
    ws.enable_keep_alive(clock, 10)  # Ratchet's enableKeepAlive($loop, 10) shape
    assert ws.keep_alive_interval == 10
    peer = WsPeer(stack=HttpServer(ws), reactor=clock).open()
    for _ in range(5):
        clock.advance(10.5)
        peer.pump()  # receives the ping; the sans-I/O client queues a pong
        peer.pump()  # delivers the pong
    assert component.kinds() == ["open"]
    assert peer.memory.transport.connected


def test_no_keepalive_by_default():
    """Without enable_keep_alive nothing is scheduled for an open connection."""
    clock = MemoryReactorClock()
    peer = WsPeer(EchoServer(), reactor=clock).open()
    clock.advance(3600)
    assert peer.memory.take() == b""
    assert peer.memory.transport.connected


def test_handshake_timeout_under_slowloris():
    """A client that never finishes its request head is answered 408 and dropped."""
    clock = MemoryReactorClock()
    peer = WsPeer(EchoServer(), reactor=clock)
    peer.memory.feed(b"GET / HTTP/1.1\r\nHost: x\r\n")
    clock.advance(11)
    assert peer.memory.take().startswith(b"HTTP/1.1 408 ")
    assert not peer.memory.transport.connected


def test_no_timer_left_when_peer_drops_after_our_close():
    """A server close followed by TCP loss leaves no pending close-handshake timer."""
    clock = MemoryReactorClock()
    component = Closer()
    peer = WsPeer(stack=HttpServer(WsServer(component, close_timeout=2)), reactor=clock).open()
    peer.memory.feed(client_frame(1, b"x"), one_byte_at_a_time=False)
    assert [c.active() for c in clock.getDelayedCalls()] == [True]
    peer.memory.lose()
    assert component.kinds() == ["open", "message", "close"]
    assert clock.getDelayedCalls() == []
