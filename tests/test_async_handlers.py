"""
Handlers may be ``async def`` or return Deferreds (``ratchetpy._handlers``).

One connection's events wait for its unfinished async handler, in order;
failures reach ``on_error``; ``SystemExit``/``KeyboardInterrupt``/
``GeneratorExit`` close with 1011 (the first two also stop the reactor).
Deterministic: a Clock drives every await.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from websockets.frames import Close

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy._handlers import MAX_QUEUED
from ratchetpy.interfaces import MessageComponentInterface
from tests.support.memory import MemoryConnection, WsPeer


class AsyncComponent(MessageComponentInterface):
    """Records events; each handler awaits the Deferred the test hands it."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.gates: dict[str, Deferred[None]] = {}

    def gate(self, name: str) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.gates[name] = d
        return d

    async def _wait(self, name: str) -> None:
        gate = self.gates.pop(name, None)
        if gate is not None:
            await gate

    async def on_open(self, conn: Any) -> None:
        self.events.append("open-start")
        await self._wait("open")
        conn.user = "alice"
        self.events.append("open-end")

    async def on_message(self, conn: Any, msg: Any) -> None:
        self.events.append(f"message-start {msg} user={getattr(conn, 'user', None)}")
        await self._wait(str(msg))
        if msg == "fail":
            raise ValueError("async failure")
        self.events.append(f"message-end {msg}")
        conn.send(f"echo {msg}")

    async def on_close(self, conn: Any) -> None:
        self.events.append("close")

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.events.append(f"error {exc!r}")


def open_peer(component: Any) -> WsPeer:
    return WsPeer(stack=HttpServer(WsServer(component, log_connections=False)), one_byte_at_a_time=False)


def test_async_on_open_finishes_before_the_first_message_starts() -> None:
    component = AsyncComponent()
    gate = component.gate("open")
    peer = open_peer(component).open()
    peer.send_text("hi")
    assert component.events == ["open-start"]  # the message waits
    gate.callback(None)
    assert component.events == [
        "open-start",
        "open-end",
        "message-start hi user=alice",
        "message-end hi",
    ]
    assert [e.data for e in peer.pump()] == [b"echo hi"]


def test_messages_of_one_connection_run_one_after_another() -> None:
    component = AsyncComponent()
    peer = open_peer(component).open()
    first = component.gate("one")
    peer.send_text("one")
    peer.send_text("two")
    assert component.events[-1] == "message-start one user=alice"
    first.callback(None)
    assert component.events[-3:] == ["message-end one", "message-start two user=alice", "message-end two"]


def test_connections_do_not_wait_for_each_other() -> None:
    component = AsyncComponent()
    a = open_peer(component).open()
    b = open_peer(component).open()
    component.gate("slow")
    a.send_text("slow")
    events = b.send_text("fast")
    assert "message-end fast" in component.events
    assert [e.data for e in events] == [b"echo fast"]


def test_an_async_failure_reaches_on_error_and_the_connection_stays_open() -> None:
    component = AsyncComponent()
    peer = open_peer(component).open()
    peer.send_text("fail")
    assert component.events[-1] == "error ValueError('async failure')"
    assert [e.data for e in peer.send_text("after")] == [b"echo after"]


def test_a_failing_deferred_reaches_on_error() -> None:
    class ReturnsDeferred(AsyncComponent):
        def on_message(self, conn: Any, msg: Any) -> Deferred[None]:  # type: ignore[override]
            d: Deferred[None] = Deferred()
            self.gates["d"] = d
            return d

    component = ReturnsDeferred()
    peer = open_peer(component).open()
    peer.send_text("x")
    component.gates.pop("d").errback(KeyError("later"))
    assert component.events[-1] == "error KeyError('later')"


