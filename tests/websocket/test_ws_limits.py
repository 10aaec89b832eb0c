"""
Fragmented messages: delivered intact on both paths, with memory bounded by
the payload rather than by the number of fragments, and at most
``fragment_limit(...)`` fragments per message (1009 beyond).

Before the fix Autobahn kept one ``bytes`` object per fragment: a message
of 1,000,000 one-byte fragments (under the 1 MiB limit) held ~42 MB.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from ratchetpy import HttpServer, WsServer
from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket._limits import (
    BYTES_PER_FRAGMENT,
    MIN_MESSAGE_FRAGMENTS,
    fragment_limit,
)
from tests.support.memory import MemoryConnection, open_memory, ws_protocol
from tests.support.wire import (
    client_frame,
    close_payload,
    fragmented_bytes,
    handshake_request,
    server_close_bytes,
)

PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "stock"])


def feed_in_reads(memory: MemoryConnection, wire: bytes, read: int = 65536) -> None:
    for i in range(0, len(wire), read):
        memory.feed(wire[i : i + read], False)


@PATHS
def test_three_fragments_text_split_inside_a_code_point(fast_path: bool) -> None:
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path)
    text = "héllo wörld ✓".encode()
    cut1, cut2 = 2, text.index(b"\xe2") + 1  # both inside multi-byte characters
    memory.feed(
        client_frame(1, text[:cut1], fin=False)
        + client_frame(0, text[cut1:cut2], fin=False)
        + client_frame(0, text[cut2:])
        + client_frame(1, b"after"),
        False,
    )
    assert component.messages() == ["héllo wörld ✓", "after"]
    assert memory.take() == b""
    protocol = ws_protocol(memory.conn)
    # Our message assembly does not cost the fast path its place.
    assert protocol._fast_rx is fast_path


@PATHS
def test_one_mib_in_16_kib_fragments_with_a_ping_between(fast_path: bool) -> None:
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path)
    payload = os.urandom(1024 * 1024)
    wire = fragmented_bytes(2, payload, 16384)
    middle = 32 * (8 + 16384)  # each frame: 8 header bytes (16-bit length, mask) + payload
    assert wire[middle : middle + 2] == b"\x00\xfe"  # a continuation frame starts here
    feed_in_reads(memory, wire[:middle] + client_frame(9, b"ping?") + wire[middle:])
    assert component.messages() == [payload]
    assert memory.take() == b"\x8a\x05ping?"


@PATHS
def test_empty_fragments_and_empty_message(fast_path: bool) -> None:
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path)
    memory.feed(
        client_frame(1, b"", fin=False) + client_frame(0, b"", fin=False) + client_frame(0, b"")
        + client_frame(2, b"", fin=False) + client_frame(0, b"ab", fin=False) + client_frame(0, b""),
        False,
    )
    assert component.messages() == ["", b"ab"]


@PATHS
def test_invalid_utf8_across_fragments_still_1007(fast_path: bool) -> None:
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path)
    memory.feed(client_frame(1, b"ok", fin=False) + client_frame(0, b"\xc3", fin=False), False)
    memory.feed(client_frame(0, b"("), False)
    sent = memory.take()
    assert (sent[0], sent[1], sent[2:4]) == (0x88, len(sent) - 2, b"\x03\xef")  # 1007
    assert component.messages() == []


@PATHS
def test_too_many_fragments_closes_with_1009(fast_path: bool) -> None:
    """At max_message_size=64 KiB the limit is 1024 fragments: 1024 pass, 1025 close."""
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path, max_message_size=65536)
    assert fragment_limit(65536, None) == 1024
    feed_in_reads(memory, fragmented_bytes(2, b"x" * 1024, 1))
    assert component.messages() == [b"x" * 1024]
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        feed_in_reads(memory, fragmented_bytes(2, b"y" * 5000, 1))
    finally:
        globalLogPublisher.removeObserver(logged.append)
    reason = b"message split into more than 1024 fragments"
    assert memory.take() == server_close_bytes(1009, reason)
    assert not memory.transport.connected and not memory.transport.aborted
    assert component.messages() == [b"x" * 1024]
    assert component.events[-1][1].close_code == 1006
    hints = [e for e in logged if e.get("limit") == 1024]
    assert len(hints) == 1
    assert "max_message_fragments" in hints[0]["log_format"]


def test_configured_limit_on_the_server_class() -> None:
    component = RecordingComponent()
    memory = open_memory(component)
    type(ws_protocol(memory.conn))._max_message_fragments = 3
    memory.feed(fragmented_bytes(1, b"abc", 1), False)
    assert component.messages() == ["abc"]
    memory.feed(fragmented_bytes(1, b"abcd", 1), False)
    assert memory.take() == server_close_bytes(1009, b"message split into more than 3 fragments")


def test_fragment_limit_rule() -> None:
    assert fragment_limit(1024 * 1024, None) == 1024 * 1024 // BYTES_PER_FRAGMENT == 16384
    assert fragment_limit(1000, None) == MIN_MESSAGE_FRAGMENTS
    assert fragment_limit(0, None) == 0  # no size limit: none on fragments either
    assert fragment_limit(1024 * 1024, 10) == 10
    # The Autobahn TestSuite's finest case (9.3.1: 4 MiB in 64-byte fragments)
    # passes whenever the size limit admits the message.
    assert fragment_limit(4 * 1024 * 1024, None) >= 4 * 1024 * 1024 // 64


@PATHS
def test_memory_is_bounded_by_the_payload_not_the_fragments(fast_path: bool) -> None:
    """20,000 one-byte fragments (limit lifted): ~20 KB kept, not one object per fragment."""
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path)
    type(ws_protocol(memory.conn))._max_message_fragments = 0  # measure the assembly alone
    count = 20000
    wire = fragmented_bytes(2, b"z" * count, 1)
    body, last = wire[:-7], wire[-7:]  # the final 1-byte frame is 7 bytes on the wire
    reads = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for read in reads:
            memory.feed(read, False)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    memory.feed(last, False)
    assert component.messages() == [b"z" * count]
    # Autobahn's list of bytes objects held ~42 bytes per fragment (840 KB
    # here); a bytearray holds ~1 byte per fragment plus slack.
    assert held < 8 * count, held


class OwnAssembly:
    """Mixed into the per-server class: a user subclass overriding a streaming hook."""

    frames: list[Any] = []

    def onMessageFrame(self, payload: list[bytes]) -> None:
        OwnAssembly.frames.append(list(payload))
        super().onMessageFrame(payload)  # type: ignore[misc]


def test_subclass_with_its_own_streaming_hook_gets_autobahns_assembly() -> None:
    component = RecordingComponent()
    ws = WsServer(component, log_connections=False)
    memory = MemoryConnection(HttpServer(ws))
    ws._factory_for(memory.reactor)
    ws._protocol_class = type("Custom", (OwnAssembly, ws._protocol_class), {})
    OwnAssembly.frames = []
    memory.feed(handshake_request(), False)
    memory.feed(fragmented_bytes(2, b"abc", 1), False)
    assert OwnAssembly.frames == [[b"a"], [b"b"], [b"c"]]
    assert component.messages() == [b"abc"]
    assert ws_protocol(memory.conn)._fast_rx is False  # as documented for such subclasses


@PATHS
def test_close_reply_after_1009_is_not_needed(fast_path: bool) -> None:
    """After the 1009 the server processes nothing more: a close reply gets no answer."""
    component = RecordingComponent()
    memory = open_memory(component, fast_path=fast_path, max_message_size=65536)
    feed_in_reads(memory, fragmented_bytes(2, b"y" * 1100, 1)[:-7])
    assert memory.take() == server_close_bytes(1009, b"message split into more than 1024 fragments")
    memory.feed(client_frame(8, close_payload(1009)), False)
    assert memory.take() == b""
