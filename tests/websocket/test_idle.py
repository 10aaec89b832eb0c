"""
The idle timeout in memory, on a task clock: a client that sends nothing
for ``idle_timeout`` seconds is closed with 1001; messages reset the clock,
keepalive pongs only with ``idle_counts_pongs``, client pings never; one
timer per server, none while no client is connected. (On real sockets:
tests/integration/test_limits_loopback.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock
from websockets.frames import Close, Frame, Opcode

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket.idle import SWEEP_FRACTION
from tests.support.memory import WsPeer, ws_protocol

PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "stock"])
TIMEOUT = 10.0
LATEST = TIMEOUT * (1 + SWEEP_FRACTION)
"""The idle close comes at the latest this long after the last activity."""


class Served:
    def __init__(self, keepalive: float = 0, **options: Any) -> None:
        options.setdefault("log_connections", False)
        options.setdefault("idle_timeout", TIMEOUT)
        self.component = RecordingComponent()
        self.ws = WsServer(self.component, **options)
        if keepalive:
            self.ws.enable_keep_alive(keepalive)
        self.reactor = MemoryReactorClock()
        self.server = IoServer(HttpServer(self.ws), 0, reactor=self.reactor)

    def open(self) -> WsPeer:
        return WsPeer(server=self.server).open()

    def sweeps(self) -> list[Any]:
        sweeper = self.ws._idle
        return [c for c in self.reactor.getDelayedCalls() if c.func == sweeper._sweep]

    def run(self, seconds: float, peers: list[WsPeer], step: float = 0.5) -> list[Any]:
        """Advance the clock by ``step``s, letting each peer answer (pongs); the events seen."""
        events: list[Any] = []
        elapsed = 0.0
        while elapsed < seconds:
            self.reactor.advance(step)
            elapsed += step
            for peer in peers:
                events.extend(peer.pump())
        return events


def close_of(events: list[Any]) -> Close | None:
    for event in events:
        if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
            return Close.parse(event.data)
    return None


@PATHS
def test_silent_client_is_closed_with_1001(fast_path: bool) -> None:
    served = Served(fast_path=fast_path)
    peer = served.open()
    assert close_of(served.run(TIMEOUT - 0.5, [peer])) is None
    close = close_of(served.run(LATEST - TIMEOUT + 0.5, [peer]))
    assert close is not None and (close.code, close.reason) == (1001, "Idle timeout")
    # The client answers; the component hears of the close with 1001.
    peer.pump()
    assert served.component.kinds() == ["open", "close"]
    assert served.component.events[-1][1].close_code == 1001


@PATHS
def test_messages_reset_the_clock(fast_path: bool) -> None:
    served = Served(fast_path=fast_path)
    peer = served.open()
    for _ in range(5):
        assert close_of(served.run(TIMEOUT - 1, [peer])) is None
        peer.send_text("still here")
    assert served.component.messages() == ["still here"] * 5
    assert close_of(served.run(LATEST + 0.5, [peer])) is not None


def test_only_the_idle_client_is_closed() -> None:
    served = Served()
    quiet, chatty = served.open(), served.open()
    events: dict[WsPeer, list[Any]] = {quiet: [], chatty: []}
    for _ in range(int(2 * TIMEOUT)):
        served.reactor.advance(1)
        chatty.send_text("tick")
        for peer in (quiet, chatty):
            events[peer].extend(peer.pump())
    assert close_of(events[quiet]) is not None
    assert close_of(events[chatty]) is None
    assert ws_protocol(chatty.memory.conn).state == ws_protocol(chatty.memory.conn).STATE_OPEN


@PATHS
def test_keepalive_pongs_do_not_count_by_default(fast_path: bool) -> None:
    served = Served(keepalive=3, fast_path=fast_path)
    peer = served.open()
    events = served.run(LATEST + 0.5, [peer])
    pings = [e for e in events if isinstance(e, Frame) and e.opcode is Opcode.PING]
    assert len(pings) >= 2  # the client was pinged, and answered each
    close = close_of(events)
    assert close is not None and close.code == 1001 and close.reason == "Idle timeout"


@PATHS
def test_keepalive_pongs_count_when_configured(fast_path: bool) -> None:
    served = Served(keepalive=3, idle_counts_pongs=True, fast_path=fast_path)
    peer = served.open()
    assert close_of(served.run(4 * TIMEOUT, [peer])) is None
    # Without the pongs it still times out.
    served.ws.enable_keep_alive(0)
    protocol = ws_protocol(peer.memory.conn)
    assert close_of(served.run(LATEST + 3.5, [peer])) is not None
    assert protocol.conn.close_code == 1001


def test_client_pings_do_not_count() -> None:
    served = Served()
    peer = served.open()
    events: list[Any] = []
    for _ in range(int(LATEST) + 1):
        peer.client.send_ping(b"x")
        events.extend(peer.pump())
        served.reactor.advance(1)
    events.extend(peer.pump())
    assert any(isinstance(e, Frame) and e.opcode is Opcode.PONG for e in events)
    assert close_of(events) is not None


def test_one_timer_per_server_and_none_without_clients() -> None:
    served = Served()
    assert served.sweeps() == []
    peers = [served.open() for _ in range(30)]
    assert len(served.sweeps()) == 1
    served.reactor.advance(TIMEOUT / 2)
    later = [served.open() for _ in range(5)]
    assert len(served.sweeps()) == 1
    served.run(TIMEOUT / 2 + 1, peers + later)
    # The first 30 were closed; the 5 later ones are still open, one sweep pending.
    assert len(served.ws._open) == 5 and len(served.sweeps()) == 1
    served.run(LATEST, later)
    assert len(served.ws._open) == 0
    assert served.sweeps() == []
    served.open()
    assert len(served.sweeps()) == 1


def test_a_client_that_never_answers_the_close_is_dropped_after_close_timeout() -> None:
    served = Served(close_timeout=2)
    peer = served.open()
    served.reactor.advance(LATEST)
    frames = peer.memory.take()
    assert frames.startswith(b"\x88")  # the close frame; the client stays silent
    served.reactor.advance(2.5)
    assert not peer.memory.transport.connected
    assert served.component.kinds() == ["open", "close"]
    assert served.sweeps() == []


def test_the_sweep_is_logged_once_not_per_client(logged) -> None:
    served = Served()
    peers = [served.open() for _ in range(4)]
    served.run(LATEST, peers)
    lines = [e for e in logged if "idle WebSocket connection" in e.get("log_format", "")]
    assert len(lines) == 1 and lines[0]["count"] == 4
    assert "--idle-timeout" in lines[0]["log_format"]


def test_idle_timeout_off_by_default() -> None:
    ws = WsServer(RecordingComponent(), log_connections=False)
    assert ws.idle_timeout is None and ws._idle is None
    reactor = MemoryReactorClock()
    peer = WsPeer(server=IoServer(HttpServer(ws), 0, reactor=reactor)).open()
    reactor.advance(3600)
    assert close_of(peer.pump()) is None