def test_on_close_comes_after_a_pending_message_handler() -> None:
    component = AsyncComponent()
    peer = open_peer(component).open()
    gate = component.gate("slow")
    peer.send_text("slow")
    peer.memory.lose()
    assert "close" not in component.events
    gate.callback(None)
    assert component.events[-2:] == ["message-end slow", "close"]


def test_a_connection_with_many_waiting_events_stops_reading() -> None:
    component = AsyncComponent()
    peer = open_peer(component).open()
    gate = component.gate("0")
    for i in range(MAX_QUEUED + 2):
        peer.client.send_text(str(i).encode())
    peer.pump()
    assert peer.memory.transport.producerState == "paused"
    gate.callback(None)
    assert peer.memory.transport.producerState == "producing"
    assert component.events[-1] == f"message-end {MAX_QUEUED + 1}"


class Raises(MessageComponentInterface):
    def __init__(self, exc: BaseException, hook: str = "on_message") -> None:
        self.exc = exc
        self.hook = hook
        self.errors: list[Any] = []

    def on_open(self, conn: Any) -> None:
        if self.hook == "on_open":
            raise self.exc

    def on_message(self, conn: Any, msg: Any) -> None:
        raise self.exc

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.errors.append(exc)


@pytest.mark.parametrize("exc, stops", [(SystemExit(3), True), (KeyboardInterrupt(), True), (GeneratorExit(), False)])
@pytest.mark.parametrize("hook", ["on_open", "on_message"])
def test_base_exceptions_close_with_1011_and_exits_stop_the_server(
    exc: BaseException, stops: bool, hook: str
) -> None:
    component = Raises(exc, hook)
    reactor = MemoryReactorClock()
    reactor.running = True
    peer = WsPeer(stack=HttpServer(WsServer(component, log_connections=False)), reactor=reactor)
    peer.open()
    if hook == "on_message":
        peer.send_text("boom")
    else:
        peer.pump()
    assert peer.client.close_rcvd == Close(1011, "")
    assert component.errors == []  # not an Exception: on_error is not called
    reactor.advance(0)
    assert reactor.running is (not stops)


def test_async_base_exception_follows_the_same_policy() -> None:
    class AsyncExit(Raises):
        async def on_message(self, conn: Any, msg: Any) -> None:  # type: ignore[override]
            raise SystemExit(1)

    component = AsyncExit(SystemExit(1))
    reactor = MemoryReactorClock()
    reactor.running = True
    peer = WsPeer(stack=HttpServer(WsServer(component, log_connections=False)), reactor=reactor).open()
    peer.send_text("boom")
    assert peer.client.close_rcvd == Close(1011, "")
    reactor.advance(0)
    assert reactor.running is False


def test_raw_tcp_handlers_may_be_async_too() -> None:
    class RawAsync(AsyncComponent):
        async def on_message(self, conn: Any, msg: Any) -> None:
            await self._wait(msg.decode())
            conn.send(b"got " + msg)

    component = RawAsync()
    gate = component.gate("a")
    memory = MemoryConnection(component)
    memory.feed(b"a", one_byte_at_a_time=False)
    memory.feed(b"b", one_byte_at_a_time=False)
    assert memory.take() == b""
    gate.callback(None)
    assert memory.take() == b"got agot b"


def test_raw_tcp_system_exit_aborts_the_connection() -> None:
    reactor = MemoryReactorClock()
    reactor.running = True
    memory = MemoryConnection(Raises(SystemExit(0)), reactor)
    memory.feed(b"x", one_byte_at_a_time=False)
    assert memory.transport.aborted
    reactor.advance(0)
    assert reactor.running is False


def test_io_server_is_importable_without_a_reactor_running() -> None:
    # The policy above never stops a reactor that is not running.
    reactor = MemoryReactorClock()
    memory = MemoryConnection(Raises(KeyboardInterrupt()), reactor)
    memory.feed(b"x", one_byte_at_a_time=False)
    reactor.advance(0)
    assert memory.transport.aborted and not reactor.running
    assert isinstance(memory.server, IoServer)
